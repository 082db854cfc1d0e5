package fsm_test

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// On the random command streams of the determinism test, after every
// 10th entry, the hand encoder writes exactly the reflection encoder's
// bytes.
func TestMarshalMatchesReflectionOnRandomStates(t *testing.T) {
	for seed := range int64(3) {
		d := &direct{s: NewState()}
		var index uint64
		for _, e := range setupEntries() {
			index++
			d.apply(t, index, e)
		}
		g := newGen(seed)
		for i := range 1000 {
			g.peek(d.s)
			index++
			d.apply(t, index, g.entry())
			if i%10 != 9 {
				continue
			}
			if got, want := marshal(t, d.s), RefMarshal(t, d.s); !bytes.Equal(got, want) {
				t.Fatalf("seed %d, entry %d: hand encoding differs from the reflection encoding", seed, index)
			}
		}
	}
}

// Snapshot and Persist run while entries are applied (as Raft does:
// Persist on its own goroutine, Apply going on): under -race this shows
// Persist touches nothing Apply changes; every snapshot restores to a state
// that encodes to the snapshot's bytes, at an index that was applied.
func TestSnapshotConcurrentWithApply(t *testing.T) {
	f := bigFSM(t, 300)
	var start uint64
	f.Read(func(_ *State, applied uint64) { start = applied })
	const entries = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range uint64(entries) {
			c := &Command{Op: OpCustomerMessage, By: api.Principal{Role: api.RoleConnector, ID: "web"}, Time: t0 + 1e12 + int64(i),
				Args: &api.CustomerMessageArgs{Channel: "C1", CustomerID: "cust-1", Text: "more"}}
			data, err := EncodeEntry(c)
			if err != nil {
				t.Error(err)
				return
			}
			if r := f.Apply(&raft.Log{Index: start + 1 + i, Type: raft.LogCommand, Data: data}).(*ApplyResponse); r.Results[0].Err != nil {
				t.Error(r.Results[0].Err)
				return
			}
		}
	}()
	var snaps []*memSink
	var wg sync.WaitGroup
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		snap, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		sink := &memSink{}
		snaps = append(snaps, sink)
		wg.Add(1)
		go func() { // Persist runs while the loop above takes more snapshots
			defer wg.Done()
			if err := snap.Persist(sink); err != nil {
				t.Error(err)
			}
			snap.Release()
		}()
	}
	wg.Wait()
	for i, sink := range snaps {
		if !sink.closed {
			t.Fatalf("snapshot %d: sink not closed", i)
		}
		g := NewFSM(nil, nil)
		if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		var again []byte
		var at uint64
		g.Read(func(s *State, applied uint64) { again, at = marshal(t, s), applied })
		if !bytes.Equal(again, sink.Bytes()) || at < start || at > start+entries {
			t.Fatalf("snapshot %d (index %d): does not restore to itself", i, at)
		}
	}
	if len(snaps) < 2 {
		t.Logf("only %d snapshots taken during the applies", len(snaps))
	}
}
