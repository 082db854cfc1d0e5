package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// Service is this node's side of the cluster on top of its Raft Node: it
// commits commands through the leader (proposed here through the batcher
// when this node leads, forwarded otherwise), serves linearizable read
// indexes, joins and forms the cluster, keeps the node registry right, and
// serves and makes node-to-node calls. Its methods are safe for concurrent
// use.
type Service struct {
	node       *Node
	clientAddr string
	log        *slog.Logger
	batch      atomic.Pointer[Batcher] // group commit (batch.go)
	peers      *peers                  // calls to other nodes (rpc_client.go)
	server     *nodeServer             // calls from other nodes (rpc_server.go)

	noLeaderWait time.Duration
	// readyTerm is the last term in which this node, as leader, saw an
	// entry of its own term commit: from then on its commit index is
	// current and can serve as a read index.
	readyTerm atomic.Uint64
	snaps     snapReader

	hmu      sync.RWMutex
	handlers map[string]Handler // node ops (rpc_server.go)
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// ClientAddr is the client address this node advertises: where other
	// nodes reach its node-to-node server, recorded in the node registry.
	ClientAddr string
	// ClientBind is the address the node's client listener is bound to:
	// calls to other nodes leave from its IP when that is a specific one
	// (dialsource.go). Nil lets the kernel choose.
	ClientBind net.Addr
	// ClusterToken authenticates node-to-node calls, both ways. Required.
	ClusterToken string
	// PeerTLS, if set, is the TLS configuration for dialling other nodes
	// (with this node's client certificate for mutual TLS).
	PeerTLS *tls.Config
	// RequirePeerCert makes the node-to-node server refuse a caller that
	// did not present a certificate the TLS configuration verified.
	RequirePeerCert bool
	// Batch configures group commit (batch.go).
	Batch BatchConfig
	// Logger receives the service's logs (default: discarded).
	Logger *slog.Logger
}

// NewService returns the cluster service of node. It touches no network:
// peers are dialled on the first call, and node sessions are served as the
// client listener hands them over (ServeNode).
func NewService(node *Node, cfg ServiceConfig) *Service {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		node:         node,
		clientAddr:   cfg.ClientAddr,
		log:          logger,
		peers:        newPeers(node.ID(), cfg.ClusterToken, cfg.PeerTLS, cfg.ClientBind, logger.With("component", "peers")),
		noLeaderWait: DefaultNoLeaderWait,
		handlers:     map[string]Handler{},
	}
	s.server = newNodeServer(s, cfg.ClusterToken, cfg.RequirePeerCert, logger.With("component", "nodes"))
	s.SetBatch(cfg.Batch)
	for op, h := range map[string]Handler{
		rpcForward:      s.handleForward,
		rpcReadIndex:    s.handleReadIndex,
		rpcJoin:         s.handleJoin,
		rpcInfo:         s.handleInfo,
		RPCRemove:       s.handleRemove,
		RPCTransfer:     s.handleTransfer,
		RPCSnapshotRead: s.handleSnapshotRead,
	} {
		s.Handle(op, h)
	}
	return s
}

// Node returns the Raft node the service runs on.
func (s *Service) Node() *Node { return s.node }

// Handle registers h as the handler of node op op, for the ops of the
// layers above cluster (a node's status, agent presence). Register every
// op before the client listener hands node sessions over; registering an
// op twice panics.
func (s *Service) Handle(op string, h Handler) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.handlers[op] != nil {
		panic("cluster: node op " + op + " registered twice")
	}
	s.handlers[op] = h
}

// handler returns the handler of op, or nil.
func (s *Service) handler(op string) Handler {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	return s.handlers[op]
}

// Call performs node op op on the node at addr (a client address) and
// decodes the result into out (nil to discard). A peer's error answer
// keeps its code and hints; a call that was not sent, or whose connection
// broke, fails with an untyped error.
func (s *Service) Call(ctx context.Context, addr, op string, args, out any) error {
	return s.peers.call(ctx, addr, op, args, out)
}

// Self returns this node's registry entry: its id, advertised Raft address
// and client address.
func (s *Service) Self() fsm.NodeInfo {
	return fsm.NodeInfo{ID: s.node.ID(), RaftAddr: s.node.Addr(), ClientAddr: s.clientAddr}
}

// ClientAddr returns the client address this node advertises.
func (s *Service) ClientAddr() string { return s.clientAddr }

// Registered returns the registry entry of node id in local state.
func (s *Service) Registered(id string) (n fsm.NodeInfo, ok bool) {
	s.node.FSM().Read(func(st *fsm.State, _ uint64) { n, ok = st.Node(id) })
	return n, ok
}

// leaderClient returns the leader's id and client address as this node
// knows them; addr is "" when there is no leader or the registry does not
// name its client address yet.
func (s *Service) leaderClient() (id, addr string) {
	id, _ = s.node.Leader()
	if id == "" {
		return "", ""
	}
	if id == s.node.ID() {
		return id, s.clientAddr
	}
	n, _ := s.Registered(id)
	return id, n.ClientAddr
}

// notLeader is the answer of a leader-only node op on a follower: not_leader
// naming the leader's client address, or no_leader.
func (s *Service) notLeader(op string) error {
	id, addr := s.leaderClient()
	if id == "" || addr == "" {
		return noLeader(op, noLeaderRetry)
	}
	return &hintError{err: failure(op, api.CodeNotLeader, fmt.Sprintf("not the leader; leader is %q", id), nil), leader: addr}
}

// presenceTimeout bounds a whole AskPeers round.
const presenceTimeout = 2 * time.Second

// AskPeers calls op with args on every other registered node, all at once
// and within two seconds, and hands each answer to got (one call at a
// time). It reports false if a node answered with an error (it is up but
// could not tell, or does not know op); a node that cannot be reached, or
// does not answer in time, is skipped as if it had nothing to tell: if it
// is down, its sessions are gone too.
func AskPeers[R any](s *Service, ctx context.Context, op string, args any, got func(R)) (conclusive bool) {
	var nodes []fsm.NodeInfo
	s.node.FSM().Read(func(st *fsm.State, _ uint64) { nodes = st.NodeList() })
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	conclusive = true
	for _, n := range nodes {
		if n.ID == s.node.ID() || n.ClientAddr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r R
			err := s.peers.call(ctx, n.ClientAddr, op, args, &r)
			mu.Lock()
			defer mu.Unlock()
			var answered *api.Error
			switch {
			case err == nil:
				got(r)
			case errors.As(err, &answered):
				s.log.Debug("a node could not answer", "op", op, "node", n.ID, "err", err)
				conclusive = false
			default:
				s.log.Debug("a node did not answer", "op", op, "node", n.ID, "err", err)
			}
		}()
	}
	wg.Wait()
	return conclusive
}

// Close ends the service: node sessions close (waiting for them), peer
// connections close (calls in flight fail), an open snapshot is released.
func (s *Service) Close() {
	s.server.Close()
	s.peers.Close()
	s.snaps.close()
}

// handlerCall runs op's local handler with raw arguments and decodes its
// result into out through msgpack, as a remote call would.
func (s *Service) handlerCall(ctx context.Context, op string, raw msgpack.RawMessage, out any) error {
	h := s.handler(op)
	if h == nil {
		return api.Errorf(api.CodeUnknownOp, "unknown node op %q", op)
	}
	data, err := h(ctx, raw)
	if err != nil {
		return err
	}
	if out == nil || data == nil {
		return nil
	}
	b, err := msgpack.Marshal(data)
	if err != nil {
		return err
	}
	return msgpack.Unmarshal(b, out)
}
