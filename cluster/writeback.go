package cluster

import (
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// Writing a snapshot out as it is written.
//
// Raft's file sink writes a snapshot through the page cache and fsyncs it
// on Close. With the kernel's default dirty limits (10% of memory before
// background writeback, 30 s before a page is old) nothing of a snapshot
// of a few hundred megabytes reaches the disk before that fsync, which
// then writes all of it at once; the log store's own fsyncs, one per
// batch of commands, queue behind it, and every write waits. Measured at a
// million open requests (338 MB): the writes due in the ~150 ms around the
// close took ~105 ms, against a p999 of 39 ms with no snapshot. So the
// sink below asks the kernel to write each chunk out as soon as it is
// complete, and waits for the chunk before it, so that at most two chunks
// are in flight to the disk at any time and the final fsync has little
// left to do. The same remedy as RocksDB's bytes_per_sync.

// writebackChunk is how much of a snapshot is handed to the disk at once.
const writebackChunk = 8 << 20

// writebackSink passes writes to a Raft snapshot sink and has the kernel
// write each complete chunk of the file out (writeback_linux.go).
type writebackSink struct {
	raft.SnapshotSink
	f       *os.File // the sink's file, opened again; nil: no writeback
	written int64    // bytes written through the sink
	kicked  int64    // bytes handed to the disk
	waited  int64    // bytes known written out
	// out is writeOut (writeback_*.go); a test sees the ranges.
	out func(f *os.File, off, n int64, wait bool) error
}

// withWriteback wraps sink, a sink of the file snapshot store whose
// snapshots live in dir (the store's own layout: dir/<id>.tmp/state.bin
// while it is written). If that file cannot be opened, or dir is "", the
// sink is returned as it is.
func withWriteback(sink raft.SnapshotSink, dir string) raft.SnapshotSink {
	if dir == "" || !writebackSupported {
		return sink
	}
	f, err := os.Open(filepath.Join(dir, sink.ID()+".tmp", "state.bin"))
	if err != nil {
		return sink
	}
	return &writebackSink{SnapshotSink: sink, f: f, out: writeOut}
}

// Write writes p in chunks, handing each complete one to the disk.
func (w *writebackSink) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		part := p[:min(len(p), writebackChunk)]
		m, err := w.SnapshotSink.Write(part)
		n += m
		w.written += int64(m)
		if err != nil {
			return n, err
		}
		p = p[m:]
		if w.written-w.kicked >= writebackChunk {
			w.kick()
		}
	}
	return n, nil
}

// kick starts the writing out of what was written since the last kick
// and waits for the writing out of the chunks before that. Errors are
// ignored: the close's fsync still makes the file durable or fails.
func (w *writebackSink) kick() {
	if w.kicked > w.waited {
		_ = w.out(w.f, w.waited, w.kicked-w.waited, true)
		w.waited = w.kicked
	}
	_ = w.out(w.f, w.kicked, w.written-w.kicked, false)
	w.kicked = w.written
}

func (w *writebackSink) Close() error {
	_ = w.f.Close()
	return w.SnapshotSink.Close()
}

func (w *writebackSink) Cancel() error {
	_ = w.f.Close()
	return w.SnapshotSink.Cancel()
}
