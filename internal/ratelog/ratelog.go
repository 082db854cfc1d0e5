// Package ratelog rate-limits log lines about events an outsider can cause
// at will (failed logins, refused connections), so that an attacker cannot
// fill the disk or drown the log: at most one line per interval, carrying
// how many were suppressed since the last one.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter lets one log line through per interval. Its zero value is not
// usable; make one with New. It is safe for concurrent use.
type Limiter struct {
	every time.Duration

	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// New returns a limiter letting one line through per interval.
func New(every time.Duration) *Limiter { return &Limiter{every: every} }

// Allow reports whether a line may be logged now and, if so, how many were
// suppressed since the last one let through.
func (l *Limiter) Allow() (ok bool, suppressed int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	l.next = now.Add(l.every)
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Log logs msg at level with args through log when the limiter allows it,
// adding "suppressed" = the lines dropped since the last one.
func (l *Limiter) Log(log *slog.Logger, level slog.Level, msg string, args ...any) {
	ok, n := l.Allow()
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(context.Background(), level, msg, args...)
}
