package gchold

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestHoldPausesAndRestores checks that a hold turns the collector off
// under a memory limit of the heap plus its budget, that overlapping holds
// keep it off until the last is released, that a release twice counts
// once, and that the settings before the first hold come back.
func TestHoldPausesAndRestores(t *testing.T) {
	old := debug.SetGCPercent(77)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer func() { debug.SetGCPercent(old); debug.SetMemoryLimit(oldLimit) }()

	heap := heapNow()
	r1 := Hold(1 << 30)
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Fatalf("GOGC during a hold: %d, want -1 (off)", p)
	}
	l1 := debug.SetMemoryLimit(-1)
	if l1 < heap+1<<30 || l1 > heapNow()+1<<30 {
		t.Fatalf("limit during a hold: %d, want the heap (%d) plus 1 GiB", l1, heap)
	}
	r2 := Hold(1 << 20)
	if l2 := debug.SetMemoryLimit(-1); l2 != l1+1<<20 {
		t.Fatalf("a second hold's limit: %d, want %d", l2, l1+1<<20)
	}
	r1()
	r1() // once only
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Fatalf("GOGC with one hold still open: %d, want -1", p)
	}
	r2()
	if p := debug.SetGCPercent(-1); p != 77 {
		t.Fatalf("GOGC after the last release: %d, want 77", p)
	}
	debug.SetGCPercent(77)
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Fatalf("limit after the last release: %d, want none", l)
	}
}

// TestHoldKeepsALowerLimit checks that a hold never raises a memory limit
// the process already had.
func TestHoldKeepsALowerLimit(t *testing.T) {
	oldLimit := debug.SetMemoryLimit(heapNow() + 1<<20)
	defer debug.SetMemoryLimit(oldLimit)
	want := debug.SetMemoryLimit(-1)
	release := Hold(1 << 40)
	if l := debug.SetMemoryLimit(-1); l != want {
		t.Fatalf("limit during a hold: %d, want the process's own %d", l, want)
	}
	release()
	if l := debug.SetMemoryLimit(-1); l != want {
		t.Fatalf("limit after: %d, want %d", l, want)
	}
}
