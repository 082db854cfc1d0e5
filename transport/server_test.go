package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

func TestHelloWelcome(t *testing.T) {
	h := newHarness(t, ServerConfig{NodeID: "node-7"}, nil)

	w := h.dial().hello("admin", "ignored")
	if w.V != ProtocolVersion || w.Node != "node-7" || w.Role != "admin" || w.User != "root" ||
		w.MaxFrame != DefaultMaxFrame || w.Client == "" {
		t.Fatalf("welcome %+v", w)
	}
	w2 := h.dial().hello("admin", "")
	if w2.Client == w.Client {
		t.Fatalf("two connections got the same generated client id %q", w.Client)
	}

	// An agent resuming from a cursor: welcome carries its client id, then
	// its stream starts after the cursor; welcome always comes first.
	c := h.dial()
	since := uint64(42)
	c.send(&Frame{T: TypeHello, V: ProtocolVersion, Role: "agent", User: "bob", Token: testToken, Client: "console-1", Since: &since})
	w = c.read()
	if w.T != TypeWelcome || w.Role != "agent" || w.User != "bob" || w.Client != "console-1" {
		t.Fatalf("first frame %+v, want the agent's welcome", w)
	}
	if ev := c.read(); ev.T != TypeEvent || ev.Seq != 43 || ev.Kind != "sync" {
		t.Fatalf("second frame %+v, want the sync event after the cursor", ev)
	}
	h.be.mu.Lock()
	calls := slices.Clone(h.be.attaches)
	h.be.mu.Unlock()
	if want := []attachCall{{api.AgentKey("bob"), 42, true}}; !slices.Equal(calls, want) {
		t.Fatalf("Attach calls %v, want %v (admins have no stream)", calls, want)
	}
	if n := h.srv.Sessions(); n != 3 {
		t.Fatalf("Sessions() = %d, want 3", n)
	}
	if h.srv.Addr() == nil || h.srv.Addr().String() != h.addr {
		t.Fatalf("Addr() = %v, want %s", h.srv.Addr(), h.addr)
	}
}

func TestHelloBadToken(t *testing.T) {
	h := newHarness(t, ServerConfig{}, nil)
	c := h.dial()
	c.send(&Frame{T: TypeHello, V: ProtocolVersion, Role: "agent", User: "bob", Token: "wrong"})
	c.expectBye(api.CodeUnauthenticated)
	waitFor(t, "the session to end", func() bool { return h.srv.Sessions() == 0 })
}

func TestHelloTimeout(t *testing.T) {
	h := newHarness(t, ServerConfig{HelloTimeout: 100 * time.Millisecond}, nil)
	h.dial().expectBye(api.CodeHelloTimeout)
}

func TestRequestBeforeHello(t *testing.T) {
	h := newHarness(t, ServerConfig{}, nil)
	c := h.dial()
	c.send(&Frame{T: TypeRequest, ID: 7, Op: "noop"})
	res := c.readType(TypeResponse)
	if res.ID != 7 || res.OK || errCode(res) != api.CodeUnauthenticated {
		t.Fatalf("res %+v (err %v), want id 7 unauthenticated", res, res.Err)
	}
	c.roundTrip(8) // ping is answered before hello too
	c.hello("admin", "")
	if res := c.call(9, "noop", nil, 0); !res.OK {
		t.Fatalf("after hello: %+v", res.Err)
	}
	h.be.mu.Lock()
	n := len(h.be.commands)
	h.be.mu.Unlock()
	if n != 1 {
		t.Fatalf("backend saw %d commands, want only the one after hello", n)
	}
}

// Request ids start at 1: a req with id 0 is answered bad_request and
// never reaches the backend; the session goes on.
func TestRequestIDZeroRefused(t *testing.T) {
	h := newHarness(t, ServerConfig{}, nil)
	c := h.helloClient("admin", "")
	c.send(&Frame{T: TypeRequest, ID: 0, Op: "noop", Seq: 1})
	res := c.readType(TypeResponse)
	if res.OK || errCode(res) != api.CodeBadRequest {
		t.Fatalf("req id 0: %+v (err %v), want bad_request", res, res.Err)
	}
	if res := c.call(1, "noop", nil, 0); !res.OK {
		t.Fatalf("the next req: %+v", res.Err)
	}
	h.be.mu.Lock()
	n := len(h.be.commands)
	h.be.mu.Unlock()
	if n != 1 {
		t.Fatalf("backend saw %d commands, want only the one with id 1", n)
	}
}

func TestProtocolViolations(t *testing.T) {
	cases := []struct {
		name  string
		hello bool // complete a hello first
		frame Frame
		res   bool // a res with the frame's id comes before the bye
		code  api.Code
	}{
		{"second hello", true, Frame{T: TypeHello, V: ProtocolVersion, Role: "admin", Token: testToken}, false, api.CodeProtocol},
		{"wrong version", false, Frame{T: TypeHello, V: 99, Role: "admin", Token: testToken}, false, api.CodeProtocol},
		{"unknown role", false, Frame{T: TypeHello, V: ProtocolVersion, Role: "system", Token: testToken}, false, api.CodeBadRequest},
		{"long client id", false, Frame{T: TypeHello, V: ProtocolVersion, Role: "admin", Token: testToken, Client: string(make([]byte, 200))}, false, api.CodeBadRequest},
		{"client id not UTF-8", false, Frame{T: TypeHello, V: ProtocolVersion, Role: "admin", Token: testToken, Client: "abc\xff\xfe"}, false, api.CodeBadRequest},
		{"client id with a control character", false, Frame{T: TypeHello, V: ProtocolVersion, Role: "admin", Token: testToken, Client: "abc\x1b[2J"}, false, api.CodeBadRequest},
		{"server frame type", true, Frame{T: TypeEvent, ID: 9}, true, api.CodeProtocol},
		{"unknown frame type", false, Frame{T: "subscribe"}, false, api.CodeProtocol},
	}
	h := newHarness(t, ServerConfig{}, nil)
	healthy := h.helloClient("admin", "")
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial()
			c.t = t
			if tc.hello {
				c.hello("admin", "")
			}
			c.send(&tc.frame)
			if tc.res {
				res := c.readType(TypeResponse)
				if res.ID != tc.frame.ID || errCode(res) != tc.code {
					t.Fatalf("res %+v (err %v)", res, res.Err)
				}
			}
			c.expectBye(tc.code)
			healthy.t = t
			healthy.roundTrip(uint64(i + 1))
		})
	}
}

// TestBadInput sends malformed and hostile bytes; each gets a typed bye and
// a closed connection, and a client connected alongside keeps being served.
func TestBadInput(t *testing.T) {
	cases := []struct {
		name  string
		hello bool
		raw   []byte
		code  api.Code
	}{
		{"max length prefix", false, []byte{0xff, 0xff, 0xff, 0xff}, api.CodeFrameTooLarge},
		{"max length prefix after hello", true, []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, api.CodeFrameTooLarge},
		{"just above the limit", false, []byte{0x00, 0x10, 0x00, 0x01}, api.CodeFrameTooLarge},
		{"http request", false, []byte("GET / HTTP/1.1\r\nHost: switchboard\r\n\r\n"), api.CodeFrameTooLarge},
		{"zero length", false, []byte{0, 0, 0, 0}, api.CodeMalformedFrame},
		{"invalid msgpack", false, []byte{0, 0, 0, 2, 0xc1, 0xc1}, api.CodeMalformedFrame},
		{"not a map", false, []byte{0, 0, 0, 1, 0x07}, api.CodeMalformedFrame},
		{"map without type", true, []byte{0, 0, 0, 1, 0x80}, api.CodeMalformedFrame},
		{"truncated map", false, []byte{0, 0, 0, 3, 0x81, 0xa1, 't'}, api.CodeMalformedFrame},
		{"type not a string", false, []byte{0, 0, 0, 4, 0x81, 0xa1, 't', 0x05}, api.CodeMalformedFrame},
	}
	h := newHarness(t, ServerConfig{}, nil)
	healthy := h.helloClient("agent", "alice")
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial()
			c.t, healthy.t = t, t
			if tc.hello {
				c.hello("agent", fmt.Sprint("bad", i))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c.writeRaw(tc.raw)
			c.expectBye(tc.code) // promptly: the server does not wait for a payload it refuses
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
				t.Fatalf("the server allocated %d bytes for a refused frame", grew)
			}
			healthy.roundTrip(uint64(i + 1))
		})
	}
	waitFor(t, "bad sessions to end", func() bool { return h.srv.Sessions() == 1 })
}

func TestUnknownOpKeepsSession(t *testing.T) {
	h := newHarness(t, ServerConfig{}, nil)
	healthy := h.helloClient("admin", "")
	c := h.helloClient("agent", "bob")
	res := c.call(1, "no_such_op", map[string]any{"x": 1}, 0)
	if res.OK || errCode(res) != api.CodeUnknownOp || res.Err.Name != "unknown_op" {
		t.Fatalf("res %+v (err %v), want unknown_op", res, res.Err)
	}
	c.roundTrip(2)
	healthy.roundTrip(3)
}

// notLeader is a Submit failure carrying the leader hint, wrapped the way a
// cluster layer would.
type notLeader struct{ addr string }

func (e notLeader) Error() string      { return "not the leader" }
func (e notLeader) LeaderAddr() string { return e.addr }
func (e notLeader) Unwrap() error      { return &api.Error{Code: api.CodeNotLeader, Msg: "not the leader"} }

type noLeader struct{ after time.Duration }

func (e noLeader) Error() string             { return "no leader" }
func (e noLeader) RetryAfter() time.Duration { return e.after }

func TestRequests(t *testing.T) {
	be := newFakeBackend()
	be.submit = func(ctx context.Context, cmd *fsm.Command) (fsm.Result, uint64, error) {
		switch cmd.Seq {
		case 100:
			return fsm.Result{Err: api.Errorf(api.CodeNotFound, "list %q not found", "l1")}, 12, nil
		case 101:
			return fsm.Result{}, 0, fmt.Errorf("submit: %w", notLeader{"10.0.0.2:7400"})
		case 102:
			return fsm.Result{}, 0, &api.Error{Code: api.CodeNoLeader, Msg: "election"}
		case 103:
			return fsm.Result{}, 0, fmt.Errorf("%w: %w", &api.Error{Code: api.CodeNoLeader, Msg: "election"}, noLeader{1500 * time.Millisecond})
		case 104:
			return fsm.Result{}, 0, context.DeadlineExceeded
		case 105:
			return fsm.Result{Data: make(chan int)}, 13, nil // not encodable
		}
		return fsm.Result{Data: echo{Op: fsm.Commands.Lookup(cmd.Op).Name, By: cmd.By.ID, Client: cmd.ClientID, Seq: cmd.Seq}}, 11, nil
	}
	h := newHarness(t, ServerConfig{}, be)
	admin := h.dial()
	admin.send(&Frame{T: TypeHello, V: ProtocolVersion, Role: "admin", Token: testToken, Client: "ctl-1"})
	admin.readType(TypeWelcome)
	agent := h.helloClient("agent", "bob")

	// Success: data is the msgpack of the result, index the log index, and
	// the command carries the principal, client id and sequence.
	res := admin.call(1, "create_mrd", api.CreateMRDArgs{ID: "chat", Name: "Chat"}, 5)
	var got echo
	if !res.OK || res.Index != 11 || res.Err != nil || msgpack.Unmarshal(res.Data, &got) != nil {
		t.Fatalf("res %+v", res)
	}
	if want := (echo{Op: "create_mrd", By: "root", Client: "ctl-1", Seq: 5}); got != want {
		t.Fatalf("command %+v, want %+v", got, want)
	}
	h.be.mu.Lock()
	cmd := h.be.commands[0]
	h.be.mu.Unlock()
	if a, ok := cmd.Args.(*api.CreateMRDArgs); !ok || a.ID != "chat" || cmd.Op != fsm.Commands.LookupName("create_mrd").Op || cmd.By.Role != api.RoleAdmin {
		t.Fatalf("command %+v args %#v", cmd, cmd.Args)
	}

	// Query success.
	res = admin.call(2, "status", nil, 0)
	var st api.NodeStatus
	if !res.OK || msgpack.Unmarshal(res.Data, &st) != nil || st.Node != "node-1" {
		t.Fatalf("status res %+v", res)
	}

	cases := []struct {
		name    string
		c       *client
		op      string
		args    any
		seq     uint64
		code    api.Code
		leader  string
		retryMs int
	}{
		{"business error", admin, "noop", nil, 100, api.CodeNotFound, "", 0},
		{"not leader", admin, "noop", nil, 101, api.CodeNotLeader, "10.0.0.2:7400", 0},
		{"no leader", admin, "noop", nil, 102, api.CodeNoLeader, "", 0},
		{"no leader with retry hint", admin, "noop", nil, 103, api.CodeNoLeader, "", 1500},
		{"deadline", admin, "noop", nil, 104, api.CodeTimeout, "", 0},
		{"unencodable result", admin, "noop", nil, 105, api.CodeInternal, "", 0},
		{"forbidden", agent, "create_mrd", api.CreateMRDArgs{ID: "x"}, 1, api.CodeForbidden, "", 0},
		{"bad args", admin, "create_mrd", "not a map", 1, api.CodeBadRequest, "", 0},
		{"empty op", admin, "", nil, 0, api.CodeBadRequest, "", 0},
		{"query error", agent, "get_nothing", nil, 0, api.CodeUnknownOp, "", 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.t = t
			res := tc.c.call(uint64(100+i), tc.op, tc.args, tc.seq)
			if res.OK || res.Err == nil || res.Err.Code != tc.code || res.Err.Name != tc.code.String() ||
				res.Err.Msg == "" || res.Err.Leader != tc.leader || res.Err.RetryMs != tc.retryMs {
				t.Fatalf("res %+v err %+v, want %s leader %q retry %d", res, res.Err, tc.code, tc.leader, tc.retryMs)
			}
		})
	}
}

// TestPipelined writes many requests at once; every one gets exactly one
// response with its id, and no more than MaxInFlight run at a time.
func TestPipelined(t *testing.T) {
	const n, maxInFlight = 300, 8
	be := newFakeBackend()
	be.submit = func(ctx context.Context, cmd *fsm.Command) (fsm.Result, uint64, error) {
		time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond) // simulated work, so answers reorder
		return fsm.Result{Data: cmd.Seq}, cmd.Seq, nil
	}
	h := newHarness(t, ServerConfig{MaxInFlight: maxInFlight}, be)
	c := h.helloClient("admin", "")

	var buf []byte
	for id := uint64(1); id <= n; id++ {
		f := &Frame{T: TypeRequest, ID: id, Op: "noop", Seq: id}
		if id%3 == 0 {
			f = &Frame{T: TypeRequest, ID: id, Op: "status"}
		}
		var err error
		if buf, err = AppendFrame(buf, f); err != nil {
			t.Fatal(err)
		}
	}
	c.writeRaw(buf)

	seen := map[uint64]bool{}
	for range n {
		res := c.readType(TypeResponse)
		if !res.OK || seen[res.ID] || res.ID < 1 || res.ID > n {
			t.Fatalf("res %+v (err %v)", res, res.Err)
		}
		seen[res.ID] = true
		if res.ID%3 != 0 {
			var seq uint64
			if err := msgpack.Unmarshal(res.Data, &seq); err != nil || seq != res.ID || res.Index != res.ID {
				t.Fatalf("res %d carries seq %d index %d (%v)", res.ID, seq, res.Index, err)
			}
		}
	}
	c.roundTrip(n + 1)
	be.mu.Lock()
	peak := be.maxInflight
	be.mu.Unlock()
	if peak < 1 || peak > maxInFlight {
		t.Fatalf("peak concurrent requests %d, want 1..%d", peak, maxInFlight)
	}
}

// TestSlowConsumer stalls one client while the backend pushes events to it
// and to a second client: the stalled one is cut off without ever blocking
// the pusher, and the other keeps getting every event promptly.
func TestSlowConsumer(t *testing.T) {
	h := newHarness(t, ServerConfig{OutboxFrames: 64, WriteTimeout: time.Minute}, nil)
	slow := h.helloClient("agent", "slow")
	slow.readType(TypeEvent) // sync; then it stops reading
	fast := h.helloClient("agent", "fast")
	fast.readType(TypeEvent)
	slowBox := h.be.outbox(t, api.AgentKey("slow"))
	fastBox := h.be.outbox(t, api.AgentKey("fast"))

	type got struct {
		seq uint64
		err error
	}
	events := make(chan got, 16)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		_ = fast.c.SetReadDeadline(time.Time{}) // nextEvent bounds the waits
		for {
			var f Frame
			err := ReadFrame(fast.br, DefaultMaxFrame, &f)
			if err != nil {
				events <- got{err: err}
				return
			}
			if f.T == TypeEvent {
				events <- got{seq: f.Seq}
			}
		}
	}()
	nextEvent := func(want uint64) {
		t.Helper()
		select {
		case g := <-events:
			if g.err != nil || g.seq != want {
				t.Fatalf("fast client got seq %d (err %v), want %d", g.seq, g.err, want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("fast client did not get event %d in time while the other client was stalled", want)
		}
	}

	payload := bytes.Repeat([]byte("x"), 16<<10)
	seq := uint64(1000)
	cutAt := 0
	for i := 1; i <= 100_000 && cutAt == 0; i++ {
		seq++
		ev, err := EncodeEvent(seq, "test", payload)
		if err != nil {
			t.Fatal(err)
		}
		if !slowBox.Deliver(ev) {
			cutAt = i
		}
		if !fastBox.Deliver(ev) {
			t.Fatalf("the fast client was cut off at event %d", i)
		}
		nextEvent(seq)
	}
	if cutAt == 0 {
		t.Fatal("the stalled client was never cut off")
	}
	t.Logf("stalled client cut off after %d events", cutAt)
	if slowBox.Deliver([]byte{0, 0, 0, 1, 0x80}) {
		t.Fatal("Deliver accepted a frame after the cut-off")
	}

	// The stalled client finds its connection closed once it reads again
	// (after the frames that made it out, and a bye if it still fit).
	for _, f := range slow.expectClosed() {
		if f.T == TypeBye && errCode(f) != api.CodeSlowConsumer {
			t.Fatalf("bye %+v, want slow_consumer", f.Err)
		}
	}
	waitFor(t, "the stalled session to end", func() bool { return h.srv.Sessions() == 1 })

	// The other client is unaffected.
	for range 10 {
		seq++
		ev, _ := EncodeEvent(seq, "test", nil)
		if !fastBox.Deliver(ev) {
			t.Fatal("fast client cut off")
		}
		nextEvent(seq)
	}
	fast.c.Close()
	<-events // its reader's error
	<-readerDone
}

func TestIdleTimeout(t *testing.T) {
	const idle = 500 * time.Millisecond
	h := newHarness(t, ServerConfig{IdleTimeout: idle}, nil)
	c := h.helloClient("agent", "bob")
	// Pings keep it open well past the idle timeout...
	tick := time.NewTicker(idle / 5)
	defer tick.Stop()
	for i := range 15 {
		<-tick.C
		c.roundTrip(uint64(i + 1))
	}
	// ...silence closes it.
	c.expectBye(api.CodeTimeout)
}

func TestDetachOnDisconnect(t *testing.T) {
	h := newHarness(t, ServerConfig{}, nil)
	c := h.helloClient("connector", "fb")
	c.readType(TypeEvent)
	h.be.mu.Lock()
	calls := slices.Clone(h.be.attaches)
	h.be.mu.Unlock()
	if want := []attachCall{{api.ConnectorKey("fb"), 0, false}}; !slices.Equal(calls, want) {
		t.Fatalf("Attach calls %v, want %v", calls, want)
	}
	c.c.Close()
	waitFor(t, "detach", func() bool {
		h.be.mu.Lock()
		defer h.be.mu.Unlock()
		return slices.Equal(h.be.detached, []string{api.ConnectorKey("fb")})
	})
	waitFor(t, "the session to end", func() bool { return h.srv.Sessions() == 0 })
}

// TestBackendPanic: a panic under one session ends that session only.
func TestBackendPanic(t *testing.T) {
	be := newFakeBackend()
	be.query = func(ctx context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error) {
		if op == "boom" {
			panic("backend bug")
		}
		return "ok", nil
	}
	h := newHarness(t, ServerConfig{}, be)
	h.panicsWanted = 1
	healthy := h.helloClient("admin", "")
	c := h.helloClient("admin", "")
	c.send(&Frame{T: TypeRequest, ID: 1, Op: "boom"})
	c.expectBye(api.CodeInternal)
	if res := healthy.call(2, "other", nil, 0); !res.OK {
		t.Fatalf("healthy client: %+v", res.Err)
	}
}

// TestCloseCancelsRequests: requests in flight see their context
// cancelled when the session ends, and Close waits for them.
func TestCloseCancelsRequests(t *testing.T) {
	started := make(chan struct{})
	be := newFakeBackend()
	be.submit = func(ctx context.Context, cmd *fsm.Command) (fsm.Result, uint64, error) {
		close(started)
		<-ctx.Done()
		return fsm.Result{}, 0, ctx.Err()
	}
	h := newHarness(t, ServerConfig{}, be)
	c := h.helloClient("admin", "")
	c.send(&Frame{T: TypeRequest, ID: 1, Op: "noop"})
	<-started
	c.c.Close()
	waitFor(t, "the session to end", func() bool { return h.srv.Sessions() == 0 })
}

func TestClose(t *testing.T) {
	h := newHarness(t, ServerConfig{}, nil)
	a := h.helloClient("admin", "")
	b := h.helloClient("agent", "bob")
	b.readType(TypeEvent)

	done := make(chan error, 1)
	go func() { done <- h.srv.Close() }()
	a.expectBye(api.CodeUnavailable)
	b.expectBye(api.CodeUnavailable)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return")
	}
	if n := h.srv.Sessions(); n != 0 {
		t.Fatalf("Sessions() = %d after Close", n)
	}
	if err := h.serveResult(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if err := h.srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close returned %v", err)
	}
}

// TestHelloMarker: a hello with marker gets welcome marker and, once the
// backend has delivered the stream's start, a caught_up frame with the
// mode and seq the backend reported, before anything else; a hello
// without it sees no caught_up and no marker in welcome; an admin, who
// has no stream, gets neither.
func TestHelloMarker(t *testing.T) {
	h := newHarness(t, ServerConfig{}, nil)
	since := uint64(41)
	c := h.dial()
	c.send(&Frame{T: TypeHello, V: ProtocolVersion, Role: "agent", User: "bob", Token: testToken, Since: &since, Marker: true})
	if w := c.read(); w.T != TypeWelcome || !w.Marker {
		t.Fatalf("first frame %+v, want welcome with marker", w)
	}
	if ev := c.read(); ev.T != TypeEvent || ev.Kind != "sync" || ev.Seq != 42 {
		t.Fatalf("second frame %+v, want the sync", ev)
	}
	if m := c.read(); m.T != TypeCaughtUp || m.Mode != api.CaughtUpSync || m.Seq != 42 {
		t.Fatalf("third frame %+v, want caught_up sync at 42", m)
	}
	c.roundTrip(5)

	// Without the marker: today's frames exactly.
	plain := h.dial()
	plain.send(&Frame{T: TypeHello, V: ProtocolVersion, Role: "connector", User: "fb", Token: testToken})
	if w := plain.read(); w.T != TypeWelcome || w.Marker {
		t.Fatalf("welcome without marker asked: %+v", w)
	}
	if ev := plain.read(); ev.T != TypeEvent {
		t.Fatalf("%+v, want the sync", ev)
	}
	plain.send(&Frame{T: TypePing, ID: 6})
	if f := plain.read(); f.T != TypePong || f.ID != 6 {
		t.Fatalf("%+v after the sync, want the pong and no caught_up", f)
	}

	// An admin has no stream: no marker, no caught_up.
	adm := h.dial()
	adm.send(&Frame{T: TypeHello, V: ProtocolVersion, Role: "admin", Token: testToken, Marker: true})
	if w := adm.read(); w.T != TypeWelcome || w.Marker {
		t.Fatalf("admin welcome %+v, want no marker", w)
	}
	adm.send(&Frame{T: TypePing, ID: 7})
	if f := adm.read(); f.T != TypePong || f.ID != 7 {
		t.Fatalf("admin: %+v, want the pong and no caught_up", f)
	}
}

// No answer exceeds api.MaxNodeFrame: one that would (an admin listing of
// a huge configuration; views are paged before they get there) is
// refused with frame_too_large, and the session goes on. An answer just
// within the bound is sent whole.
func TestAnswerAboveTheNodeFrameRefused(t *testing.T) {
	be := newFakeBackend()
	be.query = func(_ context.Context, _ api.Principal, op string, _ msgpack.RawMessage) (any, error) {
		switch op {
		case "huge":
			return []byte(string(make([]byte, api.MaxNodeFrame))), nil
		case "big":
			return make([]byte, api.MaxNodeFrame-maxResponseOverhead-8), nil
		}
		return nil, api.Errorf(api.CodeUnknownOp, "unknown op %q", op)
	}
	h := newHarness(t, ServerConfig{}, be)
	c := h.helloClient("admin", "")
	res := c.call(1, "huge", nil, 0)
	if res.OK || errCode(res) != api.CodeFrameTooLarge || !strings.Contains(res.Err.Msg, "page") {
		t.Fatalf("res %+v (err %v), want frame_too_large", res, res.Err)
	}
	res = c.call(2, "big", nil, 0)
	if !res.OK || len(res.Data) < api.MaxNodeFrame-maxResponseOverhead-8 {
		t.Fatalf("an answer within the bound: ok %v, %d bytes of data (err %v)", res.OK, len(res.Data), res.Err)
	}
	c.roundTrip(3)
}
