package cluster

import (
	"context"
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
