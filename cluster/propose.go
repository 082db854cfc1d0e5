package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// Propose commits cmds as one Raft log entry (group commit) and returns the
// FSM's response: one Result per command, in order, and the entry's index.
// It must run on the leader.
//
// Propose stamps every command whose Time is zero with this node's clock
// (the leader's time; fsm Apply never reads a clock), so it modifies cmds.
//
// A business failure (unknown list, duplicate create...) is not a Go error:
// it is in that command's Result.Err. A returned error means the entry was
// not known to commit; it is typed (see ErrNotLeader, ErrNoLeader,
// ErrUnavailable, ErrTimeout and api.CodeOf). With CodeTimeout or
// CodeNotLeader after a lost leadership the entry may still commit later:
// retry with the same ClientID and Seq. Without a ctx deadline the wait is
// bounded by Config.ApplyTimeout.
func (n *Node) Propose(ctx context.Context, cmds ...*fsm.Command) (*ApplyResponse, error) {
	if len(cmds) == 0 {
		return nil, failure("propose", api.CodeBadRequest, "no commands", nil)
	}
	for i, c := range cmds {
		if c == nil {
			return nil, failure("propose", api.CodeBadRequest, fmt.Sprintf("command %d is nil", i), nil)
		}
	}
	r, err := n.current("propose")
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, failure("propose", api.CodeTimeout, "context done before proposing; not applied", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}

	now := time.Now().UnixNano()
	for _, c := range cmds {
		if c.Time == 0 {
			c.Time = now
		}
	}
	data, err := fsm.EncodeEntry(cmds...)
	if err != nil {
		return nil, failure("propose", api.CodeBadRequest, "encode commands", err)
	}
	deadline, _ := ctx.Deadline()
	enqueue := time.Until(deadline)
	if enqueue <= 0 {
		return nil, failure("propose", api.CodeTimeout, "deadline passed before proposing; not applied", context.DeadlineExceeded)
	}

	// raft.Apply may block up to the enqueue timeout, and its future until
	// Raft resolves it, so both run in a goroutine and the caller waits
	// only as long as ctx and the node last. Raft resolves every future it
	// dequeued (commit, lost leadership, shutdown), but with BatchApplyCh an
	// entry buffered in its apply channel when Raft shuts down is never
	// dequeued: that goroutine then outlives the node. current() refusing a
	// shut-down Raft keeps this to Proposes racing the shutdown itself.
	type outcome struct {
		resp any
		err  error
	}
	done := make(chan outcome, 1)
	obs := n.cfg.Observer
	go func() {
		start := time.Now()
		f := r.Apply(data, enqueue)
		if err := f.Error(); err != nil {
			done <- outcome{err: err}
			return
		}
		// Timed here, not by the caller, which may have given up: the
		// slowest commits are the ones a histogram must not lose.
		if obs != nil {
			obs.Committed(len(cmds), time.Since(start))
		}
		done <- outcome{resp: f.Response()}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-ctx.Done():
		return nil, failure("propose", api.CodeTimeout, "gave up waiting for commit; outcome unknown", ctx.Err())
	case <-n.stop:
		return nil, failure("propose", api.CodeUnavailable, "node closed while waiting for commit; outcome unknown", raft.ErrRaftShutdown)
	}
	if out.err != nil {
		return nil, raftFailure("propose", out.err, r.LeaderWithID)
	}
	resp, ok := out.resp.(*ApplyResponse)
	switch {
	case !ok || resp == nil:
		return nil, failure("propose", api.CodeInternal, fmt.Sprintf("unexpected FSM response %T", out.resp), nil)
	case resp.Err != nil:
		return nil, failure("propose", api.CodeInternal, fmt.Sprintf("entry %d not applied", resp.Index), resp.Err)
	case len(resp.Results) != len(cmds):
		return nil, failure("propose", api.CodeInternal,
			fmt.Sprintf("entry %d: %d results for %d commands", resp.Index, len(resp.Results), len(cmds)), nil)
	}
	return resp, nil
}
