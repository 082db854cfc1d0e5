package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/transport"
)

// cluster runs `ctl cluster status|remove|transfer-leadership`.
func (x *ctl) cluster(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: cluster status|remove NODE|transfer-leadership [NODE]", errUsage)
	}
	switch {
	case args[0] == "status" && len(args) == 1:
		return x.clusterStatus(ctx)
	case args[0] == "remove" && len(args) == 2:
		return x.call(ctx, node.OpClusterRemove, cluster.NodeIDArgs{Node: args[1]}, nil, "removed %s from the cluster", args[1])
	case args[0] == "transfer-leadership" && len(args) <= 2:
		var a cluster.NodeIDArgs
		if len(args) == 2 {
			a.Node = args[1]
		}
		var tr cluster.TransferResult
		if err := x.do(ctx, node.OpTransferLeadership, a, &tr); err != nil {
			return err
		}
		to := tr.To
		if to == "" {
			to = "(not known yet)"
		}
		return x.done(node.OpTransferLeadership, a, tr, "leadership moved from %s to %s", tr.From, to)
	}
	return fmt.Errorf("%w: cluster status|remove NODE|transfer-leadership [NODE]", errUsage)
}

func (x *ctl) clusterStatus(ctx context.Context) error {
	var cs api.ClusterStatus
	if err := x.do(ctx, node.QueryClusterStatus, nil, &cs); err != nil {
		return err
	}
	v, err := newClusterView(cs)
	if err != nil {
		return err
	}
	if x.json {
		return x.printJSON(v)
	}
	v.render(x.out)
	return nil
}

// snapshot runs `ctl snapshot take|save FILE`.
func (x *ctl) snapshot(ctx context.Context, args []string) error {
	switch {
	case len(args) == 1 && args[0] == "take":
		var si node.SnapshotInfo
		if err := x.do(ctx, node.OpSnapshotTake, nil, &si); err != nil {
			return err
		}
		return x.done(node.OpSnapshotTake, nil, si, "node %s: snapshot %s at index %d (term %d, %d bytes)", si.Node, si.ID, si.Index, si.Term, si.Size)
	case len(args) == 2 && args[0] == "save":
		return x.snapshotSave(ctx, args[1])
	}
	return fmt.Errorf("%w: snapshot take | snapshot save FILE", errUsage)
}

// snapshotSave streams a fresh snapshot of the leader to file, in chunks
// below the frame limit, checks that it decodes, and only then moves it
// into place. A leader change midway starts the copy over.
func (x *ctl) snapshotSave(ctx context.Context, file string) error {
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		meta, err := x.snapshotCopy(ctx, file+".part")
		if err == nil {
			if err := checkBackup(file + ".part"); err != nil {
				return err
			}
			if err := os.Rename(file+".part", file); err != nil {
				return err
			}
			if x.json {
				return writeJSON(x.out, savedSnapshot{File: file, ID: meta.ID, Index: meta.Index, Term: meta.Term, Size: meta.Size})
			}
			fmt.Fprintf(x.out, "saved snapshot %s (index %d, term %d, %d bytes) to %s\n", meta.ID, meta.Index, meta.Term, meta.Size, file)
			return nil
		}
		_ = os.Remove(file + ".part")
		var eb *transport.ErrorBody
		if !errors.As(err, &eb) || eb.Code != api.CodeNotFound {
			return err
		}
		last = err // the snapshot went away (new leader, newer snapshots): again
	}
	return last
}

func (x *ctl) snapshotCopy(ctx context.Context, path string) (cluster.SnapshotMeta, error) {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return cluster.SnapshotMeta{}, err
	}
	defer out.Close()
	args := cluster.SnapshotReadArgs{Fresh: true}
	var off int64
	for {
		var ch cluster.SnapshotChunk
		if err := x.do(ctx, node.OpSnapshotRead, args, &ch); err != nil {
			return cluster.SnapshotMeta{}, err
		}
		if ch.Offset != off {
			return cluster.SnapshotMeta{}, fmt.Errorf("snapshot %s: chunk at %d, want %d", ch.ID, ch.Offset, off)
		}
		if _, err := out.Write(ch.Data); err != nil {
			return cluster.SnapshotMeta{}, err
		}
		off += int64(len(ch.Data))
		if ch.Done {
			if off != ch.Size {
				return cluster.SnapshotMeta{}, fmt.Errorf("snapshot %s: got %d bytes of %d", ch.ID, off, ch.Size)
			}
			if err := out.Sync(); err != nil {
				return cluster.SnapshotMeta{}, err
			}
			return ch.SnapshotMeta, out.Close()
		}
		if len(ch.Data) == 0 {
			return cluster.SnapshotMeta{}, fmt.Errorf("snapshot %s: empty chunk at %d of %d", ch.ID, off, ch.Size)
		}
		args = cluster.SnapshotReadArgs{ID: ch.ID, Offset: off}
	}
}

// checkBackup decodes a saved backup completely.
func checkBackup(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := fsm.ReadState(bufio.NewReader(f)); err != nil {
		return fmt.Errorf("the saved snapshot %s does not decode: %w", filepath.Base(path), err)
	}
	return nil
}

// savedSnapshot is the JSON of `ctl snapshot save FILE -o json`.
type savedSnapshot struct {
	File  string `json:"file"`
	ID    string `json:"id"`
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	Size  int64  `json:"size"`
}
