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
	"github.com/switchboard/switchboard/transport"
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

// nodeHandler serves one node RPC op: it returns the result data and, for
// ops that commit, the log index.
type nodeHandler func(s *Service, ctx context.Context, args msgpack.RawMessage) (any, error)

// nodeHandlers is the node RPC op table.
var nodeHandlers = map[string]nodeHandler{
	rpcForward:   (*Service).handleForward,
	rpcReadIndex: (*Service).handleReadIndex,
	rpcJoin:      (*Service).handleJoin,
	rpcInfo:      (*Service).handleInfo,
	rpcStatus:    func(s *Service, _ context.Context, _ msgpack.RawMessage) (any, error) { return s.Status(), nil },
	rpcRemove:    (*Service).handleRemove,
	rpcTransfer:  (*Service).handleTransfer,
	rpcSnapRead:  (*Service).handleSnapshotRead,
}

// nodeServer serves node-to-node sessions handed over by the listener.
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

// serve runs one node session whose hello the listener already read.
func (ns *nodeServer) serve(c net.Conn, hello *transport.Frame, br *bufio.Reader) {
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
		_ = w.write(&transport.Frame{T: transport.TypeBye, Err: wireError(err)})
		return
	}
	log := ns.log.With("peer", hello.User, "remote", c.RemoteAddr().String())
	if err := w.write(&transport.Frame{T: transport.TypeWelcome, V: transport.ProtocolVersion,
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
		var f transport.Frame
		if err := transport.ReadFrame(br, nodeMaxFrame, &f); err != nil {
			log.Debug("node session closed", "err", err)
			return
		}
		switch f.T {
		case transport.TypeRequest:
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			reqs.Add(1)
			go func(f transport.Frame) {
				defer reqs.Done()
				defer func() { <-sem }()
				res := ns.call(ctx, log, &f)
				if err := w.write(res); err != nil {
					c.Close()
				}
			}(f)
		case transport.TypePing:
			if err := w.write(&transport.Frame{T: transport.TypePong, ID: f.ID}); err != nil {
				return
			}
		case transport.TypePong:
		default:
			_ = w.write(&transport.Frame{T: transport.TypeBye, Err: &transport.ErrorBody{
				Code: api.CodeProtocol, Name: api.CodeProtocol.String(), Msg: fmt.Sprintf("unexpected %q frame", f.T)}})
			return
		}
	}
}

// authenticate checks a node hello: protocol version, the cluster token
// and, when required, a verified TLS client certificate.
func (ns *nodeServer) authenticate(c net.Conn, hello *transport.Frame) error {
	if hello.V != transport.ProtocolVersion {
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
func (ns *nodeServer) call(ctx context.Context, log *slog.Logger, f *transport.Frame) (res *transport.Frame) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("panic in node call", "op", f.Op, "panic", v, "stack", string(debug.Stack()))
			res = &transport.Frame{T: transport.TypeResponse, ID: f.ID, Err: &transport.ErrorBody{
				Code: api.CodeInternal, Name: api.CodeInternal.String(), Msg: "internal error"}}
		}
	}()
	h := nodeHandlers[f.Op]
	if h == nil {
		return &transport.Frame{T: transport.TypeResponse, ID: f.ID, Err: &transport.ErrorBody{
			Code: api.CodeUnknownOp, Name: api.CodeUnknownOp.String(), Msg: fmt.Sprintf("unknown node op %q", f.Op)}}
	}
	data, err := h(ns.svc, ctx, f.Args)
	if err != nil {
		return &transport.Frame{T: transport.TypeResponse, ID: f.ID, Err: wireError(err)}
	}
	out := &transport.Frame{T: transport.TypeResponse, ID: f.ID, OK: true}
	if data != nil {
		raw, err := msgpack.Marshal(data)
		if err != nil {
			return &transport.Frame{T: transport.TypeResponse, ID: f.ID, Err: wireError(
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
