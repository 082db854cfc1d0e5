// Package gchold pauses the garbage collector while a process builds a
// large structure it will keep, such as a state restored from a snapshot.
//
// Restoring a million open requests allocates about a gigabyte of which
// two thirds stays live. With the collector on, the heap grows through a
// dozen cycles on the way, each marking everything built so far: about
// twice the final heap is marked, and the collector takes a third of the
// CPU the restore uses. Held, it marks nothing until the build is done,
// and then the finished heap once, concurrently with whatever runs next.
//
// The collector's settings are the process's, so this package keeps the
// one piece of process-wide state it must: how many holds are open and
// the settings to put back when the last one is released. A hold is
// bounded: it sets a soft memory limit of the heap at its start plus the
// budget it is given (or keeps a lower limit the process already had), so
// the collector runs again if the build, or the rest of the process,
// allocates beyond it.
package gchold

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// guard is the process-wide count of open holds and what to restore.
var guard struct {
	mu      sync.Mutex
	n       int
	percent int   // GOGC before the first hold
	limit   int64 // the memory limit before the first hold
	set     int64 // the memory limit the holds set
}

// Hold pauses the collector until the returned release is called (once;
// later calls do nothing), letting the heap grow by budget bytes beyond
// its size now before the collector runs anyway. Holds may overlap; the
// collector's settings come back when the last is released.
func Hold(budget int64) (release func()) {
	guard.mu.Lock()
	defer guard.mu.Unlock()
	if guard.n == 0 {
		guard.limit = debug.SetMemoryLimit(-1)
		guard.set = min(guard.limit, satAdd(heapNow(), budget))
		debug.SetMemoryLimit(guard.set)
		guard.percent = debug.SetGCPercent(-1)
	} else if guard.set < guard.limit {
		guard.set = min(guard.limit, satAdd(guard.set, budget))
		debug.SetMemoryLimit(guard.set)
	}
	guard.n++
	var once sync.Once
	return func() { once.Do(releaseHold) }
}

func releaseHold() {
	guard.mu.Lock()
	defer guard.mu.Unlock()
	guard.n--
	if guard.n == 0 {
		debug.SetGCPercent(guard.percent)
		debug.SetMemoryLimit(guard.limit)
	}
}

// heapNow is the memory the Go runtime holds from the OS, as the memory
// limit counts it (approximately): every class, less the heap released.
// Both metrics exist in every Go this module builds with.
func heapNow() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
