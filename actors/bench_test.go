package actors

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// countingOutbox accepts every frame and counts it.
type countingOutbox struct{ n *atomic.Int64 }

func (c countingOutbox) Deliver([]byte) bool { c.n.Add(1); return true }

// BenchmarkFanout publishes one event per op to 1,000 attached sessions —
// 1,000 agents with one session each, or one agent with 1,000 sessions —
// and waits until every session has it. allocs/op counts every goroutine
// (hub, actors); deliveries/s is end to end, Publish to Deliver.
func BenchmarkFanout(b *testing.B) {
	for _, tc := range []struct{ keys, perKey int }{{1000, 1}, {1, 1000}} {
		b.Run(fmt.Sprintf("keys=%d/sessions-per-key=%d", tc.keys, tc.perKey), func(b *testing.B) {
			f := &fakeFSM{}
			h := newTestHub(b, f, 0)
			var delivered atomic.Int64
			to := make([]string, tc.keys)
			for k := range to {
				to[k] = fmt.Sprintf("agent:a%d", k)
				for range tc.perKey {
					h.Attach(to[k], 0, true, countingOutbox{&delivered})
				}
			}
			sessions := int64(tc.keys * tc.perKey)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				index := uint64(i + 1)
				h.Publish(index, []fsm.Event{{Seq: api.SeqOf(index, 0), Kind: api.EvRequestUpdated, To: to}})
			}
			want := int64(b.N) * sessions
			waitFor(b, time.Minute, func() bool { return delivered.Load() >= want }, says("%d deliveries (have %d)", want, delivered.Load()))
			elapsed := time.Since(start)
			b.StopTimer()
			if got := delivered.Load(); got != want {
				b.Fatalf("delivered %d, want %d", got, want)
			}
			b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
		})
	}
}
