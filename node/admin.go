package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/vmihailenco/msgpack/v5"
)

// Admin ops of the client protocol that are neither fsm commands nor fsm
// queries: Backend.Query serves them, for admins only.
const (
	QueryClusterStatus   = "cluster_status"              // → api.ClusterStatus
	OpClusterRemove      = "cluster_remove"              // cluster.NodeIDArgs → {}
	OpTransferLeadership = "cluster_transfer_leadership" // cluster.NodeIDArgs (node optional) → cluster.TransferResult
	OpSnapshotTake       = "snapshot_take"               // → SnapshotInfo
	OpSnapshotRead       = "snapshot_read"               // cluster.SnapshotReadArgs → cluster.SnapshotChunk
)

// adminOp serves one admin cluster op of the client protocol.
type adminOp func(b *Backend, ctx context.Context, args msgpack.RawMessage) (any, error)

// adminOps are the admin ops Backend.Query serves before fsm queries.
var adminOps = map[string]adminOp{
	QueryClusterStatus:   (*Backend).clusterStatus,
	OpClusterRemove:      leaderOp(cluster.RPCRemove, func() any { return nil }),
	OpTransferLeadership: leaderOp(cluster.RPCTransfer, func() any { return new(cluster.TransferResult) }),
	OpSnapshotTake:       (*Backend).snapshotTake,
	OpSnapshotRead:       leaderOp(cluster.RPCSnapshotRead, func() any { return new(cluster.SnapshotChunk) }),
}

// leaderOp is an admin op that runs the node op rpcOp on the leader, with
// the client's arguments as they came, and answers its result.
func leaderOp(rpcOp string, newOut func() any) adminOp {
	return func(b *Backend, ctx context.Context, args msgpack.RawMessage) (any, error) {
		out := newOut()
		if len(args) == 0 {
			args = msgpack.RawMessage{0x80} // empty map
		}
		if err := b.cl.LeaderCall(ctx, rpcOp, args, out); err != nil {
			return nil, err
		}
		return out, nil
	}
}

// SnapshotInfo is the answer to snapshot_take.
type SnapshotInfo struct {
	Node string `msgpack:"node"`
	cluster.SnapshotMeta
}

// snapshotTake snapshots this node now.
func (b *Backend) snapshotTake(context.Context, msgpack.RawMessage) (any, error) {
	m, err := b.raft.TakeSnapshot()
	if err != nil {
		return nil, err
	}
	return SnapshotInfo{Node: b.raft.ID(), SnapshotMeta: m}, nil
}

// clusterStatus gathers every member's status: this node's own, the
// others' through node RPC at the client address the registry holds.
func (b *Backend) clusterStatus(ctx context.Context, _ msgpack.RawMessage) (any, error) {
	servers, err := b.raft.Members()
	if err != nil {
		return nil, err
	}
	leaderID, _ := b.raft.Leader()
	out := &api.ClusterStatus{Leader: leaderID, Nodes: make([]api.ClusterNode, len(servers))}
	var wg sync.WaitGroup
	for i, srv := range servers {
		cn := &out.Nodes[i]
		cn.ID, cn.RaftAddr, cn.Suffrage = srv.ID, srv.Address, srv.Suffrage
		cn.Leader = cn.ID == leaderID
		if cn.ID == b.raft.ID() {
			st := b.Status()
			cn.ClientAddr, cn.Reachable, cn.Status = b.cl.ClientAddr(), true, &st
			continue
		}
		reg, ok := b.cl.Registered(cn.ID)
		if !ok {
			cn.Error = "not in the node registry yet"
			continue
		}
		cn.ClientAddr = reg.ClientAddr
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var st api.NodeStatus
			if err := b.cl.Call(cctx, cn.ClientAddr, QueryStatus, nil, &st); err != nil {
				cn.Error = err.Error()
				return
			}
			cn.Reachable, cn.Status = true, &st
		}()
	}
	wg.Wait()
	for _, cn := range out.Nodes {
		if cn.Leader && cn.Status != nil {
			out.Term, out.CommitIndex = cn.Status.Term, cn.Status.CommitIndex
		}
	}
	if out.Term == 0 {
		st := b.Status()
		out.Term = st.Term
	}
	for i := range out.Nodes {
		cn := &out.Nodes[i]
		if cn.Status != nil {
			applied := max(cn.Status.AppliedIndex, cn.Status.RaftAppliedIndex)
			if out.CommitIndex > applied {
				cn.Lag = out.CommitIndex - applied
			}
		}
	}
	slices.SortFunc(out.Nodes, func(a, b api.ClusterNode) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}
