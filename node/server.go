package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/actors"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/console"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// Server is a running node: what `switchboard serve` starts.
type Server struct {
	Node      *cluster.Node    // the Raft node
	FSM       *cluster.FSM     // the state machine it applies to
	Cluster   *cluster.Service // writes through the leader, membership, node-to-node calls
	Hub       *actors.Hub      // live delivery and this node's timers
	Backend   *Backend         // what the client server serves
	Transport *transport.Server
	Metrics   *Metrics // the node's Prometheus registry (metrics.go)

	presence *presence
	ln       *splitListener
	capped   *transport.LimitListener // the client port's connection caps
	log      *slog.Logger
	serveErr chan error

	ready     chan struct{}
	readyOnce sync.Once
	// removed is closed once the node learns it was removed from the
	// configuration (removed.go); closing is set when Close starts.
	removed     chan struct{}
	removedOnce sync.Once
	closing     atomic.Bool
	http        *http.Server // nil without an HTTP listener (http.go)
	httpLn      net.Listener
	cancel      context.CancelFunc // stops the background work of run
	wg          sync.WaitGroup
	closeOnce   sync.Once
	closeErr    error
}

var _ cluster.Sink = (*actors.Hub)(nil)

// Start opens the node's Raft (bootstrapping a new data dir if configured),
// starts the actors, serves node-to-node calls at once and clients once the
// node is ready (see Ready), and joins or forms the cluster as configured.
// With Raft.Bootstrap it returns only once the node is ready (the log it
// holds is applied); otherwise it returns at once and readiness follows in
// the background. Close stops it all.
func Start(ctx context.Context, cfg Config) (s *Server, err error) {
	if cfg, err = cfg.check(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	var undo []func() // on failure, in reverse
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	var parts cluster.TLSParts
	if cfg.TLS != nil {
		if parts, err = cfg.TLS.Build(); err != nil {
			return nil, err
		}
		cfg.Raft.RaftTLS = parts.Raft
	} else {
		// Without TLS, Raft streams prove the cluster secret instead.
		cfg.Raft.RaftSecret = []byte(cfg.ClusterToken)
	}
	ln, capped, advertise, err := listenClients(cfg, parts.Server)
	if err != nil {
		if cfg.Raft.Listener != nil {
			cfg.Raft.Listener.Close()
		}
		return nil, err
	}
	undo = append(undo, func() { ln.Close() })
	httpLn, err := listenHTTP(cfg)
	if err != nil {
		return nil, err
	}
	if httpLn != nil {
		undo = append(undo, func() { httpLn.Close() })
	}

	// The state machine, its Raft node and the cluster service: none
	// touches disk or network yet. The metrics time the Raft node's
	// commits and log writes, and count offers from what it applies.
	metrics := newMetrics(cfg.Version)
	f := cluster.NewFSM(nil, log.With("component", "fsm"))
	if cfg.MaxFeatureLevel != 0 {
		f.SetMaxLevel(cfg.MaxFeatureLevel)
	}
	f.SetApplied(metrics.observeApplied)
	cfg.Raft.Observer = metrics
	raftNode, err := cluster.New(cfg.Raft, f)
	if err != nil {
		return nil, fmt.Errorf("new node: %w", err)
	}
	cl := cluster.NewService(raftNode, cluster.ServiceConfig{
		ClientAddr:      advertise,
		ClientBind:      ln.Addr(),
		ClusterToken:    cfg.ClusterToken,
		PeerTLS:         parts.Peer,
		RequirePeerCert: parts.Server != nil,
		Batch:           cfg.Batch,
		Logger:          log.With("component", "cluster"),
	})
	undo = append(undo, cl.Close)

	// The actors, bound to the cluster service (hooks.go); they receive
	// every applied entry, so they exist before Raft replays the log.
	hub, err := actors.NewHub(actorsConfig(cl, cfg.HistorySize, cfg.LogoutGrace, log.With("component", "actors")))
	if err != nil {
		return nil, fmt.Errorf("start actors: %w", err)
	}
	undo = append(undo, hub.Close)
	f.SetSink(hub)

	// The client server over the backend: not serving yet, but it ends
	// the sessions of principals an applied entry deletes, so it exists
	// before Raft replays the log.
	metrics.countLeaderChanges(raftNode)
	backend := newBackend(cl, hub, cfg.AdminToken, cfg.Version)
	backend.metrics, backend.log = metrics, log.With("component", "backend")
	tcfg := cfg.Transport
	tcfg.NodeID = cfg.Raft.NodeID
	if tcfg.Logger == nil {
		tcfg.Logger = log.With("component", "transport")
	}
	ts := transport.NewServer(backend, tcfg)
	undo = append(undo, func() { _ = ts.Close() })
	// The one binding after construction: the backend reports the
	// server's session count in status, and the server needs the backend.
	// Set before anything is served.
	backend.sessions = ts.Sessions
	// The web console, served on the HTTP listener, over the same
	// backend; like the client server, it ends the event streams of the
	// supervisors an applied entry deletes.
	var cons *console.Handler
	if httpLn != nil {
		if cons, err = newConsole(backend, cfg, log.With("component", "console")); err != nil {
			return nil, err
		}
	}
	f.SetRevoked(func(index uint64, ps []api.Principal) {
		ts.Revalidate(ps)
		if cons != nil {
			cons.Revalidate(ps)
		}
		// An id created again later is another principal: it must not
		// resume into the events the deleted one was sent.
		var keys []string
		for _, p := range ps {
			if k := p.Key(); k != "" {
				keys = append(keys, k)
			}
		}
		if index > 0 {
			hub.Forget(index, keys)
		}
	})

	// Raft: recovers what the data dir holds, or bootstraps it.
	if err := raftNode.Open(); err != nil {
		return nil, fmt.Errorf("open node: %w", err)
	}
	undo = append(undo, func() { _ = raftNode.Close() })
	existing := raftNode.HasState()
	if cfg.Restore != nil && existing {
		// The backup was restored on this data dir's first start (or it
		// joined a cluster since): the same command line restarting the
		// node must not need editing, nor roll the cluster back.
		log.Info("restore: the data dir already holds Raft state; the backup is not restored again",
			"data", cfg.Raft.DataDir, "last_index", raftNode.Status().LastLogIndex)
		cfg.Restore = nil
	}

	pres := newPresence(cl, hub, log.With("component", "presence"))
	pres.register()
	cl.Handle(QueryStatus, func(context.Context, msgpack.RawMessage) (any, error) { return backend.Status(), nil })

	// The client port: node sessions to the cluster service at once,
	// clients to the client server once ready (mux.go).
	hello := tcfg.HelloTimeout
	if hello <= 0 {
		hello = transport.DefaultHelloTimeout
	}
	split := newSplitListener(ln, hello, log.With("component", "listener"), cl.ServeNode)
	s = &Server{Node: raftNode, FSM: f, Cluster: cl, Hub: hub, Backend: backend, Transport: ts, Metrics: metrics,
		presence: pres, ln: split, capped: capped, log: log, serveErr: make(chan error, 1), ready: make(chan struct{}),
		removed: make(chan struct{})}
	metrics.Registry.MustRegister(nodeCollector{s}, domainCollector{s, time.Now})
	serveErr := s.serveErr // not s: a failed Start returns a nil s
	go func() { serveErr <- ts.Serve(split) }()
	undo = append(undo, func() { _ = ts.Close(); split.Close() })
	if httpLn != nil {
		s.serveHTTP(httpLn, cfg.AdminToken, cons)
		undo = append(undo, s.closeHTTP)
	}

	if cfg.Raft.Bootstrap {
		if err := s.bootstrap(ctx, cfg); err != nil {
			return nil, err
		}
	}
	s.run(cfg, existing)
	return s, nil
}

// listenClients returns the client port's listener (TLS-wrapped when
// configured), the connection caps under it (for their metrics) and the
// client address to advertise.
func listenClients(cfg Config, tlsCfg *tls.Config) (net.Listener, *transport.LimitListener, string, error) {
	ln := cfg.ClientListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.ClientAddr); err != nil {
			return nil, nil, "", fmt.Errorf("listen for clients on %s: %w", cfg.ClientAddr, err)
		}
	}
	advertise, err := advertisedClientAddr(cfg.AdvertiseClientAddr, ln.Addr())
	if err != nil {
		ln.Close()
		return nil, nil, "", err
	}
	// The caps count connections before TLS, so a stranger's handshake
	// takes a place too.
	capped := transport.NewLimitListener(ln, cfg.Transport.MaxConns, cfg.Transport.MaxConnsPerAddr,
		cfg.Logger.With("component", "listener"))
	ln = capped
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	return ln, capped, advertise, nil
}

// bootstrap finishes the start of a node started with Raft.Bootstrap: no
// client is served until the state the log already holds is applied (a
// restarted node must not answer from, or authenticate against, a
// half-replayed state); then the backup is restored, if any, and the node
// registers itself.
func (s *Server) bootstrap(ctx context.Context, cfg Config) error {
	if err := s.Node.WaitCaughtUp(ctx); err != nil {
		return fmt.Errorf("wait until ready: %w", err)
	}
	if cfg.Restore != nil {
		if _, err := s.Node.RestoreBackup(cfg.Restore, time.Until(deadlineOr(ctx, 5*time.Minute))); err != nil {
			return err
		}
	}
	if s.Node.IsLeader() {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.Cluster.Register(rctx, s.Cluster.Self()); err != nil {
			s.log.Warn("registering this node; will retry", "err", err)
		}
		s.Cluster.RaiseLevel(rctx) // a new cluster starts at this build's level
		rcancel()
	}
	s.markReady()
	return nil
}

// run starts the node's background work, which Close stops: forming or
// joining the cluster and readiness (without bootstrap), the registry's
// upkeep, the orphan sweep and the leader's offer timers.
func (s *Server) run(cfg Config, existing bool) {
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if !cfg.Raft.Bootstrap {
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			s.form(bg, cfg, existing)
		}()
		go func() {
			defer s.wg.Done()
			if err := s.Node.WaitCaughtUp(bg); err == nil {
				s.markReady()
			}
		}()
	}
	grace := cfg.LogoutGrace
	if grace == 0 {
		grace = actors.DefaultLogoutGrace
	}
	s.wg.Add(4)
	go func() {
		defer s.wg.Done()
		s.Cluster.Maintain(bg)
	}()
	go func() {
		defer s.wg.Done()
		s.watchRemoval(bg) // removed.go
	}()
	go func() {
		defer s.wg.Done()
		s.presence.sweepOrphans(bg, grace) // logins whose node died (orphans.go)
	}()
	go func() {
		defer s.wg.Done()
		s.Node.WatchLeadership(bg, s.Hub.SetLeader) // the leader's offer timers
	}()
}

// form joins or forms the cluster of a node started without bootstrap.
func (s *Server) form(ctx context.Context, cfg Config, existing bool) {
	var err error
	switch {
	case existing && len(cfg.Join) > 0:
		err = s.Cluster.JoinCluster(ctx, cfg.Join)
	case existing:
	case cfg.BootstrapExpect > 0:
		err = s.Cluster.ExpectCluster(ctx, cfg.Join, cfg.BootstrapExpect)
	case len(cfg.Join) > 0:
		err = s.Cluster.JoinCluster(ctx, cfg.Join)
	default:
		s.log.Info("no Raft state, no bootstrap and nothing to join: waiting to be added to a cluster")
	}
	if err != nil && ctx.Err() == nil {
		s.log.Error("could not join or form the cluster", "err", err)
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

// Halted is closed when the node has met a log entry its build cannot
// apply faithfully (a newer op or feature level: cluster/halt.go). It
// applies nothing after it; whoever runs the node should close it and
// exit with HaltErr, so that an operator upgrades it.
func (s *Server) Halted() <-chan struct{} { return s.FSM.Halted() }

// HaltErr says why the node halted (nil if it has not).
func (s *Server) HaltErr() error { return s.FSM.HaltErr() }

// Ready is closed once the node serves clients: it knows a leader and has
// applied the log up to the leader's commit index as of then. Before,
// client connections get a bye unavailable (node-to-node calls are served
// from the start).
func (s *Server) Ready() <-chan struct{} { return s.ready }

func advertisedClientAddr(advertise string, bound net.Addr) (string, error) {
	if advertise != "" {
		host, port, err := net.SplitHostPort(advertise)
		if err != nil || host == "" || port == "" || port == "0" {
			return "", fmt.Errorf("node: advertised client address %q: want host:port", advertise)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return "", fmt.Errorf("node: advertised client address %q is not routable", advertise)
		}
		return advertise, nil
	}
	if ta, ok := bound.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return "", fmt.Errorf("node: client address %s binds every interface: set the advertised client address", bound)
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
		s.closing.Store(true) // /readyz says so from now on
		s.cancel()
		if err := s.Node.HandOff(handoffTimeout); err != nil {
			s.log.Warn("leadership handoff before shutdown failed", "err", err)
		}
		errTS := s.Transport.Close()
		s.ln.Close()
		s.Cluster.Close()
		s.closeHTTP()
		s.wg.Wait()
		errNode := s.Node.Close()
		s.Hub.Close()
		s.closeErr = errors.Join(errTS, errNode)
	})
	return s.closeErr
}
