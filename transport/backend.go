package transport

import (
	"context"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// Backend is what the server needs of the node behind it.
type Backend interface {
	// Authenticate checks a hello's credentials and returns the principal.
	// Errors are *fsm.Error with CodeUnauthenticated.
	Authenticate(role api.Role, id, token string) (api.Principal, error)
	// Submit commits a write command through Raft: the backend stamps
	// cmd.Time, proposes, waits until this node has applied it, and
	// returns its result and log index. cmd.By, ClientID, Seq, Op and Args
	// are set by the server. A returned error is a failure to commit
	// (CodeNotLeader, CodeNoLeader, CodeTimeout, CodeUnavailable...);
	// business failures are in Result.Err.
	Submit(ctx context.Context, cmd *fsm.Command) (fsm.Result, uint64, error)
	// Query serves a read-only op from local state (ops not in
	// fsm.Commands). It returns *fsm.Error with CodeUnknownOp for an op it
	// does not know.
	Query(ctx context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error)
	// Attach starts the event stream of recipient key (fsm.AgentKey /
	// fsm.ConnectorKey) into out: when resume is true, every event after
	// sequence number since (or a sync if the history no longer holds it);
	// otherwise a sync event first. Events then follow live, in log order,
	// each exactly once. detach stops delivery.
	Attach(key string, since uint64, resume bool, out Outbox) (detach func())
}

// Outbox is a session's bounded outbound buffer of encoded frames.
type Outbox interface {
	// Deliver queues one complete encoded frame (length prefix included)
	// without blocking. It returns false when the buffer is full: the
	// session is then cut off with CodeSlowConsumer and must not be
	// delivered to again.
	Deliver(frame []byte) bool
}
