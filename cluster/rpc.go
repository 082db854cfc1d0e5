package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// Node-to-node calls use the client protocol (transport frames) on the
// peer's client port: a hello with role RoleNode and the cluster token, then
// req/res frames. The listener hands such connections to the node server
// (mux.go) before the client server sees them. cluster/DESIGN.md has the
// whole picture.

// RoleNode is the hello role of a node-to-node session.
const RoleNode = "node"

// Node RPC ops. Each names one handler of nodeHandlers.
const (
	rpcForward   = "forward"             // leader: commit a command for a follower
	rpcReadIndex = "read_index"          // leader: a linearizable read index
	rpcJoin      = "join"                // leader: add or update a voter
	rpcInfo      = "info"                // any: who this node is and what it knows
	rpcStatus    = "status"              // any: this node's transport.NodeStatus
	rpcRemove    = "remove"              // leader: remove a voter
	rpcTransfer  = "transfer_leadership" // leader: hand leadership over
	rpcSnapRead  = "snapshot_read"       // leader: a chunk of the latest snapshot
)

// Admin ops of the client protocol that are neither fsm commands nor fsm
// queries: Service.Query serves them, for admins only.
const (
	QueryClusterStatus   = "cluster_status"              // → transport.ClusterStatus
	OpClusterRemove      = "cluster_remove"              // {node} → {}
	OpTransferLeadership = "cluster_transfer_leadership" // {node?} → TransferResult
	OpSnapshotTake       = "snapshot_take"               // → SnapshotInfo
	OpSnapshotRead       = "snapshot_read"               // SnapshotReadArgs → SnapshotChunk
)

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

// NodeIDArgs names a node (cluster_remove, cluster_transfer_leadership).
type NodeIDArgs struct {
	Node string `msgpack:"node"`
}

// TransferResult is the answer to cluster_transfer_leadership.
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

// hintError is a typed error with the wire hints transport's errorBody
// looks for: the leader's client address and when to retry.
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
func remoteError(peer string, b *transport.ErrorBody) error {
	fe := &api.Error{Code: b.Code, Msg: b.Msg}
	return &hintError{
		err:    fmt.Errorf("cluster: peer %s: %w", peer, fe),
		leader: b.Leader,
		after:  time.Duration(b.RetryMs) * time.Millisecond,
	}
}

// wireError is the error body a node RPC answer carries for err.
func wireError(err error) *transport.ErrorBody {
	code := api.CodeOf(err)
	b := &transport.ErrorBody{Code: code, Name: code.String(), Msg: err.Error()}
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
