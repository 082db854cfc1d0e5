package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/vmihailenco/msgpack/v5"
)

// waitTimeout bounds every wait in these tests: generous, for a slow CI
// under the race detector. Nothing waits this long when the code is right.
const waitTimeout = 10 * time.Second

const testToken = "secret"

// fakeBackend stands in for the cluster node. Hooks are set before the
// server starts and never changed afterwards.
type fakeBackend struct {
	index atomic.Uint64

	submit func(ctx context.Context, cmd *fsm.Command) (fsm.Result, uint64, error)
	query  func(ctx context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error)

	mu          sync.Mutex
	outboxes    map[string]Outbox
	attaches    []attachCall
	detached    []string
	commands    []*fsm.Command
	inflight    int
	maxInflight int
}

type attachCall struct {
	key    string
	since  uint64
	resume bool
}

// echo is the fake result of every command.
type echo struct {
	Op     string `msgpack:"op"`
	By     string `msgpack:"by"`
	Client string `msgpack:"client"`
	Seq    uint64 `msgpack:"seq"`
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{outboxes: map[string]Outbox{}}
}

func (b *fakeBackend) Authenticate(role api.Role, id, token string) (api.Principal, error) {
	if token != testToken {
		return api.Principal{}, api.Errorf(api.CodeUnauthenticated, "bad credentials")
	}
	if role == api.RoleAdmin {
		id = "root"
	}
	return api.Principal{Role: role, ID: id}, nil
}

// Commit decodes the write as the node does and hands it to Submit.
func (b *fakeBackend) Commit(ctx context.Context, w Write) (any, uint64, error) {
	cmd, ferr := fsm.Commands.NewCommand(w.By, w.ClientID, w.Seq, w.Op, w.Args)
	if ferr != nil {
		return nil, 0, ferr
	}
	res, index, err := b.Submit(ctx, cmd)
	if err != nil {
		return nil, 0, err
	}
	if res.Err != nil {
		return nil, index, res.Err
	}
	return res.Data, index, nil
}

func (b *fakeBackend) Submit(ctx context.Context, cmd *fsm.Command) (fsm.Result, uint64, error) {
	b.mu.Lock()
	b.commands = append(b.commands, cmd)
	b.inflight++
	b.maxInflight = max(b.maxInflight, b.inflight)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inflight--
		b.mu.Unlock()
	}()
	if b.submit != nil {
		return b.submit(ctx, cmd)
	}
	name := fsm.Commands.Lookup(cmd.Op).Name
	return fsm.Result{Data: echo{Op: name, By: cmd.By.ID, Client: cmd.ClientID, Seq: cmd.Seq}}, b.index.Add(1), nil
}

func (b *fakeBackend) Query(ctx context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error) {
	if b.query != nil {
		return b.query(ctx, p, op, args)
	}
	if op == "status" {
		return api.NodeStatus{Node: "node-1", State: "Leader"}, nil
	}
	return nil, api.Errorf(api.CodeUnknownOp, "unknown op %q", op)
}

// Attach records the call and delivers a sync event at once, then tells
// the outbox it caught up, as the real node does.
func (b *fakeBackend) Attach(key string, since uint64, resume bool, out Outbox) func() {
	b.mu.Lock()
	b.outboxes[key] = out
	b.attaches = append(b.attaches, attachCall{key, since, resume})
	b.mu.Unlock()
	if ev, err := EncodeEvent(since+1, "sync", nil); err == nil && out.Deliver(ev) {
		if cu, ok := out.(interface{ CaughtUp(string, uint64) }); ok {
			cu.CaughtUp(api.CaughtUpSync, since+1)
		}
	}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.outboxes[key] == out {
			delete(b.outboxes, key)
		}
		b.detached = append(b.detached, key)
	}
}

func (b *fakeBackend) outbox(t *testing.T, key string) Outbox {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.outboxes[key]
	if out == nil {
		t.Fatalf("no outbox attached for %s", key)
	}
	return out
}

// harness is a server on a loopback port with a fake backend.
type harness struct {
	t            *testing.T
	srv          *Server
	be           *fakeBackend
	addr         string
	served       chan error
	serveErr     error
	serveOnce    sync.Once
	panicsWanted uint64
}

func newHarness(t *testing.T, cfg ServerConfig, be *fakeBackend) *harness {
	t.Helper()
	if be == nil {
		be = newFakeBackend()
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "node-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: NewServer(be, cfg), be: be, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { h.served <- h.srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := h.srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := h.serveResult(); !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if n := h.srv.panics.Load(); n != h.panicsWanted {
			t.Errorf("%d panics recovered, want %d", n, h.panicsWanted)
		}
	})
	return h
}

// serveResult waits for Serve to return (after Close) and returns its error.
func (h *harness) serveResult() error {
	h.serveOnce.Do(func() {
		select {
		case h.serveErr = <-h.served:
		case <-time.After(waitTimeout):
			h.serveErr = errors.New("Serve did not return")
		}
	})
	return h.serveErr
}

// testLogger sends the server's logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, waitTimeout, cond, "%s", what)
}

// client is a raw protocol client: it writes frames with AppendFrame and
// reads them with ReadFrame.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (h *harness) dial() *client {
	h.t.Helper()
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return &client{t: h.t, c: c, br: bufio.NewReader(c)}
}

// helloClient dials and completes a hello as role/user.
func (h *harness) helloClient(role, user string) *client {
	h.t.Helper()
	c := h.dial()
	c.hello(role, user)
	return c
}

func (c *client) writeRaw(b []byte) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(f *Frame) {
	c.t.Helper()
	b, err := AppendFrame(nil, f)
	if err != nil {
		c.t.Fatal(err)
	}
	c.writeRaw(b)
}

// next reads one frame, waiting at most waitTimeout. Frames from the node
// may be as large as api.MaxNodeFrame.
func (c *client) next() (Frame, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	var f Frame
	err := ReadFrame(c.br, api.MaxNodeFrame, &f)
	return f, err
}

func (c *client) read() Frame {
	c.t.Helper()
	f, err := c.next()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// readType reads the next frame that is not an event and checks its type.
func (c *client) readType(typ string) Frame {
	c.t.Helper()
	for {
		f := c.read()
		if f.T == TypeEvent && typ != TypeEvent {
			continue
		}
		if f.T == TypePing && typ != TypePing {
			continue // the server's keepalive
		}
		if f.T != typ {
			c.t.Fatalf("got %q frame %+v (err %v), want %q", f.T, f, f.Err, typ)
		}
		return f
	}
}

func (c *client) hello(role, user string) Frame {
	c.t.Helper()
	c.send(&Frame{T: TypeHello, V: ProtocolVersion, Role: role, User: user, Token: testToken})
	return c.readType(TypeWelcome)
}

// call sends one req and returns its res.
func (c *client) call(id uint64, op string, args any, seq uint64) Frame {
	c.t.Helper()
	f := &Frame{T: TypeRequest, ID: id, Op: op, Seq: seq}
	if args != nil {
		raw, err := msgpack.Marshal(args)
		if err != nil {
			c.t.Fatal(err)
		}
		f.Args = raw
	}
	c.send(f)
	res := c.readType(TypeResponse)
	if res.ID != id {
		c.t.Fatalf("res id %d, want %d", res.ID, id)
	}
	return res
}

// roundTrip checks the connection still works: ping gets its pong.
func (c *client) roundTrip(id uint64) {
	c.t.Helper()
	c.send(&Frame{T: TypePing, ID: id})
	if p := c.readType(TypePong); p.ID != id {
		c.t.Fatalf("pong id %d, want %d", p.ID, id)
	}
}

// expectBye reads until a bye, checks its code, then expects the server to
// close the connection.
func (c *client) expectBye(code api.Code) Frame {
	c.t.Helper()
	for {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("connection ended (%v) before bye %s", err, code)
		}
		if f.T != TypeBye {
			continue
		}
		if f.Err == nil || f.Err.Code != code || f.Err.Name != code.String() {
			c.t.Fatalf("bye %+v, want code %s", f.Err, code)
		}
		c.expectClosed()
		return f
	}
}

// expectClosed reads until the server closes the connection and returns the
// frames read on the way.
func (c *client) expectClosed() []Frame {
	c.t.Helper()
	var frames []Frame
	for {
		f, err := c.next()
		if err == nil {
			frames = append(frames, f)
			continue
		}
		if !isClosedErr(err) {
			c.t.Fatalf("want the connection closed, got %v", err)
		}
		return frames
	}
}

// isClosedErr reports whether err says the peer closed the connection.
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// errCode returns the code of a res or bye, or CodeOK.
func errCode(f Frame) api.Code {
	if f.Err == nil {
		return api.CodeOK
	}
	return f.Err.Code
}
