package cluster

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// Node server limits.
const (
	// nodeMaxFrame bounds a frame between nodes: a forwarded command is at
	// most a client frame, a snapshot chunk is snapshotChunk bytes.
	nodeMaxFrame = 4 << 20
	// nodeMaxInFlight bounds concurrent calls per node connection.
	nodeMaxInFlight = 4096
	// nodeWriteTimeout bounds one frame write to a peer.
	nodeWriteTimeout = 10 * time.Second
)

// nodeServer serves node-to-node sessions handed over by the client
// listener, through the service's handler table.
type nodeServer struct {
	svc       *Service
	log       *slog.Logger
	tokenHash [sha256.Size]byte
	// requireCert: with TLS, a node must also present a certificate the
	// cluster CA signed (the TLS config verifies it when given).
	requireCert bool

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newNodeServer(svc *Service, token string, requireCert bool, logger *slog.Logger) *nodeServer {
	ctx, cancel := context.WithCancel(context.Background())
	return &nodeServer{
		svc:         svc,
		log:         logger,
		tokenHash:   sha256.Sum256([]byte(token)),
		requireCert: requireCert,
		ctx:         ctx,
		cancel:      cancel,
		conns:       map[net.Conn]struct{}{},
	}
}

// ServeNode runs one node session on c, whose first frame (a hello with
// role RoleNode) the client listener already read from it; br reads the
// rest. It returns when the session ends, and closes c.
func (s *Service) ServeNode(c net.Conn, hello *Frame, br *bufio.Reader) { s.server.serve(c, hello, br) }

// serve runs one node session whose hello the listener already read.
func (ns *nodeServer) serve(c net.Conn, hello *Frame, br *bufio.Reader) {
	ns.mu.Lock()
	if ns.closed {
		ns.mu.Unlock()
		c.Close()
		return
	}
	ns.conns[c] = struct{}{}
	ns.wg.Add(1)
	ns.mu.Unlock()
	defer func() {
		c.Close()
		ns.mu.Lock()
		delete(ns.conns, c)
		ns.mu.Unlock()
		ns.wg.Done()
	}()

	w := newFrameWriter(c)
	if err := ns.authenticate(c, hello); err != nil {
		ns.log.Warn("node session refused", "remote", c.RemoteAddr().String(), "peer", hello.User, "err", err)
		_ = w.write(&Frame{T: FrameBye, Err: wireError(err)})
		return
	}
	log := ns.log.With("peer", hello.User, "remote", c.RemoteAddr().String())
	if err := w.write(&Frame{T: FrameWelcome, V: NodeProtocolVersion,
		Node: ns.svc.node.ID(), Role: RoleNode, User: hello.User, MaxFrame: nodeMaxFrame}); err != nil {
		return
	}
	log.Debug("node session open")

	ctx, cancel := context.WithCancel(ns.ctx)
	defer cancel()
	sem := make(chan struct{}, nodeMaxInFlight)
	var reqs sync.WaitGroup
	defer reqs.Wait()
	for {
		var f Frame
		if err := ReadFrame(br, nodeMaxFrame, &f); err != nil {
			log.Debug("node session closed", "err", err)
			return
		}
		switch f.T {
		case FrameRequest:
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			reqs.Add(1)
			go func(f Frame) {
				defer reqs.Done()
				defer func() { <-sem }()
				res := ns.call(ctx, log, &f)
				if err := w.write(res); err != nil {
					c.Close()
				}
			}(f)
		case FramePing:
			if err := w.write(&Frame{T: FramePong, ID: f.ID}); err != nil {
				return
			}
		case FramePong:
		default:
			_ = w.write(&Frame{T: FrameBye, Err: &ErrorBody{
				Code: api.CodeProtocol, Name: api.CodeProtocol.String(), Msg: fmt.Sprintf("unexpected %q frame", f.T)}})
			return
		}
	}
}

// authenticate checks a node hello: protocol version, the cluster token
// and, when required, a verified TLS client certificate.
func (ns *nodeServer) authenticate(c net.Conn, hello *Frame) error {
	if hello.V != NodeProtocolVersion {
		return &api.Error{Code: api.CodeProtocol, Msg: fmt.Sprintf("protocol version %d not supported", hello.V)}
	}
	sum := sha256.Sum256([]byte(hello.Token))
	if hello.Token == "" || subtle.ConstantTimeCompare(sum[:], ns.tokenHash[:]) != 1 {
		return &api.Error{Code: api.CodeUnauthenticated, Msg: "bad cluster token"}
	}
	if ns.requireCert {
		tc, ok := c.(*tls.Conn)
		if !ok || len(tc.ConnectionState().VerifiedChains) == 0 {
			return &api.Error{Code: api.CodeUnauthenticated, Msg: "a node must present a certificate signed by the cluster CA"}
		}
	}
	return nil
}

// call runs one request through the handler table.
func (ns *nodeServer) call(ctx context.Context, log *slog.Logger, f *Frame) (res *Frame) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("panic in node call", "op", f.Op, "panic", v, "stack", string(debug.Stack()))
			res = &Frame{T: FrameResponse, ID: f.ID, Err: &ErrorBody{
				Code: api.CodeInternal, Name: api.CodeInternal.String(), Msg: "internal error"}}
		}
	}()
	h := ns.svc.handler(f.Op)
	if h == nil {
		return &Frame{T: FrameResponse, ID: f.ID, Err: &ErrorBody{
			Code: api.CodeUnknownOp, Name: api.CodeUnknownOp.String(), Msg: fmt.Sprintf("unknown node op %q", f.Op)}}
	}
	data, err := h(ctx, f.Args)
	if err != nil {
		return &Frame{T: FrameResponse, ID: f.ID, Err: wireError(err)}
	}
	out := &Frame{T: FrameResponse, ID: f.ID, OK: true}
	if data != nil {
		raw, err := msgpack.Marshal(data)
		if err != nil {
			return &Frame{T: FrameResponse, ID: f.ID, Err: wireError(
				&api.Error{Code: api.CodeInternal, Msg: fmt.Sprintf("encode result: %v", err)})}
		}
		out.Data = raw
	}
	return out
}

// Close closes every node session and waits for them to end.
func (ns *nodeServer) Close() {
	ns.mu.Lock()
	ns.closed = true
	for c := range ns.conns {
		c.Close()
	}
	ns.mu.Unlock()
	ns.cancel()
	ns.wg.Wait()
}
