package actors

import "sort"

// entry is one published event as the agent actors see it: its sequence
// number, its recipients and its encoded frame. Entries are immutable once
// published, so they are shared by the history, every actor inbox and
// every replay without copying.
type entry struct {
	seq   uint64
	to    []string
	frame []byte
}

// isFor reports whether key is among the entry's recipients.
func (e *entry) isFor(key string) bool {
	for _, k := range e.to {
		if k == key {
			return true
		}
	}
	return false
}

// history is a bounded ring of recent entries in seq order. It is not safe
// for concurrent use: the hub guards it with its lock.
type history struct {
	buf   []*entry
	start int // index of the oldest entry
	n     int // entries held
	// covered is the seq after which every event is still held: raised to
	// an evicted entry's seq, and by reset. A cursor >= covered can resume.
	covered uint64
	// bytes is the size of the frames held.
	bytes int
}

func newHistory(size int) *history {
	return &history{buf: make([]*entry, size)}
}

// push appends e, evicting the oldest entry when the ring is full.
func (h *history) push(e *entry) {
	h.bytes += len(e.frame)
	if h.n < len(h.buf) {
		h.buf[(h.start+h.n)%len(h.buf)] = e
		h.n++
		return
	}
	old := h.buf[h.start]
	h.covered = max(h.covered, old.seq)
	h.bytes -= len(old.frame)
	h.buf[h.start] = e
	h.start = (h.start + 1) % len(h.buf)
}

// at returns the i'th oldest entry held.
func (h *history) at(i int) *entry { return h.buf[(h.start+i)%len(h.buf)] }

// covers reports whether every event after since is still held.
func (h *history) covers(since uint64) bool { return since >= h.covered }

// after appends to dst every entry held with seq > since, oldest first.
func (h *history) after(since uint64, dst []*entry) []*entry {
	i := sort.Search(h.n, func(i int) bool { return h.at(i).seq > since })
	for ; i < h.n; i++ {
		dst = append(dst, h.at(i))
	}
	return dst
}

// reset forgets every entry and raises covered to at least covered.
func (h *history) reset(covered uint64) {
	clear(h.buf)
	h.start, h.n, h.bytes = 0, 0, 0
	h.covered = max(h.covered, covered)
}
