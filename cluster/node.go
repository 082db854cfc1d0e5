package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/switchboard/switchboard/api"
	"go.etcd.io/bbolt"
)

// Node is one member of the Raft cluster: it owns the Raft instance, its
// stores and transport, and commits commands into its FSM. Its methods
// are safe for concurrent use.
type Node struct {
	cfg Config
	fsm *FSM
	log *slog.Logger
	// stop is closed when Close begins, releasing Proposes still waiting.
	stop chan struct{}
	// leaders is the leader this node knows, kept by watchLeader.
	leaders *leaderWatch

	mu     sync.RWMutex // guards the fields below
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	store  *raftboltdb.BoltStore
	closed bool
	// snaps and existing are set by Open (node_cluster.go reads them).
	snaps    *raft.FileSnapshotStore
	existing bool
}

// New checks cfg and returns a Node over f. It touches neither disk nor
// network: Open does.
func New(cfg Config, f *FSM) (*Node, error) {
	if f == nil {
		return nil, errors.New("cluster: nil FSM")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Node{
		cfg:     cfg,
		fsm:     f,
		log:     cfg.Logger.With("node", cfg.NodeID),
		stop:    make(chan struct{}),
		leaders: newLeaderWatch(),
	}, nil
}

// Open creates DataDir, opens the bolt log/stable store, the snapshot store
// and the TCP transport, and starts Raft, which restores the latest snapshot
// and replays the log after it. When DataDir holds no Raft state and
// Config.Bootstrap is set, it bootstraps a cluster whose only voter is this
// node. A Node opens once; after Close make a new one.
func (n *Node) Open() (err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return failure("open", api.CodeUnavailable, "node closed", nil)
	}
	if n.raft != nil {
		return errors.New("cluster: open: already open")
	}
	var (
		store *raftboltdb.BoltStore
		trans *raft.NetworkTransport
	)
	defer func() {
		if err == nil {
			return
		}
		if trans != nil {
			_ = trans.Close()
		} else if n.cfg.Listener != nil {
			_ = n.cfg.Listener.Close() // taken over, as documented
		}
		if store != nil {
			_ = store.Close()
		}
	}()

	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("cluster: open: %w", err)
	}
	if err := privateTree(n.cfg.DataDir); err != nil { // private.go
		return err
	}
	boltOpts := *bbolt.DefaultOptions
	boltOpts.Timeout = n.cfg.StoreOpenTimeout
	store, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(n.cfg.DataDir, "raft.db"),
		BoltOptions: &boltOpts,
		NoSync:      false, // every log write is fsynced; never turn this off
	})
	if err != nil {
		store = nil
		return fmt.Errorf("cluster: open log store %s: %w", n.cfg.DataDir, err)
	}
	hl := newHCLogger(n.log, "raft")
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, n.cfg.SnapshotRetain, hl.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("cluster: open snapshot store: %w", err)
	}
	bind, advertise, err := n.cfg.addrs()
	if err != nil {
		return err
	}
	if n.cfg.RaftTLS != nil {
		trans, err = newTLSTransport(bind, advertise, n.cfg, hl.Named("transport"))
	} else {
		trans, err = newRaftTransport(&n.cfg, bind, advertise, hl.Named("transport"))
	}
	if err != nil {
		trans = nil
		return fmt.Errorf("cluster: open transport on %s: %w", bind, err)
	}
	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fmt.Errorf("cluster: open: read state: %w", err)
	}
	private := &privateSnapshots{FileSnapshotStore: snaps, dir: filepath.Join(n.cfg.DataDir, "snapshots")}
	if err := privateTree(private.dir); err != nil {
		return err
	}
	switch n.cfg.SnapshotCapture { // snapshot_replay.go
	case CaptureLock:
	case CaptureProcess:
		n.fsm.SetReplaySource(private, store, n.cfg.RebuildCommand)
	default:
		n.fsm.SetReplaySource(private, store, nil)
	}
	var logs raft.LogStore = store
	if n.cfg.Observer != nil {
		logs = timedLogStore{LogStore: store, obs: n.cfg.Observer}
	}
	r, err := raft.NewRaft(n.cfg.raftConfig(hl), n.fsm, logs, store, private, trans)
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	switch {
	case existing:
		n.log.Info("raft state recovered", "dir", n.cfg.DataDir, "addr", trans.LocalAddr(),
			"last_index", r.LastIndex())
	case n.cfg.Bootstrap:
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(n.cfg.NodeID),
			Address:  trans.LocalAddr(),
		}}}
		if err := r.BootstrapCluster(conf).Error(); err != nil {
			_ = r.Shutdown().Error()
			return fmt.Errorf("cluster: bootstrap: %w", err)
		}
		n.log.Info("bootstrapped single-node cluster", "dir", n.cfg.DataDir, "addr", trans.LocalAddr())
	default:
		n.log.Info("no raft state and no bootstrap: waiting to be added to a cluster",
			"dir", n.cfg.DataDir, "addr", trans.LocalAddr())
	}
	n.raft, n.trans, n.store = r, trans, store
	n.snaps, n.existing = snaps, existing
	go n.watchLeader(r)
	return nil
}

// Close shuts Raft down and closes the transport and stores. It is
// idempotent; a closed Node cannot be reopened.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	close(n.stop)
	n.fsm.Close() // a halted apply must not hold Raft's shutdown
	var errs []error
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shutdown raft: %w", err))
		}
	}
	if n.trans != nil {
		if err := n.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close transport: %w", err))
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close log store: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: close: %w", err)
	}
	n.log.Info("closed")
	return nil
}

// current returns the Raft instance, or a typed CodeUnavailable error when
// the node is not open, closed, or its Raft has shut down.
func (n *Node) current(op string) (*raft.Raft, error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	switch {
	case n.closed:
		return nil, failure(op, api.CodeUnavailable, "node closed", nil)
	case n.raft == nil:
		return nil, failure(op, api.CodeUnavailable, "node not open", nil)
	case n.raft.State() == raft.Shutdown:
		return nil, failure(op, api.CodeUnavailable, "raft is shut down", raft.ErrRaftShutdown)
	}
	return n.raft, nil
}

// ID returns this node's Raft server id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Addr returns the Raft address this node advertises, or "" before Open.
func (n *Node) Addr() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.trans == nil {
		return ""
	}
	return string(n.trans.LocalAddr())
}

// Raft returns the underlying Raft instance (nil before Open), for cluster
// membership and forwarding built on top of Node.
func (n *Node) Raft() *raft.Raft {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.raft
}

// FSM returns the state machine this node applies to.
func (n *Node) FSM() *FSM { return n.fsm }

// IsLeader reports whether this node is the leader right now.
func (n *Node) IsLeader() bool {
	r := n.Raft()
	return r != nil && r.State() == raft.Leader
}

// Leader returns the id and Raft address of the leader as this node knows
// it, or empty strings when none is known.
func (n *Node) Leader() (id, addr string) {
	r := n.Raft()
	if r == nil {
		return "", ""
	}
	a, i := r.LeaderWithID()
	return string(i), string(a)
}

// WaitForLeader blocks until this node knows a leader (itself or another).
// It returns a CodeUnavailable error if the node is not open or shuts down,
// and a CodeNoLeader error wrapping ctx.Err() if ctx ends first.
func (n *Node) WaitForLeader(ctx context.Context) error {
	tick := time.NewTicker(defaultLeaderPollInterval)
	defer tick.Stop()
	for {
		r, err := n.current("wait for leader")
		if err != nil {
			return err
		}
		if addr, _ := r.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return failure("wait for leader", api.CodeNoLeader, "no leader elected", ctx.Err())
		case <-tick.C:
		}
	}
}

// Snapshot makes Raft take a snapshot of the FSM now and compact the log.
// It fails with an error wrapping raft.ErrNothingNewToSnapshot when nothing
// was applied since the last one.
func (n *Node) Snapshot() error {
	r, err := n.current("snapshot")
	if err != nil {
		return err
	}
	if err := r.Snapshot().Error(); err != nil {
		if errors.Is(err, raft.ErrNothingNewToSnapshot) {
			return fmt.Errorf("cluster: snapshot: %w", err)
		}
		return raftFailure("snapshot", err, r.LeaderWithID)
	}
	return nil
}
