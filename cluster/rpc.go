package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// Node-to-node calls use the client protocol's framing (rpc_frame.go) on
// the peer's client port: a hello with role RoleNode and the cluster
// token, then req/res frames. The node's client listener hands such
// connections to Service.ServeNode before the client server sees them.
// cluster/DESIGN.md has the whole picture.

// RoleNode is the hello role of a node-to-node session.
const RoleNode = "node"

// Node ops cluster serves (NewService registers them). The layers above
// register theirs with Service.Handle.
const (
	rpcForward   = "forward"    // leader: commit a command for a follower
	rpcReadIndex = "read_index" // leader: a linearizable read index
	rpcJoin      = "join"       // leader: add or update a voter
	rpcInfo      = "info"       // any: who this node is and what it knows
	// RPCRemove (leader) removes a voter: NodeIDArgs → nothing.
	RPCRemove = "remove"
	// RPCTransfer (leader) hands leadership over: NodeIDArgs → TransferResult.
	RPCTransfer = "transfer_leadership"
	// RPCSnapshotRead (leader) reads a chunk of a snapshot:
	// SnapshotReadArgs → SnapshotChunk.
	RPCSnapshotRead = "snapshot_read"
)

// Handler serves one node op: it decodes args (raw msgpack, possibly
// empty) and returns the result, which is msgpack-encoded into the answer
// (nil: none), or an error, whose code and hints go on the wire.
type Handler func(ctx context.Context, args msgpack.RawMessage) (any, error)

// forwardArgs carries one command to the leader, encoded as a log entry
// (fsm.EncodeEntry), principal, client id and seq included.
type forwardArgs struct {
	Entry []byte `msgpack:"entry"`
}

// forwardResult is the leader's answer: the entry's index and one result
// per command, each result's data still encoded.
type forwardResult struct {
	Index   uint64       `msgpack:"index"`
	Results []wireResult `msgpack:"results"`
}

type wireResult struct {
	Err  *api.Error         `msgpack:"err,omitempty"`
	Data msgpack.RawMessage `msgpack:"data,omitempty"`
}

// readIndexResult is the leader's commit index, confirmed as leader.
type readIndexResult struct {
	Index uint64 `msgpack:"index"`
}

// NodeIDArgs names a node (remove, transfer_leadership).
type NodeIDArgs struct {
	Node string `msgpack:"node"`
}

// TransferResult is the answer to transfer_leadership.
type TransferResult struct {
	From string `msgpack:"from"` // the leader that handed over
	To   string `msgpack:"to"`   // the new leader, when known at once
}

// nodeInfo is the answer to the info op.
type nodeInfo struct {
	ID         string `msgpack:"id"`
	RaftAddr   string `msgpack:"raft_addr"`
	ClientAddr string `msgpack:"client_addr"`
	// HasState says the node has Raft state (it is or was in a cluster).
	HasState bool `msgpack:"has_state"`
	// Leader and LeaderClient name the leader this node knows, if any.
	Leader       string `msgpack:"leader"`
	LeaderClient string `msgpack:"leader_client"`
	// MaxLevel is the highest feature level the node's build applies; 0
	// from a build before feature levels, which applies level 1.
	MaxLevel uint32 `msgpack:"max_level,omitempty"`
}

// Errors of node-to-node calls.
var (
	// errPeerUnreachable: the call was not sent (dial or hello failed);
	// nothing happened on the peer.
	errPeerUnreachable = errors.New("cluster: peer unreachable")
	// errPeerLost: the connection broke after the call was sent; its
	// outcome is unknown.
	errPeerLost = errors.New("cluster: connection to peer lost")
)

// hintError is a typed error with wire hints: the leader's client address
// and when to retry. Both the node server (wireError) and the client
// protocol's server look for them through the LeaderAddr and RetryAfter
// methods.
type hintError struct {
	err    error
	leader string
	after  time.Duration
}

func (e *hintError) Error() string             { return e.err.Error() }
func (e *hintError) Unwrap() error             { return e.err }
func (e *hintError) LeaderAddr() string        { return e.leader }
func (e *hintError) RetryAfter() time.Duration { return e.after }

// noLeader is the error of a call that found no leader: CodeNoLeader with a
// retry hint, so clients come back instead of hanging.
func noLeader(op string, after time.Duration) error {
	return &hintError{err: failure(op, api.CodeNoLeader, "no leader right now; retry", nil), after: after}
}

// remoteError turns the error body of a peer's answer into an error with
// the same code and hints.
func remoteError(peer string, b *ErrorBody) error {
	fe := &api.Error{Code: b.Code, Msg: b.Msg}
	return &hintError{
		err:    fmt.Errorf("cluster: peer %s: %w", peer, fe),
		leader: b.Leader,
		after:  time.Duration(b.RetryMs) * time.Millisecond,
	}
}

// wireError is the error body a node RPC answer carries for err.
func wireError(err error) *ErrorBody {
	code := api.CodeOf(err)
	b := &ErrorBody{Code: code, Name: code.String(), Msg: err.Error()}
	var la interface{ LeaderAddr() string }
	if errors.As(err, &la) {
		b.Leader = la.LeaderAddr()
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > 0 {
			b.RetryMs = int(max(d/time.Millisecond, 1))
		}
	}
	return b
}
