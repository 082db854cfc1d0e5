package actors

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// TestEntryReachesSessionInOneBatch: the events of one entry for a key
// reach a session that takes batches in a single DeliverBatch, in order,
// without the events for other keys.
func TestEntryReachesSessionInOneBatch(t *testing.T) {
	forEachFanOut(t, testEntryReachesSessionInOneBatch)
}

// forEachFanOut runs test with a hub that fans out on the publisher's
// goroutine while entries come slowly (the default) and with one that
// always goes through the queue.
func forEachFanOut(t *testing.T, test func(t *testing.T, h *Hub, f *fakeFSM)) {
	for _, tc := range []struct {
		name string
		gap  time.Duration
	}{{"inline-when-slow", 0}, {"queued", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeFSM{}
			test(t, newTestHubGap(t, f, 0, tc.gap), f)
		})
	}
}

func testEntryReachesSessionInOneBatch(t *testing.T, h *Hub, f *fakeFSM) {
	o := &outbox{}
	h.Attach(keyA, 0, true, batchOutbox{o})
	fence(t, f, h, 1, keyA, o)
	f.publish(h, 2, []string{keyA}, []string{keyB}, []string{keyA, keyB}, []string{keyA})
	got := waitFrames(t, o, 4)
	if want := []uint64{s0(1), s0(2), s0(2) + 2, s0(2) + 3}; !slices.Equal(seqs(got), want) {
		t.Fatalf("got %v, want seqs %v", got, want)
	}
	if b := o.batchSizes(); !slices.Equal(b, []int{1, 3}) {
		t.Fatalf("DeliverBatch took batches of %v, want the fence's event, then one of the entry's 3 events", b)
	}
}

// TestGroupByRecipient: every recipient of a run gets exactly its events,
// in order, in one group, whether the run names few recipient lists (some
// the same slice again) or more than maxSets.
func TestGroupByRecipient(t *testing.T) {
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}
	for _, tc := range []struct{ events, fresh int }{{1, 1}, {10, 1}, {50, 3}, {300, 2}, {300, 200}} {
		t.Run(fmt.Sprintf("events=%d/fresh-lists=%d", tc.events, tc.fresh), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.events), uint64(tc.fresh)))
			var pool [][]string
			ents := make([]*entry, tc.events)
			for i := range ents {
				var to []string
				if len(pool) < tc.fresh {
					for _, k := range keys {
						if rng.IntN(3) == 0 {
							to = append(to, k)
						}
					}
					pool = append(pool, to)
				} else {
					to = pool[rng.IntN(len(pool))]
				}
				ents[i] = &entry{seq: uint64(i + 1), to: to, frame: []byte{byte(i)}}
			}
			seen := map[string]bool{}
			for _, g := range groupByRecipient(ents) {
				if len(g.d.entries) != len(g.d.frames) {
					t.Fatalf("a delivery of %d entries has %d frames", len(g.d.entries), len(g.d.frames))
				}
				for i, e := range g.d.entries {
					if &g.d.frames[i][0] != &e.frame[0] {
						t.Fatalf("frame %d is not its entry's", i)
					}
				}
				for _, k := range g.keys {
					if seen[k] {
						t.Fatalf("%s is in two groups", k)
					}
					seen[k] = true
					var want []*entry
					for _, e := range ents {
						if e.isFor(k) {
							want = append(want, e)
						}
					}
					if !slices.Equal(g.d.entries, want) {
						t.Fatalf("%s gets %d entries, want %d", k, len(g.d.entries), len(want))
					}
				}
			}
			for _, k := range keys {
				for _, e := range ents {
					if e.isFor(k) && !seen[k] {
						t.Fatalf("%s has events but no group", k)
					}
				}
			}
		})
	}
}

// TestPublishWaitsForRoomUntilClose: with the fan-out stuck, Publish waits
// once PublishQueue entries are queued (backpressure on the apply
// goroutine, not unbounded memory), Close releases it, and Publish and
// Reset after Close return at once.
func TestPublishWaitsForRoomUntilClose(t *testing.T) {
	inEncode, gate := make(chan struct{}, 1), make(chan struct{})
	f := &fakeFSM{}
	h, err := NewHub(Config{
		PublishQueue: 1,
		InlineGap:    -1, // always through the queue
		View:         f.View,
		Logger:       slog.New(slog.DiscardHandler),
		Encode: func(ev fsm.Event) ([]byte, error) {
			select {
			case inEncode <- struct{}{}:
			default:
			}
			<-gate
			return testEncode(ev)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(i uint64) []fsm.Event {
		return []fsm.Event{{Seq: s0(i), Kind: api.EvConversationMessage, To: []string{keyA}}}
	}
	h.Publish(1, ev(1))
	select {
	case <-inEncode: // the fan-out holds entry 1
	case <-time.After(5 * time.Second):
		t.Fatal("the fan-out never took entry 1")
	}
	h.Publish(2, ev(2)) // fills the queue
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		h.Publish(3, ev(3))
	}()
	select {
	case <-returned:
		t.Fatal("Publish returned with the queue full")
	case <-time.After(50 * time.Millisecond):
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		h.Close()
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a waiting Publish")
	}
	h.Publish(4, ev(4))
	h.Reset(5)
	close(gate)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}

// TestResetKeepsItsPlaceAmongEntries: Reset goes through the same queue as
// Publish, so a session sees the entries before it, then the sync, then
// the entries after it, whatever the fan-out's pace.
func TestResetKeepsItsPlaceAmongEntries(t *testing.T) {
	forEachFanOut(t, testResetKeepsItsPlaceAmongEntries)
}

func testResetKeepsItsPlaceAmongEntries(t *testing.T, h *Hub, f *fakeFSM) {
	o := &outbox{}
	h.Attach(keyA, 0, true, batchOutbox{o})
	fence(t, f, h, 1, keyA, o)
	for i := uint64(2); i <= 5; i++ {
		f.publish(h, i, []string{keyA})
	}
	f.mu.Lock()
	f.index = 10 // the View the resync reads: the snapshot's state
	f.mu.Unlock()
	h.Reset(10)
	f.publish(h, 11, []string{keyA})
	fence(t, f, h, 12, keyA, o)
	got := o.got()
	if len(got) < 6 || !slices.Equal(seqs(got[:5]), seqRange(1, 5)) {
		t.Fatalf("got %v, want entries 1..5 first", got)
	}
	// The sync reflects the state when the actor read it: at the snapshot
	// or already past entry 11; the events after it follow.
	sync := got[5]
	if sync.kind != api.EvSync || sync.seq < syncSeq(10) {
		t.Fatalf("got %v, want a sync at 10 or later after entry 5", got)
	}
	if rest := seqs(got[6:]); !slices.Equal(rest, f.want(keyA, sync.seq)) {
		t.Fatalf("after the sync got %v, want %v", rest, f.want(keyA, sync.seq))
	}
}

// TestGroupByRecipientSkipsUnaddressed: an event addressed to nobody goes
// to nobody, also when every other event of the run shares one recipient
// list.
func TestGroupByRecipientSkipsUnaddressed(t *testing.T) {
	to := []string{"k0", "k1"}
	ents := []*entry{
		{seq: 1, to: to, frame: []byte{1}},
		{seq: 2, frame: []byte{2}},
		{seq: 3, to: to, frame: []byte{3}},
	}
	for _, g := range groupByRecipient(ents) {
		for _, e := range g.d.entries {
			if len(e.to) == 0 {
				t.Fatalf("%v get event %d, addressed to nobody", g.keys, e.seq)
			}
		}
	}
}
