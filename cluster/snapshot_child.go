package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/switchboard/switchboard/fsm"
)

// Rebuilding a snapshot in a child process (CaptureProcess).
//
// A rebuild in the node's own process (CaptureReplay) leaves the applies
// running, but on a small machine it still slows them: it takes a core
// for a restore and an encode, and its garbage makes the collector charge
// every allocating goroutine, Apply's included. So the default of `serve`
// hands the rebuild to a child: the node's own binary, started again with
// RebuildCommand as its first argument, at the lowest CPU priority, with
// a heap of its own. The node streams it the base snapshot and the log
// entries after it, the child replays them through the same code
// (replayLog), checks the fingerprint and writes the encoded state back,
// which the node copies into Raft's sink. The node's part is copying
// bytes. If the child cannot be started or fails, the snapshot is
// abandoned and the next one is rebuilt in the node's process.
//
// The stream, from node to child: "SBRB" and a big-endian uint32 length,
// then a msgpack rebuildRequest of that length, then the base snapshot's
// bytes (rebuildRequest.SnapshotSize of them), then for every index after
// From up to UpTo: the entry's type (1 byte), its data's length (uint32)
// and its data.

// RebuildCommand is the first argument that makes the switchboard binary
// a snapshot rebuilder (RunRebuildChild); it is not a command for people.
const RebuildCommand = "__rebuild-snapshot"

// rebuildMagic starts the stream to a child.
var rebuildMagic = [4]byte{'S', 'B', 'R', 'B'}

// maxRebuildHeader bounds the request's encoding.
const maxRebuildHeader = 1 << 16

// rebuildRequest is what a child is asked to rebuild.
type rebuildRequest struct {
	From, UpTo   uint64
	MaxLevel     uint32
	Want         fingerprint
	SnapshotSize int64 // -1: no base snapshot, start from an empty state
}

// RunRebuildChild is the child's side: it reads a rebuild request and its
// input from in and writes the encoded state to out.
func RunRebuildChild(in io.Reader, out io.Writer) error {
	lowerOwnPriority() // snapshot_child_*.go
	r := bufio.NewReaderSize(in, 1<<20)
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return fmt.Errorf("%w: read request: %w", errRebuild, err)
	}
	if !bytes.Equal(head[:4], rebuildMagic[:]) {
		return fmt.Errorf("%w: not a rebuild request", errRebuild)
	}
	n := binary.BigEndian.Uint32(head[4:])
	if n > maxRebuildHeader {
		return fmt.Errorf("%w: request of %d bytes", errRebuild, n)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(r, raw); err != nil {
		return fmt.Errorf("%w: read request: %w", errRebuild, err)
	}
	var req rebuildRequest
	if err := msgpack.Unmarshal(raw, &req); err != nil {
		return fmt.Errorf("%w: decode request: %w", errRebuild, err)
	}
	st := fsm.NewState()
	if req.SnapshotSize >= 0 {
		lr := &io.LimitedReader{R: r, N: req.SnapshotSize}
		var err error
		if st, err = fsm.ReadState(bufio.NewReader(lr)); err != nil {
			return fmt.Errorf("%w: read base snapshot: %w", errRebuild, err)
		}
		if _, err := io.Copy(io.Discard, lr); err != nil {
			return fmt.Errorf("%w: read base snapshot: %w", errRebuild, err)
		}
	}
	get := func(idx uint64, l *raft.Log) error {
		var h [5]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return err
		}
		size := binary.BigEndian.Uint32(h[1:])
		if size > 64<<20 {
			return fmt.Errorf("entry of %d bytes", size)
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			return err
		}
		*l = raft.Log{Index: idx, Type: raft.LogType(h[0]), Data: data}
		return nil
	}
	if err := replayLog(st, req.From, req.UpTo, req.MaxLevel, get); err != nil {
		return err
	}
	if err := checkRebuilt(st, req.From, req.UpTo, req.Want); err != nil {
		return err
	}
	data, err := st.Marshal()
	if err != nil {
		return fmt.Errorf("%w: encode: %w", errRebuild, err)
	}
	st = nil //nolint:ineffassign // the state can go before the write
	_, err = out.Write(data)
	return err
}

// childPhases says when, from Persist's start, each part of a child's
// rebuild ended: the node's feeding of the base snapshot and of the log,
// the child's first output (its rebuild and encode done), the copy of its
// output into the sink, and the sink's close (its fsync).
type childPhases struct {
	fedBase, fedLog, firstOut, copied, closed time.Duration
}

func (p childPhases) logAttrs() []any {
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return []any{"fed_base", r(p.fedBase), "fed_log", r(p.fedLog), "child_first_output", r(p.firstOut),
		"copied", r(p.copied), "closed", r(p.closed)}
}

// firstByteWriter notes when the first byte passes through it.
type firstByteWriter struct {
	w     io.Writer
	start time.Time
	first time.Duration
}

func (f *firstByteWriter) Write(p []byte) (int, error) {
	if f.first == 0 && len(p) > 0 {
		f.first = time.Since(f.start)
	}
	return f.w.Write(p)
}

// persistInChild rebuilds the snapshot in a child process and copies what
// it writes into sink. It cancels the sink on any failure.
func (s *replaySnapshot) persistInChild(ctx context.Context, sink raft.SnapshotSink, start time.Time) (from uint64, written int64, ph childPhases, err error) {
	fail := func(err error) (uint64, int64, childPhases, error) {
		_ = sink.Cancel()
		return from, written, ph, err
	}
	base, err := baseOf(s.src, s.index)
	if err != nil {
		return fail(err)
	}
	req := rebuildRequest{UpTo: s.index, MaxLevel: s.max, Want: s.want, SnapshotSize: -1}
	var snap io.ReadCloser
	if base != nil {
		req.From, req.SnapshotSize = base.Index, base.Size
		var meta *raft.SnapshotMeta
		if meta, snap, err = s.src.snaps.Open(base.ID); err != nil {
			return fail(fmt.Errorf("%w: open snapshot %s: %w", errRebuild, base.ID, err))
		}
		defer snap.Close()
		req.SnapshotSize = meta.Size
	}
	from = req.From
	header, err := msgpack.Marshal(&req)
	if err != nil {
		return fail(err)
	}

	cmd := exec.CommandContext(ctx, s.src.command[0], s.src.command[1:]...)
	childAttrs(cmd) // the lowest CPU priority; dies with the node (snapshot_child_*.go)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fail(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("%w: start %s: %w", errRebuild, s.src.command[0], err))
	}
	lowerPriority(cmd.Process.Pid)

	// Feed the child while its output is copied into the sink.
	fed := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(stdin, 1<<20)
		err := feedChild(w, header, snap, req, s.src.logs, func() { ph.fedBase = time.Since(start) })
		if err == nil {
			err = w.Flush()
		}
		ph.fedLog = time.Since(start)
		if cerr := stdin.Close(); err == nil {
			err = cerr
		}
		fed <- err
	}()
	out := &firstByteWriter{w: sink, start: start}
	written, copyErr := io.Copy(out, stdout)
	ph.firstOut, ph.copied = out.first, time.Since(start)
	if copyErr != nil {
		// The child may be blocked writing to a pipe nobody reads.
		_ = cmd.Process.Kill()
	}
	waitErr := cmd.Wait()
	feedErr := <-fed
	switch {
	case copyErr != nil:
		return fail(fmt.Errorf("cluster: write snapshot: %w", copyErr))
	case feedErr != nil && waitErr != nil: // which one began it is unknown
		return fail(fmt.Errorf("%w: feed the child: %w; the child: %w: %s", errRebuild, feedErr, waitErr, bytes.TrimSpace(stderr.Bytes())))
	case feedErr != nil:
		return fail(fmt.Errorf("%w: feed the child: %w", errRebuild, feedErr))
	case waitErr != nil:
		return fail(fmt.Errorf("%w: in a child process: %w: %s", errRebuild, waitErr, bytes.TrimSpace(stderr.Bytes())))
	}
	if err := sink.Close(); err != nil {
		return from, written, ph, fmt.Errorf("cluster: close snapshot: %w", err)
	}
	ph.closed = time.Since(start)
	return from, written, ph, nil
}

// feedChild writes the rebuild's input: the request, the base snapshot
// (if any) and the log entries after it; baseDone is called between the
// two.
func feedChild(w io.Writer, header []byte, snap io.Reader, req rebuildRequest, logs raft.LogStore, baseDone func()) error {
	var head [8]byte
	copy(head[:4], rebuildMagic[:])
	binary.BigEndian.PutUint32(head[4:], uint32(len(header)))
	if _, err := w.Write(head[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	if snap != nil {
		n, err := io.Copy(w, snap)
		if err != nil {
			return err
		}
		if n != req.SnapshotSize {
			return fmt.Errorf("base snapshot: %d bytes, its meta says %d", n, req.SnapshotSize)
		}
	}
	baseDone()
	var l raft.Log
	var h [5]byte
	for idx := req.From + 1; idx <= req.UpTo; idx++ {
		if err := logs.GetLog(idx, &l); err != nil {
			return fmt.Errorf("log entry %d: %w", idx, err)
		}
		h[0] = byte(l.Type)
		binary.BigEndian.PutUint32(h[1:], uint32(len(l.Data)))
		if _, err := w.Write(h[:]); err != nil {
			return err
		}
		if _, err := w.Write(l.Data); err != nil {
			return err
		}
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.b...)
}

// childTimeout bounds a child's rebuild: far beyond what a million open
// requests take, short of leaving Raft without snapshots for long.
const childTimeout = 10 * time.Minute
