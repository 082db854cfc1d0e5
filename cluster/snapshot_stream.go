package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// Snapshot streaming: the leader's side of RPCSnapshotRead, which admins
// reach through the client protocol's snapshot_read (a backup is the
// leader's latest snapshot, read in chunks).

// SnapshotChunkSize is the most snapshot bytes one snapshot_read answer
// carries: well under the default 1 MiB frame limit.
const SnapshotChunkSize = 256 << 10

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
	return s.snaps.read(s.node, a.ID, a.Offset)
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
