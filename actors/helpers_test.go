package actors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testutil"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// testEncode encodes just an event's seq and kind: enough to check order.
func testEncode(ev fsm.Event) ([]byte, error) {
	b := make([]byte, 8, 8+len(ev.Kind))
	binary.BigEndian.PutUint64(b, ev.Seq)
	return append(b, ev.Kind...), nil
}

// frame is a decoded testEncode frame.
type frame struct {
	seq  uint64
	kind api.EventKind
}

func (f frame) String() string {
	return fmt.Sprintf("%d.%d/%s", api.IndexOf(f.seq), f.seq&(1<<api.SeqShift-1), f.kind)
}

func decodeFrame(b []byte) frame {
	return frame{seq: binary.BigEndian.Uint64(b), kind: api.EventKind(b[8:])}
}

// outbox is a fake session outbox recording what it accepts. With limit >
// 0 it refuses every frame past the limit'th.
type outbox struct {
	mu      sync.Mutex
	frames  []frame
	calls   int
	limit   int
	batches []int // sizes of the DeliverBatch calls (batchOutbox)
}

func (o *outbox) Deliver(b []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	if o.limit > 0 && len(o.frames) >= o.limit {
		return false
	}
	o.frames = append(o.frames, decodeFrame(b))
	return true
}

// batchOutbox is an outbox that also takes frames in batches.
type batchOutbox struct{ *outbox }

var _ BatchOutbox = batchOutbox{}

func (o batchOutbox) DeliverBatch(bs [][]byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	o.batches = append(o.batches, len(bs))
	if o.limit > 0 && len(o.frames)+len(bs) > o.limit {
		return false
	}
	for _, b := range bs {
		o.frames = append(o.frames, decodeFrame(b))
	}
	return true
}

// batchSizes returns the sizes of the batches DeliverBatch took.
func (o *outbox) batchSizes() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.batches)
}

func (o *outbox) got() []frame {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.frames)
}

func (o *outbox) deliverCalls() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}

// last returns the seq of the last frame received, 0 if none.
func (o *outbox) last() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.frames) == 0 {
		return 0
	}
	return o.frames[len(o.frames)-1].seq
}

// fakeFSM stands in for cluster.FSM: it moves its index before publishing, as
// the real one does, and its View reflects that index.
type fakeFSM struct {
	mu      sync.Mutex
	index   uint64
	lag     uint64          // View reports index-lag (to exercise replay after a sync)
	unknown map[string]bool // keys View does not know
	log     []logged        // everything published, in order
}

type logged struct {
	seq uint64
	to  []string
}

func (f *fakeFSM) View(key string) (api.StreamView, uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unknown[key] {
		return api.StreamView{}, 0, false
	}
	return api.StreamView{Agent: key}, f.index - min(f.lag, f.index), true
}

// publish applies entry index with one event per recipient list, numbering
// the events, and hands them to h.
func (f *fakeFSM) publish(h *Hub, index uint64, tos ...[]string) []fsm.Event {
	evs := make([]fsm.Event, len(tos))
	f.mu.Lock()
	f.index = index
	for i, to := range tos {
		evs[i] = fsm.Event{Seq: api.SeqOf(index, i), Kind: api.EvConversationMessage, To: to}
		f.log = append(f.log, logged{seq: evs[i].Seq, to: to})
	}
	f.mu.Unlock()
	h.Publish(index, evs)
	return evs
}

// reset moves the index to a snapshot's and resets h.
func (f *fakeFSM) reset(h *Hub, index uint64) {
	f.mu.Lock()
	f.index = index
	f.mu.Unlock()
	h.Reset(index)
}

// want returns the seqs published to key after seq, in order.
func (f *fakeFSM) want(key string, after uint64) []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint64
	for _, l := range f.log {
		if l.seq > after && slices.Contains(l.to, key) {
			out = append(out, l.seq)
		}
	}
	return out
}

// lockedBuffer collects a test's logs; they are printed if it fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestHub returns a hub over f (a fresh fakeFSM if nil), closed when
// the test ends.
func newTestHub(t testing.TB, f *fakeFSM, historySize int) *Hub {
	t.Helper()
	return newTestHubGap(t, f, historySize, 0)
}

// newTestHubGap is newTestHub with Config.InlineGap.
func newTestHubGap(t testing.TB, f *fakeFSM, historySize int, inlineGap time.Duration) *Hub {
	t.Helper()
	logs := &lockedBuffer{}
	h, err := NewHub(Config{
		InlineGap:   inlineGap,
		HistorySize: historySize,
		Encode:      testEncode,
		View:        f.View,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("hub logs:\n%s", logs)
		}
	})
	return h
}

// waitFor polls cond until it holds, failing the test after d with what()
// (evaluated then, so it shows the final state).
func waitFor(t testing.TB, d time.Duration, cond func() bool, what func() string) {
	t.Helper()
	testutil.WaitFor(t, d, cond, "waiting for %s", testutil.Lazy(what))
}

// says formats a waitFor description lazily.
func says(format string, args ...any) func() string {
	return func() string { return fmt.Sprintf(format, args...) }
}

// waitFrames waits until o has received n frames, then checks it got no
// more and returns them.
func waitFrames(t *testing.T, o *outbox, n int) []frame {
	t.Helper()
	waitFor(t, 5*time.Second, func() bool { return len(o.got()) >= n },
		func() string { return fmt.Sprintf("%d frames (have %v)", n, o.got()) })
	got := o.got()
	if len(got) != n {
		t.Fatalf("got %d frames, want %d: %v", len(got), n, got)
	}
	return got
}

// seqs returns the frames' seqs.
func seqs(fs []frame) []uint64 {
	out := make([]uint64, len(fs))
	for i, f := range fs {
		out[i] = f.seq
	}
	return out
}

// s0 is the seq of the first event of entry index.
func s0(index uint64) uint64 { return api.SeqOf(index, 0) }

// seqRange returns the first-event seqs of entries from..to.
func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, s0(i))
	}
	return out
}

const (
	keyA = "agent:a"
	keyB = "agent:b"
	keyC = "agent:c"
)

// settle waits until the hub's fan-out has handled everything Publish and
// Reset queued before the call.
func settle(t testing.TB, h *Hub) {
	t.Helper()
	if err := h.awaitFanOut(); err != nil {
		t.Fatalf("waiting for the fan-out: %v", err)
	}
}
