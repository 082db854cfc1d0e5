package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Defaults for Config's zero values.
//
// The heartbeat timeout sets the failover time: with hashicorp/raft a
// follower notices a silent leader between one and three heartbeat
// timeouts after its last contact (its timer is randomized and re-armed),
// and since pre-vote (on by default) makes a voter that still hears the
// leader refuse to vote, an election needs both survivors of three to have
// timed out, about two timeouts in all (measured: docs/OPERATIONS.md).
// 400 ms keeps the median failover under a second. Pre-vote is also what
// keeps it safe on a loaded machine: one follower that misses heartbeats
// for a moment cannot start an election while the others still hear the
// leader. The leader sends heartbeats every tenth of the timeout.
const (
	DefaultRaftAddr           = "127.0.0.1:7401"
	DefaultHeartbeatTimeout   = 400 * time.Millisecond
	DefaultCommitTimeout      = 50 * time.Millisecond
	DefaultMaxAppendEntries   = 1024
	DefaultSnapshotThreshold  = 8192
	DefaultSnapshotInterval   = 30 * time.Second
	DefaultTrailingLogs       = 10240
	DefaultSnapshotRetain     = 2
	DefaultTransportTimeout   = 10 * time.Second
	DefaultTransportMaxPool   = 3
	DefaultApplyTimeout       = 10 * time.Second
	DefaultStoreOpenTimeout   = 2 * time.Second
	defaultLeaderPollInterval = 20 * time.Millisecond
)

// Config configures a Node. Zero values take the defaults above.
type Config struct {
	// NodeID is this node's Raft server id, unique across the cluster's
	// lifetime. Required.
	NodeID string
	// RaftAddr is the host:port the Raft transport binds, default
	// DefaultRaftAddr. Port 0 picks a free port (see Node.Addr); an empty
	// host (":0") means 127.0.0.1. Ignored when Listener is set.
	RaftAddr string
	// Listener, if set, is an already bound listener the Raft transport
	// serves on instead of binding RaftAddr (tests hand one over, so no
	// port is picked, released and bound again). Open takes it over: it is
	// closed when the node closes, or when Open fails.
	Listener net.Listener
	// AdvertiseAddr is the address other nodes reach this one at. Empty
	// means the bound address, which must then not be a wildcard such as
	// 0.0.0.0.
	AdvertiseAddr string
	// DataDir holds raft.db (log and stable store) and the snapshots
	// directory. Required; created if missing.
	DataDir string
	// Bootstrap makes this node the single voter of a new cluster when
	// DataDir has no Raft state yet. It is ignored when state exists.
	Bootstrap bool

	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one.
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks whether to snapshot.
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries are kept in the log after a
	// snapshot, so a lagging follower can catch up without one.
	TrailingLogs uint64
	// SnapshotRetain is how many snapshots are kept on disk.
	SnapshotRetain int
	// SnapshotCapture is how a snapshot is taken: CaptureReplay (the
	// default, "") rebuilds it off the apply path from the last snapshot
	// and the log since, with a second copy of the state in memory while
	// it runs; CaptureProcess does the same in a child process started
	// with RebuildCommand; CaptureLock encodes the live state under the
	// FSM lock, holding every write back meanwhile (snapshot_replay.go).
	SnapshotCapture string
	// RebuildCommand is the command line of the child that rebuilds a
	// snapshot with CaptureProcess: a program that runs
	// RunRebuildChild on its standard input and output (the switchboard
	// binary with RebuildCommand as its first argument).
	RebuildCommand []string

	// HeartbeatTimeout is how long a follower waits without contact
	// before starting an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits; default
	// HeartbeatTimeout. It may not be below HeartbeatTimeout.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without quorum
	// contact; default HeartbeatTimeout, the most Raft allows, so that a
	// leader on a loaded machine does not step down over a short stall
	// (reads do not rely on the lease: linearizable reads verify the
	// leadership with a quorum).
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how long the leader waits without an Apply before
	// sending an AppendEntries to followers.
	CommitTimeout time.Duration
	// MaxAppendEntries is the most entries sent in one AppendEntries and
	// the size of the buffered apply channel (at most 1024).
	MaxAppendEntries int
	// TransportTimeout bounds each Raft RPC's I/O.
	TransportTimeout time.Duration
	// TransportMaxPool is how many connections are pooled per peer.
	TransportMaxPool int
	// ApplyTimeout bounds a Propose whose context has no deadline.
	ApplyTimeout time.Duration
	// StoreOpenTimeout bounds the wait for raft.db's file lock, so a data
	// directory already open elsewhere fails Open instead of hanging.
	StoreOpenTimeout time.Duration

	// Logger receives this node's logs and Raft's (through an hclog
	// adapter). Nil discards them.
	Logger *slog.Logger

	// StreamLayer, if set, wraps the TCP stream layer (listener and
	// dialer) that the Raft transport runs over, e.g. to inject network
	// faults in tests. Nil leaves raft's TCP transport unchanged. It is
	// not used when Raft runs over TLS.
	StreamLayer func(raft.StreamLayer) raft.StreamLayer

	// Tune, if set, is called last on the raft.Config built from the
	// fields above, to change anything else (e.g. BatchApplyCh). It may
	// be called more than once (New validates the result) and should only
	// set fields.
	Tune func(*raft.Config)

	// RaftTLS, if set, runs Raft over mutual TLS with this configuration
	// (TLSConfig.Build makes it, as TLSParts.Raft).
	RaftTLS *tls.Config

	// RaftSecret, without RaftTLS, makes every Raft stream prove knowledge
	// of it, both ways, before raft reads a byte (raftauth.go): the
	// cluster secret, the same on every node. Empty leaves the Raft port
	// unauthenticated, which only this package's own tests do; node.Start
	// always sets it.
	RaftSecret []byte

	// Observer, if set, is told how long this node's commits and log
	// writes take (observe.go), for its metrics. Nil measures nothing.
	Observer Observer
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.RaftAddr == "" {
		c.RaftAddr = DefaultRaftAddr
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = DefaultSnapshotRetain
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = c.HeartbeatTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = c.HeartbeatTimeout
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = DefaultCommitTimeout
	}
	if c.MaxAppendEntries == 0 {
		c.MaxAppendEntries = DefaultMaxAppendEntries
	}
	if c.TransportTimeout == 0 {
		c.TransportTimeout = DefaultTransportTimeout
	}
	if c.TransportMaxPool == 0 {
		c.TransportMaxPool = DefaultTransportMaxPool
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = DefaultApplyTimeout
	}
	if c.StoreOpenTimeout == 0 {
		c.StoreOpenTimeout = DefaultStoreOpenTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate checks a config that has its defaults applied.
func (c *Config) validate() error {
	if c.NodeID == "" {
		return errors.New("cluster: config: NodeID is required")
	}
	if c.DataDir == "" {
		return errors.New("cluster: config: DataDir is required")
	}
	switch c.SnapshotCapture {
	case "", CaptureReplay, CaptureLock:
	case CaptureProcess:
		if len(c.RebuildCommand) == 0 {
			return fmt.Errorf("cluster: config: SnapshotCapture %q needs a RebuildCommand", c.SnapshotCapture)
		}
	default:
		return fmt.Errorf("cluster: config: SnapshotCapture %q, want %q, %q or %q", c.SnapshotCapture, CaptureProcess, CaptureReplay, CaptureLock)
	}
	if c.SnapshotRetain < 1 {
		return fmt.Errorf("cluster: config: SnapshotRetain %d, want at least 1", c.SnapshotRetain)
	}
	if c.ApplyTimeout < 0 || c.TransportTimeout < 0 || c.StoreOpenTimeout < 0 {
		return errors.New("cluster: config: negative timeout")
	}
	if _, _, err := c.addrs(); err != nil {
		return err
	}
	if err := raft.ValidateConfig(c.raftConfig(hclog.NewNullLogger())); err != nil {
		return fmt.Errorf("cluster: config: %w", err)
	}
	return nil
}

// addrs returns the address to bind and the address to advertise (nil: the
// bound one).
func (c *Config) addrs() (bind string, advertise net.Addr, err error) {
	raftAddr := c.RaftAddr
	if c.Listener != nil {
		raftAddr = c.Listener.Addr().String()
	}
	host, port, err := net.SplitHostPort(raftAddr)
	if err != nil {
		return "", nil, fmt.Errorf("cluster: config: RaftAddr %q: %w", raftAddr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	bind = net.JoinHostPort(host, port)
	if c.AdvertiseAddr == "" {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return "", nil, fmt.Errorf("cluster: config: RaftAddr %q binds every interface: set AdvertiseAddr", raftAddr)
		}
		return bind, nil, nil
	}
	a, err := net.ResolveTCPAddr("tcp", c.AdvertiseAddr)
	if err != nil {
		return "", nil, fmt.Errorf("cluster: config: AdvertiseAddr %q: %w", c.AdvertiseAddr, err)
	}
	if a.IP == nil || a.IP.IsUnspecified() || a.Port == 0 {
		return "", nil, fmt.Errorf("cluster: config: AdvertiseAddr %q needs a routable host and a port", c.AdvertiseAddr)
	}
	return bind, a, nil
}

// raftConfig builds the raft.Config for this node.
func (c *Config) raftConfig(logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.MaxAppendEntries = c.MaxAppendEntries
	// Buffer the apply channel so concurrent Proposes are committed in
	// batches (group commit). Propose bounds its own wait with the context,
	// which covers the weaker enqueue timeout this implies.
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	rc.Logger = logger
	if c.Tune != nil {
		c.Tune(rc)
	}
	return rc
}
