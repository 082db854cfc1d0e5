package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// HasState reports whether the data directory held Raft state when the
// node was opened (it was, or is, a member of a cluster).
func (n *Node) HasState() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.existing
}

// BootstrapServers makes servers the first configuration of a new cluster.
// It fails if the node has Raft state already. Every node given may be
// bootstrapped with the same configuration; exactly one is enough.
func (n *Node) BootstrapServers(servers []raft.Server) error {
	r, err := n.current("bootstrap")
	if err != nil {
		return err
	}
	if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	return nil
}

// SnapshotMeta describes a snapshot on disk.
type SnapshotMeta struct {
	ID    string `msgpack:"id"`
	Index uint64 `msgpack:"index"`
	Term  uint64 `msgpack:"term"`
	Size  int64  `msgpack:"size"`
}

// LatestSnapshot returns the newest snapshot this node holds, if any.
func (n *Node) LatestSnapshot() (SnapshotMeta, bool, error) {
	n.mu.RLock()
	snaps := n.snaps
	n.mu.RUnlock()
	if snaps == nil {
		return SnapshotMeta{}, false, failure("snapshot", api.CodeUnavailable, "node not open", nil)
	}
	list, err := snaps.List()
	if err != nil {
		return SnapshotMeta{}, false, fmt.Errorf("cluster: list snapshots: %w", err)
	}
	if len(list) == 0 {
		return SnapshotMeta{}, false, nil
	}
	m := list[0]
	return SnapshotMeta{ID: m.ID, Index: m.Index, Term: m.Term, Size: m.Size}, true, nil
}

// OpenSnapshot opens the snapshot with this id for reading.
func (n *Node) OpenSnapshot(id string) (SnapshotMeta, io.ReadCloser, error) {
	n.mu.RLock()
	snaps := n.snaps
	n.mu.RUnlock()
	if snaps == nil {
		return SnapshotMeta{}, nil, failure("snapshot", api.CodeUnavailable, "node not open", nil)
	}
	m, rc, err := snaps.Open(id)
	if err != nil {
		return SnapshotMeta{}, nil, fmt.Errorf("cluster: open snapshot %s: %w", id, err)
	}
	return SnapshotMeta{ID: m.ID, Index: m.Index, Term: m.Term, Size: m.Size}, rc, nil
}

// TakeSnapshot snapshots the FSM now (if anything was applied since the
// last one) and returns the newest snapshot.
func (n *Node) TakeSnapshot() (SnapshotMeta, error) {
	if err := n.Snapshot(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return SnapshotMeta{}, err
	}
	m, ok, err := n.LatestSnapshot()
	if err != nil {
		return SnapshotMeta{}, err
	}
	if !ok {
		return SnapshotMeta{}, failure("snapshot", api.CodeWrongState, "nothing applied yet: no snapshot", nil)
	}
	return m, nil
}

// RestoreBackup replaces the cluster's state with a backup written by
// `switchboard ctl snapshot save` (a snapshot's bytes). It must run on the
// leader, and is meant for a new cluster: the leader installs the state
// and sends it to every follower as a snapshot. The backup is decoded and
// checked first, so a bad file changes nothing.
func (n *Node) RestoreBackup(r io.Reader, timeout time.Duration) (uint64, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, fmt.Errorf("cluster: restore: read backup: %w", err)
	}
	st, err := fsm.ReadState(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return 0, fmt.Errorf("cluster: restore: not a Switchboard backup: %w", err)
	}
	rf, err := n.current("restore")
	if err != nil {
		return 0, err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: st.Index, Term: 1, Size: int64(len(data))}
	if err := rf.Restore(meta, bytes.NewReader(data), timeout); err != nil {
		return 0, raftFailure("restore", err, rf.LeaderWithID)
	}
	n.log.Info("restored backup", "backup_index", st.Index, "bytes", len(data), "applied", n.fsm.Applied())
	return st.Index, nil
}

// maxNonCommandRun bounds the scan for the last command entry: Raft writes
// a few entries that never reach the FSM (a no-op per election, barriers,
// configuration changes), never long runs of them.
const maxNonCommandRun = 4096

// WaitIndex blocks until this node's state reflects every log entry up to
// index, or ctx ends. Only command entries reach the FSM (Raft's no-ops,
// barriers and configuration entries do not), so it waits for Raft to
// have handed everything up to index over (or installed a snapshot past
// it), then for the FSM to have applied the last command entry at or
// below index.
func (n *Node) WaitIndex(ctx context.Context, index uint64) error {
	if index == 0 {
		return nil
	}
	for {
		r, err := n.current("wait for index")
		if err != nil {
			return err
		}
		if r.AppliedIndex() >= index {
			break
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
	cmd, err := n.lastCommand(index)
	if err != nil {
		return err
	}
	if err := n.fsm.WaitApplied(ctx.Done(), cmd); err != nil {
		return ctx.Err()
	}
	return nil
}

// lastCommand returns the index of the last command entry at or below
// index that the log still holds, or 0 when the log holds none down to its
// first entry (everything before it is in the snapshot the FSM restored).
func (n *Node) lastCommand(index uint64) (uint64, error) {
	n.mu.RLock()
	store := n.store
	n.mu.RUnlock()
	if store == nil {
		return 0, failure("wait for index", api.CodeUnavailable, "node not open", nil)
	}
	first, err := store.FirstIndex()
	if err != nil {
		return 0, fmt.Errorf("cluster: log first index: %w", err)
	}
	for i := index; i >= max(first, 1) && index-i < maxNonCommandRun; i-- {
		var l raft.Log
		if err := store.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				return 0, nil // compacted meanwhile: in the snapshot
			}
			return 0, fmt.Errorf("cluster: read log entry %d: %w", i, err)
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return 0, nil
}

// configuration returns the latest Raft configuration.
func (n *Node) configuration() ([]raft.Server, error) {
	r, err := n.current("configuration")
	if err != nil {
		return nil, err
	}
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, raftFailure("configuration", err, r.LeaderWithID)
	}
	return f.Configuration().Servers, nil
}

// Members returns the servers of the latest Raft configuration, in its
// order, with the leader as this node knows it marked.
func (n *Node) Members() ([]Member, error) {
	servers, err := n.configuration()
	if err != nil {
		return nil, err
	}
	leader, _ := n.Leader()
	out := make([]Member, len(servers))
	for i, s := range servers {
		out[i] = Member{ID: string(s.ID), Address: string(s.Address), Suffrage: s.Suffrage.String(),
			Leader: leader != "" && string(s.ID) == leader}
	}
	return out, nil
}

// HandOff transfers leadership away if this node leads a cluster of more
// than one voter, so that a closing leader does not make the cluster wait
// out an election; it waits at most timeout.
func (n *Node) HandOff(timeout time.Duration) error {
	if !n.IsLeader() {
		return nil
	}
	servers, err := n.configuration()
	if err != nil {
		return nil
	}
	voters := 0
	for _, srv := range servers {
		if srv.Suffrage == raft.Voter {
			voters++
		}
	}
	if voters < 2 {
		return nil
	}
	r, err := n.current("hand off")
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := waitFuture(ctx, r.LeadershipTransfer()); err != nil {
		return fmt.Errorf("cluster: hand leadership off: %w", err)
	}
	n.log.Info("handed leadership over before shutdown")
	return nil
}

// WaitCaughtUp waits until this node knows a leader and has applied what
// the leader had committed (a barrier when it is the leader itself), or
// ctx ends: from then on its state is as current as the cluster's was
// when it started waiting.
func (n *Node) WaitCaughtUp(ctx context.Context) error {
	for {
		r, err := n.current("wait until ready")
		if err != nil {
			return err
		}
		if id, _ := n.Leader(); id != "" {
			if n.IsLeader() {
				// A barrier returns once every entry before it is applied.
				err := waitFuture(ctx, r.Barrier(time.Until(deadlineOr(ctx, time.Minute))))
				if err == nil {
					return nil
				}
				if ctx.Err() != nil {
					return failure("wait until ready", api.CodeNoLeader, "no leader elected", ctx.Err())
				}
			} else if ci := r.CommitIndex(); ci > 0 {
				if err := n.WaitIndex(ctx, ci); err == nil {
					return nil
				}
				if ctx.Err() != nil {
					return failure("wait until ready", api.CodeTimeout, "not caught up", ctx.Err())
				}
			}
		}
		if err := sleepCtx(ctx, defaultLeaderPollInterval); err != nil {
			return failure("wait until ready", api.CodeNoLeader, "no leader elected", err)
		}
	}
}
