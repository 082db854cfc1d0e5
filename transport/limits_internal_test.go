package transport

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// A bucket gives its burst at once, then one token per 1/rate, and says
// how long until the next.
func TestBucketBurstRefillAndHint(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBucket(Rate{PerSec: 10, Burst: 3}, now)
	for i := range 3 {
		if ok, _ := b.take(now); !ok {
			t.Fatalf("token %d of the burst refused", i)
		}
	}
	ok, wait := b.take(now)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("empty bucket: ok=%v wait=%v, want refused and 100ms", ok, wait)
	}
	if ok, _ := b.take(now.Add(100 * time.Millisecond)); !ok {
		t.Fatal("no token after 1/rate")
	}
	if ok, _ := b.take(now.Add(time.Hour)); !ok || b.tokens != 2 {
		t.Fatalf("after an hour: %v tokens left, want the burst (3) minus one", b.tokens)
	}
}

// The sessions of one principal share its bucket, and the last one to go
// drops it; an unlimited role has none.
func TestWriteBucketsSharedPerPrincipal(t *testing.T) {
	cfg := ServerConfig{}.withDefaults()
	w := newWriteLimits(&cfg)
	a := api.Principal{Role: api.RoleAgent, ID: "a1"}
	b1, b2 := w.acquire(a), w.acquire(a)
	if b1 == nil || b1 != b2 {
		t.Fatal("two sessions of one agent do not share a bucket")
	}
	if w.acquire(api.Principal{Role: api.RoleAdmin, ID: "admin"}) != nil {
		t.Fatal("admins are limited by default")
	}
	w.release(a, b1)
	if len(w.buckets) != 1 {
		t.Fatal("bucket dropped while a session holds it")
	}
	w.release(a, b2)
	if len(w.buckets) != 0 {
		t.Fatal("bucket kept after its last session")
	}
}
