package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/fsm/fsmtest"
)

// liveRecorder keeps the live state's encoding at every applied index,
// taken on the apply goroutine right after the entry (nothing else changes
// the state there), so a snapshot written later can be compared with the
// state at its own index exactly.
type liveRecorder struct {
	f  *FSM
	mu sync.Mutex
	at map[uint64][]byte
}

func recordLive(f *FSM) *liveRecorder {
	r := &liveRecorder{f: f, at: map[uint64][]byte{}}
	f.SetApplied(func(index uint64, _ []*fsm.Command, _ []fsm.Result, _ []fsm.Event) {
		var data []byte
		f.Read(func(s *fsm.State, _ uint64) { data, _ = s.Marshal() })
		r.mu.Lock()
		r.at[index] = data
		r.mu.Unlock()
	})
	return r
}

func (r *liveRecorder) bytesAt(index uint64) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.at[index]
	return b, ok
}

// newestSnapshot reads the newest snapshot of n's store.
func newestSnapshot(t *testing.T, n *Node) (*raft.SnapshotMeta, []byte) {
	t.Helper()
	metas, err := n.snaps.List()
	if err != nil || len(metas) == 0 {
		t.Fatalf("list snapshots: %v (%d)", err, len(metas))
	}
	meta, rc, err := n.snaps.Open(metas[0].ID)
	if err != nil {
		t.Fatalf("open snapshot: %v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read snapshot: %v", err)
	}
	return meta, data
}

// feed proposes the generator's next entry, aimed at the node's state,
// without the ops this build does not know (a node refuses them before
// the log; in the log they would halt it, as an entry from a newer build).
func feed(n *Node, f *FSM, g *fsmtest.Gen) error {
	f.Read(func(s *fsm.State, _ uint64) { g.Peek(s) })
	var cmds []*fsm.Command
	for _, c := range g.Entry() {
		if fsm.CanApply(c, fsm.MaxLevel) == nil {
			cmds = append(cmds, c)
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyWait)
	defer cancel()
	_, err := n.Propose(ctx, cmds...)
	return err
}

// TestReplaySnapshotEqualsLiveState: a snapshot rebuilt off the apply
// path, from the last snapshot and the log since, holds exactly the bytes
// the live state had at its index. Rounds of random commands (every op,
// bad ids, retries, clocks that jump) with a snapshot after each make every
// rebuild start from the previous rebuilt one; then snapshots are taken
// while a writer keeps proposing, so Apply runs during each rebuild.
// Finally the node restarts from its snapshot and log and must come back
// to the same state.
func TestReplaySnapshotEqualsLiveState(t *testing.T) {
	snapshotsEqualLive(t, CaptureReplay)
}

// TestChildSnapshotEqualsLiveState: the same, rebuilt in a child process
// (this test binary, made a rebuilder by TestMain).
func TestChildSnapshotEqualsLiveState(t *testing.T) {
	snapshotsEqualLive(t, CaptureProcess)
}

// TestMain makes the test binary a snapshot rebuilder when a test starts
// it as one (childCommand), and runs the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := RunRebuildChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childEnv makes this test binary a rebuilder (TestMain).
const childEnv = "SWITCHBOARD_TEST_REBUILD_CHILD"

// childCommand is a RebuildCommand running this test binary as a
// rebuilder.
func childCommand(t *testing.T) []string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{"env", childEnv + "=1", self}
}

func snapshotsEqualLive(t *testing.T, capture string) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.SnapshotThreshold = 1 << 30 // only the snapshots the test asks for
	cfg.SnapshotInterval = 1 << 40
	cfg.SnapshotCapture = capture
	if capture == CaptureProcess {
		cfg.RebuildCommand = childCommand(t)
	}
	f := NewFSM(nil, nil)
	live := recordLive(f)
	n := openLeader(t, cfg, f)

	g := fsmtest.NewGen(7)
	for _, e := range fsmtest.SetupEntries() {
		mustOK(t, propose(t, n, e...))
	}
	check := func(what string) {
		t.Helper()
		meta, data := newestSnapshot(t, n)
		want, ok := live.bytesAt(meta.Index)
		if !ok {
			t.Fatalf("%s: no live state recorded at the snapshot's index %d", what, meta.Index)
		}
		if !bytes.Equal(data, want) {
			t.Fatalf("%s: the snapshot at %d (%d bytes) differs from the live state there (%d bytes)", what, meta.Index, len(data), len(want))
		}
	}
	rounds := 4
	for round := range rounds {
		for range 60 {
			if err := feed(n, f, g); err != nil {
				t.Fatalf("propose: %v", err)
			}
		}
		if err := n.Snapshot(); err != nil {
			t.Fatalf("round %d: snapshot: %v", round, err)
		}
		check("quiet round")
	}
	st := f.SnapshotStats()
	if st.Rebuilt != uint64(rounds) || st.Direct != 0 {
		t.Fatalf("snapshots rebuilt %d, encoded under the lock %d: want %d and 0", st.Rebuilt, st.Direct, rounds)
	}

	// Snapshots while a writer proposes.
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		written atomic.Int64
		werr    error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if err := feed(n, f, g); err != nil {
				werr = err
				return
			}
			written.Add(1)
		}
	}()
	for i := range 3 {
		from := written.Load()
		waitFor(t, applyWait, func() bool { return written.Load() >= from+40 })
		if err := n.Snapshot(); err != nil {
			t.Fatalf("snapshot %d under writes: %v", i, err)
		}
		check("under writes")
	}
	stop.Store(true)
	wg.Wait()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	if got := f.SnapshotStats().Rebuilt; got != uint64(rounds+3) {
		t.Fatalf("snapshots rebuilt: %d, want %d", got, rounds+3)
	}

	// A restart restores the newest (rebuilt) snapshot and replays the log.
	before, index := stateOf(t, f)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	f2 := NewFSM(nil, nil)
	openLeader(t, cfg, f2)
	if err := f2.WaitApplied(make(chan struct{}), index); err != nil {
		t.Fatal(err)
	}
	after, _ := stateOf(t, f2)
	if !bytes.Equal(before, after) {
		t.Fatal("the restarted node's state differs from the state before the restart")
	}
	if f2.SnapshotStats().Restored != 1 {
		t.Fatalf("restarted node restored %d snapshots, want 1", f2.SnapshotStats().Restored)
	}
}

// failingList is a snapshot store whose List fails while fail is set.
type failingList struct {
	raft.SnapshotStore
	fail atomic.Bool
}

func (s *failingList) List() ([]*raft.SnapshotMeta, error) {
	if s.fail.Load() {
		return nil, errors.New("injected: cannot list snapshots")
	}
	return s.SnapshotStore.List()
}

// TestReplaySnapshotFailureFallsBackToLock: a rebuild that cannot read the
// snapshot store fails that snapshot (nothing half-written is kept), and
// the next snapshot is encoded under the lock, so the log still gets
// compacted; the one after that is rebuilt again.
func TestReplaySnapshotFailureFallsBackToLock(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SnapshotThreshold = 1 << 30
	cfg.SnapshotInterval = 1 << 40
	f := NewFSM(nil, nil)
	live := recordLive(f)
	n := openLeader(t, cfg, f)
	store := &failingList{SnapshotStore: f.replay.snaps}
	f.SetReplaySource(store, f.replay.logs, nil)

	for i := range 5 {
		mustOK(t, propose(t, n, createMRD(string(rune('a'+i)))))
	}
	store.fail.Store(true)
	err := n.Snapshot()
	if err == nil || !errors.Is(err, errRebuild) && !bytes.Contains([]byte(err.Error()), []byte("cannot list")) {
		t.Fatalf("snapshot with a failing store: %v, want the rebuild's error", err)
	}
	if metas, _ := n.snaps.List(); len(metas) != 0 {
		t.Fatalf("%d snapshots kept after a failed rebuild, want 0", len(metas))
	}
	mustOK(t, propose(t, n, createMRD("f")))
	if err := n.Snapshot(); err != nil {
		t.Fatalf("snapshot after a failed rebuild: %v", err)
	}
	st := f.SnapshotStats()
	if st.Direct != 1 || st.Rebuilt != 0 {
		t.Fatalf("after a failed rebuild: direct %d, rebuilt %d; want 1 and 0", st.Direct, st.Rebuilt)
	}
	store.fail.Store(false)
	mustOK(t, propose(t, n, createMRD("g")))
	if err := n.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if got := f.SnapshotStats().Rebuilt; got != 1 {
		t.Fatalf("rebuilt %d, want 1", got)
	}
	meta, data := newestSnapshot(t, n)
	if want, _ := live.bytesAt(meta.Index); !bytes.Equal(data, want) {
		t.Fatal("the rebuilt snapshot differs from the live state at its index")
	}
}

// TestChildSnapshotFailureFallsBackInProcess: a child that fails (here
// one that is not a rebuilder at all) fails that snapshot, keeps nothing
// half-written, and the next snapshot is rebuilt in the node's process;
// the one after goes to a child again.
func TestChildSnapshotFailureFallsBackInProcess(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SnapshotThreshold = 1 << 30
	cfg.SnapshotInterval = 1 << 40
	cfg.SnapshotCapture = CaptureProcess
	cfg.RebuildCommand = []string{"sh", "-c", "echo no rebuilder here >&2; exit 3"}
	f := NewFSM(nil, nil)
	live := recordLive(f)
	n := openLeader(t, cfg, f)
	mustOK(t, propose(t, n, createMRD("a")))
	err := n.Snapshot()
	if err == nil || !strings.Contains(err.Error(), "no rebuilder here") {
		t.Fatalf("snapshot with a failing child: %v, want the child's error", err)
	}
	if metas, _ := n.snaps.List(); len(metas) != 0 {
		t.Fatalf("%d snapshots kept after a failed child, want 0", len(metas))
	}
	mustOK(t, propose(t, n, createMRD("b")))
	if err := n.Snapshot(); err != nil {
		t.Fatalf("snapshot after a failed child: %v", err)
	}
	if st := f.SnapshotStats(); st.Rebuilt != 1 || st.Direct != 0 {
		t.Fatalf("after a failed child: rebuilt %d, direct %d; want 1 and 0", st.Rebuilt, st.Direct)
	}
	meta, data := newestSnapshot(t, n)
	if want, _ := live.bytesAt(meta.Index); !bytes.Equal(data, want) {
		t.Fatal("the snapshot rebuilt in process differs from the live state at its index")
	}
	// The next one goes to the (still failing) child again.
	mustOK(t, propose(t, n, createMRD("c")))
	if err := n.Snapshot(); err == nil {
		t.Fatal("the snapshot after the fallback did not go to the child")
	}
}
