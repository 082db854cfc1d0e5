package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
)

// Sentinel errors for errors.Is. Each is an *api.Error, and api.Error.Is
// matches on the code alone, so errors.Is(err, ErrNotLeader) holds for any
// error that carries CodeNotLeader, whatever its message. Never modify them.
var (
	// ErrNotLeader: this node is not the leader; a *LeaderError in the
	// chain names the leader.
	ErrNotLeader = &api.Error{Code: api.CodeNotLeader, Msg: "not the leader"}
	// ErrNoLeader: no leader is known right now; retry shortly.
	ErrNoLeader = &api.Error{Code: api.CodeNoLeader, Msg: "no leader"}
	// ErrUnavailable: the node is not open, is shutting down or closed.
	ErrUnavailable = &api.Error{Code: api.CodeUnavailable, Msg: "node unavailable"}
	// ErrTimeout: the wait ended before the outcome was known; the
	// command may still apply, so retry with the same ClientID and Seq.
	ErrTimeout = &api.Error{Code: api.CodeTimeout, Msg: "timed out"}
)

// LeaderError is returned when this node cannot commit because it is not the
// leader. It carries the leader hint as fields (both empty when no leader is
// known) and unwraps to an *api.Error with CodeNotLeader (a leader is known)
// or CodeNoLeader (none is), and to Raft's own error.
type LeaderError struct {
	// LeaderID and LeaderAddr name the leader as this node last knew it.
	LeaderID   string
	LeaderAddr string
	// Err is the Raft error behind it, e.g. raft.ErrNotLeader or
	// raft.ErrLeadershipLost.
	Err error
}

// newLeaderError returns a *LeaderError for cause with the leader hint.
func newLeaderError(cause error, id raft.ServerID, addr raft.ServerAddress) *LeaderError {
	return &LeaderError{LeaderID: string(id), LeaderAddr: string(addr), Err: cause}
}

// Code returns CodeNotLeader when a leader is known, CodeNoLeader otherwise.
func (e *LeaderError) Code() api.Code {
	if e.LeaderAddr == "" {
		return api.CodeNoLeader
	}
	return api.CodeNotLeader
}

// FSMError returns the wire form of the error: a code and a message naming
// the leader and its Raft address.
func (e *LeaderError) FSMError() *api.Error {
	if e.LeaderAddr == "" {
		return api.Errorf(api.CodeNoLeader, "no leader known")
	}
	return api.Errorf(api.CodeNotLeader, "not the leader; leader is %q at %s", e.LeaderID, e.LeaderAddr)
}

// Error returns the wire message (naming the leader) and the Raft cause.
func (e *LeaderError) Error() string {
	msg := "cluster: " + e.FSMError().Error()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the *api.Error form and the Raft cause.
func (e *LeaderError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.FSMError()}
	}
	return []error{e.FSMError(), e.Err}
}

// LeaderHint returns the leader named by a *LeaderError in err's chain, or
// empty strings when there is none or no leader was known.
func LeaderHint(err error) (id, addr string) {
	var le *LeaderError
	if errors.As(err, &le) {
		return le.LeaderID, le.LeaderAddr
	}
	return "", ""
}

// failure wraps cause (which may be nil) under an *api.Error with code and
// msg, so both errors.Is(err, cause) and errors.As(err, **api.Error) work.
func failure(op string, code api.Code, msg string, cause error) error {
	fe := &api.Error{Code: code, Msg: msg}
	if cause == nil {
		return fmt.Errorf("cluster: %s: %w", op, fe)
	}
	return fmt.Errorf("cluster: %s: %w: %w", op, fe, cause)
}

// raftFailure maps an error from a Raft future to a typed error. leader
// reports the current leader hint for not-leader errors.
func raftFailure(op string, err error, leader func() (raft.ServerAddress, raft.ServerID)) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// After ErrLeadershipLost the entry may still commit under the
		// next leader; a retry with the same ClientID and Seq is answered
		// from the idempotency window rather than applied twice.
		addr, id := leader()
		return fmt.Errorf("cluster: %s: %w", op, newLeaderError(err, id, addr))
	case errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrTransportShutdown):
		return failure(op, api.CodeUnavailable, "raft is shut down", err)
	case errors.Is(err, raft.ErrAbortedByRestore):
		return failure(op, api.CodeUnavailable, "aborted by a snapshot restore; not applied, retry", err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return failure(op, api.CodeTimeout, "timed out queueing the command; not applied, retry", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return failure(op, api.CodeTimeout, "gave up waiting; outcome unknown", err)
	default:
		return failure(op, api.CodeInternal, "raft failed", err)
	}
}
