package transport

import (
	"testing"

	"github.com/switchboard/switchboard/api"
)

// batchOutbox is the optional side of Outbox that the actors hub uses to
// hand a session several frames at once.
type batchOutbox interface {
	DeliverBatch(frames [][]byte) bool
}

// TestDeliverBatch: frames delivered together reach the client in order;
// a batch that does not fit in the queue cuts the session off as a slow
// consumer, and nothing is accepted after that.
func TestDeliverBatch(t *testing.T) {
	h := newHarness(t, ServerConfig{OutboxFrames: 16}, nil)
	c := h.helloClient("agent", "a")
	c.readType(TypeEvent) // sync
	box, ok := h.be.outbox(t, api.AgentKey("a")).(batchOutbox)
	if !ok {
		t.Fatal("the session's outbox does not take batches")
	}
	batch := func(from uint64, n int) [][]byte {
		var frames [][]byte
		for i := range n {
			ev, err := EncodeEvent(from+uint64(i), "test", nil)
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, ev)
		}
		return frames
	}
	for _, start := range []uint64{100, 200} {
		if !box.DeliverBatch(batch(start, 10)) {
			t.Fatalf("batch at %d refused", start)
		}
		for i := range uint64(10) {
			if f := c.readType(TypeEvent); f.Seq != start+i {
				t.Fatalf("got seq %d, want %d", f.Seq, start+i)
			}
		}
	}
	if box.DeliverBatch(batch(300, 17)) {
		t.Fatal("a batch larger than the queue was accepted")
	}
	if box.DeliverBatch(batch(400, 1)) {
		t.Fatal("a batch was accepted after the cut-off")
	}
	c.expectBye(api.CodeSlowConsumer)
}
