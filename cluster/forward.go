package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// Forwarding defaults.
const (
	// DefaultNoLeaderWait is how long a write or a linearizable read
	// waits for a leader before it is answered no_leader.
	DefaultNoLeaderWait = 3 * time.Second
	// noLeaderRetry is the retry hint sent with no_leader.
	noLeaderRetry = 250 * time.Millisecond
	// forwardBackoffMax caps the pause between forwarding attempts.
	forwardBackoffMax = 50 * time.Millisecond
)

// Commit commits cmd through the leader: proposed here (through the
// batcher) when this node leads, forwarded to the leader otherwise. Either
// way it returns once THIS node has applied the entry, so a read on this
// node that follows sees the write. Attempts that cannot have applied, or
// that carry an idempotency seq, are retried until ctx ends (bounded by
// Config.ApplyTimeout without a deadline); a leaderless stretch longer than
// the no-leader wait ends with CodeNoLeader and a retry hint.
func (s *Service) Commit(ctx context.Context, cmd *fsm.Command) (fsm.Result, uint64, error) {
	if err := s.canPropose(cmd); err != nil {
		return fsm.Result{}, 0, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.node.cfg.ApplyTimeout)
		defer cancel()
	}
	var (
		noLeaderSince time.Time
		backoff       = 5 * time.Millisecond
		last          error
	)
	for {
		// A retry waits for the backoff or for the next leader change,
		// whichever is first: a new leader is tried at once.
		_, leaderChanged := s.node.leaders.get()
		res, index, err, retry := s.commitOnce(ctx, cmd)
		if !retry {
			return res, index, err
		}
		last = err
		if api.CodeOf(err) == api.CodeNoLeader {
			if noLeaderSince.IsZero() {
				noLeaderSince = time.Now()
			} else if time.Since(noLeaderSince) >= s.noLeaderWait {
				return fsm.Result{}, 0, noLeader("commit", noLeaderRetry)
			}
		} else {
			noLeaderSince = time.Time{}
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-leaderChanged:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			if api.CodeOf(last) == api.CodeNoLeader {
				return fsm.Result{}, 0, noLeader("commit", noLeaderRetry)
			}
			return fsm.Result{}, 0, failure("commit", api.CodeTimeout,
				fmt.Sprintf("gave up; outcome unknown, retry with the same seq (last attempt: %v)", last), ctx.Err())
		}
		backoff = min(2*backoff, forwardBackoffMax)
	}
}

// commitOnce makes one attempt. retry says the attempt may be repeated
// with the same command: it cannot have applied, or the command carries
// an idempotency seq, so that a repeat is answered with the first result.
func (s *Service) commitOnce(ctx context.Context, cmd *fsm.Command) (res fsm.Result, index uint64, err error, retry bool) {
	idempotent := cmd.Seq != 0 && cmd.ClientID != ""
	if s.node.IsLeader() {
		resp, err := s.propose(ctx, cmd)
		if err != nil {
			switch api.CodeOf(err) {
			case api.CodeNotLeader, api.CodeNoLeader:
				// Lost the lead: the entry may still commit under the
				// next leader, so only an idempotent command is retried.
				return fsm.Result{}, 0, err, idempotent
			}
			return fsm.Result{}, 0, err, false
		}
		if resp.Err != nil {
			return fsm.Result{}, resp.Index, fmt.Errorf("%w: %v", &api.Error{Code: api.CodeInternal, Msg: "undecodable command"}, resp.Err), false
		}
		return resp.Results[0], resp.Index, nil, false
	}

	id, addr := s.leaderClient()
	switch {
	case id == "" || addr == "":
		return fsm.Result{}, 0, noLeader("commit", noLeaderRetry), true
	case id == s.node.ID():
		return fsm.Result{}, 0, errors.New("cluster: became leader; retrying here"), true
	}
	cmd.Time = 0 // the leader stamps its own time
	entry, err := fsm.EncodeEntry(cmd)
	if err != nil {
		return fsm.Result{}, 0, failure("forward", api.CodeBadRequest, "encode command", err), false
	}
	var fr forwardResult
	// Wait on this leader only while it is the leader this node knows: a
	// frozen or cut-off leader that the cluster has replaced would hold
	// the write until it resumes or ctx ends.
	fctx, stop := s.node.whileLeaderIs(ctx, id)
	err = s.peers.call(fctx, addr, rpcForward, forwardArgs{Entry: entry}, &fr)
	moved := leaderMoved(ctx, fctx)
	stop()
	if err != nil {
		switch {
		case errors.Is(err, errPeerUnreachable):
			// Not sent: nothing happened on the leader.
			s.log.Debug("forward: leader unreachable", "leader", id, "addr", addr, "err", err)
			return fsm.Result{}, 0, noLeader("forward", noLeaderRetry), true
		case moved:
			// The old leader may yet commit the entry (a new leader
			// that has it in its log would), so only a command with an
			// idempotency key is re-sent: to the new leader, where a
			// repeat is answered with the first result.
			s.log.Debug("forward: leader replaced while waiting on it", "old", id)
			if idempotent {
				return fsm.Result{}, 0, failure("forward", api.CodeNotLeader,
					fmt.Sprintf("leader %q was replaced while the write waited on it; re-sending to the new one", id), nil), true
			}
			return fsm.Result{}, 0, failure("forward", api.CodeTimeout,
				fmt.Sprintf("leader %q was replaced while the write waited on it; outcome unknown", id), nil), false
		case ctx.Err() != nil:
			return fsm.Result{}, 0, failure("forward", api.CodeTimeout, "gave up waiting for the leader; outcome unknown, retry with the same seq", ctx.Err()), false
		case errors.Is(err, errPeerLost):
			if idempotent {
				return fsm.Result{}, 0, err, true
			}
			return fsm.Result{}, 0, failure("forward", api.CodeTimeout, "connection to the leader lost; outcome unknown", err), false
		}
		switch api.CodeOf(err) {
		case api.CodeNotLeader, api.CodeNoLeader, api.CodeUnavailable, api.CodeTimeout:
			return fsm.Result{}, 0, err, idempotent || api.CodeOf(err) == api.CodeNotLeader
		}
		return fsm.Result{}, 0, err, false
	}
	if len(fr.Results) != 1 {
		return fsm.Result{}, fr.Index, failure("forward", api.CodeInternal, fmt.Sprintf("%d results for one command", len(fr.Results)), nil), false
	}
	// Read-your-writes: answer only once this node has applied the entry.
	if err := s.node.FSM().WaitApplied(ctx.Done(), fr.Index); err != nil {
		return fsm.Result{}, fr.Index, failure("forward", api.CodeTimeout,
			fmt.Sprintf("committed at index %d but not applied on this node yet; retry with the same seq", fr.Index), ctx.Err()), false
	}
	r := fr.Results[0]
	res = fsm.Result{Err: r.Err}
	if len(r.Data) > 0 {
		res.Data = r.Data
	}
	return res, fr.Index, nil, false
}

// checkForwardedEntry vets a forwarded log entry (a kind byte, then msgpack)
// with the frame decoder's declared-length and nesting guard: the entry
// travels as opaque bytes, so the frame check did not look inside it, and
// msgpack sizes its buffers from declared lengths.
func checkForwardedEntry(entry []byte) error {
	if len(entry) < 2 {
		return api.Errorf(api.CodeBadRequest, "forward: empty entry")
	}
	if _, err := msgp.Check(entry[1:], maxFrameNesting); err != nil {
		return api.Errorf(api.CodeBadRequest, "forward: entry: %v", err)
	}
	return nil
}

// canPropose refuses a command this node's build could not apply itself
// (fsm.CanApply): proposed, it would halt this node and every node of its
// build. An op the build does not know is unknown_op, as an older build
// answers; one above the node's feature level is feature_not_enabled.
func (s *Service) canPropose(cmd *fsm.Command) error {
	if fsm.Commands.Lookup(cmd.Op) == nil {
		return api.Errorf(api.CodeUnknownOp, "op %d is unknown to node %s", cmd.Op, s.node.ID())
	}
	if err := fsm.CanApply(cmd, s.node.FSM().MaxLevel()); err != nil {
		return api.Errorf(api.CodeFeatureNotEnabled, "node %s: %v", s.node.ID(), err)
	}
	return nil
}

// handleForward is the leader's side of rpcForward: it commits the
// follower's commands (through the batcher, so they share entries with
// everything else) and answers their results and the entry's index.
func (s *Service) handleForward(ctx context.Context, raw msgpack.RawMessage) (any, error) {
	var a forwardArgs
	if err := msgpack.Unmarshal(raw, &a); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "forward: arguments: %v", err)
	}
	if err := checkForwardedEntry(a.Entry); err != nil {
		return nil, err
	}
	cmds, err := fsm.DecodeEntry(a.Entry)
	if err != nil || len(cmds) != 1 {
		return nil, api.Errorf(api.CodeBadRequest, "forward: want one encoded command (%v)", err)
	}
	cmds[0].Time = 0 // the leader's clock, never the sender's: Propose stamps it
	if err := s.canPropose(cmds[0]); err != nil {
		return nil, err
	}
	if !s.node.IsLeader() {
		return nil, s.notLeader("forward")
	}
	resp, err := s.propose(ctx, cmds[0])
	if err != nil {
		return nil, err
	}
	if resp.Err != nil {
		return nil, fmt.Errorf("%w: %v", &api.Error{Code: api.CodeInternal, Msg: "undecodable command"}, resp.Err)
	}
	out := forwardResult{Index: resp.Index, Results: make([]wireResult, len(resp.Results))}
	for i, r := range resp.Results {
		out.Results[i].Err = r.Err
		if r.Data != nil {
			b, err := msgpack.Marshal(r.Data)
			if err != nil {
				return nil, api.Errorf(api.CodeInternal, "encode result: %v", err)
			}
			out.Results[i].Data = b
		}
	}
	return out, nil
}

// ReadBarrier makes a linearizable read of local state possible: it waits
// until this node has applied everything the leader had committed when the
// read arrived (the read index). Without a ctx deadline the wait is
// bounded by Config.ApplyTimeout; a leaderless stretch longer than the
// no-leader wait ends with CodeNoLeader and a retry hint.
func (s *Service) ReadBarrier(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.node.cfg.ApplyTimeout)
		defer cancel()
	}
	var (
		index         uint64
		noLeaderSince time.Time
		backoff       = 5 * time.Millisecond
	)
	for {
		var err error
		if s.node.IsLeader() {
			index, err = s.leaderReadIndex(ctx)
		} else if id, addr := s.leaderClient(); id == "" || addr == "" || id == s.node.ID() {
			err = noLeader("read index", noLeaderRetry)
		} else {
			var r readIndexResult
			rctx, stop := s.node.whileLeaderIs(ctx, id)
			err = s.peers.call(rctx, addr, rpcReadIndex, nil, &r)
			moved := leaderMoved(ctx, rctx)
			stop()
			index = r.Index
			switch {
			case moved && err != nil:
				// Asked a leader the cluster has replaced: ask the new one.
				err = s.notLeader("read index")
			case errors.Is(err, errPeerUnreachable) || errors.Is(err, errPeerLost):
				err = noLeader("read index", noLeaderRetry)
			}
		}
		if err == nil {
			break
		}
		switch api.CodeOf(err) {
		case api.CodeNoLeader, api.CodeNotLeader:
		default:
			if ctx.Err() != nil {
				return failure("read index", api.CodeTimeout, "gave up waiting for the leader", ctx.Err())
			}
			return err
		}
		if api.CodeOf(err) == api.CodeNoLeader {
			if noLeaderSince.IsZero() {
				noLeaderSince = time.Now()
			} else if time.Since(noLeaderSince) >= s.noLeaderWait {
				return noLeader("read index", noLeaderRetry)
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return noLeader("read index", noLeaderRetry)
		}
		backoff = min(2*backoff, forwardBackoffMax)
	}
	if err := s.node.WaitIndex(ctx, index); err != nil {
		return failure("read index", api.CodeTimeout, fmt.Sprintf("not caught up with read index %d in time", index), err)
	}
	return nil
}

// leaderReadIndex returns this leader's commit index once it is known to
// be current: an entry of the leader's own term has committed (a barrier,
// once per term), and a quorum still follows this leader (VerifyLeader,
// after reading the index).
func (s *Service) leaderReadIndex(ctx context.Context) (uint64, error) {
	r, err := s.node.current("read index")
	if err != nil {
		return 0, err
	}
	term := r.CurrentTerm()
	if s.readyTerm.Load() != term {
		if err := waitFuture(ctx, r.Barrier(time.Until(deadlineOr(ctx, s.node.cfg.ApplyTimeout)))); err != nil {
			return 0, s.leaderFailure("read index", err)
		}
		if r.CurrentTerm() == term {
			s.readyTerm.Store(term)
		}
	}
	index := r.CommitIndex()
	if err := waitFuture(ctx, r.VerifyLeader()); err != nil {
		return 0, s.leaderFailure("read index", err)
	}
	if r.CurrentTerm() != term {
		return 0, s.notLeader("read index")
	}
	return index, nil
}

// leaderFailure maps a Raft error of a leader-only operation: lost
// leadership becomes not_leader/no_leader with the leader's client address.
func (s *Service) leaderFailure(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return s.notLeader(op)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return failure(op, api.CodeTimeout, "timed out", err)
	}
	return raftFailure(op, err, s.node.Raft().LeaderWithID)
}

// handleReadIndex is the leader's side of rpcReadIndex.
func (s *Service) handleReadIndex(ctx context.Context, _ msgpack.RawMessage) (any, error) {
	if !s.node.IsLeader() {
		return nil, s.notLeader("read index")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.node.cfg.ApplyTimeout)
		defer cancel()
	}
	index, err := s.leaderReadIndex(ctx)
	if err != nil {
		return nil, err
	}
	return readIndexResult{Index: index}, nil
}

// waitFuture waits for a Raft future or ctx.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deadlineOr returns ctx's deadline, or d from now when it has none.
func deadlineOr(ctx context.Context, d time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(d)
}
