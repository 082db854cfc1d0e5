package cluster

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// fakeClock is a settable clock for the noise limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// noisyLogger returns an adapter whose limiter runs on clock, writing JSON
// lines to buf.
func noisyLogger(buf *bytes.Buffer, clock *fakeClock) hclog.Logger {
	l := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &hclogAdapter{base: l, name: "raft", noise: newNoiseLimiter(noiseInterval, clock.now)}
}

// TestRaftNoiseLevels: raft's routine errors about an unreachable peer are
// logged at WARN, not ERROR; other errors keep their level.
func TestRaftNoiseLevels(t *testing.T) {
	var buf bytes.Buffer
	h := noisyLogger(&buf, &fakeClock{t: time.Unix(1000, 0)})
	h.Error("failed to heartbeat to", "peer", "127.0.0.1:7411", "backoff time", "10ms", "error", "dial tcp: connection refused")
	h.Error("failed to appendEntries to", "peer", "{Voter n2 127.0.0.1:7411}", "error", "EOF")
	h.Warn("failed to contact", "server-id", "n2", "time", "1.2s")
	h.Error("failed to commit logs", "error", "disk full")
	h.Warn("failed to contact quorum of nodes, stepping down")

	recs := records(t, &buf)
	want := []struct{ msg, level string }{
		{"failed to heartbeat to", "WARN"},
		{"failed to appendEntries to", "WARN"},
		{"failed to contact", "WARN"},
		{"failed to commit logs", "ERROR"},
		{"failed to contact quorum of nodes, stepping down", "WARN"},
	}
	if len(recs) != len(want) {
		t.Fatalf("got %d lines, want %d: %v", len(recs), len(want), recs)
	}
	for i, w := range want {
		if recs[i]["msg"] != w.msg || recs[i]["level"] != w.level {
			t.Errorf("line %d: %v %q, want %v %q", i, recs[i]["level"], recs[i]["msg"], w.level, w.msg)
		}
	}
}

// TestRaftNoiseRateLimit: per peer and message, one line of routine noise
// gets through every noiseInterval, across loggers derived with Named and
// With; the next one that does says how many were suppressed. Other peers
// and other messages are limited separately, and other lines not at all.
func TestRaftNoiseRateLimit(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Unix(1000, 0)}
	h := noisyLogger(&buf, clock)
	repl := h.Named("replication").With("component", "x") // shares the limiter

	for range 50 {
		repl.Error("failed to heartbeat to", "peer", "n2", "error", "refused")
		h.Error("failed to heartbeat to", "peer", "n3", "error", "refused")
		h.Error("failed to commit logs", "error", "disk full") // never limited
		clock.advance(100 * time.Millisecond)                  // 5s in all
	}
	count := func(msg, peer string) (n int, suppressed []float64) {
		for _, r := range records(t, &buf) {
			if r["msg"] == msg && (peer == "" || r["peer"] == peer) {
				n++
				if s, ok := r["suppressed"].(float64); ok {
					suppressed = append(suppressed, s)
				}
			}
		}
		return n, suppressed
	}
	if n, _ := count("failed to heartbeat to", "n2"); n != 1 {
		t.Fatalf("peer n2: %d lines within 5s, want 1", n)
	}
	if n, _ := count("failed to heartbeat to", "n3"); n != 1 {
		t.Fatalf("peer n3: %d lines within 5s, want 1 (limited apart from n2)", n)
	}
	if n, _ := count("failed to commit logs", ""); n != 50 {
		t.Fatalf("other errors: %d lines, want all 50", n)
	}

	clock.advance(noiseInterval) // past the interval: the next gets through
	repl.Error("failed to heartbeat to", "peer", "n2", "error", "refused")
	n, sup := count("failed to heartbeat to", "n2")
	if n != 2 || len(sup) != 1 || sup[0] != 49 {
		t.Fatalf("peer n2 after the interval: %d lines, suppressed %v; want 2 lines, the second with suppressed=49", n, sup)
	}
	repl.Error("failed to heartbeat to", "peer", "n2", "error", "refused")
	if n, _ := count("failed to heartbeat to", "n2"); n != 2 {
		t.Fatalf("peer n2 right after: %d lines, want still 2", n)
	}
}
