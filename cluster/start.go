package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/switchboard/switchboard/actors"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

// ServerConfig assembles a whole node: Raft, the FSM, the actors and the
// client-facing TCP server.
type ServerConfig struct {
	Raft Config
	// ClientAddr is where agents, connectors, admins and the other nodes
	// connect.
	ClientAddr string
	// AdvertiseClientAddr is the client address other nodes and tools
	// reach this node at (node registry, status). Empty means the bound
	// address, which must then not be a wildcard such as 0.0.0.0.
	AdvertiseClientAddr string
	// AdminToken is the admin credential.
	AdminToken string
	// ClusterToken authenticates node-to-node calls (default AdminToken).
	// Every node of a cluster needs the same one.
	ClusterToken string

	// Join lists client addresses of nodes of an existing cluster. A node
	// with a new data dir asks them to add it as a voter, retrying with
	// backoff until one does; a node with Raft state asks once more in
	// the background (a no-op unless its address changed).
	Join []string
	// BootstrapExpect > 0 forms a new cluster of that many nodes started
	// together, each with Join listing the others: the lowest node id
	// bootstraps them all once they have met (see Service.ExpectCluster).
	BootstrapExpect int
	// Restore, with Raft.Bootstrap and a new data dir, is a backup (from
	// `ctl snapshot save`) the new cluster starts from.
	Restore io.Reader

	// TLS, if set, protects client connections, node-to-node calls and
	// Raft traffic (tls.go).
	TLS *TLSConfig

	// Transport tunes the client server (NodeID and Logger are filled in).
	Transport transport.ServerConfig
	// HistorySize is how many events the node keeps for resume.
	HistorySize int
	// LogoutGrace is how long an agent whose last session on this node
	// closed may take to reconnect before the node logs it out; while
	// leading, the node also logs out agents no node has had a session of
	// for as long (orphans.go) (actors.DefaultLogoutGrace if zero;
	// negative: never).
	LogoutGrace time.Duration
	// Version is reported in status.
	Version string
	Logger  *slog.Logger
}

// Server is a running node: what `switchboard serve` starts.
type Server struct {
	Node      *Node
	FSM       *FSM
	Hub       *actors.Hub
	Service   *Service
	Transport *transport.Server
	ln        *splitListener
	nodes     *nodeServer
	log       *slog.Logger
	serveErr  chan error

	ready     chan struct{}
	readyOnce sync.Once
	cancel    context.CancelFunc // stops the background work below
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start opens the node's Raft (bootstrapping a new data dir if configured),
// starts the actors, serves node-to-node calls at once and clients once the
// node is ready (see Ready), and joins or forms the cluster as configured.
// With Raft.Bootstrap it returns only once the node is ready (the log it
// holds is applied); otherwise it returns at once and readiness follows in
// the background. Close stops it all.
func Start(ctx context.Context, cfg ServerConfig) (*Server, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Raft.Logger == nil {
		cfg.Raft.Logger = logger
	}
	if cfg.BootstrapExpect > 0 && cfg.Raft.Bootstrap {
		return nil, errors.New("cluster: bootstrap and bootstrap-expect exclude each other")
	}
	if cfg.BootstrapExpect > 0 && len(cfg.Join) == 0 {
		return nil, errors.New("cluster: bootstrap-expect needs the other nodes' addresses to join")
	}
	if cfg.Restore != nil && !cfg.Raft.Bootstrap {
		return nil, errors.New("cluster: restoring a backup needs bootstrap (a new cluster)")
	}
	var tlsCfg tlsParts
	if cfg.TLS != nil {
		var err error
		if tlsCfg, err = cfg.TLS.build(); err != nil {
			return nil, err
		}
		cfg.Raft.raftTLS = tlsCfg.raft
	}
	f := NewFSM(nil, logger.With("component", "fsm"))
	var hooks systemHooks // offer timers and logout grace (system_hooks.go)
	hub, err := actors.NewHub(hooks.configure(actors.Config{
		HistorySize: cfg.HistorySize,
		Encode:      transport.EncodeEvent,
		View: func(key string) (v fsm.StreamView, index uint64, ok bool) {
			f.Read(func(st *fsm.State, _ uint64) {
				v, ok = st.View(key)
				index = st.Index
			})
			return v, index, ok
		},
		Logger: logger.With("component", "actors"),
	}, f, cfg.Raft.NodeID, cfg.LogoutGrace))
	if err != nil {
		return nil, fmt.Errorf("start actors: %w", err)
	}
	f.SetSink(hub)
	node, err := New(cfg.Raft, f)
	if err != nil {
		hub.Close()
		return nil, fmt.Errorf("new node: %w", err)
	}
	if err := node.Open(); err != nil {
		hub.Close()
		return nil, fmt.Errorf("open node: %w", err)
	}
	hooks.node.Store(node)
	existing := node.HasState()
	if cfg.Restore != nil && existing {
		_ = node.Close()
		hub.Close()
		return nil, fmt.Errorf("cluster: restore: data dir %s already holds Raft state; restore into a new one", cfg.Raft.DataDir)
	}
	inner, err := net.Listen("tcp", cfg.ClientAddr)
	if err != nil {
		_ = node.Close()
		hub.Close()
		return nil, fmt.Errorf("listen for clients on %s: %w", cfg.ClientAddr, err)
	}
	if tlsCfg.server != nil {
		inner = tls.NewListener(inner, tlsCfg.server)
	}
	advertise, err := advertisedClientAddr(cfg.AdvertiseClientAddr, inner.Addr())
	if err != nil {
		inner.Close()
		_ = node.Close()
		hub.Close()
		return nil, err
	}
	token := cfg.ClusterToken
	if token == "" {
		token = cfg.AdminToken
	}
	svc := NewService(node, hub, ServiceConfig{
		AdminToken:   cfg.AdminToken,
		ClientAddr:   advertise,
		Version:      cfg.Version,
		ClusterToken: token,
		PeerTLS:      tlsCfg.peer,
		Logger:       logger.With("component", "cluster"),
	})
	tcfg := cfg.Transport
	tcfg.NodeID = cfg.Raft.NodeID
	if tcfg.Logger == nil {
		tcfg.Logger = logger.With("component", "transport")
	}
	hello := tcfg.HelloTimeout
	if hello <= 0 {
		hello = transport.DefaultHelloTimeout
	}
	ns := newNodeServer(svc, token, tlsCfg.server != nil, logger.With("component", "nodes"))
	split := newSplitListener(inner, hello, logger.With("component", "listener"), ns.serve)
	ts := transport.NewServer(svc, tcfg)
	svc.SetSessions(ts.Sessions)
	hooks.svc.Store(svc)
	bg, cancel := context.WithCancel(context.Background())
	s := &Server{Node: node, FSM: f, Hub: hub, Service: svc, Transport: ts, ln: split, nodes: ns,
		log: logger, serveErr: make(chan error, 1), ready: make(chan struct{}), cancel: cancel}
	go func() { s.serveErr <- ts.Serve(split) }()

	if cfg.Raft.Bootstrap {
		// Serve no client until the state the log already holds is
		// applied: a restarted node must not answer from (or
		// authenticate against) a half-replayed state.
		if err := s.waitReady(ctx); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("wait until ready: %w", err)
		}
		if cfg.Restore != nil {
			if _, err := node.RestoreBackup(cfg.Restore, time.Until(deadlineOr(ctx, 5*time.Minute))); err != nil {
				_ = s.Close()
				return nil, err
			}
		}
		if node.IsLeader() {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			if err := svc.register(rctx, svc.Self()); err != nil {
				logger.Warn("registering this node; will retry", "err", err)
			}
			rcancel()
		}
		s.markReady()
	} else {
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			s.form(bg, cfg, existing)
		}()
		go func() {
			defer s.wg.Done()
			if err := s.waitReady(bg); err == nil {
				s.markReady()
			}
		}()
	}
	grace := cfg.LogoutGrace
	if grace == 0 {
		grace = actors.DefaultLogoutGrace
	}
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		svc.Maintain(bg)
	}()
	go func() {
		defer s.wg.Done()
		svc.SweepOrphans(bg, grace) // logins whose node died (orphans.go)
	}()
	go func() {
		defer s.wg.Done()
		node.WatchLeadership(bg, hub.SetLeader) // the leader's offer timers
	}()
	return s, nil
}

// form joins or forms the cluster of a node started without bootstrap.
func (s *Server) form(ctx context.Context, cfg ServerConfig, existing bool) {
	var err error
	switch {
	case existing && len(cfg.Join) > 0:
		err = s.Service.JoinCluster(ctx, cfg.Join)
	case existing:
	case cfg.BootstrapExpect > 0:
		err = s.Service.ExpectCluster(ctx, cfg.Join, cfg.BootstrapExpect)
	case len(cfg.Join) > 0:
		err = s.Service.JoinCluster(ctx, cfg.Join)
	default:
		s.log.Info("no Raft state, no bootstrap and nothing to join: waiting to be added to a cluster")
	}
	if err != nil && ctx.Err() == nil {
		s.log.Error("could not join or form the cluster", "err", err)
	}
}

// waitReady waits until this node may serve clients: it knows a leader
// and has applied what the leader had committed (a barrier when it is
// the leader itself).
func (s *Server) waitReady(ctx context.Context) error {
	for {
		r, err := s.Node.current("wait until ready")
		if err != nil {
			return err
		}
		if id, _ := s.Node.Leader(); id != "" {
			if s.Node.IsLeader() {
				// A barrier returns once every entry before it is applied.
				err := waitFuture(ctx, r.Barrier(time.Until(deadlineOr(ctx, time.Minute))))
				if err == nil {
					return nil
				}
				if ctx.Err() != nil {
					return failure("wait until ready", fsm.CodeNoLeader, "no leader elected", ctx.Err())
				}
			} else if ci := r.CommitIndex(); ci > 0 {
				if err := s.Node.WaitIndex(ctx, ci); err == nil {
					return nil
				}
				if ctx.Err() != nil {
					return failure("wait until ready", fsm.CodeTimeout, "not caught up", ctx.Err())
				}
			}
		}
		if err := sleepCtx(ctx, defaultLeaderPollInterval); err != nil {
			return failure("wait until ready", fsm.CodeNoLeader, "no leader elected", err)
		}
	}
}

func (s *Server) markReady() {
	s.readyOnce.Do(func() {
		s.ln.SetReady()
		close(s.ready)
		st := s.Node.Status()
		s.log.Info("ready: serving clients", "leader", st.LeaderID, "applied", st.AppliedIndex)
	})
}

// Ready is closed once the node serves clients: it knows a leader and has
// applied the log up to the leader's commit index as of then. Before,
// client connections get a bye unavailable (node-to-node calls are served
// from the start).
func (s *Server) Ready() <-chan struct{} { return s.ready }

func advertisedClientAddr(advertise string, bound net.Addr) (string, error) {
	if advertise != "" {
		host, port, err := net.SplitHostPort(advertise)
		if err != nil || host == "" || port == "" || port == "0" {
			return "", fmt.Errorf("cluster: advertised client address %q: want host:port", advertise)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return "", fmt.Errorf("cluster: advertised client address %q is not routable", advertise)
		}
		return advertise, nil
	}
	if ta, ok := bound.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return "", fmt.Errorf("cluster: client address %s binds every interface: set the advertised client address", bound)
	}
	return bound.String(), nil
}

func deadlineOr(ctx context.Context, d time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(d)
}

// ClientAddr is the address clients connect to.
func (s *Server) ClientAddr() string { return s.ln.Addr().String() }

// handoffTimeout bounds the leadership transfer of a closing leader.
const handoffTimeout = 5 * time.Second

// Close stops the node. A leader with other voters hands leadership over
// first, so the cluster does not wait out an election; then clients are
// told bye (unavailable) and reconnect elsewhere, node-to-node sessions
// close, Raft stops, and the actors.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.handoff()
		errTS := s.Transport.Close()
		s.ln.Close()
		s.nodes.Close()
		s.Service.close()
		s.wg.Wait()
		errNode := s.Node.Close()
		s.Hub.Close()
		s.closeErr = errors.Join(errTS, errNode)
	})
	return s.closeErr
}

// handoff transfers leadership away if this node leads a cluster of more
// than one voter.
func (s *Server) handoff() {
	if !s.Node.IsLeader() {
		return
	}
	servers, err := s.Service.configuration()
	if err != nil {
		return
	}
	voters := 0
	for _, srv := range servers {
		if srv.Suffrage.String() == "Voter" {
			voters++
		}
	}
	if voters < 2 {
		return
	}
	r := s.Node.Raft()
	ctx, cancel := context.WithTimeout(context.Background(), handoffTimeout)
	defer cancel()
	if err := waitFuture(ctx, r.LeadershipTransfer()); err != nil {
		s.log.Warn("leadership handoff before shutdown failed", "err", err)
		return
	}
	s.log.Info("handed leadership over before shutdown")
}
