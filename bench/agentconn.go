package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// agentConn is one agent's or connector's connection. It reads the event
// stream itself rather than through transport.Client, for two reasons: the
// client drops an event whose seq is not above the last one (it would hide
// a duplicate or out-of-order delivery from the node, which the bench must
// count), and a thousand streams decoding whole frames would take CPU from
// the node under test (in an embedded run they share the machine). It
// parses only an event's seq, kind and, for list events, the request's id
// and list. Commands are pipelined on the same socket, as transport.Client
// does: encoded request frames, answers matched by id.
type agentConn struct {
	idx      int
	id       string
	nc       net.Conn
	br       *bufio.Reader
	clientID string
	handler  func(a *agentConn, ev *eventHead)

	wmu     sync.Mutex
	nextID  atomic.Uint64
	nextSeq atomic.Uint64
	pmu     sync.Mutex
	pending map[uint64]chan *transport.Frame
	done    chan struct{}
	err     error // why the read loop ended; set before done closes

	// Reader-owned.
	lastSeq uint64
	// Counters, read concurrently by the progress line and the end check.
	events     atomic.Int64 // every event frame
	listEvents atomic.Int64 // request.created/updated/removed after the load began
	dups       atomic.Int64
	outOfOrder atomic.Int64
	counting   atomic.Bool // list events count from now on
}

// eventHead is what the bench reads of an event frame.
type eventHead struct {
	seq  uint64
	kind []byte // aliases the read buffer: valid during the handler only
	// For request.* events: the request's number (R<n>) and list.
	req  uint64
	list []byte
	data []byte    // the msgpack payload (aliases the read buffer too)
	at   time.Time // when the frame was read
}

// dialAgent connects principal id of role ("agent" or "connector") and
// starts reading its stream; handler (if not nil) sees every event. A node
// that has not applied the principal's creation yet (a follower a moment
// behind the leader) refuses the hello: that is retried for a while.
func dialAgent(ctx context.Context, addr, role string, idx int, id, token string, handler func(*agentConn, *eventHead)) (*agentConn, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, err := dialAgentOnce(ctx, addr, role, idx, id, token, handler)
		var eb *transport.ErrorBody
		if err == nil || !errors.As(err, &eb) || eb.Code != api.CodeUnauthenticated || time.Now().After(deadline) {
			return a, err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, err
		}
	}
}

func dialAgentOnce(ctx context.Context, addr, role string, idx int, id, token string, handler func(*agentConn, *eventHead)) (*agentConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bench: %s %s: %w", role, id, err)
	}
	a := &agentConn{
		idx: idx, id: id, nc: nc, br: bufio.NewReaderSize(nc, 32<<10),
		clientID: rand.Text(), handler: handler,
		pending: map[uint64]chan *transport.Frame{}, done: make(chan struct{}),
	}
	hello, err := transport.EncodeFrame(&transport.Frame{T: transport.TypeHello, V: transport.ProtocolVersion,
		Role: role, User: id, Token: token, Client: a.clientID})
	if err == nil {
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = nc.Write(hello)
	}
	var f transport.Frame
	if err == nil {
		err = transport.ReadFrame(a.br, transport.DefaultClientMaxFrame, &f)
	}
	if err == nil && f.T != transport.TypeWelcome {
		err = fmt.Errorf("answered hello with %q", f.T)
		if f.Err != nil {
			err = fmt.Errorf("answered hello with %q: %w", f.T, f.Err)
		}
	}
	if err == nil {
		err = nc.SetDeadline(time.Time{})
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bench: %s %s hello: %w", role, id, err)
	}
	go a.readLoop()
	go a.keepalive()
	return a, nil
}

// pingInterval keeps an otherwise silent connection (an agent that only
// listens) inside the node's idle timeout, as transport.Client does.
const pingInterval = 20 * time.Second

// keepalive pings the node until the connection ends.
func (a *agentConn) keepalive() {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			return
		case <-t.C:
		}
		b, err := transport.EncodeFrame(&transport.Frame{T: transport.TypePing, ID: a.nextID.Add(1)})
		if err != nil {
			continue
		}
		a.wmu.Lock()
		a.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, _ = a.nc.Write(b) // a failure shows in the read loop
		a.wmu.Unlock()
	}
}

// close ends the connection and waits for the read loop.
func (a *agentConn) close() {
	a.nc.Close()
	<-a.done
}

// call sends a write op as this principal and waits for its answer, whose
// data it decodes into out (if not nil).
func (a *agentConn) call(ctx context.Context, op string, args, out any) (uint64, error) {
	raw, err := msgpack.Marshal(args)
	if err != nil {
		return 0, err
	}
	id := a.nextID.Add(1)
	b, err := transport.EncodeFrame(&transport.Frame{T: transport.TypeRequest, ID: id, Op: op, Args: raw, Seq: a.nextSeq.Add(1)})
	if err != nil {
		return 0, err
	}
	ch := make(chan *transport.Frame, 1)
	a.pmu.Lock()
	a.pending[id] = ch
	a.pmu.Unlock()
	defer func() {
		a.pmu.Lock()
		delete(a.pending, id)
		a.pmu.Unlock()
	}()
	a.wmu.Lock()
	a.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err = a.nc.Write(b)
	a.wmu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("bench: %s: write: %w", a.id, err)
	}
	select {
	case f := <-ch:
		if !f.OK {
			if f.Err != nil {
				return f.Index, f.Err
			}
			return f.Index, errors.New("response with neither ok nor err")
		}
		if out != nil && len(f.Data) > 0 {
			if err := msgpack.Unmarshal(f.Data, out); err != nil {
				return f.Index, fmt.Errorf("bench: %s result: %w", op, err)
			}
		}
		return f.Index, nil
	case <-a.done:
		return 0, fmt.Errorf("bench: %s: connection ended: %w", a.id, a.err)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// readLoop reads frames until the connection ends.
func (a *agentConn) readLoop() {
	defer close(a.done)
	var buf []byte
	for {
		p, err := transport.ReadFramePayload(a.br, transport.DefaultClientMaxFrame, buf)
		if err != nil {
			a.err = err
			return
		}
		if cap(p) <= 64<<10 {
			buf = p[:0]
		}
		ev, ok := parseEvent(p)
		if ok {
			ev.at = time.Now()
			a.onEvent(&ev)
			continue
		}
		var f transport.Frame
		if err := transport.DecodeFrame(p, &f); err != nil {
			a.err = err
			return
		}
		switch f.T {
		case transport.TypeEvent:
			// parseEvent declined an unusual encoding: take it the slow way.
			ev := eventHead{seq: f.Seq, kind: []byte(f.Kind), data: f.Data, at: time.Now()}
			ev.req, ev.list = requestOf(f.Data)
			a.onEvent(&ev)
		case transport.TypeResponse:
			a.pmu.Lock()
			ch := a.pending[f.ID]
			a.pmu.Unlock()
			if ch != nil {
				ch <- &f
			}
		case transport.TypePing:
			if b, err := transport.EncodeFrame(&transport.Frame{T: transport.TypePong, ID: f.ID}); err == nil {
				a.wmu.Lock()
				_, _ = a.nc.Write(b)
				a.wmu.Unlock()
			}
		case transport.TypeBye:
			a.err = fmt.Errorf("bye: %v", f.Err)
			a.nc.Close()
			return
		}
	}
}

// onEvent checks the event's place in the stream, counts it and hands it
// to the scenario.
func (a *agentConn) onEvent(ev *eventHead) {
	switch {
	case ev.seq == a.lastSeq:
		a.dups.Add(1)
	case ev.seq < a.lastSeq:
		a.outOfOrder.Add(1)
	default:
		a.lastSeq = ev.seq
	}
	a.events.Add(1)
	if ev.req != 0 && a.counting.Load() && isListEvent(ev.kind) {
		a.listEvents.Add(1)
	}
	if a.handler != nil {
		a.handler(a, ev)
	}
}

func isListEvent(kind []byte) bool {
	k := api.EventKind(kind)
	return k == api.EvRequestCreated || k == api.EvRequestUpdated || k == api.EvRequestRemoved
}

// requestOf reads a request summary's id number and list from msgpack data
// (the slow path).
func requestOf(data []byte) (req uint64, list []byte) {
	var s struct {
		ID   string `msgpack:"id"`
		List string `msgpack:"list"`
	}
	if msgpack.Unmarshal(data, &s) != nil {
		return 0, nil
	}
	return requestNumber([]byte(s.ID)), []byte(s.List)
}

// requestNumber returns n of a request id "R<n>", or 0.
func requestNumber(id []byte) uint64 {
	if len(id) < 2 || id[0] != 'R' {
		return 0
	}
	var n uint64
	for _, c := range id[1:] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}
