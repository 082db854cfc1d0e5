package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/switchboard/switchboard/actors"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

// ServerConfig assembles a whole node: Raft, the FSM, the actors and the
// client-facing TCP server.
type ServerConfig struct {
	Raft Config
	// ClientAddr is where agents, connectors and admins connect.
	ClientAddr string
	// AdminToken is the admin credential.
	AdminToken string
	// Transport tunes the client server (NodeID and Logger are filled in).
	Transport transport.ServerConfig
	// HistorySize is how many events the node keeps for resume.
	HistorySize int
	// Version is reported in status.
	Version string
	Logger  *slog.Logger
}

// Server is a running node: what `switchboard serve` starts.
type Server struct {
	Node      *Node
	FSM       *fsm.FSM
	Hub       *actors.Hub
	Service   *Service
	Transport *transport.Server
	ln        net.Listener
	serveErr  chan error
}

// Start opens the node's Raft (bootstrapping a new data dir if configured),
// starts the actors and serves clients on ClientAddr. Close stops it all.
func Start(ctx context.Context, cfg ServerConfig) (*Server, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Raft.Logger == nil {
		cfg.Raft.Logger = logger
	}
	f := fsm.NewFSM(nil, logger.With("component", "fsm"))
	hub, err := actors.NewHub(actors.Config{
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
	})
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
	// Serve nobody until the state the log already holds is applied: a
	// restarted node must not answer from (or authenticate against) a
	// half-replayed state.
	if cfg.Raft.Bootstrap {
		if err := node.WaitForLeader(ctx); err != nil {
			_ = node.Close()
			hub.Close()
			return nil, fmt.Errorf("wait for leader: %w", err)
		}
		// A barrier returns once every entry before it is applied.
		if err := node.Raft().Barrier(time.Until(deadlineOr(ctx, time.Minute))).Error(); err != nil {
			_ = node.Close()
			hub.Close()
			return nil, fmt.Errorf("replay the log: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.ClientAddr)
	if err != nil {
		_ = node.Close()
		hub.Close()
		return nil, fmt.Errorf("listen for clients on %s: %w", cfg.ClientAddr, err)
	}
	svc := NewService(node, hub, ServiceConfig{AdminToken: cfg.AdminToken, ClientAddr: ln.Addr().String(), Version: cfg.Version})
	tcfg := cfg.Transport
	tcfg.NodeID = cfg.Raft.NodeID
	if tcfg.Logger == nil {
		tcfg.Logger = logger.With("component", "transport")
	}
	ts := transport.NewServer(svc, tcfg)
	svc.SetSessions(ts.Sessions)
	s := &Server{Node: node, FSM: f, Hub: hub, Service: svc, Transport: ts, ln: ln, serveErr: make(chan error, 1)}
	go func() { s.serveErr <- ts.Serve(ln) }()
	return s, nil
}

func deadlineOr(ctx context.Context, d time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(d)
}

// ClientAddr is the address clients connect to.
func (s *Server) ClientAddr() string { return s.ln.Addr().String() }

// Close stops serving clients, then Raft, then the actors.
func (s *Server) Close() error {
	errTS := s.Transport.Close()
	errNode := s.Node.Close()
	s.Hub.Close()
	return errors.Join(errTS, errNode)
}
