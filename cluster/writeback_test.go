package cluster

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// TestWritebackSinkWritesOutInChunks writes a snapshot through the node's
// snapshot store and checks that the sink reopened the store's own file
// (so a change of raft's layout fails here, not silently), that every
// complete chunk was handed to the disk in order with at most two in
// flight, and that the snapshot reads back whole.
func TestWritebackSinkWritesOutInChunks(t *testing.T) {
	if !writebackSupported {
		t.Skip("no writeback on this system")
	}
	dir := t.TempDir()
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	store := &privateSnapshots{FileSnapshotStore: snaps, dir: filepath.Join(dir, "snapshots")}
	_, trans := raft.NewInmemTransport("a")
	sink, err := store.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	wb, ok := sink.(*writebackSink)
	if !ok {
		t.Fatalf("the store's sink is a %T, not a writebackSink: its file was not found", sink)
	}
	type call struct {
		off, n int64
		wait   bool
	}
	var calls []call
	wb.out = func(f *os.File, off, n int64, wait bool) error {
		calls = append(calls, call{off, n, wait})
		return writeOut(f, off, n, wait)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), (5*writebackChunk+12345)/16)
	// One write of it all, as the lock's and the in-process rebuild's
	// Persist do, then a few small ones, as a copy from a child does.
	if _, err := sink.Write(data[:3*writebackChunk+100]); err != nil {
		t.Fatal(err)
	}
	for rest := data[3*writebackChunk+100:]; len(rest) > 0; {
		n := min(len(rest), 32<<10)
		if _, err := sink.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}

	var kicked, waited int64
	for _, c := range calls {
		if c.wait {
			if c.off != waited || c.off+c.n > kicked {
				t.Fatalf("waited on [%d,+%d) with %d waited and %d handed out: %v", c.off, c.n, waited, kicked, calls)
			}
			waited = c.off + c.n
			continue
		}
		if c.off != kicked || c.n < writebackChunk {
			t.Fatalf("handed out [%d,+%d) after %d: %v", c.off, c.n, kicked, calls)
		}
		kicked = c.off + c.n
		if kicked-waited > 2*writebackChunk+32<<10 {
			t.Fatalf("%d bytes in flight: %v", kicked-waited, calls)
		}
	}
	if want := int64(len(data)) / writebackChunk * writebackChunk; kicked < want {
		t.Fatalf("handed %d bytes to the disk of %d; every complete chunk should be: %v", kicked, len(data), calls)
	}

	list, err := store.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	_, rc, err := store.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, wrote %d (equal: false)", len(got), len(data))
	}
}
