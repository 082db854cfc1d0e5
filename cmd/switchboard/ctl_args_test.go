package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseCtlArgs(t *testing.T) {
	cleanEnv(t)
	a, err := parseCtlArgs([]string{"create", "--mrd", "chat", "queue", "support", "--addr", "A,B", "--priority", "5", "-o", "json", "--offer-timeout", "20s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if a.verb != "create" || strings.Join(a.args, " ") != "queue support" || a.conn.addrs != "A,B" ||
		a.create.mrd != "chat" || a.create.priority != 5 || a.create.offerTimeout != 20*time.Second || *a.output != outputJSON {
		t.Fatalf("parsed %+v %+v", a, a.create)
	}
	for _, args := range [][]string{
		{},                        // no verb
		{"--addr", "A"},           // still no verb
		{"status", "--name", "x"}, // a create flag elsewhere
		{"create", "list", "L", "--max", "chat=1"}, // a create flag of another kind
		{"get", "lists", "--what"},
	} {
		if _, err := parseCtlArgs(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	a, err = parseCtlArgs([]string{"set-service-level", "queue", "Q", "--sla", "45s", "--sla-warn", "80"}, io.Discard)
	if err != nil || a.create.sla != 45*time.Second || a.create.slaWarn != 80 {
		t.Fatalf("set-service-level: %v %+v", err, a)
	}
	a, err = parseCtlArgs([]string{"create", "list", "L", "--sla", "1m", "--remind-inactive", "10m", "--close-inactive", "1h"}, io.Discard)
	if err != nil || a.create.sla != time.Minute || a.create.remindInactive != 10*time.Minute || a.create.closeInactive != time.Hour {
		t.Fatalf("create list: %v %+v", err, a)
	}
	for _, args := range [][]string{
		{"set-service-level", "list", "L", "--remind-inactive", "1m"}, // a list-only create flag
		{"create", "queue", "Q", "--close-inactive", "1m"},            // lists only
		{"status", "--sla", "1s"},
	} {
		if _, err := parseCtlArgs(args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	if _, err := parseCtlArgs([]string{"help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("ctl help: %v", err)
	}
}

// TestDocumentedCtlCommandsParse: every `switchboard ctl` line of the
// README and the operations guide parses.
func TestDocumentedCtlCommandsParse(t *testing.T) {
	cleanEnv(t)
	line := regexp.MustCompile(`(?m)switchboard ctl ([^\n` + "`" + `#|]*)`)
	word := regexp.MustCompile(`"[^"]*"|\S+`)
	n := 0
	for _, doc := range []string{"../../README.md", "../../docs/OPERATIONS.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range line.FindAllStringSubmatch(string(b), -1) {
			var fields []string // shell words, quotes removed
			for _, w := range word.FindAllString(strings.TrimSuffix(strings.TrimSpace(m[1]), "\\"), -1) {
				fields = append(fields, strings.Trim(w, `"`))
			}
			if len(fields) == 0 || strings.Contains(m[1], "...") && len(fields) < 3 {
				continue
			}
			n++
			if _, err := parseCtlArgs(fields, io.Discard); err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%s: ctl %s: %v", filepath.Base(doc), m[1], err)
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d ctl lines in the docs", n)
	}
}

func TestResolveToken(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "  from-file\n")
	writeFile(t, filepath.Join(dir, "empty"), "\n")
	writeFile(t, filepath.Join(dir, "data", "admin-token"), "from-data\n")
	for _, tc := range []struct {
		name string
		cf   connFlags
		env  map[string]string
		l    tokenLookup
		want string
		err  string
	}{
		{"flag", connFlags{token: "flag", data: dir + "/data"}, map[string]string{"SWITCHBOARD_ADMIN_TOKEN": "env"}, adminTokenLookup, "flag", ""},
		{"file", connFlags{tokenFile: dir + "/f"}, map[string]string{"SWITCHBOARD_ADMIN_TOKEN": "env"}, adminTokenLookup, "from-file", ""},
		{"both", connFlags{token: "x", tokenFile: dir + "/f"}, nil, adminTokenLookup, "", "not both"},
		{"empty file", connFlags{tokenFile: dir + "/empty"}, nil, adminTokenLookup, "", "is empty"},
		{"missing file", connFlags{tokenFile: dir + "/missing"}, map[string]string{"SWITCHBOARD_ADMIN_TOKEN": "env"}, adminTokenLookup, "", "--token-file"},
		{"admin env", connFlags{data: dir + "/data"}, map[string]string{"SWITCHBOARD_ADMIN_TOKEN": "admin", "SWITCHBOARD_TOKEN": "old"}, adminTokenLookup, "admin", ""},
		{"old env", connFlags{data: dir + "/data"}, map[string]string{"SWITCHBOARD_TOKEN": "old"}, adminTokenLookup, "old", ""},
		{"data dir", connFlags{data: dir + "/data"}, nil, adminTokenLookup, "from-data", ""},
		{"nothing", connFlags{data: dir + "/none"}, nil, adminTokenLookup, "", "no admin token found"},
		{"agent env", connFlags{data: dir + "/data"}, map[string]string{"SWITCHBOARD_AGENT_TOKEN": "agent", "SWITCHBOARD_TOKEN": "old"}, agentTokenLookup, "agent", ""},
		{"agent ignores the data dir", connFlags{data: dir + "/data"}, nil, agentTokenLookup, "", "no agent token found"},
		{"agent ignores the admin env", connFlags{}, map[string]string{"SWITCHBOARD_ADMIN_TOKEN": "admin"}, agentTokenLookup, "", "$SWITCHBOARD_AGENT_TOKEN (not set)"},
		{"connector env", connFlags{}, map[string]string{"SWITCHBOARD_CONNECTOR_TOKEN": "conn"}, connectorTokenLookup, "conn", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got, err := tc.cf.resolveToken(tc.l)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseAgentArgs(t *testing.T) {
	cleanEnv(t)
	tok := filepath.Join(t.TempDir(), "tok")
	writeFile(t, tok, "secret\n")
	o, err := parseAgentArgs([]string{"--token-file", tok, "--user", "alice", "--addr", "A,B"}, io.Discard)
	if err != nil || o.user != "alice" || o.token != "secret" || o.conn.addrs != "A,B" {
		t.Fatalf("%+v, %v", o, err)
	}
	t.Setenv("SWITCHBOARD_AGENT_TOKEN", "from-env")
	t.Setenv("SWITCHBOARD_USER", "bob")
	if o, err := parseAgentArgs(nil, io.Discard); err != nil || o.user != "bob" || o.token != "from-env" {
		t.Fatalf("%+v, %v", o, err)
	}
	if _, err := parseAgentArgs([]string{"join", "R1"}, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("positional arguments: %v", err)
	}
}
