package cluster

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Raft logs a line at ERROR each time it fails to reach a peer, several a
// second per peer, and a rolling restart takes each node down in turn: a
// routine operation would page whoever alerts on ERROR. These messages are
// logged at WARN instead, and at most once per peer and message every
// noiseInterval; the next line that gets through says how many were
// suppressed (attribute "suppressed"). A peer that stays unreachable still
// shows in the logs, and in the metrics (last contact, leader changes).

// routineNoise are raft's messages of an unreachable peer, matched exactly.
var routineNoise = map[string]bool{
	"failed to heartbeat to":     true, // replication.go, the leader's heartbeat
	"failed to appendEntries to": true, // replication.go
	"failed to contact":          true, // raft.go, the leader's lease check (already WARN)
}

// noiseInterval is how often a line of routine noise is let through per
// peer and message.
const noiseInterval = 10 * time.Second

// maxNoiseKeys bounds the limiter's memory: peers are few, but the key is
// built from a logged value.
const maxNoiseKeys = 1024

// noiseLimiter rate-limits the routine noise of one Raft node's logger and
// every logger derived from it.
type noiseLimiter struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	seen map[string]*noiseState
}

type noiseState struct {
	last       time.Time // when a line last got through
	suppressed int       // lines dropped since
}

func newNoiseLimiter(interval time.Duration, now func() time.Time) *noiseLimiter {
	return &noiseLimiter{interval: interval, now: now, seen: map[string]*noiseState{}}
}

// filter returns the level to log a raft line at and whether to log it at
// all, with the number of lines suppressed before it (0 if none). Lines
// that are not routine noise pass unchanged.
func (l *noiseLimiter) filter(level hclog.Level, msg string, args []any) (hclog.Level, bool, int) {
	if l == nil || !routineNoise[msg] {
		return level, true, 0
	}
	if level > hclog.Warn {
		level = hclog.Warn
	}
	key := msg + "\x00" + peerOf(args)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.seen[key]
	if st == nil {
		if len(l.seen) >= maxNoiseKeys {
			clear(l.seen)
		}
		l.seen[key] = &noiseState{last: now}
		return level, true, 0
	}
	if now.Sub(st.last) < l.interval {
		st.suppressed++
		return level, false, 0
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return level, true, n
}

// peerOf returns the peer a raft line is about: the value of its "peer"
// or "server-id" attribute, or "".
func peerOf(args []any) string {
	for i := 0; i+1 < len(args); i += 2 {
		if k, _ := args[i].(string); k == "peer" || k == "server-id" {
			return fmt.Sprint(args[i+1])
		}
	}
	return ""
}

// noiseAttr is the attribute a line that got through carries when lines
// before it were suppressed.
func noiseAttr(n int) slog.Attr { return slog.Int("suppressed", n) }
