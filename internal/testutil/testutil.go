// Package testutil holds the small helpers the tests of several packages
// share: a deadline poll and loopback ports held for a whole test.
package testutil

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// pollEvery is how often WaitFor checks its condition.
const pollEvery = 5 * time.Millisecond

// WaitFor polls cond until it holds, and fails the test (t.Fatalf) with
// msgf formatted with args if it does not within timeout. Arguments are
// formatted only then, so a fmt.Stringer such as Lazy shows the state at
// the deadline.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, msgf string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: "+msgf, append([]any{timeout}, args...)...)
		}
		time.Sleep(pollEvery)
	}
}

// Lazy is a description computed when printed: pass one to WaitFor to
// report the state at the deadline.
type Lazy func() string

// String returns f().
func (f Lazy) String() string { return f() }

// Port is a loopback TCP port bound for the whole test, so that a node can
// be stopped and started again on the same address without ever releasing
// the port to another process (no listen, close and bind again). Each
// Listener call returns a fresh listener over it; closing that listener
// leaves the port bound, and a connection arriving while no listener is
// open is closed at once, as a stopped node's port would refuse it.
type Port struct {
	ln net.Listener

	mu  sync.Mutex
	cur *portListener // the open listener, if any
}

// NewPort binds a loopback port, released when the test ends.
func NewPort(t testing.TB) *Port {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("bind a loopback port: %v", err)
	}
	p := &Port{ln: ln}
	go p.accept()
	t.Cleanup(func() { ln.Close() })
	return p
}

// Addr returns the port's address, host:port.
func (p *Port) Addr() string { return p.ln.Addr().String() }

// Listener returns a new listener over the port, replacing (and closing)
// the one open before, if any.
func (p *Port) Listener() net.Listener {
	l := &portListener{port: p, conns: make(chan net.Conn), done: make(chan struct{})}
	p.mu.Lock()
	old := p.cur
	p.cur = l
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return l
}

func (p *Port) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			p.mu.Lock()
			cur := p.cur
			p.mu.Unlock()
			if cur != nil {
				cur.Close()
			}
			return
		}
		p.mu.Lock()
		cur := p.cur
		p.mu.Unlock()
		if cur == nil {
			c.Close()
			continue
		}
		select {
		case cur.conns <- c:
		case <-cur.done:
			c.Close()
		}
	}
}

// portListener is one listener over a Port.
type portListener struct {
	port  *Port
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *portListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops this listener; the port stays bound.
func (l *portListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.port.mu.Lock()
		if l.port.cur == l {
			l.port.cur = nil
		}
		l.port.mu.Unlock()
	})
	return nil
}

func (l *portListener) Addr() net.Addr { return l.port.ln.Addr() }

// logWriter sends log lines to t.Log, and drops them once the test has
// finished (Raft goroutines may log while a node closes).
type logWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Logger returns a logger writing to t.Log at debug level. Call it before
// starting what logs to it, so that it stops before they are closed.
func Logger(t testing.TB) *slog.Logger { return LevelLogger(t, slog.LevelDebug) }

// LevelLogger is Logger at level.
func LevelLogger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(LogWriter(t), &slog.HandlerOptions{Level: level}))
}

// LogWriter writes each line to t.Log until the test ends, then drops it.
func LogWriter(t testing.TB) io.Writer {
	w := &logWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}
