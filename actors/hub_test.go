package actors

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// fence publishes entry index to key alone and waits until o received it
// (or a sync past it): everything published to key before is then in o.
func fence(t *testing.T, f *fakeFSM, h *Hub, index uint64, key string, o *outbox) {
	t.Helper()
	f.publish(h, index, []string{key})
	waitFor(t, 5*time.Second, func() bool { return o.last() >= s0(index) }, func() string { return fmt.Sprintf("fence %d on %s (have %v)", index, key, o.got()) })
}

// checkStream checks that a session saw exactly the events published to
// key after its starting point, once each, in order: after since for a
// resumed session, after the sync for a synced one. It returns whether the
// stream began with a sync.
func checkStream(t *testing.T, f *fakeFSM, key string, resume bool, since uint64, got []frame) (synced bool) {
	t.Helper()
	start := since
	if len(got) > 0 && got[0].kind == api.EvSync {
		synced = true
		start = got[0].seq
		got = got[1:]
	} else if !resume {
		t.Fatalf("%s: a fresh session must begin with a sync, got %v", key, got)
	}
	want := f.want(key, start)
	if !slices.Equal(seqs(got), want) {
		t.Fatalf("%s (resume=%v since=%d start=%d): got\n%v\nwant\n%v", key, resume, since, start, seqs(got), want)
	}
	return synced
}

// TestExactlyOnceInOrderUnderConcurrentAttach races Attach against Publish
// many times and checks every session sees each of its events exactly
// once, in log order, from its starting point; with a tiny history some
// cursors fall behind and get a sync instead.
func TestExactlyOnceInOrderUnderConcurrentAttach(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 5
	}
	// Every entry fanned out inline (when nothing is queued), or every
	// entry through the fan-out goroutine's queue.
	for _, gap := range []time.Duration{time.Nanosecond, -1} {
		for _, size := range []int{1 << 16, 8} {
			t.Run(fmt.Sprintf("inline-gap=%v/history=%d", gap, size), func(t *testing.T) {
				syncedResumes := 0
				for round := range rounds {
					syncedResumes += raceAttach(t, size, gap, uint64(round))
				}
				if size == 1<<16 && syncedResumes > 0 {
					t.Fatalf("%d resumed sessions got a sync although the history covered them", syncedResumes)
				}
				t.Logf("resumed sessions that fell behind the history and got a sync: %d", syncedResumes)
			})
		}
	}
}

func raceAttach(t *testing.T, historySize int, inlineGap time.Duration, seed uint64) (syncedResumes int) {
	t.Helper()
	keys := []string{keyA, keyB, keyC}
	rng := rand.New(rand.NewPCG(seed, 42))
	f := &fakeFSM{}
	h := newTestHubGap(t, f, historySize, inlineGap)

	const warmup, entries = 10, 200
	// The publisher's plan is drawn up front (the rng is not goroutine-safe).
	// Recipient lists are often the very same slice from event to event
	// (a list's subscribers), which the fan-out groups by; reuse some.
	plan := make([][][]string, warmup+entries)
	var made [][]string
	for i := range plan {
		n := 1 + rng.IntN(3)
		for range n {
			if len(made) > 0 && rng.IntN(2) == 0 {
				plan[i] = append(plan[i], made[rng.IntN(len(made))])
				continue
			}
			var to []string
			for _, k := range keys {
				if rng.IntN(2) == 0 {
					to = append(to, k)
				}
			}
			if len(to) == 0 {
				to = []string{keys[rng.IntN(len(keys))]}
			}
			plan[i] = append(plan[i], to)
			made = append(made, to)
		}
	}
	for i := range warmup {
		f.publish(h, uint64(i+1), plan[i]...)
	}

	type attached struct {
		key    string
		resume bool
		since  uint64
		out    *outbox
	}
	const sessions = 8
	var (
		index   atomic.Uint64 // last entry published
		mu      sync.Mutex
		all     []*attached
		wg      sync.WaitGroup
		starts  = make([]uint64, sessions)
		modes   = make([]int, sessions)
		keyOf   = make([]string, sessions)
		batched = make([]bool, sessions)
		cursors = make([]uint64, sessions)
	)
	index.Store(warmup)
	for i := range sessions {
		starts[i] = uint64(warmup + rng.IntN(entries))
		modes[i] = rng.IntN(3) // 0 fresh, 1 resume from a recent cursor, 2 resume from an old one
		keyOf[i] = keys[rng.IntN(len(keys))]
		cursors[i] = uint64(rng.IntN(warmup + 1))
		batched[i] = rng.IntN(2) == 0
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := warmup; i < len(plan); i++ {
			f.publish(h, uint64(i+1), plan[i]...)
			index.Store(uint64(i + 1))
			if i%16 == 0 {
				runtime.Gosched()
			}
		}
	}()
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for index.Load() < starts[i] {
				runtime.Gosched()
			}
			a := &attached{key: keyOf[i], out: &outbox{}}
			switch modes[i] {
			case 1:
				a.resume, a.since = true, s0(index.Load()-2)
			case 2:
				a.resume, a.since = true, s0(cursors[i])
			}
			if batched[i] {
				h.Attach(a.key, a.since, a.resume, batchOutbox{a.out})
			} else {
				h.Attach(a.key, a.since, a.resume, a.out)
			}
			mu.Lock()
			all = append(all, a)
			mu.Unlock()
		}()
	}
	wg.Wait()

	// One last entry to every key: each session's stream is complete once
	// it has arrived (or a sync after it).
	last := uint64(len(plan) + 1)
	f.publish(h, last, keys)
	for _, a := range all {
		waitFor(t, 10*time.Second, func() bool { return a.out.last() >= s0(last) },
			func() string {
				return fmt.Sprintf("seed %d: %s (resume=%v since=%d) to reach the last entry, have %v", seed, a.key, a.resume, a.since, a.out.got())
			})
		if checkStream(t, f, a.key, a.resume, a.since, a.out.got()) && a.resume {
			syncedResumes++
		}
	}
	return syncedResumes
}

// TestResumeReplaysOnlyMissingEvents resumes from a cursor the history
// covers: the events after it come, no sync, then live ones.
func TestResumeReplaysOnlyMissingEvents(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	for i := uint64(1); i <= 10; i++ {
		f.publish(h, i, []string{keyA}, []string{keyB})
	}
	o := &outbox{}
	h.Attach(keyA, s0(5), true, o)
	if got := seqs(waitFrames(t, o, 5)); !slices.Equal(got, seqRange(6, 10)) {
		t.Fatalf("replay: got %v, want entries 6..10", got)
	}
	f.publish(h, 11, []string{keyA})
	if got := seqs(waitFrames(t, o, 6)); got[5] != s0(11) {
		t.Fatalf("live: got %v", got)
	}
}

// TestCursorOlderThanHistoryGetsSync makes the history tiny: a cursor it no
// longer covers gets a sync, then every event after the sync — from the
// history when the view lags the log, then live.
func TestCursorOlderThanHistoryGetsSync(t *testing.T) {
	f := &fakeFSM{lag: 2}
	h := newTestHub(t, f, 4)
	for i := uint64(1); i <= 10; i++ {
		f.publish(h, i, []string{keyA})
	}
	settle(t, h) // the history has dropped the cursor's events
	o := &outbox{}
	h.Attach(keyA, s0(2), true, o)
	got := waitFrames(t, o, 3)
	want := []frame{{syncSeq(8), api.EvSync}, {s0(9), api.EvConversationMessage}, {s0(10), api.EvConversationMessage}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	f.publish(h, 11, []string{keyA})
	if got := waitFrames(t, o, 4); got[3].seq != s0(11) {
		t.Fatalf("live after sync: got %v", got)
	}

	// A cursor just inside the history still resumes.
	o2 := &outbox{}
	h.Attach(keyA, s0(8), true, o2)
	if got := seqs(waitFrames(t, o2, 3)); !slices.Equal(got, seqRange(9, 11)) {
		t.Fatalf("covered cursor: got %v, want entries 9..11", got)
	}
}

// TestFreshAttachGetsSyncFirst: without resume, a sync reflecting the
// current index comes first, then live events.
func TestFreshAttachGetsSyncFirst(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	for i := uint64(1); i <= 3; i++ {
		f.publish(h, i, []string{keyA})
	}
	o := &outbox{}
	h.Attach(keyA, 0, false, o)
	if got := waitFrames(t, o, 1); got[0] != (frame{syncSeq(3), api.EvSync}) {
		t.Fatalf("got %v, want the sync at 3", got)
	}
	f.publish(h, 4, []string{keyA})
	if got := waitFrames(t, o, 2); got[1].seq != s0(4) {
		t.Fatalf("got %v", got)
	}
}

// TestCursorAheadOfNodeWaits: a cursor from a node further along gets the
// events after it and nothing before.
func TestCursorAheadOfNodeWaits(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	for i := uint64(1); i <= 3; i++ {
		f.publish(h, i, []string{keyA})
	}
	o := &outbox{}
	h.Attach(keyA, s0(6), true, o)
	for i := uint64(4); i <= 8; i++ {
		f.publish(h, i, []string{keyA})
	}
	if got := seqs(waitFrames(t, o, 2)); !slices.Equal(got, seqRange(7, 8)) {
		t.Fatalf("got %v, want entries 7..8", got)
	}
}

// TestResetResyncsEverySession: after a snapshot install every session of
// every key gets a sync at the snapshot's index, then live events; the
// history is gone, so an old cursor gets a sync too.
func TestResetResyncsEverySession(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	a1, a2, b := &outbox{}, &outbox{}, &outbox{}
	h.Attach(keyA, 0, true, a1)
	h.Attach(keyA, 0, true, a2)
	h.Attach(keyB, 0, true, b)
	for i := uint64(1); i <= 3; i++ {
		f.publish(h, i, []string{keyA, keyB})
	}
	for _, o := range []*outbox{a1, a2, b} {
		waitFrames(t, o, 3)
	}
	f.reset(h, 50)
	for _, o := range []*outbox{a1, a2, b} {
		if got := waitFrames(t, o, 4); got[3] != (frame{syncSeq(50), api.EvSync}) {
			t.Fatalf("after reset: got %v, want a sync at 50", got)
		}
	}
	f.publish(h, 51, []string{keyA, keyB})
	for _, o := range []*outbox{a1, a2, b} {
		if got := waitFrames(t, o, 5); got[4].seq != s0(51) {
			t.Fatalf("live after reset: got %v", got)
		}
	}
	o := &outbox{}
	h.Attach(keyA, s0(3), true, o)
	if got := waitFrames(t, o, 1); got[0] != (frame{syncSeq(51), api.EvSync}) {
		t.Fatalf("cursor before the snapshot: got %v, want a sync", got)
	}
	// A cursor after the snapshot resumes from the new history.
	o2 := &outbox{}
	h.Attach(keyA, syncSeq(50), true, o2)
	if got := seqs(waitFrames(t, o2, 1)); got[0] != s0(51) {
		t.Fatalf("cursor at the snapshot: got %v", got)
	}
}

// TestSlowConsumerIsDropped: a session whose outbox refuses is never
// delivered to again, while another session of the same key and sessions
// of other keys keep receiving.
func TestSlowConsumerIsDropped(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	slow, fast, other := &outbox{limit: 2}, &outbox{}, &outbox{}
	h.Attach(keyA, 0, true, slow)
	h.Attach(keyA, 0, true, fast)
	h.Attach(keyB, 0, true, other)
	for i := uint64(1); i <= 10; i++ {
		f.publish(h, i, []string{keyA, keyB})
	}
	fence(t, f, h, 11, keyA, fast)
	waitFrames(t, other, 10)
	if got := seqs(fast.got()); !slices.Equal(got, seqRange(1, 11)) {
		t.Fatalf("fast session: got %v", got)
	}
	if got := seqs(slow.got()); !slices.Equal(got, seqRange(1, 2)) {
		t.Fatalf("slow session: got %v", got)
	}
	if n := slow.deliverCalls(); n != 3 {
		t.Fatalf("slow session: Deliver called %d times, want 3 (2 accepted, 1 refused, then never again)", n)
	}
}

// TestDeliverPanicDropsOnlyThatSession: an outbox that panics is treated as
// cut off; the actor and the other sessions carry on.
func TestDeliverPanicDropsOnlyThatSession(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	bad, good := &panicOutbox{}, &outbox{}
	h.Attach(keyA, 0, true, bad)
	h.Attach(keyA, 0, true, good)
	for i := uint64(1); i <= 3; i++ {
		f.publish(h, i, []string{keyA})
	}
	fence(t, f, h, 4, keyA, good)
	if got := seqs(good.got()); !slices.Equal(got, seqRange(1, 4)) {
		t.Fatalf("good session: got %v", got)
	}
	if n := bad.calls.Load(); n != 1 {
		t.Fatalf("panicking outbox called %d times, want 1", n)
	}
}

type panicOutbox struct{ calls atomic.Int32 }

func (p *panicOutbox) Deliver([]byte) bool {
	p.calls.Add(1)
	panic("boom")
}

// TestEventsGoOnlyToRecipients: a key not in an event's To gets nothing.
func TestEventsGoOnlyToRecipients(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	a, b := &outbox{}, &outbox{}
	h.Attach(keyA, 0, true, a)
	h.Attach(keyB, 0, true, b)
	for i := uint64(1); i <= 5; i++ {
		f.publish(h, i, []string{keyA}, []string{keyC})
	}
	fence(t, f, h, 6, keyB, b)
	waitFrames(t, a, 5)
	if got := seqs(b.got()); !slices.Equal(got, []uint64{s0(6)}) {
		t.Fatalf("b got %v, want only its own event", got)
	}
}

// TestPublishNeverBlocks: Publish returns promptly even when one session's
// outbox is full and another's Deliver does not return at all.
func TestPublishNeverBlocks(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	stuck := &blockingOutbox{release: make(chan struct{})}
	t.Cleanup(func() { close(stuck.release) }) // runs before the hub closes
	full := &outbox{limit: 1}
	h.Attach(keyA, 0, true, stuck)
	h.Attach(keyB, 0, true, full)
	const n = 20000
	var done atomic.Bool
	go func() {
		for i := uint64(1); i <= n; i++ {
			f.publish(h, i, []string{keyA, keyB})
		}
		done.Store(true)
	}()
	waitFor(t, 10*time.Second, done.Load, says("%d publishes to return while an outbox is stuck", n))
	waitFor(t, 5*time.Second, func() bool { return stuck.calls.Load() == 1 }, says("the stuck outbox to be called"))
}

type blockingOutbox struct {
	calls   atomic.Int32
	release chan struct{}
}

func (b *blockingOutbox) Deliver([]byte) bool {
	b.calls.Add(1)
	<-b.release
	return true
}

// TestDetachStopsDelivery: once detach returns, Deliver is not called
// again; the other session of the key keeps receiving.
func TestDetachStopsDelivery(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	gone, stays := &outbox{}, &outbox{}
	detach := h.Attach(keyA, 0, true, gone)
	h.Attach(keyA, 0, true, stays)
	f.publish(h, 1, []string{keyA})
	waitFrames(t, gone, 1)
	detach()
	calls := gone.deliverCalls()
	for i := uint64(2); i <= 5; i++ {
		f.publish(h, i, []string{keyA})
	}
	fence(t, f, h, 6, keyA, stays)
	if n := gone.deliverCalls(); n != calls {
		t.Fatalf("Deliver called %d times after detach", n-calls)
	}
	detach() // idempotent
}

// TestUnknownKeyGetsNothing: when View does not know the key, a session
// that needs a sync gets nothing at all.
func TestUnknownKeyGetsNothing(t *testing.T) {
	f := &fakeFSM{unknown: map[string]bool{keyA: true}}
	h := newTestHub(t, f, 0)
	ghost, observer := &outbox{}, &outbox{}
	h.Attach(keyA, 0, false, ghost)
	h.Attach(keyA, 0, true, observer) // resumes: needs no view
	for i := uint64(1); i <= 3; i++ {
		f.publish(h, i, []string{keyA})
	}
	fence(t, f, h, 4, keyA, observer)
	if got := ghost.got(); len(got) != 0 {
		t.Fatalf("unknown key's synced session got %v", got)
	}
}

// TestClosedHubIsInert: after Close nothing is delivered and queries fail.
func TestClosedHubIsInert(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	o := &outbox{}
	h.Attach(keyA, 0, true, o)
	h.Close()
	f.publish(h, 1, []string{keyA})
	h.Reset(2)
	late := &outbox{}
	h.Attach(keyA, 0, false, late)()
	if _, _, err := h.ListView("L1"); err != ErrClosed {
		t.Fatalf("ListView after Close: %v, want ErrClosed", err)
	}
	if _, _, err := h.Conversation("R1"); err != ErrClosed {
		t.Fatalf("Conversation after Close: %v, want ErrClosed", err)
	}
	if o.deliverCalls()+late.deliverCalls() != 0 {
		t.Fatalf("delivered after Close: %v %v", o.got(), late.got())
	}
	h.Close() // idempotent
}

func TestNewHubValidates(t *testing.T) {
	if _, err := NewHub(Config{View: (&fakeFSM{}).View}); err == nil {
		t.Fatal("no Encode: want an error")
	}
	if _, err := NewHub(Config{Encode: testEncode}); err == nil {
		t.Fatal("no View: want an error")
	}
	if _, err := NewHub(Config{Encode: testEncode, View: (&fakeFSM{}).View, HistorySize: -1}); err == nil {
		t.Fatal("negative HistorySize: want an error")
	}
}

// TestLongReplayReachesABatchingOutboxInSlices: a resume whose replay is
// longer than maxBatch is handed to a batching outbox in slices of at most
// maxBatch frames, so an outbox that could never take the whole replay at
// once (a session bounded in frames) still gets all of it, in order.
func TestLongReplayReachesABatchingOutboxInSlices(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	n := uint64(3*maxBatch + 7)
	for i := uint64(1); i <= n; i++ {
		f.publish(h, i, []string{keyA})
	}
	settle(t, h)
	o := &outbox{}
	h.Attach(keyA, s0(0), true, batchOutbox{o})
	if got := seqs(waitFrames(t, o, int(n))); !slices.Equal(got, seqRange(1, n)) {
		t.Fatalf("replay of %d: got %d frames, first %v", n, len(got), got[:min(len(got), 5)])
	}
	for _, b := range o.batchSizes() {
		if b > maxBatch {
			t.Fatalf("a batch of %d frames, more than %d: %v", b, maxBatch, o.batchSizes())
		}
	}
}
