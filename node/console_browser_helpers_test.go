package node

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// The browser test's parts: headless Chromium driven by chromedp, a
// load balancer in front of the nodes that the test can cut and point
// elsewhere, and a reference stream of the supervisor's events over TCP.

// chromiumPath finds Debian's chromium. Without it the test is skipped,
// except under CI (CI=true), where it must run: .ci/run installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI=true: the browser test must run in CI (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): skipping the browser test; under CI=true it would fail")
	return ""
}

// browser is headless Chromium with one tab, and what its pages said:
// uncaught JavaScript exceptions (which fail the test) and console lines.
type browser struct {
	ctx context.Context

	mu         sync.Mutex
	exceptions []string
	logs       []string
}

// newBrowser starts headless Chromium with a 1280×800 viewport. When the
// test ends, the page's console lines are logged and any uncaught
// JavaScript exception fails it.
func newBrowser(t *testing.T, path string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &browser{ctx: ctx}
	// The first Run starts the browser for the context's whole life: no
	// timeout on this one.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium at %s: %v", path, err)
	}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	logs := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.exceptions = append(b.exceptions, (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
			b.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for ev, err := range logs {
			if err != nil {
				return
			}
			line := "console." + string(ev.Type) + ":"
			for _, a := range ev.Args {
				line += " " + string(a.Value) + a.Description
			}
			b.mu.Lock()
			b.logs = append(b.logs, line)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		wg.Wait()
		for _, l := range b.logs {
			t.Log("browser " + l)
		}
		for _, e := range b.exceptions {
			t.Errorf("uncaught JavaScript exception in the console's page: %s", e)
		}
	})
	return b
}

// run runs browser actions within a deadline, failing the test with what
// was being done.
func (b *browser) run(t *testing.T, what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true in the page.
func (b *browser) waitJS(t *testing.T, what, expr string, timeout time.Duration) {
	t.Helper()
	c, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("browser: waiting for %s (%s): %v", what, expr, err)
	}
}

// lbProxy is a TCP load balancer in front of the nodes' HTTP listeners:
// the browser talks to it only. route points it at a node ("" refuses
// every connection, as a balancer with no healthy node does); cut closes
// the connections open through it.
type lbProxy struct {
	ln net.Listener

	mu     sync.Mutex
	target string
	conns  map[net.Conn]struct{}
}

func newLBProxy(t *testing.T, target string) *lbProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lbProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.serve()
	}()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		<-done
	})
	return p
}

func (p *lbProxy) addr() string { return p.ln.Addr().String() }

func (p *lbProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		if target == "" {
			c.Close()
			continue
		}
		go p.pipe(c, target)
	}
}

func (p *lbProxy) pipe(c net.Conn, target string) {
	up, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(up, c)
		up.Close()
	}()
	_, _ = io.Copy(c, up)
	c.Close()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *lbProxy) route(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *lbProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// refStream records a TCP client's events (a supervisor's: the reference
// the page's events are held to).
type refStream struct {
	mu     sync.Mutex
	events []transport.Event
	cond   chan struct{} // closed and replaced on each event
}

func newRefStream(t *testing.T, c *transport.Client) *refStream {
	r := &refStream{cond: make(chan struct{})}
	go func() {
		for ev := range c.Events() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			close(r.cond)
			r.cond = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	return r
}

// waitFor waits for an event that match accepts and returns it.
func (r *refStream) waitFor(t *testing.T, what string, match func(transport.Event) bool) transport.Event {
	t.Helper()
	deadline := time.After(applyWait)
	for seen := 0; ; {
		r.mu.Lock()
		evs, cond := r.events, r.cond
		r.mu.Unlock()
		for ; seen < len(evs); seen++ {
			if match(evs[seen]) {
				return evs[seen]
			}
		}
		select {
		case <-cond:
		case <-deadline:
			t.Fatalf("the supervisor's TCP stream had no %s within %v", what, applyWait)
		}
	}
}

// between returns "kind@seq" of the events after seq, up to and including
// last.
func (r *refStream) between(after, last uint64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		if ev.Seq > after && ev.Seq <= last && ev.Kind != api.EvSync {
			out = append(out, eventLine(ev.Seq, string(ev.Kind)))
		}
	}
	return out
}

func eventLine(seq uint64, kind string) string {
	return kind + "@" + strconv.FormatUint(seq, 10)
}
