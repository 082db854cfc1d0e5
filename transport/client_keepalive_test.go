package transport_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/switchboard/switchboard/transport"
)

// freezeProxy forwards TCP connections to a target until frozen: then it
// stops forwarding in both directions without closing anything, as a
// node stopped with SIGSTOP (or cut off by a silent network) behaves.
type freezeProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	frozen   bool
	thawed   chan struct{}
	conns    []net.Conn
	accepted int
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target, thawed: make(chan struct{})}
	close(p.thawed)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) addr() string { return p.ln.Addr().String() }

func (p *freezeProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.accepted++
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies src to dst, holding what it read while frozen.
func (p *freezeProxy) pipe(src, dst net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		thawed := p.thawed
		p.mu.Unlock()
		<-thawed
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezeProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen = true
		p.thawed = make(chan struct{})
	}
}

func (p *freezeProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		close(p.thawed)
	}
}

func (p *freezeProxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *freezeProxy) close() {
	p.thaw()
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestClientDetectsFrozenNode: a client that sends nothing stays connected
// to a quiet node (the node's keepalive pings are what it hears), and
// once the node freezes the client takes it for dead after three
// keepalive intervals of silence (the bound of docs/PROTOCOL.md §4.6),
// fails over to the next address and re-sends the write that was in
// flight, which applies once.
func TestClientDetectsFrozenNode(t *testing.T) {
	const iv = 200 * time.Millisecond // the nodes' keepalive interval
	be := newCTBackend()
	var addrs []string
	for i := range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := transport.NewServer(be, transport.ServerConfig{NodeID: fmt.Sprintf("node-%d", i+1),
			KeepaliveInterval: iv, Logger: slog.New(slog.DiscardHandler)})
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		addrs = append(addrs, ln.Addr().String())
	}
	proxy := newFreezeProxy(t, addrs[0])
	// The client never pings (PingInterval < 0): only the node's
	// keepalives tell it the node is alive.
	c, err := transport.Dial(ctCtx(t), transport.ClientConfig{
		Addrs: []string{proxy.addr(), addrs[1]}, Role: "admin", Token: ctAdminToken,
		Reconnect: true, PingInterval: -1,
	})
	must(t, err)
	t.Cleanup(func() { c.Close() })
	if c.Welcome().Node != "node-1" || c.Welcome().PingMs != int(iv/time.Millisecond) {
		t.Fatalf("welcome %+v, want node-1 announcing ping_ms %d", c.Welcome(), iv/time.Millisecond)
	}
	const limit = 3 * iv // the silence limit the client derives from ping_ms

	// Quiet but alive: no failover over several silence limits.
	quiet := time.Now()
	tick := time.NewTicker(iv / 4)
	for time.Since(quiet) < 3*limit {
		<-tick.C
		if n := c.Welcome().Node; n != "node-1" || proxy.connections() != 1 {
			t.Fatalf("left a quiet live node after %v: now on %s, %d connections through the proxy",
				time.Since(quiet).Round(time.Millisecond), n, proxy.connections())
		}
	}
	tick.Stop()

	// Frozen: the client detects it within 7/6 of the limit (it checks six
	// times per limit), plus a reconnect; never before the limit.
	proxy.freeze()
	frozeAt := time.Now()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ctWait)
		defer cancel()
		done <- c.CreateList(ctx, api.CreateListArgs{ID: "Lfrozen"})
	}()
	testutil.WaitFor(t, ctWait, func() bool { return c.Welcome().Node == "node-2" },
		"the client to fail over to node-2")
	took := time.Since(frozeAt)
	t.Logf("failed over %v after the freeze (silence limit %v)", took.Round(time.Millisecond), limit)
	// Silence counts from the last frame heard, at most one interval
	// before the freeze.
	if took < limit-iv {
		t.Fatalf("failed over %v after the freeze: the %v silence limit cannot have passed", took, limit)
	}
	if bound := limit*7/6 + time.Second; took > bound {
		t.Fatalf("failed over %v after the freeze, want within %v", took, bound)
	}
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(ctWait):
		t.Fatal("the write in flight during the freeze was not answered")
	}
	be.mu.Lock()
	applied := 0
	for _, s := range be.submits {
		if a, ok := s.args.(*api.CreateListArgs); ok && a.ID == "Lfrozen" {
			applied++
		}
	}
	be.mu.Unlock()
	if applied != 1 {
		t.Fatalf("create_list Lfrozen submitted %d times, want once", applied)
	}
}
