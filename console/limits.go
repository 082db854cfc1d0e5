package console

import (
	"math"
	"sync"
	"time"
)

// limiter is a set of token buckets by key (a source address, a
// supervisor), at most maxKeys of them: past that, buckets that have
// refilled are dropped, and a new key finds no room until some are (it is
// then refused: a flood of keys cannot lift the limit).
type limiter struct {
	rate    Rate
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(r Rate, maxKeys int) *limiter {
	return &limiter{rate: r, maxKeys: maxKeys, now: time.Now, buckets: map[string]*bucket{}}
}

// refill adds what accrued since b.last; under l.mu.
func (l *limiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(float64(l.rate.Burst), b.tokens+d.Seconds()*l.rate.PerSec)
		b.last = now
	}
}

// wait is how long until b has a token; under l.mu.
func (l *limiter) wait(b *bucket) time.Duration {
	if l.rate.PerSec <= 0 {
		return time.Hour
	}
	return time.Duration((1 - b.tokens) / l.rate.PerSec * float64(time.Second))
}

// blocked reports whether key has no token left, and for how long, without
// taking one.
func (l *limiter) blocked(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return false, 0
	}
	l.refill(b, l.now())
	if b.tokens >= 1 {
		return false, 0
	}
	return true, l.wait(b)
}

// take takes a token of key; when there is none it reports false and how
// long until there is one.
func (l *limiter) take(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			for k, o := range l.buckets {
				if l.refill(o, now); o.tokens >= float64(l.rate.Burst) {
					delete(l.buckets, k)
				}
			}
		}
		if len(l.buckets) >= l.maxKeys {
			return false, time.Second
		}
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false, l.wait(b)
	}
	b.tokens--
	return true, 0
}

// streamLimits counts the open event streams, in total and per supervisor.
type streamLimits struct {
	max, perSup int

	mu    sync.Mutex
	total int
	bySup map[string]int
}

func newStreamLimits(max, perSup int) *streamLimits {
	return &streamLimits{max: max, perSup: perSup, bySup: map[string]int{}}
}

// acquire takes a place for a stream of supervisor id; release gives it
// back. ok is false, with nothing taken, when a limit is reached; which
// says which one.
func (s *streamLimits) acquire(id string) (release func(), which string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.total >= s.max:
		return nil, "node", false
	case s.bySup[id] >= s.perSup:
		return nil, "supervisor", false
	}
	s.total++
	s.bySup[id]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.bySup[id]--; s.bySup[id] <= 0 {
				delete(s.bySup, id)
			}
		})
	}, "", true
}
