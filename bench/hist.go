package bench

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to 5 minutes, with 3
// significant digits: every percentile is within 0.1% of the true value.
const (
	histMin     = 1
	histMax     = int64(5 * time.Minute / time.Microsecond)
	histSigFigs = 3
	histShards  = 16
)

// Recorder is a latency histogram safe for concurrent use: recordings are
// spread over a few mutex-guarded HDR histograms (one per shard) and merged
// when read, so thousands of goroutines can record without one hot lock and
// without one histogram each.
type Recorder struct {
	shards [histShards]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
		_  [40]byte // keep shards on separate cache lines
	}
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	r := &Recorder{}
	for i := range r.shards {
		r.shards[i].h = hdrhistogram.New(histMin, histMax, histSigFigs)
	}
	return r
}

// Record adds one latency; shard picks the histogram (any number: a worker
// or agent index spreads the lock traffic). Negative latencies count as
// zero; values above the range as the maximum.
func (r *Recorder) Record(shard int, d time.Duration) {
	us := max(d.Microseconds(), 0)
	if us > histMax {
		us = histMax
	}
	s := &r.shards[uint(shard)%histShards]
	s.mu.Lock()
	_ = s.h.RecordValue(us) // cannot fail: us is within the range
	s.mu.Unlock()
}

// Snapshot returns every shard merged into one histogram.
func (r *Recorder) Snapshot() *hdrhistogram.Histogram {
	out := hdrhistogram.New(histMin, histMax, histSigFigs)
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		out.Merge(s.h)
		s.mu.Unlock()
	}
	return out
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary returns the recorder's distribution.
func (r *Recorder) Summary() Latency { return summarize(r.Snapshot()) }

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1000,
		P50:   ms(h.ValueAtQuantile(50)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}
