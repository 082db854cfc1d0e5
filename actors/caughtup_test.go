package actors

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// markerOutbox is an outbox told when its stream caught up: it records
// the marker among the frames, as a frame of kind "caught_up:<mode>" at
// the seq it was told, so tests check its place in the stream.
type markerOutbox struct{ *outbox }

var _ CaughtUpOutbox = markerOutbox{}

func (o markerOutbox) CaughtUp(mode string, seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.frames = append(o.frames, frame{seq: seq, kind: api.EventKind("caught_up:" + mode)})
}

// markers returns the caught-up markers among o's frames.
func markers(o *outbox) []frame {
	var out []frame
	for _, f := range o.got() {
		if len(f.kind) > 10 && f.kind[:10] == "caught_up:" {
			out = append(out, f)
		}
	}
	return out
}

// TestCaughtUpAfterReplayOrSync: an outbox that asks is told once per
// attach how the stream caught up — after the replayed events ("replay",
// at the last one), at once when there is nothing to replay ("none", at
// the cursor), after the sync and the events behind it ("sync") — and
// before any later live event.
func TestCaughtUpAfterReplayOrSync(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 8)
	for i := uint64(1); i <= 5; i++ {
		f.publish(h, i, []string{keyA}, []string{keyB})
	}
	settle(t, h)

	replay := markerOutbox{&outbox{}}
	h.Attach(keyA, s0(3), true, replay)
	want := []frame{{s0(4), api.EvConversationMessage}, {s0(5), api.EvConversationMessage}, {s0(5), "caught_up:replay"}}
	if got := waitFrames(t, replay.outbox, 3); !slices.Equal(got, want) {
		t.Fatalf("resume within the history: %v, want %v", got, want)
	}

	head := markerOutbox{&outbox{}}
	h.Attach(keyA, s0(5), true, head)
	if got := waitFrames(t, head.outbox, 1); got[0] != (frame{s0(5), "caught_up:none"}) {
		t.Fatalf("resume at the head: %v, want caught_up none at the cursor", got)
	}

	fresh := markerOutbox{&outbox{}}
	h.Attach(keyA, 0, false, fresh)
	want = []frame{{syncSeq(5), api.EvSync}, {syncSeq(5), "caught_up:sync"}}
	if got := waitFrames(t, fresh.outbox, 2); !slices.Equal(got, want) {
		t.Fatalf("fresh attach: %v, want %v", got, want)
	}

	// Evict the cursor's events: a resume from it is a sync.
	for i := uint64(6); i <= 20; i++ {
		f.publish(h, i, []string{keyB})
	}
	settle(t, h)
	old := markerOutbox{&outbox{}}
	h.Attach(keyA, s0(1), true, old)
	want = []frame{{syncSeq(20), api.EvSync}, {syncSeq(20), "caught_up:sync"}}
	if got := waitFrames(t, old.outbox, 2); !slices.Equal(got, want) {
		t.Fatalf("resume older than the history: %v, want %v", got, want)
	}

	// Live events follow the marker, once; a later re-sync (snapshot)
	// brings no second marker.
	f.publish(h, 21, []string{keyA})
	f.reset(h, 30)
	for name, o := range map[string]markerOutbox{"replay": replay, "head": head, "fresh": fresh, "old": old} {
		waitFor(t, 5*time.Second, func() bool {
			g := o.got()
			return len(g) > 0 && g[len(g)-1] == frame{syncSeq(30), api.EvSync}
		}, func() string {
			return fmt.Sprintf("%s: the re-sync at 30 after the live event (have %v)", name, o.got())
		})
		g := o.got()
		if g[len(g)-2] != (frame{s0(21), api.EvConversationMessage}) {
			t.Errorf("%s: %v, want the live event before the re-sync", name, g)
		}
		if m := markers(o.outbox); len(m) != 1 {
			t.Errorf("%s: markers %v, want exactly one", name, m)
		}
	}
}

// TestCaughtUpRacesLiveEvents: attaches racing a stream of publishes get
// their marker after every replayed or synced frame and before every live
// one: nothing delivered before the marker is newer than its seq, and
// nothing after it is older or equal.
func TestCaughtUpRacesLiveEvents(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(1); i <= 200; i++ {
			f.publish(h, i, []string{keyA})
		}
	}()
	var outs []markerOutbox
	for i := range 40 {
		o := markerOutbox{&outbox{}}
		outs = append(outs, o)
		h.Attach(keyA, s0(uint64(i*5)), i%2 == 0, o)
	}
	wg.Wait()
	settle(t, h)
	for i, o := range outs {
		waitFor(t, 5*time.Second, func() bool { return len(markers(o.outbox)) == 1 && api.IndexOf(o.last()) == 200 },
			func() string { return fmt.Sprintf("outbox %d: a marker and entry 200 (have %v)", i, o.got()) })
		g := o.got()
		at := slices.IndexFunc(g, func(f frame) bool { return len(f.kind) > 10 && f.kind[:10] == "caught_up:" })
		m := g[at]
		for _, before := range g[:at] {
			if before.seq > m.seq {
				t.Fatalf("outbox %d: %v delivered before the marker %v", i, before, m)
			}
		}
		if at > 0 && g[at-1].seq != m.seq {
			t.Fatalf("outbox %d: marker %v, last frame before it %v", i, m, g[at-1])
		}
		for _, after := range g[at+1:] {
			if after.seq <= m.seq {
				t.Fatalf("outbox %d: %v delivered after the marker %v", i, after, m)
			}
		}
	}
}

// TestHistoryStats: the hub reports the events its history holds and
// their frames' bytes, bounded by HistorySize, and nothing after a reset.
func TestHistoryStats(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 4)
	if n, b := h.HistoryStats(); n != 0 || b != 0 {
		t.Fatalf("empty hub: %d entries, %d bytes", n, b)
	}
	f.publish(h, 1, []string{keyA}, []string{keyB}) // two events
	settle(t, h)
	frameLen := 8 + len(api.EvConversationMessage) // testEncode's frames
	if n, b := h.HistoryStats(); n != 2 || b != 2*frameLen {
		t.Fatalf("after 2 events: %d entries, %d bytes; want 2, %d", n, b, 2*frameLen)
	}
	for i := uint64(2); i <= 5; i++ {
		f.publish(h, i, []string{keyA})
	}
	settle(t, h)
	if n, b := h.HistoryStats(); n != 4 || b != 4*frameLen {
		t.Fatalf("full history: %d entries, %d bytes; want 4, %d", n, b, 4*frameLen)
	}
	f.reset(h, 9)
	settle(t, h)
	if n, b := h.HistoryStats(); n != 0 || b != 0 {
		t.Fatalf("after reset: %d entries, %d bytes", n, b)
	}
}
