package node

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/transport"
)

// Config assembles a whole node: Raft, the FSM, the actors and the
// client-facing TCP server.
type Config struct {
	Raft cluster.Config
	// ClientAddr is where agents, connectors, admins and the other nodes
	// connect. Port 0 binds a free port (see Server.ClientAddr). Ignored
	// when ClientListener is set.
	ClientAddr string
	// ClientListener, if set, is an already bound listener for the client
	// port, used instead of binding ClientAddr. The node closes it.
	ClientListener net.Listener
	// RaftListener, if set, is an already bound listener for Raft, used
	// instead of binding Raft.RaftAddr (it becomes Raft.Listener). The node
	// closes it.
	RaftListener net.Listener
	// HTTPAddr is where the node serves /healthz, /readyz, /metrics and
	// /debug/pprof/ (http.go). Empty or "off": no HTTP listener. Ignored
	// when HTTPListener is set.
	HTTPAddr string
	// HTTPListener, if set, is an already bound listener for HTTP, used
	// instead of binding HTTPAddr. The node closes it.
	HTTPListener net.Listener
	// AdvertiseClientAddr is the client address other nodes and tools
	// reach this node at (node registry, status). Empty means the bound
	// address, which must then not be a wildcard such as 0.0.0.0.
	AdvertiseClientAddr string
	// AdminToken is the admin credential.
	AdminToken string
	// ClusterToken is the cluster secret: it authenticates node-to-node
	// calls and, without TLS, every Raft stream. Every node of a cluster
	// needs the same one. Required, and it must differ from AdminToken:
	// whoever holds it can act as a node.
	ClusterToken string

	// Join lists client addresses of nodes of an existing cluster. A node
	// with a new data dir asks them to add it as a voter, retrying with
	// backoff until one does; a node with Raft state asks once more in
	// the background (a no-op unless its address changed).
	Join []string
	// BootstrapExpect > 0 forms a new cluster of that many nodes started
	// together, each with Join listing the others: the lowest node id
	// bootstraps them all once they have met (see
	// cluster.Service.ExpectCluster).
	BootstrapExpect int
	// Restore, with Raft.Bootstrap and a new data dir, is a backup (from
	// `ctl snapshot save`) the new cluster starts from. On a data dir that
	// already holds Raft state it is ignored, with a log line, so that the
	// command line that restored can restart the node unchanged.
	Restore io.Reader

	// TLS, if set, protects client connections, node-to-node calls and
	// Raft traffic (cluster/tls.go).
	TLS *cluster.TLSConfig

	// Transport tunes the client server (NodeID and Logger are filled in).
	Transport transport.ServerConfig
	// Batch configures group commit on the leader (cluster.BatchConfig;
	// Server.Cluster.SetBatch changes it later).
	Batch cluster.BatchConfig
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
	// MaxFeatureLevel, if set, lowers the highest feature level the node
	// applies below this build's (fsm.MaxLevel): the node then acts as an
	// older build would, which is how tests exercise mixed-version
	// clusters. Zero means this build's own.
	MaxFeatureLevel uint32
	Logger          *slog.Logger
}

// check validates cfg and fills in its defaults.
func (cfg Config) check() (Config, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Raft.Logger == nil {
		cfg.Raft.Logger = cfg.Logger
	}
	if cfg.RaftListener != nil {
		cfg.Raft.Listener = cfg.RaftListener
	}
	switch {
	case cfg.ClusterToken == "":
		return cfg, errors.New("node: a cluster token is required")
	case cfg.ClusterToken == cfg.AdminToken:
		return cfg, errors.New("node: the cluster token must differ from the admin token")
	case cfg.BootstrapExpect > 0 && cfg.Raft.Bootstrap:
		return cfg, errors.New("node: bootstrap and bootstrap-expect exclude each other")
	case cfg.BootstrapExpect > 0 && len(cfg.Join) == 0:
		return cfg, errors.New("node: bootstrap-expect needs the other nodes' addresses to join")
	case cfg.Restore != nil && !cfg.Raft.Bootstrap:
		return cfg, errors.New("node: restoring a backup needs bootstrap (a new cluster)")
	}
	return cfg, nil
}
