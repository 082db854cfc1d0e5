package actors

import (
	"fmt"
	"slices"
	"time"

	"github.com/switchboard/switchboard/fsm"
)

// The fan-out: Publish and Reset queue their work (pubItem) in log order
// and return, so Raft's apply goroutine does not wait for encoding and
// actor sends. One goroutine (fanOutLoop) takes the queue in order. For a
// run of entries it encodes each event once, appends it to the history,
// and sends each recipient's agent actor a single message (a delivery)
// holding all of that recipient's events of the run, which the actor hands
// to each session in one go.
//
// Ordering with Attach: an event is in the history, or sent to the agent
// actors registered at that moment, under h.mu, just as when Publish ran on
// the apply goroutine; only later. A session attaching sees each event
// either in its replay of the history (published before the attach) or in
// its actor's inbox (published after), and drops by seq what it already
// has. An event still queued when a session syncs is one the sync's view
// may already reflect: it reaches the actor later and is dropped by seq
// if so (its seq is at most the sync's).

// pubItem is one queued unit of fan-out work: the events of entry index,
// or a Reset at index, or (tests) a barrier closed when it is reached.
type pubItem struct {
	index   uint64
	evs     []fsm.Event
	reset   bool
	barrier chan struct{}
	forget  []string // keys whose principal was deleted (Forget)
}

// ordered reports whether the item must be handled on its own, after
// everything queued before it and before everything queued after.
func (it *pubItem) ordered() bool { return it.reset || it.barrier != nil || it.forget != nil }

// maxRun bounds how many queued entries one round of the fan-out merges
// into one message per recipient.
const maxRun = 64

// maxSets bounds how many distinct recipient lists a run may have for the
// grouping by set membership (a bit mask per key); past it, the run is
// grouped key by key.
const maxSets = 64

// delivery is one agent actor message: the events of a run of log entries
// that are for its key, in seq order, with their frames in the same order.
// It is shared by every key with the same events, so it is never changed.
type delivery struct {
	entries []*entry
	frames  [][]byte
}

func newDelivery(entries []*entry) *delivery {
	frames := make([][]byte, len(entries))
	for i, e := range entries {
		frames[i] = e.frame
	}
	return &delivery{entries: entries, frames: frames}
}

// inline fans out entry index on the caller's goroutine if nothing is
// queued or being fanned out, and reports whether it did. Nothing can
// overtake it: the items queued before it were done (queued is 0), and
// the goroutine takes fanMu before fanning out anything queued after.
func (h *Hub) inline(index uint64, evs []fsm.Event) bool {
	if h.queued.Load() != 0 {
		return false
	}
	h.fanMu.Lock()
	defer h.fanMu.Unlock()
	if h.queued.Load() != 0 {
		return false
	}
	h.publish([]pubItem{{index: index, evs: evs}})
	return true
}

// enqueue queues it for the fan-out goroutine, waiting for room if the
// queue is full, unless the hub is closed.
func (h *Hub) enqueue(it pubItem) {
	select {
	case <-h.done:
		return
	default:
	}
	h.queued.Add(1)
	select {
	case h.queue <- it:
	case <-h.done:
	}
}

// fanOutLoop runs the queued work in order until Close.
func (h *Hub) fanOutLoop() {
	defer close(h.loopDone)
	run := make([]pubItem, 0, maxRun)
	for {
		select {
		case it := <-h.queue:
			run = append(run, it)
		case <-h.done:
			return
		}
		// Merge what else is queued already: entries the fan-out fell
		// behind on go out as one message per recipient.
	more:
		for len(run) < maxRun && !run[len(run)-1].ordered() {
			select {
			case it := <-h.queue:
				run = append(run, it)
			default:
				break more
			}
		}
		h.fanMu.Lock()
		last := &run[len(run)-1]
		if last.ordered() {
			h.publish(run[:len(run)-1])
			switch {
			case last.reset:
				h.reset(last.index)
			case last.forget != nil:
				h.forget(last.index, last.forget)
			case last.barrier != nil:
				close(last.barrier)
			}
		} else {
			h.publish(run)
		}
		h.queued.Add(-int64(len(run)))
		h.fanMu.Unlock()
		clear(run)
		run = run[:0]
	}
}

// publish fans out a run of entries, in log order.
func (h *Hub) publish(items []pubItem) {
	n := 0
	for i := range items {
		n += len(items[i].evs)
	}
	if n == 0 {
		return
	}
	block := make([]entry, n)
	ents := make([]*entry, 0, n)
	k := 0
	for i := range items {
		for j := range items[i].evs {
			ev := &items[i].evs[j]
			frame, err := h.cfg.Encode(*ev)
			if err != nil {
				// Nobody can receive an event that does not encode; the
				// others of the entry still go out.
				h.log.Error("cannot encode event; it is not delivered",
					"index", items[i].index, "seq", ev.Seq, "kind", ev.Kind, "err", err)
			} else {
				block[k] = entry{seq: ev.Seq, to: ev.To, frame: frame}
				ents = append(ents, &block[k])
			}
			k++
		}
	}
	groups := groupByRecipient(ents)

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for _, e := range ents {
		h.hist.push(e)
	}
	for _, g := range groups {
		for _, key := range g.keys {
			if pid := h.agents[key]; pid != nil {
				h.engine.Send(pid, g.d)
			}
		}
	}
	k = 0
	for i := range items {
		for _, ev := range items[i].evs {
			if block[k].frame != nil {
				h.routeView(ev)
			}
			h.routeTimers(ev)
			k++
		}
	}
}

// group is the keys that get the same delivery.
type group struct {
	keys []string
	d    *delivery
}

// groupByRecipient returns, for every recipient of ents (in seq order),
// the delivery of its entries; keys with the same entries share one. A run
// usually names a handful of distinct recipient lists (a list's
// subscribers, a conversation's audience, one agent), each the same slice
// in every event that uses it, so keys are grouped by which of those lists
// they are on.
func groupByRecipient(ents []*entry) []group {
	var sets [][]string
	setOf := make([]int, len(ents))
	for i, e := range ents {
		setOf[i] = -1
		if len(e.to) == 0 {
			continue
		}
		j := 0
		for j < len(sets) && !sameSlice(sets[j], e.to) {
			j++
		}
		if j == len(sets) {
			if len(sets) == maxSets {
				return groupByKey(ents)
			}
			sets = append(sets, e.to)
		}
		setOf[i] = j
	}
	switch len(sets) {
	case 0:
		return nil
	case 1:
		mine := ents
		if slices.Contains(setOf, -1) { // events addressed to nobody
			mine = nil
			for i, e := range ents {
				if setOf[i] >= 0 {
					mine = append(mine, e)
				}
			}
		}
		return []group{{keys: sets[0], d: newDelivery(mine)}}
	}
	masks := map[string]uint64{}
	for j, set := range sets {
		for _, key := range set {
			masks[key] |= 1 << j
		}
	}
	byMask := map[uint64]int{}
	var groups []group
	for key, m := range masks {
		gi, ok := byMask[m]
		if !ok {
			var mine []*entry
			for i, e := range ents {
				if setOf[i] >= 0 && m&(1<<setOf[i]) != 0 {
					mine = append(mine, e)
				}
			}
			gi = len(groups)
			byMask[m] = gi
			groups = append(groups, group{d: newDelivery(mine)})
		}
		groups[gi].keys = append(groups[gi].keys, key)
	}
	return groups
}

// groupByKey is groupByRecipient key by key.
func groupByKey(ents []*entry) []group {
	byKey := map[string][]*entry{}
	for _, e := range ents {
		for _, key := range e.to {
			if l := byKey[key]; len(l) == 0 || l[len(l)-1] != e {
				byKey[key] = append(l, e)
			}
		}
	}
	groups := make([]group, 0, len(byKey))
	for key, mine := range byKey {
		groups = append(groups, group{keys: []string{key}, d: newDelivery(mine)})
	}
	return groups
}

// sameSlice reports whether a and b are the same slice (same elements in
// the same memory), the cheap test of an unchanged recipient list; equal
// lists in different memory merely make two sets.
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// awaitFanOut waits until the fan-out has handled everything Publish and
// Reset queued before the call, so that a query answers from views that
// reflect every entry applied so far (read-your-writes), as when Publish
// ran on the apply goroutine.
func (h *Hub) awaitFanOut() error {
	b := make(chan struct{})
	t := time.NewTimer(h.cfg.QueryTimeout)
	defer t.Stop()
	h.queued.Add(1)
	select {
	case h.queue <- pubItem{barrier: b}:
	case <-h.done:
		return ErrClosed
	case <-t.C:
		h.queued.Add(-1)
		return fmt.Errorf("%w: the fan-out queue is full", ErrTimeout)
	}
	select {
	case <-b:
		return nil
	case <-h.done:
		return ErrClosed
	case <-t.C:
		return fmt.Errorf("%w: the fan-out did not catch up", ErrTimeout)
	}
}
