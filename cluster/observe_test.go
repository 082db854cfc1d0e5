package cluster

import (
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/fsm"
)

// recordingObserver keeps what an Observer was told.
type recordingObserver struct {
	mu        sync.Mutex
	committed []int // commands per committed entry
	stored    int   // log entries written
	writes    int   // log store writes
	slowest   time.Duration
}

func (o *recordingObserver) Committed(commands int, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.committed = append(o.committed, commands)
	o.slowest = max(o.slowest, took)
}

func (o *recordingObserver) LogStored(entries int, took time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil {
		o.stored += entries
		o.writes++
	}
}

func (o *recordingObserver) snapshot() (committed []int, stored, writes int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.committed...), o.stored, o.writes
}

// TestObserverTimesCommitsAndLogWrites: with an Observer, every entry
// proposed on the leader is told with its command count once committed,
// and every write to the log store with its entry count; SetApplied is
// told of each applied command entry with its commands and results.
func TestObserverTimesCommitsAndLogWrites(t *testing.T) {
	obs := &recordingObserver{}
	f := NewFSM(nil, testLogger(t))
	type applied struct {
		index uint64
		cmds  int
		ok    int
	}
	var (
		amu  sync.Mutex
		seen []applied
	)
	f.SetApplied(func(index uint64, cmds []*fsm.Command, results []fsm.Result, _ []fsm.Event) {
		ok := 0
		for _, r := range results {
			if r.Err == nil {
				ok++
			}
		}
		amu.Lock()
		seen = append(seen, applied{index, len(cmds), ok})
		amu.Unlock()
	})
	cfg := testConfig(t, t.TempDir())
	cfg.Observer = obs
	n := openLeader(t, cfg, f)
	_, storedBefore, writesBefore := obs.snapshot()
	if writesBefore == 0 || storedBefore == 0 {
		t.Fatalf("bootstrapping and electing wrote no timed log entry (%d writes, %d entries)", writesBefore, storedBefore)
	}

	one := propose(t, n, createMRD("a"))
	three := propose(t, n, createMRD("b"), createMRD("c"), createMRD("a")) // the last is a duplicate
	committed, stored, writes := obs.snapshot()
	if len(committed) != 2 || committed[0] != 1 || committed[1] != 3 {
		t.Fatalf("commands per committed entry: %v, want [1 3]", committed)
	}
	if stored < storedBefore+2 || writes < writesBefore+2 {
		t.Fatalf("log store: %d entries in %d writes after two proposals, before %d in %d", stored, writes, storedBefore, writesBefore)
	}
	amu.Lock()
	defer amu.Unlock()
	want := []applied{{one.Index, 1, 1}, {three.Index, 3, 2}}
	if len(seen) != len(want) || seen[0] != want[0] || seen[1] != want[1] {
		t.Fatalf("SetApplied saw %+v, want %+v", seen, want)
	}
}
