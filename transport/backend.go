package transport

import (
	"context"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// Backend is what the server needs of the node behind it.
type Backend interface {
	// Authenticate checks a hello's credentials and returns the principal.
	// Errors are *api.Error with CodeUnauthenticated.
	Authenticate(role api.Role, id, token string) (api.Principal, error)
	// Commit commits a write op (api.IsWrite) through Raft: the backend
	// decodes and checks the arguments and the principal's right to send
	// the op, stamps the time, proposes, waits until this node has applied
	// it, and returns its result data and log index. An error with index 0
	// means nothing was committed: bad arguments (CodeBadRequest), a role
	// that may not send the op (CodeForbidden) or a failure to commit
	// (CodeNotLeader, CodeNoLeader, CodeTimeout, CodeUnavailable...). An
	// error with an index is the op's business failure, applied (as a
	// no-op) at that index.
	Commit(ctx context.Context, w Write) (data any, index uint64, err error)
	// Query serves a read-only op from local state (every op that is not
	// a write). It returns *api.Error with CodeUnknownOp for an op it does
	// not know.
	Query(ctx context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error)
	// Attach starts the event stream of recipient key (api.AgentKey /
	// api.ConnectorKey) into out: when resume is true, every event after
	// sequence number since (or a sync if the history no longer holds it);
	// otherwise a sync event first. Events then follow live, in log order,
	// each exactly once. detach stops delivery.
	Attach(key string, since uint64, resume bool, out Outbox) (detach func())
}

// CredentialChecker is implemented by a Backend whose agents' and
// connectors' credentials can be revoked (the principal deleted, perhaps
// re-created with a new token). A session is bound to the credential it
// authenticated with, by the token's SHA-256: Server.Revalidate ends the
// sessions whose credential the backend no longer holds.
type CredentialChecker interface {
	// CredentialValid reports whether p's credential is still the one
	// whose SHA-256 is tokenHash.
	CredentialValid(p api.Principal, tokenHash []byte) bool
}

// Write is a write op as a session received it: the principal is the
// session's, the rest comes from the req frame.
type Write struct {
	By api.Principal
	// TokenHash is the SHA-256 of the token the session authenticated
	// with (agents and connectors): the backend refuses the write if the
	// principal's credential is no longer that one.
	TokenHash []byte
	ClientID  string // the session's client id (idempotency)
	Seq       uint64 // the req's seq; 0 disables deduplication
	Op        string // an op for which api.IsWrite is true
	Args      []byte // the req's msgpack args, nil if absent
}

// Outbox is a session's bounded outbound buffer of encoded frames.
type Outbox interface {
	// Deliver queues one complete encoded frame (length prefix included)
	// without blocking. It returns false when the buffer is full: the
	// session is then cut off with CodeSlowConsumer and must not be
	// delivered to again.
	Deliver(frame []byte) bool
}
