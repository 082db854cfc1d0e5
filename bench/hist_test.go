package bench

import (
	"sync"
	"testing"
	"time"
)

func TestRecorderMergesShards(t *testing.T) {
	r := NewRecorder()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= 1000; i++ {
				r.Record(w, time.Duration(i)*time.Millisecond)
			}
		}()
	}
	wg.Wait()
	s := r.Summary()
	if s.Count != 8000 {
		t.Fatalf("count %d, want 8000", s.Count)
	}
	// 3 significant digits: within 0.1%.
	near := func(got, want float64) bool { return got >= want*0.999 && got <= want*1.001 }
	if !near(s.P50, 500) || !near(s.P99, 990) || !near(s.Max, 1000) {
		t.Fatalf("p50 %v p99 %v max %v, want 500 990 1000 ms", s.P50, s.P99, s.Max)
	}
	r.Record(0, -time.Second)
	r.Record(0, time.Hour)
	if s := r.Summary(); s.Count != 8002 || s.Max < 299_000 {
		t.Fatalf("out-of-range values: %+v", s)
	}
}
