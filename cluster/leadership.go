package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// leadershipPoll is how often WatchLeadership checks the Raft state besides
// Raft's observations, which are dropped when the watcher is busy.
const leadershipPoll = 250 * time.Millisecond

// WatchLeadership calls fn(true) when this node becomes the leader and
// fn(false) when it stops being it, from one goroutine, until ctx ends. The
// first call reports the state at the start; a leader that is stopping
// gets a last fn(false). It returns at once if the node is not open.
func (n *Node) WatchLeadership(ctx context.Context, fn func(leader bool)) {
	r := n.Raft()
	if r == nil {
		return
	}
	ch := make(chan raft.Observation, 8)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.LeaderObservation:
			return true
		}
		return false
	})
	r.RegisterObserver(obs)
	defer r.DeregisterObserver(obs)
	tick := time.NewTicker(leadershipPoll)
	defer tick.Stop()
	leader := n.IsLeader()
	fn(leader)
	for {
		select {
		case <-ctx.Done():
			if leader {
				fn(false)
			}
			return
		case <-ch:
		case <-tick.C:
		}
		if now := n.IsLeader(); now != leader {
			leader = now
			fn(leader)
		}
	}
}

// leaderWatchPoll is how often the leader watcher reads Raft's leader
// besides Raft's observations (dropped when the watcher is busy).
const leaderWatchPoll = 50 * time.Millisecond

// errLeaderMoved is the cause of a context ended by whileLeaderIs.
var errLeaderMoved = errors.New("cluster: this node now knows another leader")

// leaderWatch is the leader this node knows, and a channel closed (and
// replaced) each time that changes: waiters on a leader learn at once when
// the cluster has replaced it.
type leaderWatch struct {
	mu      sync.Mutex
	id      string
	changed chan struct{}
	// last is the last leader known (never ""), moves counts its changes
	// from one server to another.
	last  string
	moves uint64
}

func newLeaderWatch() *leaderWatch {
	return &leaderWatch{changed: make(chan struct{})}
}

// set records id as the known leader, waking the waiters if it changed.
func (w *leaderWatch) set(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id != w.id {
		w.id = id
		close(w.changed)
		w.changed = make(chan struct{})
	}
	if id != "" && id != w.last {
		if w.last != "" {
			w.moves++
		}
		w.last = id
	}
}

// LeaderChanges counts the times this node has seen the leader change
// from one server to another (an election it observed), since it opened.
func (n *Node) LeaderChanges() uint64 {
	n.leaders.mu.Lock()
	defer n.leaders.mu.Unlock()
	return n.leaders.moves
}

// get returns the known leader's id ("" for none) and a channel closed once
// it changes.
func (w *leaderWatch) get() (string, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.id, w.changed
}

// watchLeader keeps n.leaders in step with the leader Raft knows, until
// the node closes.
func (n *Node) watchLeader(r *raft.Raft) {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(obs)
	defer r.DeregisterObserver(obs)
	tick := time.NewTicker(leaderWatchPoll)
	defer tick.Stop()
	for {
		_, id := r.LeaderWithID()
		n.leaders.set(string(id))
		select {
		case <-n.stop:
			return
		case <-ch:
		case <-tick.C:
		}
	}
}

// whileLeaderIs returns a context derived from ctx that ends, with cause
// errLeaderMoved, as soon as this node knows a leader other than id
// (itself included): a call waiting on a leader the cluster has replaced
// (frozen, cut off) stops waiting. A stretch without any known leader does
// not end it. Call cancel when done.
func (n *Node) whileLeaderIs(ctx context.Context, id string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		for {
			cur, changed := n.leaders.get()
			if cur != "" && cur != id {
				cancel(errLeaderMoved)
				return
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// leaderMoved reports whether ctx, from whileLeaderIs, ended because the
// leader changed while its parent had not ended.
func leaderMoved(parent, ctx context.Context) bool {
	return parent.Err() == nil && errors.Is(context.Cause(ctx), errLeaderMoved)
}
