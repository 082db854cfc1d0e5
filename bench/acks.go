package bench

import (
	"sync"
	"sync/atomic"
	"time"
)

// ackTable remembers when each request's opening customer message was
// acknowledged (unix nanoseconds), by request number: the start of its
// notification latency. Lookups take no lock: pages are only ever added,
// and a reader sees either a page or nil.
type ackTable struct {
	mu    sync.Mutex // serialises growth
	pages atomic.Pointer[[]*ackPage]
}

const ackPageBits = 12

type ackPage [1 << ackPageBits]atomic.Int64

func (t *ackTable) set(n uint64, at time.Time) {
	p := n >> ackPageBits
	pages := t.pages.Load()
	if pages == nil || p >= uint64(len(*pages)) || (*pages)[p] == nil {
		pages = t.grow(p)
	}
	(*pages)[p][n&(1<<ackPageBits-1)].Store(at.UnixNano())
}

// get returns the acknowledgement time, or the zero time if none is known
// (yet).
func (t *ackTable) get(n uint64) (time.Time, bool) {
	pages := t.pages.Load()
	p := n >> ackPageBits
	if pages == nil || p >= uint64(len(*pages)) || (*pages)[p] == nil {
		return time.Time{}, false
	}
	v := (*pages)[p][n&(1<<ackPageBits-1)].Load()
	if v == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, v), true
}

// grow makes sure page p exists, copying the page index on growth.
func (t *ackTable) grow(p uint64) *[]*ackPage {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.pages.Load()
	var cur []*ackPage
	if old != nil {
		cur = *old
	}
	if p < uint64(len(cur)) && cur[p] != nil {
		return old
	}
	next := make([]*ackPage, max(uint64(len(cur)), p+1))
	copy(next, cur)
	next[p] = new(ackPage)
	t.pages.Store(&next)
	return &next
}
