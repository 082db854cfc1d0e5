package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// SnapshotChunkSize is the most snapshot bytes one snapshot_read answer
// carries: well under the default 1 MiB frame limit.
const SnapshotChunkSize = 256 << 10

// adminOp serves one admin cluster op of the client protocol.
type adminOp func(s *Service, ctx context.Context, args msgpack.RawMessage) (any, error)

// adminOps are the admin ops Service.Query serves before fsm queries.
var adminOps = map[string]adminOp{
	QueryClusterStatus:   (*Service).clusterStatus,
	OpClusterRemove:      leaderOp(rpcRemove, func() any { return nil }),
	OpTransferLeadership: leaderOp(rpcTransfer, func() any { return new(TransferResult) }),
	OpSnapshotTake:       (*Service).snapshotTake,
	OpSnapshotRead:       leaderOp(rpcSnapRead, func() any { return new(SnapshotChunk) }),
}

// leaderOp is an admin op that runs the node op rpcOp on the leader, with
// the client's arguments as they came, and answers its result.
func leaderOp(rpcOp string, newOut func() any) adminOp {
	return func(s *Service, ctx context.Context, args msgpack.RawMessage) (any, error) {
		out := newOut()
		if len(args) == 0 {
			args = msgpack.RawMessage{0x80} // empty map
		}
		if err := s.leaderCall(ctx, rpcOp, args, out); err != nil {
			return nil, err
		}
		return out, nil
	}
}

// SnapshotInfo is the answer to snapshot_take.
type SnapshotInfo struct {
	Node string `msgpack:"node"`
	SnapshotMeta
}

// snapshotTake snapshots this node now.
func (s *Service) snapshotTake(context.Context, msgpack.RawMessage) (any, error) {
	m, err := s.node.TakeSnapshot()
	if err != nil {
		return nil, err
	}
	return SnapshotInfo{Node: s.node.ID(), SnapshotMeta: m}, nil
}

// SnapshotReadArgs asks the leader for a chunk of a snapshot. The first
// call leaves ID empty: the leader takes a fresh snapshot (Fresh) or uses
// its latest, and the answer names it; later calls give that ID and the
// offset of the next byte.
type SnapshotReadArgs struct {
	ID     string `msgpack:"id"`
	Offset int64  `msgpack:"offset"`
	Fresh  bool   `msgpack:"fresh"`
}

// SnapshotChunk is one piece of a snapshot: Data holds the bytes from
// Offset on; Done says it is the last piece.
type SnapshotChunk struct {
	SnapshotMeta
	Offset int64  `msgpack:"offset"`
	Data   []byte `msgpack:"data"`
	Done   bool   `msgpack:"done"`
}

// handleSnapshotRead is the leader's side of snapshot_read.
func (s *Service) handleSnapshotRead(_ context.Context, raw msgpack.RawMessage) (any, error) {
	var a SnapshotReadArgs
	if len(raw) > 0 {
		if err := msgpack.Unmarshal(raw, &a); err != nil {
			return nil, api.Errorf(api.CodeBadRequest, "snapshot_read: arguments: %v", err)
		}
	}
	if !s.node.IsLeader() {
		return nil, s.notLeader("snapshot read")
	}
	if a.ID == "" {
		var (
			m   SnapshotMeta
			ok  bool
			err error
		)
		if a.Fresh {
			m, err = s.node.TakeSnapshot()
			ok = err == nil
		} else {
			m, ok, err = s.node.LatestSnapshot()
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, api.Errorf(api.CodeNotFound, "no snapshot on the leader yet")
		}
		a.ID, a.Offset = m.ID, 0
	}
	if a.Offset < 0 {
		return nil, api.Errorf(api.CodeBadRequest, "snapshot_read: negative offset")
	}
	return s.cl.snaps.read(s.node, a.ID, a.Offset)
}

// snapReader keeps the snapshot being streamed open between chunks, so a
// sequential read costs one pass over the file.
type snapReader struct {
	mu   sync.Mutex
	meta SnapshotMeta
	rc   io.ReadCloser
	off  int64
}

func (r *snapReader) read(n *Node, id string, off int64) (*SnapshotChunk, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rc == nil || r.meta.ID != id || r.off != off {
		r.closeLocked()
		meta, rc, err := n.OpenSnapshot(id)
		if err != nil {
			return nil, api.Errorf(api.CodeNotFound, "snapshot %s: %v", id, err)
		}
		if off > meta.Size {
			rc.Close()
			return nil, api.Errorf(api.CodeBadRequest, "offset %d past the snapshot's %d bytes", off, meta.Size)
		}
		if _, err := io.CopyN(io.Discard, rc, off); err != nil {
			rc.Close()
			return nil, fmt.Errorf("cluster: snapshot %s: skip to %d: %w", id, off, err)
		}
		r.meta, r.rc, r.off = meta, rc, off
	}
	buf := make([]byte, min(SnapshotChunkSize, r.meta.Size-off))
	k, err := io.ReadFull(r.rc, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		r.closeLocked()
		return nil, fmt.Errorf("cluster: read snapshot %s: %w", id, err)
	}
	r.off += int64(k)
	out := &SnapshotChunk{SnapshotMeta: r.meta, Offset: off, Data: buf[:k], Done: r.off >= r.meta.Size}
	if out.Done {
		r.closeLocked()
	}
	return out, nil
}

func (r *snapReader) closeLocked() {
	if r.rc != nil {
		_ = r.rc.Close()
	}
	r.rc, r.off, r.meta = nil, 0, SnapshotMeta{}
}

func (r *snapReader) close() {
	r.mu.Lock()
	r.closeLocked()
	r.mu.Unlock()
}

// clusterStatus gathers every member's status: this node's own, the
// others' through node RPC at the client address the registry holds.
func (s *Service) clusterStatus(ctx context.Context, _ msgpack.RawMessage) (any, error) {
	servers, err := s.configuration()
	if err != nil {
		return nil, err
	}
	leaderID, _ := s.node.Leader()
	out := &transport.ClusterStatus{Leader: leaderID, Nodes: make([]transport.ClusterNode, len(servers))}
	var wg sync.WaitGroup
	for i, srv := range servers {
		cn := &out.Nodes[i]
		cn.ID, cn.RaftAddr, cn.Suffrage = string(srv.ID), string(srv.Address), srv.Suffrage.String()
		cn.Leader = cn.ID == leaderID
		if cn.ID == s.node.ID() {
			st := s.Status()
			cn.ClientAddr, cn.Reachable, cn.Status = s.clientAddr, true, &st
			continue
		}
		reg, ok := s.registered(cn.ID)
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
			var st transport.NodeStatus
			if err := s.cl.peers.call(cctx, cn.ClientAddr, rpcStatus, nil, &st); err != nil {
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
		st := s.Status()
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
	slices.SortFunc(out.Nodes, func(a, b transport.ClusterNode) int {
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
