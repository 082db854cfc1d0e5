package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/switchboard/switchboard/transport"
)

// rawConn is a client connection from the loopback address local (e.g.
// 127.0.0.2: every 127/8 address is this machine), speaking frames by hand.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr, local string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(f *transport.Frame) {
	r.t.Helper()
	b, err := transport.EncodeFrame(f)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// next reads the next frame within d; it returns an error at EOF.
func (r *rawConn) next(d time.Duration) (transport.Frame, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	var f transport.Frame
	err := transport.ReadFrame(r.br, 64<<20, &f)
	return f, err
}

// hello sends a hello and returns the node's answer (welcome or bye).
func (r *rawConn) hello(role, user, token string) transport.Frame {
	r.t.Helper()
	r.send(&transport.Frame{T: transport.TypeHello, V: transport.ProtocolVersion, Role: role, User: user, Token: token})
	f, err := r.next(10 * time.Second)
	if err != nil {
		r.t.Fatalf("no answer to hello: %v", err)
	}
	return f
}

func codeOf(f transport.Frame) api.Code {
	if f.Err == nil {
		return api.CodeOK
	}
	return f.Err.Code
}

// Writes over a principal's rate are refused with rate_limited and a
// retry hint, and not applied; the principal's sessions share one bucket,
// so a second connection buys nothing. /metrics counts the refusals by
// role.
func TestWritesOverThePrincipalRateAreRateLimited(t *testing.T) {
	n := newHANode(t, "n1", withHTTP(t))
	n.start(func(cfg *Config) {
		cfg.Raft.Bootstrap = true
		cfg.Transport.ConnectorWriteRate = transport.Rate{PerSec: 0.001, Burst: 5}
	})
	writeRefusals := func(role string) float64 {
		v, ok := sample(scrape(t, n.srv), "switchboard_transport_rate_limited_total", labels("kind", "write", "role", role))
		if !ok {
			t.Fatalf("no rate_limited series for writes of %s", role)
		}
		return v
	}
	if v := writeRefusals("connector"); v != 0 {
		t.Fatalf("%v write refusals before any write", v)
	}
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	_, connTok := haSetup(t, admin)
	clients := []*transport.Client{
		haDial(t, []string{n.client}, "connector", "fb", connTok, false),
		haDial(t, []string{n.client}, "connector", "fb", connTok, false),
	}
	var (
		mu      sync.Mutex
		ok, lim int
		wg      sync.WaitGroup
	)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := clients[i%2].Call(ctx, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: fmt.Sprintf("c%d", i), Text: "hi"}, nil)
			mu.Lock()
			defer mu.Unlock()
			var eb *transport.ErrorBody
			switch {
			case err == nil:
				ok++
			case errors.As(err, &eb) && eb.Code == api.CodeRateLimited && eb.RetryMs > 0:
				lim++
			default:
				t.Errorf("write %d: %v, want ok or rate_limited with retry_ms", i, err)
			}
		}()
	}
	wg.Wait()
	if ok != 5 || lim != 25 {
		t.Fatalf("%d writes applied, %d rate_limited; want the burst of 5 applied and 25 refused", ok, lim)
	}
	var snap api.ListSnapshot
	haCall(t, admin, "get_list", api.ListRef{List: "L1"}, &snap)
	if len(snap.Requests) != ok {
		t.Fatalf("list holds %d requests after %d applied writes: a refused write was applied", len(snap.Requests), ok)
	}
	if got := writeRefusals("connector"); got != float64(lim) {
		t.Fatalf("switchboard_transport_rate_limited_total{kind=write,role=connector} = %v, want %d", got, lim)
	}
	if got := writeRefusals("agent"); got != 0 {
		t.Fatalf("agent write refusals %v, want 0", got)
	}
	// Admins are not limited by default.
	for i := range 20 {
		haCall(t, admin, "create_mrd", api.CreateMRDArgs{ID: fmt.Sprintf("m%d", i)}, nil)
	}
}

// logCounter counts log lines holding a substring.
type logCounter struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logCounter) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// Failed hellos are throttled per source address and per user: past the
// allowance, hellos are refused with rate_limited before the credentials
// are looked at (so the right token does not get through either), and
// the failures are not logged one line each. /metrics counts each kind
// of refusal.
func TestFailedLoginsAreThrottledPerAddressAndPerUser(t *testing.T) {
	var logs logCounter
	n := newHANode(t, "n1", withHTTP(t))
	n.start(func(cfg *Config) {
		cfg.Raft.Bootstrap = true
		cfg.Transport.LoginFailuresPerAddr = transport.Rate{PerSec: 0.001, Burst: 5}
		cfg.Transport.LoginFailuresPerUser = transport.Rate{PerSec: 0.001, Burst: 3}
		cfg.Transport.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testutil.LogWriter(t)), nil))
	})
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, _ := haSetup(t, admin, "a1", "a2")

	// Per address: 127.0.0.2 fails 5 times (other users each time), then
	// is refused, even with a1's right token.
	for i := range 5 {
		if f := dialRaw(t, n.client, "127.0.0.2").hello("agent", fmt.Sprintf("x%d", i), "wrong"); codeOf(f) != api.CodeUnauthenticated {
			t.Fatalf("failure %d: %+v, want bye unauthenticated", i, f)
		}
	}
	f := dialRaw(t, n.client, "127.0.0.2").hello("agent", "a1", tokens["a1"])
	if codeOf(f) != api.CodeRateLimited || f.Err.RetryMs <= 0 {
		t.Fatalf("hello after 5 failures from one address: %+v, want bye rate_limited with retry_ms", f)
	}
	if f := dialRaw(t, n.client, "127.0.0.3").hello("agent", "a1", tokens["a1"]); f.T != transport.TypeWelcome {
		t.Fatalf("another address was throttled too: %+v", f)
	}

	// Per user: a2 fails 3 times, from 3 addresses; then a2 is refused
	// from a fourth, while a1 still logs in from there.
	for i := range 3 {
		if f := dialRaw(t, n.client, fmt.Sprintf("127.0.1.%d", i+1)).hello("agent", "a2", "wrong"); codeOf(f) != api.CodeUnauthenticated {
			t.Fatalf("a2 failure %d: %+v", i, f)
		}
	}
	if f := dialRaw(t, n.client, "127.0.2.1").hello("agent", "a2", tokens["a2"]); codeOf(f) != api.CodeRateLimited {
		t.Fatalf("a2 after 3 failures: %+v, want bye rate_limited", f)
	}
	if f := dialRaw(t, n.client, "127.0.2.1").hello("agent", "a1", tokens["a1"]); f.T != transport.TypeWelcome {
		t.Fatalf("a1 throttled for a2's failures: %+v", f)
	}

	// 8 failures and 2 refusals in a few seconds: a line or so each.
	if c := logs.count("code=unauthenticated"); c > 2 {
		t.Errorf("%d WARN lines for 8 failed hellos: want them rate-limited", c)
	}

	fams := scrape(t, n.srv)
	for _, c := range []struct {
		kind, role string
		want       float64
	}{
		{"login_addr", "agent", 1}, {"login_user", "agent", 1}, {"write", "agent", 0}, {"login_addr", "admin", 0},
	} {
		if got, _ := sample(fams, "switchboard_transport_rate_limited_total", labels("kind", c.kind, "role", c.role)); got != c.want {
			t.Errorf("rate_limited{kind=%s,role=%s} = %v, want %v", c.kind, c.role, got, c.want)
		}
	}
}

// The client port caps the connections open at once, per source address
// and in all; a connection over a cap is closed before a byte is read,
// and counted by cap in /metrics.
func TestConnectionCaps(t *testing.T) {
	n := newHANode(t, "n1", withHTTP(t))
	n.start(func(cfg *Config) {
		cfg.Raft.Bootstrap = true
		cfg.Transport.MaxConnsPerAddr = 3
		cfg.Transport.MaxConns = 5
	})
	accepted := func(r *rawConn) bool {
		r.send(&transport.Frame{T: transport.TypePing, ID: 7})
		f, err := r.next(10 * time.Second)
		if err != nil {
			return false
		}
		return f.T == transport.TypePong
	}
	for i := range 3 {
		if !accepted(dialRaw(t, n.client, "127.0.0.2")) {
			t.Fatalf("connection %d from 127.0.0.2 refused under the cap", i)
		}
	}
	if accepted(dialRaw(t, n.client, "127.0.0.2")) {
		t.Fatal("a 4th connection from one address got in over a cap of 3")
	}
	for i := range 2 {
		if !accepted(dialRaw(t, n.client, "127.0.0.3")) {
			t.Fatalf("connection %d from 127.0.0.3 refused under the total cap", i)
		}
	}
	if accepted(dialRaw(t, n.client, "127.0.0.4")) {
		t.Fatal("a 6th connection got in over a total cap of 5")
	}
	fams := scrape(t, n.srv)
	for cp, want := range map[string]float64{"per_address": 1, "total": 1} {
		if got, ok := sample(fams, "switchboard_transport_connections_refused_total", labels("cap", cp)); !ok || got != want {
			t.Errorf("connections_refused{cap=%s} = %v (present %v), want %v", cp, got, ok, want)
		}
	}
}

// Before hello, a frame may be a few KiB at most: a stranger declaring a
// big frame is cut off at once rather than given max_frame of memory.
func TestPreHelloFrameIsLimitedToAFewKiB(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	r := dialRaw(t, n.client, "127.0.0.1")
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 64<<10)
	if _, err := r.c.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	f, err := r.next(3 * time.Second)
	if err != nil || codeOf(f) != api.CodeFrameTooLarge {
		t.Fatalf("a 64 KiB frame declared before hello: %+v, %v; want bye frame_too_large at once", f, err)
	}
}

// The hello deadline runs from the connection's accept, as documented:
// the listener's peek at the first frame does not add a second one.
func TestHelloDeadlineIsAsDocumented(t *testing.T) {
	const deadline = time.Second
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) {
		cfg.Raft.Bootstrap = true
		cfg.Transport.HelloTimeout = deadline
	})
	start := time.Now()
	r := dialRaw(t, n.client, "127.0.0.1")
	f, err := r.next(10 * deadline)
	took := time.Since(start)
	if err != nil || codeOf(f) != api.CodeHelloTimeout {
		t.Fatalf("silent connection: %+v, %v; want bye hello_timeout", f, err)
	}
	if took < deadline-100*time.Millisecond || took > deadline+deadline/2 {
		t.Fatalf("bye hello_timeout after %v, want about %v", took, deadline)
	}
}
