package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// peerDialTimeout bounds a dial plus the hello exchange with a peer.
const peerDialTimeout = 3 * time.Second

// peers is this node's pool of node-to-node connections, one per peer
// client address, each pipelining concurrent calls. A broken connection
// fails its calls in flight and is redialled by the next call.
type peers struct {
	self  string // this node's id, sent as hello user
	token string
	tls   *tls.Config // nil: plain TCP
	local net.Addr    // the client listener's address, dialled from (dialsource.go); nil: any
	log   *slog.Logger

	mu     sync.Mutex
	conns  map[string]*peerConn
	dials  map[string]chan struct{} // dials in progress, by address
	closed bool
}

func newPeers(self, token string, tlsCfg *tls.Config, local net.Addr, logger *slog.Logger) *peers {
	return &peers{self: self, token: token, tls: tlsCfg, local: local, log: logger,
		conns: map[string]*peerConn{}, dials: map[string]chan struct{}{}}
}

// call performs op on the node at addr and decodes the result into out
// (nil to discard). Errors: a peer's error answer keeps its code and hints
// (remoteError); errPeerUnreachable when the call was not sent;
// errPeerLost when the connection broke after sending; ctx's error.
func (p *peers) call(ctx context.Context, addr, op string, args, out any) error {
	pc, err := p.conn(ctx, addr)
	if err != nil {
		return err
	}
	f, err := pc.call(ctx, op, args)
	if err != nil {
		return err
	}
	if !f.OK {
		if f.Err == nil {
			return remoteError(addr, &ErrorBody{Code: 50, Name: "internal", Msg: "answer with neither ok nor err"})
		}
		return remoteError(addr, f.Err)
	}
	if out != nil && len(f.Data) > 0 {
		if err := msgpack.Unmarshal(f.Data, out); err != nil {
			return fmt.Errorf("cluster: %s from %s: decode result: %w", op, addr, err)
		}
	}
	return nil
}

// conn returns a live connection to addr, dialling one if needed (one dial
// per address at a time).
func (p *peers) conn(ctx context.Context, addr string) (*peerConn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("%w: node closing", errPeerUnreachable)
		}
		if pc := p.conns[addr]; pc != nil && !pc.isBroken() {
			p.mu.Unlock()
			return pc, nil
		}
		if wait, ok := p.dials[addr]; ok {
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %w", errPeerUnreachable, ctx.Err())
			}
		}
		done := make(chan struct{})
		p.dials[addr] = done
		p.mu.Unlock()

		pc, err := p.dial(ctx, addr)
		p.mu.Lock()
		delete(p.dials, addr)
		close(done)
		if err == nil {
			if p.closed {
				p.mu.Unlock()
				pc.fail(errPeerLost)
				return nil, fmt.Errorf("%w: node closing", errPeerUnreachable)
			}
			p.conns[addr] = pc
		}
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return pc, nil
	}
}

// dial connects to addr and exchanges hello and welcome.
func (p *peers) dial(ctx context.Context, addr string) (*peerConn, error) {
	dctx, cancel := context.WithTimeout(ctx, peerDialTimeout)
	defer cancel()
	var (
		nc  net.Conn
		err error
	)
	d := dialer(p.local, addr, 0)
	if p.tls != nil {
		td := &tls.Dialer{NetDialer: d, Config: p.tls}
		nc, err = td.DialContext(dctx, "tcp", addr)
	} else {
		nc, err = d.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errPeerUnreachable, addr, err)
	}
	stop := context.AfterFunc(dctx, func() { nc.Close() })
	defer stop()
	deadline, _ := dctx.Deadline()
	_ = nc.SetDeadline(deadline)
	pc := &peerConn{addr: addr, nc: nc, br: bufio.NewReaderSize(nc, 64<<10),
		w:       newFrameWriter(nc),
		pending: map[uint64]chan *Frame{}, broken: make(chan struct{})}
	if err := pc.w.write(&Frame{T: FrameHello, V: NodeProtocolVersion,
		Role: RoleNode, User: p.self, Token: p.token}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %s: hello: %w", errPeerUnreachable, addr, err)
	}
	var f Frame
	if err := ReadFrame(pc.br, nodeMaxFrame, &f); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %s: welcome: %w", errPeerUnreachable, addr, err)
	}
	if f.T != FrameWelcome {
		nc.Close()
		if f.T == FrameBye && f.Err != nil {
			return nil, fmt.Errorf("%w: %w", errPeerUnreachable, remoteError(addr, f.Err))
		}
		return nil, fmt.Errorf("%w: %s answered hello with %q", errPeerUnreachable, addr, f.T)
	}
	if !stop() {
		nc.Close()
		return nil, fmt.Errorf("%w: %s: %w", errPeerUnreachable, addr, dctx.Err())
	}
	_ = nc.SetDeadline(time.Time{})
	pc.node = f.Node
	go pc.readLoop(p.log)
	return pc, nil
}

// Close closes every peer connection; calls in flight fail.
func (p *peers) Close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[string]*peerConn{}
	p.mu.Unlock()
	for _, pc := range conns {
		pc.fail(fmt.Errorf("%w: node closing", errPeerLost))
	}
}

// peerConn is one pipelined connection to a peer.
type peerConn struct {
	addr   string
	node   string // the peer's id, from its welcome
	nc     net.Conn
	br     *bufio.Reader
	w      *frameWriter
	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]chan *Frame
	err     error
	broken  chan struct{}
}

func (pc *peerConn) isBroken() bool {
	select {
	case <-pc.broken:
		return true
	default:
		return false
	}
}

// call sends one req and waits for its res.
func (pc *peerConn) call(ctx context.Context, op string, args any) (*Frame, error) {
	f := &Frame{T: FrameRequest, ID: pc.nextID.Add(1), Op: op}
	if args != nil {
		raw, err := msgpack.Marshal(args)
		if err != nil {
			return nil, fmt.Errorf("cluster: %s: encode arguments: %w", op, err)
		}
		f.Args = raw
	}
	reply := make(chan *Frame, 1)
	pc.mu.Lock()
	if pc.err != nil {
		pc.mu.Unlock()
		return nil, fmt.Errorf("%w: %s: %w", errPeerUnreachable, pc.addr, pc.err)
	}
	pc.pending[f.ID] = reply
	pc.mu.Unlock()
	forget := func() {
		pc.mu.Lock()
		delete(pc.pending, f.ID)
		pc.mu.Unlock()
	}
	if err := pc.w.write(f); err != nil {
		forget()
		pc.fail(err)
		// A partly written frame may have reached the peer.
		return nil, fmt.Errorf("%w: %s: %w", errPeerLost, pc.addr, err)
	}
	select {
	case r := <-reply:
		return r, nil
	case <-pc.broken:
		forget()
		// The reply may have raced the break.
		select {
		case r := <-reply:
			return r, nil
		default:
		}
		return nil, fmt.Errorf("%w: %s: %w", errPeerLost, pc.addr, pc.err)
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("cluster: %s to %s: %w", op, pc.addr, ctx.Err())
	}
}

// readLoop hands each res to its call until the connection breaks.
func (pc *peerConn) readLoop(log *slog.Logger) {
	for {
		var f Frame
		if err := ReadFrame(pc.br, nodeMaxFrame, &f); err != nil {
			pc.fail(err)
			log.Debug("peer connection closed", "peer", pc.node, "addr", pc.addr, "err", err)
			return
		}
		switch f.T {
		case FrameResponse:
			pc.mu.Lock()
			ch := pc.pending[f.ID]
			delete(pc.pending, f.ID)
			pc.mu.Unlock()
			if ch != nil {
				fr := f
				ch <- &fr
			}
		case FramePing:
			_ = pc.w.write(&Frame{T: FramePong, ID: f.ID})
		case FrameBye:
			err := errors.New("bye")
			if f.Err != nil {
				err = remoteError(pc.addr, f.Err)
			}
			pc.fail(err)
			return
		}
	}
}

// fail breaks the connection once; calls waiting on it give up.
func (pc *peerConn) fail(err error) {
	pc.mu.Lock()
	if pc.err != nil {
		pc.mu.Unlock()
		return
	}
	if err == nil {
		err = errPeerLost
	}
	pc.err = err
	pc.pending = map[uint64]chan *Frame{}
	pc.mu.Unlock()
	close(pc.broken)
	pc.nc.Close()
}
