package transport

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// Client errors.
var (
	// ErrClosed is returned by calls made after Close, and by Err once the
	// client was closed by its owner.
	ErrClosed = errors.New("transport: client closed")
	// ErrEventOverflow is why the event stream broke when the application
	// did not drain Events in time. The client never blocks its read loop
	// (responses would stall behind events) and never skips an event
	// silently. Without Reconnect the client ends with this error. With
	// Reconnect the connection stays up for calls but the client stops
	// delivering events; once the application has drained Events to half
	// its capacity, the client reconnects and resumes after LastSeq. It
	// carries CodeSlowConsumer, like the server's own cut-off.
	ErrEventOverflow = &api.Error{Code: api.CodeSlowConsumer, Msg: "client event buffer full"}
	// ErrNotConnected is returned by Ping while the client is redialling.
	ErrNotConnected = errors.New("transport: not connected")
	// ErrConnectionLost fails a Ping whose connection broke before the pong.
	ErrConnectionLost = errors.New("transport: connection lost")
)

// Client defaults.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 30 * time.Second
	DefaultEventBuffer    = 4096
	DefaultPingInterval   = 30 * time.Second
	// DefaultClientMaxFrame is the largest frame a client accepts from the
	// server by default: api.MaxNodeFrame, the most a node sends whatever
	// the size of its state (views are paged). Set ClientConfig.MaxFrame
	// to 16 MiB to talk to nodes from before paging, whose sync could be
	// that large.
	DefaultClientMaxFrame = api.MaxNodeFrame
)

// Reconnect backoff bounds: each failed attempt doubles the delay, with
// jitter so that many clients cut off together do not redial in step.
const (
	clientBackoffMin = 25 * time.Millisecond
	clientBackoffMax = 2 * time.Second
	// clientRetryDefault is the pause before retrying a call answered with a
	// retryable code that carried no retry_ms.
	clientRetryDefault = 100 * time.Millisecond
	clientRetryMax     = 5 * time.Second
	// clientLeaveStay is how long the client stays on a node before a
	// no_leader or unavailable answer from it makes the client move to
	// another address (leaveNode). A node answers no_leader only after
	// waiting for a leader itself (3 s by default), and a removed node
	// refuses every hello, so it answers unavailable only on sessions
	// opened before it learned of its removal, which it learns 2 s after
	// the fact at the earliest: with such nodes the stay hardly ever
	// delays a move. Against nodes that answer at once (every node
	// during an election, or a node unavailable for a moment, such as a
	// leader whose proposals a backup restore aborted), it keeps each
	// client from moving more than once per stay.
	clientLeaveStay = 2 * time.Second
)

// errLeaving is why the client leaves a node that answered no_leader or
// unavailable (leaveNode): the connection is broken on purpose, and the
// usual failover takes over.
var errLeaving = errors.New("node cannot serve")

// ClientConfig configures a Client. Zero values take the defaults noted.
type ClientConfig struct {
	// Addrs are the nodes' client addresses (host:port). Dial tries them in
	// order; a reconnect starts with the address after the one that broke.
	Addrs []string
	// Role is "admin", "agent", "connector" or "supervisor".
	Role string
	// User and Token are the credentials sent in hello.
	User, Token string
	// ClientID names this client's idempotency session on the nodes
	// (default: 16 random bytes, hex). Reuse it across processes only
	// together with a Seq above the last one used.
	ClientID string
	// Resume starts the event stream after sequence number Since instead
	// of with a sync event.
	Resume bool
	Since  uint64
	// OnCaughtUp, if set, asks every node connected to for a caught_up
	// frame (PROTOCOL.md §4.4) and is called with it: once per connection
	// of an agent or connector, when the stream's start has been
	// delivered, mode api.CaughtUpReplay (the events after the cursor
	// were replayed), api.CaughtUpNone (nothing to replay) or
	// api.CaughtUpSync (a sync came first); seq is the last seq the node
	// delivered. When it is called, every event of the replay or sync is
	// already on the Events channel, and no later event is. It runs on the
	// client's read loop: it must return quickly. Not called for a
	// connection whose events overflowed (a resume follows), nor by a node
	// that does not send the frame (welcome's Marker is false then).
	OnCaughtUp func(mode string, seq uint64)
	// DialTimeout bounds one dial plus the hello/welcome exchange (default
	// 5s). RequestTimeout bounds a call whose context has no deadline, and
	// a single socket write (default 30s).
	DialTimeout, RequestTimeout time.Duration
	// EventBuffer is the capacity of the Events channel (default 4096).
	EventBuffer int
	// Reconnect redials when the connection breaks: the next address, with
	// jittered exponential backoff, resuming the event stream after
	// LastSeq, and re-sending every call still in flight with its original
	// id and seq, so that the nodes' idempotency answers a write that had
	// already committed with its original result. Calls answered
	// not_leader, timeout or rate_limited are retried on the same node
	// after retry_ms (a node forwards writes to the leader itself, so
	// these only say the cluster is between leaders, or the caller is
	// too fast). A call answered no_leader, which a node sends once it
	// has itself waited for a leader in vain (3 s by default: it is cut
	// off from the others, or the cluster has lost its quorum), or
	// unavailable, which a node sends when it cannot serve at all (it
	// was removed from the cluster, or is shutting down), makes the
	// client leave that node when it has another address: the connection
	// is dropped and the failover above moves to the next address,
	// resumes the stream and re-sends every call in flight, this one
	// included, with the same id and seq; several such answers from one
	// connection cause one move, and a node connected to for less than
	// 2 s is not left for them (the call is retried there after
	// retry_ms). With a single address the call is retried on the same
	// node. The
	// client then only gives up on Close or on a bye whose code retrying
	// cannot cure (unauthenticated, forbidden, protocol, malformed_frame,
	// frame_too_large, bad_request, unknown_op).
	Reconnect bool
	// PingInterval is how often the client pings the node (default 30s;
	// negative disables it). Pings keep an idle session open (the server
	// closes sessions that send nothing for its idle timeout).
	PingInterval time.Duration
	// DeadAfter is how long the connection may stay silent (no frame at
	// all received) before the client takes the node for dead or frozen
	// and breaks the connection; with Reconnect it then fails over to the
	// next address. Zero means three times the keepalive interval the node
	// announced in welcome (ping_ms: 6s with the node's default of 2s),
	// or three PingIntervals with a node that announces none (an older
	// version). Negative disables the check.
	DeadAfter time.Duration
	// MaxFrame is the largest frame payload accepted from the server
	// (default DefaultClientMaxFrame).
	MaxFrame int
	// Logger receives connection lifecycle messages (default: discarded).
	Logger *slog.Logger
	// TLS, if set, dials the nodes over TLS with this configuration (its
	// RootCAs must hold the CA of the nodes' certificates).
	TLS *tls.Config
}

// Event is one notification of the client's stream.
type Event struct {
	// Seq is the event's sequence number: api.SeqOf(log index, position).
	Seq  uint64
	Kind api.EventKind
	// Data is the msgpack payload; its shape depends on Kind (api/events.go
	// and api.StreamView for api.EvSync).
	Data msgpack.RawMessage
}

// Decode unmarshals the event's payload into v.
func (e Event) Decode(v any) error { return msgpack.Unmarshal(e.Data, v) }

// Client is a connection to a Switchboard node that survives node failures
// when Reconnect is set. It is safe for concurrent use: calls are pipelined
// on one connection and matched to their responses by id.
type Client struct {
	cfg    ClientConfig
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	events chan Event
	done   chan struct{}

	nextID     atomic.Uint64 // req and ping ids; 0 is never used
	seqs       seqWindow     // idempotency sequence of writes, kept within the window
	lastSeq    atomic.Uint64 // seq of the last event delivered
	haveCursor atomic.Bool   // lastSeq is a valid resume cursor

	mu      sync.Mutex
	cur     *clientConn // nil while redialling
	addr    int         // index in cfg.Addrs of the current or last node
	welcome Frame
	pending map[uint64]*clientCall
	err     error // why the client ended; nil while it runs
}

// clientCall is one req or ping waiting for its answer.
type clientCall struct {
	id    uint64
	frame []byte // the encoded frame, re-sent as is after a reconnect
	ping  bool
	reply chan clientReply // capacity 1
}

type clientReply struct {
	f   *Frame
	cn  *clientConn // the connection f came on
	err error
}

// clientConn is one TCP connection after a successful hello.
type clientConn struct {
	nc       net.Conn
	r        *bufio.Reader
	addr     string
	welcome  Frame
	at       time.Time // when the hello was accepted
	wmu      sync.Mutex
	wtimeout time.Duration
	lastRecv atomic.Int64 // unix nanoseconds of the last frame read
	failOnce sync.Once
	failErr  error
	closed   chan struct{}
}

// Dial connects to the first address of cfg.Addrs that accepts the hello and
// starts the client. A bye that retrying cannot cure (bad credentials) is
// returned at once as *ErrorBody; network failures move on to the next
// address, and the last failure is returned when none answers.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("transport: no address to dial")
	}
	if r := api.ParseRole(cfg.Role); r == api.RoleNone {
		return nil, fmt.Errorf("transport: unknown role %q", cfg.Role)
	}
	if cfg.ClientID == "" {
		var b [16]byte
		_, _ = crand.Read(b[:]) // never fails (crypto/rand)
		cfg.ClientID = hex.EncodeToString(b[:])
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultEventBuffer
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultClientMaxFrame
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger.With("client", cfg.ClientID),
		events:  make(chan Event, cfg.EventBuffer),
		done:    make(chan struct{}),
		pending: map[uint64]*clientCall{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.Resume {
		c.lastSeq.Store(cfg.Since)
		c.haveCursor.Store(true)
	}
	var err error
	for i := range cfg.Addrs {
		var cn *clientConn
		cn, err = c.connect(ctx, i)
		if err == nil {
			c.attach(cn, i)
			go c.run(cn)
			return c, nil
		}
		if clientTerminal(err) || ctx.Err() != nil {
			break
		}
	}
	c.cancel()
	return nil, err
}

// Events returns the event stream: each event once, in seq order. It is
// closed when the client ends (see Done). Drain it: see ErrEventOverflow.
func (c *Client) Events() <-chan Event { return c.events }

// LastSeq returns the seq of the last event put on the Events channel (or
// the configured Since): the cursor a reconnect resumes after. It is never
// behind an event the application has received. To restart a process
// without loss, persist the Seq of the last event handled and pass it as
// Since with Resume.
func (c *Client) LastSeq() uint64 { return c.lastSeq.Load() }

// ClientID returns the idempotency client id sent in hello.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// Welcome returns the welcome frame of the current (or last) connection:
// Node, Role, User, Client, MaxFrame, PingMs and Marker.
func (c *Client) Welcome() Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}

// Done is closed when the client has ended: after Close, or when the
// connection broke and could not (or was not to) be re-established.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client ended (nil while it runs): ErrClosed after
// Close, an *ErrorBody from the node's bye, ErrEventOverflow, or the network
// error.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the client: the connection is closed, calls in flight fail with
// ErrClosed and Events is closed. It waits for the read loop to finish.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return nil
}

// Call performs op with args (any msgpack-encodable value, or nil) and
// decodes the result into out (a pointer, or nil to discard it). Ops in
// Write ops (api.IsWrite) are writes and get the next idempotency seq; the others are
// reads. A failure reported by the node is an *ErrorBody, which matches
// errors.Is(err, &api.Error{Code: ...}). Without a deadline in ctx the call
// is bounded by RequestTimeout; on timeout a write may still have applied.
func (c *Client) Call(ctx context.Context, op string, args, out any) error {
	_, err := c.CallIndex(ctx, op, args, out)
	return err
}

// CallIndex is Call that also returns the log index at which a write
// committed (0 for reads). Every typed helper goes through it.
func (c *Client) CallIndex(ctx context.Context, op string, args, out any) (uint64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	f := Frame{T: TypeRequest, ID: c.nextID.Add(1), Op: op}
	if args != nil {
		raw, err := msgpack.Marshal(args)
		if err != nil {
			return 0, fmt.Errorf("transport: %s: encoding arguments: %w", op, err)
		}
		f.Args = raw
	}
	if api.IsWrite(op) {
		seq, err := c.seqs.acquire(ctx)
		if err != nil {
			return 0, fmt.Errorf("transport: %s: waiting for the idempotency window: %w", op, err)
		}
		defer c.seqs.release(seq)
		f.Seq = seq
	} else {
		f.Linearizable = IsLinearizable(ctx)
	}
	cl, err := c.newCall(&f)
	if err != nil {
		return 0, fmt.Errorf("transport: %s: %w", op, err)
	}
	for {
		if err := c.start(cl); err != nil {
			return 0, err
		}
		var r clientReply
		select {
		case r = <-cl.reply:
		case <-ctx.Done():
			c.forget(cl.id)
			return 0, fmt.Errorf("transport: %s: %w", op, ctx.Err())
		}
		if r.err != nil {
			return 0, r.err
		}
		if r.f.OK {
			if out != nil && len(r.f.Data) > 0 {
				if err := msgpack.Unmarshal(r.f.Data, out); err != nil {
					return r.f.Index, fmt.Errorf("transport: %s: decoding result: %w", op, err)
				}
			}
			return r.f.Index, nil
		}
		eb := r.f.Err
		if eb == nil {
			eb = &ErrorBody{Code: api.CodeInternal, Name: api.CodeInternal.String(), Msg: "response with neither ok nor err"}
		}
		if !c.cfg.Reconnect || !clientRetryable(eb.Code) {
			return r.f.Index, eb
		}
		if clientLeaves(eb.Code) && c.leaveNode(r.cn, eb.Code) {
			// On the next node as soon as it is connected: attach
			// re-sends the call, or start sends it on the new node if
			// the client is already there.
			c.log.Debug("retrying call on another node", "op", op, "seq", f.Seq, "code", eb.Name, "left", r.cn.addr)
			continue
		}
		wait := min(max(time.Duration(eb.RetryMs)*time.Millisecond, 0), clientRetryMax)
		if wait == 0 {
			wait = clientRetryDefault
		}
		c.log.Debug("retrying call", "op", op, "seq", f.Seq, "code", eb.Name, "after", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("transport: %s: %w (last answer: %w)", op, ctx.Err(), eb)
		}
	}
}

// Ping measures the round trip to the current node.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	cl, err := c.newCall(&Frame{T: TypePing, ID: c.nextID.Add(1)})
	if err != nil {
		return 0, err
	}
	cl.ping = true
	t0 := time.Now()
	if err := c.start(cl); err != nil {
		return 0, err
	}
	select {
	case r := <-cl.reply:
		if r.err != nil {
			return 0, r.err
		}
		return time.Since(t0), nil
	case <-ctx.Done():
		c.forget(cl.id)
		return 0, ctx.Err()
	}
}

// newCall encodes f and checks it against the node's frame limit.
func (c *Client) newCall(f *Frame) (*clientCall, error) {
	b, err := EncodeFrame(f)
	if err != nil {
		return nil, err
	}
	limit := c.Welcome().MaxFrame
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	if n := len(b) - 4; n > limit {
		return nil, fmt.Errorf("%w: %d bytes, node limit %d", ErrFrameTooLarge, n, limit)
	}
	return &clientCall{id: f.ID, frame: b, reply: make(chan clientReply, 1)}, nil
}

// start registers cl and sends it on the current connection. While
// redialling, a call only waits: attach sends it on the new connection.
func (c *Client) start(cl *clientCall) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	cn := c.cur
	if cl.ping && cn == nil {
		c.mu.Unlock()
		return ErrNotConnected
	}
	c.pending[cl.id] = cl
	c.mu.Unlock()
	if cn != nil {
		cn.write(cl.frame) // a failure breaks cn; run redials and re-sends
	}
	return nil
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// leaveNode is called when cn answered a call with code, one for which
// clientLeaves is true. It moves the client off cn by breaking it: run
// then fails over exactly as after a lost connection, to the next
// address, resuming the stream after LastSeq and re-sending every call in
// flight with its id and seq. With no_leader the node waited for a leader
// in vain, and another node may have one (a leader cut off from the
// others keeps its clients but answers their writes no_leader until the
// partition heals); with unavailable the node cannot serve (it was
// removed from the cluster and answers every request so, or it is
// shutting down), while the others can. It reports whether the call is
// to go to another node now: the client has left cn, or is leaving it.
// It is false with a single address (nowhere to go) and while cn is
// younger than clientLeaveStay, so that nodes answering so at once (an
// election, a moment of unavailability) do not bounce the client from
// one to the next: the call then waits retry_ms and goes to cn again.
func (c *Client) leaveNode(cn *clientConn, code api.Code) bool {
	if len(c.cfg.Addrs) < 2 || cn == nil {
		return false
	}
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	if cur != cn {
		return true // another call's answer moved the client already
	}
	if time.Since(cn.at) < clientLeaveStay {
		return false
	}
	cn.fail(fmt.Errorf("%w: %s answered %s", errLeaving, cn.addr, code))
	return true
}

// complete hands a res or pong to its waiting call, if still waiting.
func (c *Client) complete(cn *clientConn, f *Frame) {
	c.mu.Lock()
	cl := c.pending[f.ID]
	if cl != nil && cl.ping == (f.T == TypePong) {
		delete(c.pending, f.ID)
	} else {
		cl = nil
	}
	c.mu.Unlock()
	if cl != nil {
		cl.reply <- clientReply{f: f, cn: cn}
	}
}

// attach makes cn the current connection and re-sends every call in flight.
func (c *Client) attach(cn *clientConn, addr int) {
	c.mu.Lock()
	c.cur, c.addr, c.welcome = cn, addr, cn.welcome
	resend := make([][]byte, 0, len(c.pending))
	for _, cl := range c.pending {
		resend = append(resend, cl.frame)
	}
	c.mu.Unlock()
	go c.keepalive(cn)
	if len(resend) > 0 {
		c.log.Info("re-sending calls in flight", "count", len(resend), "addr", cn.addr)
		// Not from run: it must go on reading responses meanwhile.
		go func() {
			for _, b := range resend {
				if !cn.write(b) {
					return
				}
			}
		}()
	}
}

// detach clears the current connection; pings sent on it fail.
func (c *Client) detach() {
	var pings []*clientCall
	c.mu.Lock()
	c.cur = nil
	for id, cl := range c.pending {
		if cl.ping {
			delete(c.pending, id)
			pings = append(pings, cl)
		}
	}
	c.mu.Unlock()
	for _, cl := range pings {
		cl.reply <- clientReply{err: ErrConnectionLost}
	}
}

// run reads the connection until it breaks, then redials or ends the client.
// It is the only goroutine that sends on or closes the Events channel.
func (c *Client) run(cn *clientConn) {
	var final error
	defer func() { c.finish(final) }()
	for {
		stop := context.AfterFunc(c.ctx, func() { cn.fail(ErrClosed) })
		err := c.serve(cn)
		stop()
		cn.fail(err)
		c.detach()
		if c.ctx.Err() != nil {
			final = ErrClosed
			return
		}
		if !c.cfg.Reconnect || clientTerminal(err) {
			c.log.Info("connection ended", "addr", cn.addr, "err", err)
			final = err
			return
		}
		if errors.Is(err, errLeaving) {
			c.log.Info("node cannot serve: moving to another address", "addr", cn.addr, "node", cn.welcome.Node, "err", err, "last_seq", c.LastSeq())
		} else {
			c.log.Info("connection lost, reconnecting", "addr", cn.addr, "err", err, "last_seq", c.LastSeq())
		}
		var idx int
		cn, idx, err = c.redial()
		if err != nil {
			final = err
			return
		}
		c.attach(cn, idx)
	}
}

// finish ends the client: pending calls fail with err, Events closes.
func (c *Client) finish(err error) {
	c.cancel()
	c.mu.Lock()
	c.err = err
	pending := c.pending
	c.pending = map[uint64]*clientCall{}
	c.cur = nil
	c.mu.Unlock()
	for _, cl := range pending {
		cl.reply <- clientReply{err: err}
	}
	close(c.events)
	close(c.done)
}

// serve reads frames from cn until it fails, and returns why.
func (c *Client) serve(cn *clientConn) error {
	lagging := false // Events overflowed: drop events until the resume
	for {
		var f Frame
		if err := ReadFrame(cn.r, c.cfg.MaxFrame, &f); err != nil {
			return cn.reason(err)
		}
		cn.lastRecv.Store(time.Now().UnixNano())
		switch f.T {
		case TypeResponse, TypePong:
			c.complete(cn, &f)
		case TypeEvent:
			if lagging {
				break
			}
			if err := c.deliver(&f); err != nil {
				if !c.cfg.Reconnect {
					return err
				}
				c.log.Warn("event buffer full; resuming once drained", "last_seq", c.LastSeq())
				lagging = true
				go c.resumeWhenDrained(cn)
			}
		case TypePing:
			if b, err := EncodeFrame(&Frame{T: TypePong, ID: f.ID}); err == nil {
				cn.write(b)
			}
		case TypeCaughtUp:
			if !lagging && c.cfg.OnCaughtUp != nil {
				c.cfg.OnCaughtUp(f.Mode, f.Seq)
			}
		case TypeBye:
			if f.Err != nil {
				return f.Err
			}
			return &ErrorBody{Code: api.CodeUnavailable, Name: api.CodeUnavailable.String(), Msg: "bye without a reason"}
		default:
			c.log.Debug("ignoring frame of unknown type", "t", f.T)
		}
	}
}

// deliver puts an event on the Events channel unless it was delivered
// already. A sync is always delivered: it replaces the application's view
// and moves the cursor to its own seq, even backwards.
func (c *Client) deliver(f *Frame) error {
	kind := api.EventKind(f.Kind)
	if kind != api.EvSync && c.haveCursor.Load() && f.Seq <= c.lastSeq.Load() {
		c.log.Debug("dropping event already delivered", "seq", f.Seq, "last_seq", c.lastSeq.Load())
		return nil
	}
	// The cursor moves first, so that LastSeq is never behind an event the
	// application has already received; it moves back if the send fails.
	prev := c.lastSeq.Swap(f.Seq)
	select {
	case c.events <- Event{Seq: f.Seq, Kind: kind, Data: f.Data}:
		c.haveCursor.Store(true)
		return nil
	default:
		c.lastSeq.Store(prev)
		return ErrEventOverflow
	}
}

// resumeWhenDrained breaks cn with ErrEventOverflow, so that run reconnects
// and resumes after LastSeq, once the Events channel is at most half full:
// the replay then has room. Until then cn keeps serving calls.
func (c *Client) resumeWhenDrained(cn *clientConn) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for len(c.events) > cap(c.events)/2 {
		select {
		case <-t.C:
		case <-cn.closed:
			return
		}
	}
	cn.fail(ErrEventOverflow)
}

// redial tries the addresses round-robin, starting after the last one, with
// jittered exponential backoff, until one accepts the hello, the client is
// closed, or a hello is refused for good.
func (c *Client) redial() (*clientConn, int, error) {
	c.mu.Lock()
	idx := c.addr
	c.mu.Unlock()
	backoff := clientBackoffMin
	for {
		delay := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return nil, 0, ErrClosed
		}
		idx = (idx + 1) % len(c.cfg.Addrs)
		cn, err := c.connect(c.ctx, idx)
		if err == nil {
			c.log.Info("reconnected", "addr", cn.addr, "node", cn.welcome.Node, "since", c.LastSeq())
			return cn, idx, nil
		}
		if c.ctx.Err() != nil {
			return nil, 0, ErrClosed
		}
		if clientTerminal(err) {
			return nil, 0, err
		}
		c.log.Debug("redial failed", "addr", c.cfg.Addrs[idx], "err", err, "backoff", backoff)
		backoff = min(2*backoff, clientBackoffMax)
	}
}

// connect dials address idx and exchanges hello and welcome.
func (c *Client) connect(ctx context.Context, idx int) (*clientConn, error) {
	addr := c.cfg.Addrs[idx]
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	var (
		nc  net.Conn
		err error
	)
	if c.cfg.TLS != nil {
		td := tls.Dialer{NetDialer: &d, Config: c.cfg.TLS}
		nc, err = td.DialContext(ctx, "tcp", addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	cn := &clientConn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), addr: addr, wtimeout: c.cfg.RequestTimeout, closed: make(chan struct{})}
	// Close cancels a handshake in progress.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	nc.SetDeadline(time.Now().Add(c.cfg.DialTimeout))
	hello := Frame{T: TypeHello, V: ProtocolVersion, Role: c.cfg.Role, User: c.cfg.User, Token: c.cfg.Token, Client: c.cfg.ClientID,
		Marker: c.cfg.OnCaughtUp != nil}
	if c.haveCursor.Load() {
		since := c.lastSeq.Load()
		hello.Since = &since
	}
	b, err := EncodeFrame(&hello)
	if err == nil {
		_, err = nc.Write(b)
	}
	var f Frame
	if err == nil {
		err = ReadFrame(cn.r, c.cfg.MaxFrame, &f)
	}
	if err == nil {
		switch {
		case f.T == TypeBye && f.Err != nil:
			err = f.Err
		case f.T != TypeWelcome:
			err = fmt.Errorf("transport: %s answered hello with %q", addr, f.T)
		case f.V != 0 && f.V != ProtocolVersion:
			err = fmt.Errorf("transport: %s speaks protocol version %d, not %d", addr, f.V, ProtocolVersion)
		}
	}
	if err == nil {
		err = nc.SetDeadline(time.Time{})
	}
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	cn.welcome, cn.at = f, time.Now()
	cn.lastRecv.Store(cn.at.UnixNano())
	return cn, nil
}

// keepalive pings cn every PingInterval and breaks it once it has been
// silent for longer than the silence limit (silenceLimit), checking six
// times per limit: a dead or frozen node is detected within 7/6 of it.
func (c *Client) keepalive(cn *clientConn) {
	dead := c.silenceLimit(cn.welcome)
	every := c.cfg.PingInterval // <= 0: no pings
	step := every
	if dead > 0 && (step <= 0 || dead/6 < step) {
		step = max(dead/6, time.Millisecond)
	}
	if step <= 0 {
		return
	}
	t := time.NewTicker(step)
	defer t.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-cn.closed:
			return
		case <-t.C:
		}
		if silent := time.Since(time.Unix(0, cn.lastRecv.Load())); dead > 0 && silent > dead {
			c.log.Warn("node silent: taking it for dead", "addr", cn.addr, "silent", silent.Round(time.Millisecond), "limit", dead)
			cn.fail(fmt.Errorf("%w: %s silent for %v", ErrConnectionLost, cn.addr, silent.Round(time.Millisecond)))
			return
		}
		if every > 0 && time.Since(lastPing) >= every-step/2 {
			lastPing = time.Now()
			// The pong matches no pending call: its arrival is what counts.
			if b, err := EncodeFrame(&Frame{T: TypePing, ID: c.nextID.Add(1)}); err == nil {
				cn.write(b)
			}
		}
	}
}

// silenceLimit is how long a connection to the node that sent welcome w
// may stay silent before the client breaks it (0: never). See DeadAfter.
func (c *Client) silenceLimit(w Frame) time.Duration {
	switch {
	case c.cfg.DeadAfter < 0:
		return 0
	case c.cfg.DeadAfter > 0:
		return c.cfg.DeadAfter
	case w.PingMs > 0:
		return 3 * time.Duration(w.PingMs) * time.Millisecond
	case c.cfg.PingInterval > 0:
		return 3 * c.cfg.PingInterval
	}
	return 0
}

// write sends one encoded frame; a failure breaks the connection.
func (cn *clientConn) write(b []byte) bool {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	select {
	case <-cn.closed:
		return false
	default:
	}
	cn.nc.SetWriteDeadline(time.Now().Add(cn.wtimeout))
	if _, err := cn.nc.Write(b); err != nil {
		cn.fail(err)
		return false
	}
	return true
}

// fail closes the connection, remembering the first reason given.
func (cn *clientConn) fail(err error) {
	cn.failOnce.Do(func() {
		cn.failErr = err
		close(cn.closed)
		cn.nc.Close()
	})
}

// reason returns why reading failed: the reason given to fail, if any (a
// keepalive timeout, Close), rather than the read error it caused.
func (cn *clientConn) reason(readErr error) error {
	select {
	case <-cn.closed:
		return cn.failErr
	default:
		return readErr
	}
}

// clientCode returns the protocol code an error carries, if any.
func clientCode(err error) (api.Code, bool) {
	var eb *ErrorBody
	if errors.As(err, &eb) {
		return eb.Code, true
	}
	var fe *api.Error
	if errors.As(err, &fe) {
		return fe.Code, true
	}
	return 0, false
}

// clientTerminal reports whether reconnecting cannot cure err.
func clientTerminal(err error) bool {
	if errors.Is(err, ErrClosed) {
		return true
	}
	code, ok := clientCode(err)
	if !ok {
		return false
	}
	switch code {
	case api.CodeUnauthenticated, api.CodeForbidden, api.CodeProtocol, api.CodeMalformedFrame,
		api.CodeFrameTooLarge, api.CodeBadRequest, api.CodeUnknownOp:
		return true
	}
	return false
}

// clientLeaves reports whether a call answered with code is retried on
// another node rather than on the one that answered (leaveNode): that
// node said it cannot serve, where another may.
func clientLeaves(code api.Code) bool {
	return code == api.CodeNoLeader || code == api.CodeUnavailable
}

// clientRetryable reports whether a call answered with code may succeed if
// sent again with the same seq.
func clientRetryable(code api.Code) bool {
	switch code {
	case api.CodeNotLeader, api.CodeNoLeader, api.CodeTimeout, api.CodeUnavailable, api.CodeRateLimited:
		return true
	}
	return false
}

// seqWindow hands out write seqs so that none is api.SessionWindow or more
// above the oldest write still unanswered (PROTOCOL.md §6): a write stuck
// on a frozen leader holds the next seqs back, instead of falling out of
// the node's idempotency window while later writes cycle, which would
// leave its retry answered stale_sequence though it never applied.
type seqWindow struct {
	mu      sync.Mutex
	last    uint64              // the last seq handed out
	open    map[uint64]struct{} // handed out, not yet released
	changed chan struct{}       // closed and replaced on each release
}

// acquire returns the next seq once it is within the window of the oldest
// open one, or ctx's error.
func (w *seqWindow) acquire(ctx context.Context) (uint64, error) {
	for {
		w.mu.Lock()
		if w.open == nil {
			w.open = map[uint64]struct{}{}
			w.changed = make(chan struct{})
		}
		oldest := w.last + 1
		for s := range w.open {
			oldest = min(oldest, s)
		}
		if w.last+1 < oldest+api.SessionWindow {
			w.last++
			w.open[w.last] = struct{}{}
			seq := w.last
			w.mu.Unlock()
			return seq, nil
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// release marks seq answered (or given up on).
func (w *seqWindow) release(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.open, seq)
	close(w.changed)
	w.changed = make(chan struct{})
}
