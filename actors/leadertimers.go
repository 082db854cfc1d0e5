package actors

import (
	"time"

	"github.com/anthdm/hollywood/actor"
)

// The leader's timer actors (offer timers, deadline timers) share this:
// each armed timer sends a message to its actor when due, and the actor
// stops and forgets them by key, or all at once when it stops leading.

// sendAfter sends msg to pid after d (at once if d <= 0).
func sendAfter(e *actor.Engine, pid *actor.PID, d time.Duration, msg any) *time.Timer {
	return time.AfterFunc(max(d, 0), func() { e.Send(pid, msg) })
}

// stoppable is an armed timer: stop stops its timer if it still runs.
type stoppable interface{ stop() }

// disarm stops and forgets the timer armed under k, if any.
func disarm[K comparable, A stoppable](armed map[K]A, k K) {
	if a, ok := armed[k]; ok {
		a.stop()
		delete(armed, k)
	}
}

// disarmAll stops and forgets every armed timer.
func disarmAll[K comparable, A stoppable](armed map[K]A) {
	for k, a := range armed {
		a.stop()
		delete(armed, k)
	}
}

func (a *armedOffer) stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
}

func (a *armedDeadline) stop() {
	if a.timer != nil {
		a.timer.Stop()
	}
}
