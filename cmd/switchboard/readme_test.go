package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testutil"
)

// The README's walkthroughs, run as a reader would: every `sh` block of
// each "## Walkthrough" section, in order, against a node started with the
// quick start's own command line (`./switchboard serve`, no flags) in a
// fresh directory, so that ctl finds ./data/admin-token as the README
// says. What the test adds, and only that: the node's ports are sockets it
// holds (handed over with --*-listener-fd, so nothing binds 7400-7402 on a
// shared machine) and SWITCHBOARD_ADDR points ctl, agent and customer at
// them. Placeholders (<alice's token>, <connector token>) are filled from
// the outputs of the create commands that print them; a `# ...` line under
// a command is output the command must print; the lines after an `agent`
// command in its block are typed into that console, which stays open, and
// an untagged block marked <!-- console output --> (what a console shows
// after the commands above it) is checked against the open consoles,
// sequence numbers aside.
func TestREADMEWalkthroughs(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := walkthroughSections(string(readme))
	if len(sections) < 2 {
		t.Fatalf("found %d walkthrough sections in README.md", len(sections))
	}
	bin := e2eBinary(t)
	for _, sec := range sections {
		t.Run(sec.title, func(t *testing.T) { runWalkthrough(t, bin, sec) })
	}
}

type readmeBlock struct {
	lang   string   // "sh", or "" for an untagged block (shown output)
	lines  []string // continuation lines joined
	output bool     // an untagged block under <!-- console output -->: checked
}

type readmeSection struct {
	title  string
	blocks []readmeBlock
}

// walkthroughSections returns the fenced blocks of every "## Walkthrough"
// section of md, in order.
func walkthroughSections(md string) []readmeSection {
	var out []readmeSection
	var cur *readmeSection
	var blk *readmeBlock
	marked := false // the next block is output the test checks
	for _, line := range strings.Split(md, "\n") {
		switch {
		case blk != nil && strings.HasPrefix(line, "```"):
			cur.blocks = append(cur.blocks, *blk)
			blk = nil
		case blk != nil:
			if n := len(blk.lines); n > 0 && strings.HasSuffix(blk.lines[n-1], "\\") {
				blk.lines[n-1] = strings.TrimSuffix(blk.lines[n-1], "\\") + " " + strings.TrimSpace(line)
			} else {
				blk.lines = append(blk.lines, line)
			}
		case strings.HasPrefix(line, "## "):
			cur = nil
			if strings.HasPrefix(line, "## Walkthrough") {
				out = append(out, readmeSection{title: strings.TrimPrefix(line, "## ")})
				cur = &out[len(out)-1]
			}
		case cur != nil && strings.HasPrefix(line, "```"):
			blk = &readmeBlock{lang: strings.TrimPrefix(line, "```"), output: marked}
			marked = false
		case cur != nil && strings.TrimSpace(line) == "<!-- console output -->":
			marked = true
		}
	}
	return out
}

var (
	trailingComment = regexp.MustCompile(`\s+#\s.*$`)
	placeholder     = regexp.MustCompile(`<([^>]+)>`)
	printedToken    = regexp.MustCompile(`(?m)^token: (\S+)$`)
	eventSeq        = regexp.MustCompile(`^#\d+ `)
)

// console is an interactive `switchboard agent` the walkthrough left open.
type console struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	out   strings.Builder
}

func (c *console) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func runWalkthrough(t *testing.T, bin string, sec readmeSection) {
	dir := t.TempDir()
	client, raft, web := holdPort(t), holdPort(t), holdPort(t)
	env := append(os.Environ(), "SWITCHBOARD_ADDR="+client.addr)
	for _, v := range []string{"SWITCHBOARD_TOKEN", "SWITCHBOARD_ADMIN_TOKEN", "SWITCHBOARD_AGENT_TOKEN", "SWITCHBOARD_CONNECTOR_TOKEN", "SWITCHBOARD_SUPERVISOR", "SWITCHBOARD_SUPERVISOR_TOKEN", "SWITCHBOARD_DATA"} {
		env = append(env, v+"=")
	}

	// The quick start's command line, with the held sockets.
	serve := exec.Command(bin, "serve", "--client-listener-fd", "3", "--raft-listener-fd", "4", "--http-listener-fd", "5")
	serve.Dir, serve.Env = dir, env
	var serveOut lockedBuffer
	serve.Stdout, serve.Stderr = &serveOut, &serveOut
	for _, p := range []*heldPort{client, raft, web} {
		p.pause()
		f := p.file(t)
		defer f.Close()
		serve.ExtraFiles = append(serve.ExtraFiles, f)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = serve.Process.Kill()
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("serve's output:\n%s", serveOut.String())
		}
	})
	testutil.WaitFor(t, 30*time.Second, func() bool { return strings.Contains(serveOut.String(), "serving") },
		"serve to say it serves:\n%s", testutil.Lazy(serveOut.String))

	tokens := map[string]string{} // "alice's token", "connector token"
	var consoles []*console
	defer func() {
		for _, c := range consoles {
			c.stdin.Close()
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	}()
	ran := 0
	for _, b := range sec.blocks {
		if b.lang == "" && b.output {
			// Output a console shows after the commands above: the open
			// consoles must have printed each event line (its sequence
			// number aside). Other untagged blocks follow steps the
			// prose describes, which this test does not type.
			for _, want := range b.lines {
				want = strings.TrimSpace(want)
				if !eventSeq.MatchString(want) || len(consoles) == 0 {
					continue
				}
				want = eventSeq.ReplaceAllString(want, "")
				testutil.WaitFor(t, 20*time.Second, func() bool {
					for _, c := range consoles {
						if strings.Contains(c.output(), want) {
							return true
						}
					}
					return false
				}, "a console to print %q", want)
			}
			continue
		}
		if b.lang != "sh" {
			continue
		}
		var open *console
		var last string
		for _, line := range b.lines {
			line = strings.TrimSpace(line)
			switch {
			case line == "":
			case strings.HasPrefix(line, "# "):
				if !strings.Contains(last, strings.TrimPrefix(line, "# ")) {
					t.Fatalf("the command before %q printed:\n%s", line, last)
				}
			case strings.HasPrefix(line, "./switchboard "):
				comment := ""
				if m := trailingComment.FindString(line); m != "" {
					comment = strings.TrimSpace(m)
				}
				args := shellWords(t, fillPlaceholders(t, strings.TrimSpace(trailingComment.ReplaceAllString(line, "")), tokens))[1:]
				ran++
				if args[0] == "agent" {
					open = startConsole(t, bin, dir, env, args)
					consoles = append(consoles, open)
					continue
				}
				cmd := exec.Command(bin, args...)
				cmd.Dir, cmd.Env = dir, env
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s: %v\n%s", line, err, out)
				}
				last = string(out)
				// A create that prints a token: what <NAME's token> and
				// <connector token> stand for in later lines.
				if len(args) >= 4 && args[0] == "ctl" && args[1] == "create" && (args[2] == "agent" || args[2] == "connector" || args[2] == "supervisor") {
					m := printedToken.FindStringSubmatch(last)
					if m == nil {
						t.Fatalf("%s printed no token:\n%s", line, last)
					}
					if args[2] == "connector" {
						tokens["connector token"] = m[1]
					} else {
						tokens[args[3]+"'s token"] = m[1]
					}
				}
				_ = comment
			case open != nil:
				// Typed into the console the block opened. A subscribe
				// must have taken effect before the next command, as a
				// reader waits for the console to answer.
				if _, err := io.WriteString(open.stdin, line+"\n"); err != nil {
					t.Fatalf("typing %q: %v", line, err)
				}
				if list, ok := strings.CutPrefix(line, "subscribe "); ok {
					testutil.WaitFor(t, 20*time.Second, func() bool {
						return strings.Contains(open.output(), "list.subscribed list "+list)
					}, "the console to confirm %q:\n%s", line, testutil.Lazy(open.output))
				}
				// Likewise READY: the next command may count on it.
				if mrd, ok := strings.CutPrefix(line, "ready "); ok {
					testutil.WaitFor(t, 20*time.Second, func() bool {
						return strings.Contains(open.output(), "is READY in "+mrd)
					}, "the console to confirm %q:\n%s", line, testutil.Lazy(open.output))
				}
			default:
				t.Fatalf("README line %q is neither a command nor console input", line)
			}
		}
	}
	if ran < 5 {
		t.Fatalf("ran only %d commands of %q", ran, sec.title)
	}
}

func startConsole(t *testing.T, bin, dir string, env, args []string) *console {
	t.Helper()
	c := &console{cmd: exec.Command(bin, args...)}
	c.cmd.Dir, c.cmd.Env = dir, env
	in, err := c.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdin = in
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = c.cmd.Stdout
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.mu.Lock()
			c.out.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
		}
	}()
	return c
}

// fillPlaceholders replaces each <name> in line with tokens[name].
func fillPlaceholders(t *testing.T, line string, tokens map[string]string) string {
	t.Helper()
	return placeholder.ReplaceAllStringFunc(line, func(m string) string {
		v, ok := tokens[m[1:len(m)-1]]
		if !ok {
			t.Fatalf("README placeholder %s: nothing earlier printed it (have %v)", m, keysOf(tokens))
		}
		return v
	})
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// shellWords splits a command line as sh does for the README's lines:
// words separated by spaces, double quotes grouping (no escapes, no
// variables: the README uses none).
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inQuote, have := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case r == ' ' && !inQuote:
			if have {
				words = append(words, w.String())
				w.Reset()
				have = false
			}
		default:
			w.WriteRune(r)
			have = true
		}
	}
	if inQuote {
		t.Fatalf("unbalanced quotes in README line %q", line)
	}
	if have {
		words = append(words, w.String())
	}
	if len(words) < 2 {
		t.Fatalf("README command %q: too short", line)
	}
	return words
}
