package cluster_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/cluster"
	. "github.com/switchboard/switchboard/fsm"
)

// The raft.FSM adapter's tests (moved here from fsm with the adapter). They
// live in package cluster_test, with fsm and cluster dot-imported, so the
// fsm-style helpers (fsm_helpers_test.go) stay apart from cluster's own.

// newWalkthroughFSM returns an FSM that applied the walkthrough setup as
// log entry 1, and its sink.
func newWalkthroughFSM(t *testing.T) (*FSM, *recordingSink) {
	t.Helper()
	sink := &recordingSink{}
	f := NewFSM(sink, nil)
	applyEntry(t, f, 1, walkthroughCommands()...)
	sink.mu.Lock()
	sink.published, sink.order = nil, nil
	sink.mu.Unlock()
	return f, sink
}

func applyEntry(t *testing.T, f *FSM, index uint64, cmds ...*Command) *ApplyResponse {
	t.Helper()
	data, err := EncodeEntry(cmds...)
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}).(*ApplyResponse)
	if !ok {
		t.Fatalf("Apply returned %T", resp)
	}
	return resp
}

// fsmState returns the FSM's state bytes and the index Read reports.
func fsmState(t *testing.T, f *FSM) ([]byte, uint64) {
	t.Helper()
	var b []byte
	var idx uint64
	f.Read(func(s *State, applied uint64) { b, idx = marshal(t, s), applied })
	return b, idx
}

// withIndex returns state bytes re-encoded with Index set to index.
func withIndex(t *testing.T, data []byte, index uint64) []byte {
	t.Helper()
	s := restore(t, data)
	s.Index = index
	return marshal(t, s)
}

func TestFSMApplyBatchResultsAndEventSeqs(t *testing.T) {
	f, sink := newWalkthroughFSM(t)
	resp := applyEntry(t, f, 7,
		cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "Hi"}), // 1 event
		cmd(OpJoin, a3, &api.RequestArgs{Request: "R1"}),                                                  // rejected
		cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"}),                                                  // 2 events
	)
	if resp.Index != 7 || resp.Err != nil || len(resp.Results) != 3 {
		t.Fatalf("response %+v", resp)
	}
	if resp.Results[0].Err != nil || api.CodeOf(resp.Results[1].Err) != api.CodeNotSubscribed || resp.Results[2].Err != nil {
		t.Errorf("results %+v", resp.Results)
	}
	evs := sink.take(7)
	if len(evs) != 3 {
		t.Fatalf("published %s", kinds(evs))
	}
	for i, e := range evs {
		if e.Seq != api.SeqOf(7, i) {
			t.Errorf("event %d (%s) has seq %d, want %d", i, e.Kind, e.Seq, api.SeqOf(7, i))
		}
	}
	if evs[0].Kind != api.EvRequestCreated || evs[1].Kind != api.EvConversationJoined || evs[2].Kind != api.EvRequestUpdated {
		t.Errorf("published %s", kinds(evs))
	}
	if f.Applied() != 7 {
		t.Errorf("applied %d", f.Applied())
	}
	if _, idx := fsmState(t, f); idx != 7 {
		t.Errorf("Read reports index %d", idx)
	}
}

// An entry whose commands cause no event publishes nothing.
func TestFSMPublishesNothingWithoutEvents(t *testing.T) {
	f, sink := newWalkthroughFSM(t)
	applyEntry(t, f, 2, cmd(OpNoop, admin, &api.NoopArgs{}), cmd(OpJoin, a1, &api.RequestArgs{Request: "R9"}))
	if len(sink.order) != 0 {
		t.Errorf("published entries %v", sink.order)
	}
}

func TestFSMApplyUndecodableEntry(t *testing.T) {
	f, sink := newWalkthroughFSM(t)
	before, _ := fsmState(t, f)
	// (An entry of an unknown kind is not garbage but newer: halt_test.go.)
	for i, data := range [][]byte{nil, {0x00}, {EntryCommands, 0x91, 0xc1}, {EntryCommands, 0x92, 0x90}} {
		index := uint64(10 + i)
		resp, ok := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(*ApplyResponse)
		if !ok || !errors.Is(resp.Err, ErrUndecodable) || resp.Results != nil || resp.Index != index {
			t.Errorf("%x: response %+v", data, resp)
		}
		after, idx := fsmState(t, f)
		// Only the applied index moves, so the entry is not waited on forever.
		if !bytes.Equal(after, withIndex(t, before, index)) || idx != index || f.Applied() != index {
			t.Errorf("%x: state changed (index %d, applied %d)", data, idx, f.Applied())
		}
	}
	if len(sink.order) != 0 {
		t.Errorf("published entries %v", sink.order)
	}
}

func TestFSMApplyNonCommandEntry(t *testing.T) {
	f, sink := newWalkthroughFSM(t)
	before, _ := fsmState(t, f)
	for i, typ := range []raft.LogType{raft.LogNoop, raft.LogConfiguration, raft.LogBarrier} {
		index := uint64(5 + i)
		if r := f.Apply(&raft.Log{Index: index, Type: typ, Data: []byte{EntryCommands, 0x90}}); r != nil {
			t.Errorf("%v entry answered %v", typ, r)
		}
		after, idx := fsmState(t, f)
		if !bytes.Equal(after, withIndex(t, before, index)) || idx != index {
			t.Errorf("%v entry changed the state", typ)
		}
	}
	if len(sink.order) != 0 {
		t.Errorf("published entries %v", sink.order)
	}
}

// memSink is a raft.SnapshotSink in memory that can fail on demand.
type memSink struct {
	bytes.Buffer
	writeErr, closeErr error
	closed, cancelled  bool
}

func (m *memSink) Write(p []byte) (int, error) {
	if m.writeErr != nil {
		return 0, m.writeErr
	}
	return m.Buffer.Write(p)
}
func (m *memSink) Close() error  { m.closed = true; return m.closeErr }
func (m *memSink) Cancel() error { m.cancelled = true; return nil }
func (m *memSink) ID() string    { return "mem" }

func TestFSMSnapshotRestoreRoundTrip(t *testing.T) {
	f, _ := newWalkthroughFSM(t)
	applyEntry(t, f, 2, keyed("c1", 1, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "Hi"})))
	applyEntry(t, f, 3, cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"}))
	want, _ := fsmState(t, f)

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Apply after Snapshot must not leak into what Persist writes.
	applyEntry(t, f, 4, cmd(OpSend, a1, &api.SendArgs{Request: "R1", Text: "later"}))
	store := raft.NewInmemSnapshotStore()
	sink, err := store.Create(raft.SnapshotVersionMax, 3, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	events := &recordingSink{}
	g := NewFSM(nil, nil)
	g.SetSink(events)
	applyEntry(t, g, 1, cmd(OpCreateMRD, admin, &api.CreateMRDArgs{ID: "stale"})) // discarded by Restore
	if err := g.Restore(rc); err != nil {
		t.Fatal(err)
	}
	got, idx := fsmState(t, g)
	if !bytes.Equal(got, want) {
		t.Error("restored state differs from the snapshot's")
	}
	if idx != 3 || g.Applied() != 3 {
		t.Errorf("restored index %d, applied %d; want 3", idx, g.Applied())
	}
	if !reflect.DeepEqual(events.resets, []uint64{3}) {
		t.Errorf("sink resets %v, want [3]", events.resets)
	}
	// The restored FSM carries on exactly like the original.
	r1 := applyEntry(t, g, 4, cmd(OpSend, a1, &api.SendArgs{Request: "R1", Text: "later"}))
	if r1.Results[0].Err != nil {
		t.Fatal(r1.Results[0].Err)
	}
	a, _ := fsmState(t, f)
	b, _ := fsmState(t, g)
	if !bytes.Equal(a, b) {
		t.Error("original and restored FSM diverged")
	}
	// And its idempotency sessions came along.
	r2 := applyEntry(t, g, 5, keyed("c1", 1, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "Hi"})))
	if r2.Results[0].Err != nil || len(events.take(5)) != 0 {
		t.Errorf("retry after restore: %+v", r2.Results[0])
	}
}

func TestFSMPersistFailureCancelsSink(t *testing.T) {
	f, _ := newWalkthroughFSM(t)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	disk := errors.New("disk full")
	sink := &memSink{writeErr: disk}
	if err := snap.Persist(sink); !errors.Is(err, disk) {
		t.Errorf("Persist: %v, want the write error", err)
	}
	if !sink.cancelled || sink.closed {
		t.Errorf("cancelled %v closed %v; want the sink cancelled, not closed", sink.cancelled, sink.closed)
	}

	sink = &memSink{closeErr: disk}
	if err := snap.Persist(sink); !errors.Is(err, disk) {
		t.Errorf("Persist: %v, want the close error", err)
	}
	sink = &memSink{}
	if err := snap.Persist(sink); err != nil || !sink.closed || sink.cancelled {
		t.Errorf("good Persist: %v closed %v cancelled %v", err, sink.closed, sink.cancelled)
	}
	want, _ := fsmState(t, f)
	if !bytes.Equal(sink.Bytes(), want) {
		t.Error("persisted bytes are not the state's Marshal")
	}
}

type readCloser struct {
	io.Reader
	closed bool
}

func (r *readCloser) Close() error { r.closed = true; return nil }

func TestFSMRestoreRejectsBadSnapshot(t *testing.T) {
	f, sink := newWalkthroughFSM(t)
	before, idx := fsmState(t, f)
	good := marshal(t, NewState())
	for name, data := range map[string][]byte{
		"empty":         nil,
		"wrong version": append([]byte{9}, good[1:]...),
		"truncated":     good[:len(good)/2],
		"garbage":       {1, 0xc1, 0xc1},
	} {
		rc := &readCloser{Reader: bytes.NewReader(data)}
		if err := f.Restore(rc); err == nil {
			t.Errorf("%s: restored", name)
		}
		if !rc.closed {
			t.Errorf("%s: snapshot reader not closed", name)
		}
		after, idx2 := fsmState(t, f)
		if !bytes.Equal(after, before) || idx2 != idx {
			t.Errorf("%s: a failed restore changed the state", name)
		}
	}
	if len(sink.resets) != 0 {
		t.Errorf("failed restores reset the sink: %v", sink.resets)
	}
}

func TestFSMWaitApplied(t *testing.T) {
	f, _ := newWalkthroughFSM(t)
	if err := f.WaitApplied(nil, 1); err != nil {
		t.Fatalf("wait for an applied index: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.WaitApplied(nil, 3) }()
	applyEntry(t, f, 2, cmd(OpNoop, admin, &api.NoopArgs{}))
	select {
	case err := <-done:
		t.Fatalf("returned %v before index 3 was applied", err)
	case <-time.After(20 * time.Millisecond):
	}
	applyEntry(t, f, 3, cmd(OpNoop, admin, &api.NoopArgs{}))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitApplied did not return after index 3 was applied")
	}
	giveUp := make(chan struct{})
	go func() { done <- f.WaitApplied(giveUp, 99) }()
	close(giveUp)
	select {
	case err := <-done:
		if err == nil {
			t.Error("gave up without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitApplied ignored done")
	}
}

// Read hands its callback the index of the entry the state reflects, even
// while entries are being applied.
func TestFSMReadIndexMatchesState(t *testing.T) {
	f, _ := newWalkthroughFSM(t)
	const entries = 30000
	data, err := EncodeEntry(cmd(OpNoop, admin, &api.NoopArgs{}))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(2); i < entries; i++ {
			f.Apply(&raft.Log{Index: i, Type: raft.LogCommand, Data: data})
		}
	}()
	mismatches := 0
	for f.Applied() < entries-1 {
		f.Read(func(s *State, applied uint64) {
			if applied != s.Index {
				mismatches++
			}
		})
	}
	wg.Wait()
	if mismatches > 0 {
		t.Errorf("Read reported an index other than the state's %d times", mismatches)
	}
}
