package actors

import (
	"log/slog"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/switchboard/switchboard/fsm"
)

// The leader's timer actors (offer timers, timers.go; deadline timers,
// deadlines.go) share leaderTimers; each adds what its timers are for (a
// timerKind). While the node leads, the actor holds one armed timer per
// key, armed for a stamp (the offer, the deadline's time) that tells a
// timer's firing from a stale one. A timer sends the actor a timerDue when
// due; if it is still the one armed and the node still leads, the actor
// proposes the kind's command as RoleSystem through Config.Submit, and the
// outcome comes back as a timerDone: a command that did not commit is
// proposed again after retryDelay, one refused while the state still holds
// the timer's deadline (an early timer) is re-armed for it, and anything
// else forgets the timer. Losing the lead stops and forgets every timer;
// gaining it, a Reset and a restart of the actor arm them all from the
// state (timerKind.scan).

// retryDelay is the pause before a timer's command that could not be
// committed (no leader for a moment, a timeout) is proposed again, and the
// least wait of a timer re-armed after a refusal.
const retryDelay = time.Second

// Messages of the timer actors (besides fsm.Event and their own).
type (
	leaderMsg   struct{ leader bool }
	timersReset struct{}
	timersQuery struct{}
	// timerDue is the timer of key, armed for stamp, firing.
	timerDue[K, S comparable] struct {
		key   K
		stamp S
	}
	// timerDone is the outcome of the command a timerDue proposed.
	timerDone[K, S comparable] struct {
		key   K
		stamp S
		res   fsm.Result
		err   error
	}
)

// timerSlot is the timer of an armed entry: nil once it fired and its
// command is being proposed.
type timerSlot struct{ timer *time.Timer }

func (s *timerSlot) slot() *timerSlot { return s }

// stop stops the timer if it still runs.
func (s *timerSlot) stop() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

// armedTimer is an armed entry (a pointer to a struct that embeds a
// timerSlot), and the stamp it was armed for.
type armedTimer[S comparable] interface {
	slot() *timerSlot
	stamp() S
}

// A timerKind is what one kind of leader timer adds to leaderTimers: the
// actor's Receive, which hands leaderTimers.receive what it does not
// handle itself, and these.
type timerKind[K, S comparable, A any] interface {
	actor.Receiver
	// scan arms the timers of everything the current state holds.
	scan()
	// stopAll stops and forgets every timer.
	stopAll()
	// event handles an applied event the scan did not reflect.
	event(ev fsm.Event)
	// command is the command a's timer proposes when it fires.
	command(k K, a A) *fsm.Command
	// pending is asked when that command was refused: whether the state
	// still holds a's deadline, and when it falls (a is updated to it).
	pending(k K, a A) (at int64, ok bool)
	// logger is the logger of the command of k's timer armed for s.
	logger(k K, s S) *slog.Logger
	// list answers a timersQuery.
	list() any
}

// timerNames are the words a kind of timer logs with.
type timerNames struct {
	timers  string // "offer timers": "leading: arming the offer timers"
	op      string // "offer timeout": "offer timeout refused"
	applied string // when the command applied
	rearmed string // when a refused command's timer is re-armed
}

// leaderTimers is the state and the common messages of a leader's timer
// actor (see above).
type leaderTimers[K, S comparable, A armedTimer[S]] struct {
	hub    *Hub
	kind   timerKind[K, S, A]
	names  timerNames
	self   *actor.PID
	leader bool
	// after is the seq the last scan reflects: events up to it are
	// already in the timers.
	after uint64
	armed map[K]A
}

// spawn readies t, the leaderTimers of kind, and spawns kind as the
// actor timers/id.
func (t *leaderTimers[K, S, A]) spawn(h *Hub, kind timerKind[K, S, A], id string, names timerNames) *actor.PID {
	t.hub, t.kind, t.names, t.armed = h, kind, names, map[K]A{}
	return h.spawn(kind, "timers", id)
}

// receive handles the messages every timer actor handles alike.
func (t *leaderTimers[K, S, A]) receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case actor.Started:
		t.self = c.PID()
		if t.leader {
			t.kind.scan() // restarted: the timers were stopped with it
		}
	case actor.Stopped:
		t.kind.stopAll()
	case leaderMsg:
		if m.leader == t.leader {
			return
		}
		t.leader = m.leader
		if t.leader {
			t.hub.log.Debug("leading: arming the " + t.names.timers)
			t.kind.scan()
		} else {
			t.hub.log.Debug("no longer leading: "+t.names.timers+" stopped", "timers", len(t.armed))
			t.kind.stopAll()
		}
	case timersReset:
		t.kind.stopAll()
		if t.leader {
			t.kind.scan()
		}
	case fsm.Event:
		if t.leader && m.Seq > t.after {
			t.kind.event(m)
		}
	case timerDue[K, S]:
		t.due(m)
	case timerDone[K, S]:
		t.done(m)
	case timersQuery:
		c.Respond(t.kind.list())
	}
}

// armAt arms a under k for the time at (Unix nanoseconds).
func (t *leaderTimers[K, S, A]) armAt(k K, a A, at int64) {
	a.slot().timer = t.afterFunc(time.Until(time.Unix(0, at)), timerDue[K, S]{key: k, stamp: a.stamp()})
	t.armed[k] = a
}

// afterFunc sends msg to the actor after d (at once if d <= 0).
func (t *leaderTimers[K, S, A]) afterFunc(d time.Duration, msg any) *time.Timer {
	return sendAfter(t.hub.engine, t.self, d, msg)
}

// sendAfter sends msg to pid after d (at once if d <= 0).
func sendAfter(e *actor.Engine, pid *actor.PID, d time.Duration, msg any) *time.Timer {
	return time.AfterFunc(max(d, 0), func() { e.Send(pid, msg) })
}

// disarm stops and forgets the timer armed under k, if any.
func (t *leaderTimers[K, S, A]) disarm(k K) {
	if a, ok := t.armed[k]; ok {
		a.slot().stop()
		delete(t.armed, k)
	}
}

// disarmAll stops and forgets every armed timer.
func (t *leaderTimers[K, S, A]) disarmAll() {
	for k, a := range t.armed {
		a.slot().stop()
		delete(t.armed, k)
	}
}

// due proposes the command of a timer that fired.
func (t *leaderTimers[K, S, A]) due(m timerDue[K, S]) {
	a, ok := t.armed[m.key]
	if !ok || a.stamp() != m.stamp || a.slot().timer == nil {
		return // answered, withdrawn, re-armed or proposed meanwhile
	}
	a.slot().timer = nil
	if !t.leader || (t.hub.cfg.IsLeader != nil && !t.hub.cfg.IsLeader()) {
		delete(t.armed, m.key) // the new leader's timers take over
		return
	}
	e, pid := t.hub.engine, t.self
	if !t.hub.submit(t.kind.command(m.key, a), func(res fsm.Result, err error) {
		e.Send(pid, timerDone[K, S]{key: m.key, stamp: m.stamp, res: res, err: err})
	}) {
		delete(t.armed, m.key)
	}
}

// done ends a proposed command; one that did not commit is tried again,
// and one refused while its deadline is still pending is re-armed, while
// this node leads.
func (t *leaderTimers[K, S, A]) done(m timerDone[K, S]) {
	log := t.kind.logger(m.key, m.stamp)
	a, mine := t.armed[m.key]
	mine = mine && a.stamp() == m.stamp && a.slot().timer == nil
	op := t.names.op
	switch {
	case m.err != nil && mine && t.leader:
		log.Warn(op+" not committed; retrying", "err", m.err)
		a.slot().timer = t.afterFunc(retryDelay, timerDue[K, S]{key: m.key, stamp: m.stamp})
		return
	case m.err != nil:
		log.Info(op+" not committed", "err", m.err)
	case m.res.Err != nil && mine && t.leader:
		// Refused as early (the state's clock had not reached the
		// deadline) or made stale meanwhile (answered, withdrawn): the
		// FSM decides. A deadline the state still holds is re-armed.
		if at, ok := t.kind.pending(m.key, a); ok {
			log.Debug(t.names.rearmed, "err", m.res.Err)
			a.slot().timer = t.afterFunc(max(time.Until(time.Unix(0, at)), retryDelay), timerDue[K, S]{key: m.key, stamp: a.stamp()})
			return
		}
		log.Debug(op+" refused", "err", m.res.Err)
	case m.res.Err != nil:
		log.Debug(op+" refused", "err", m.res.Err)
	default:
		log.Debug(t.names.applied)
	}
	if mine {
		delete(t.armed, m.key)
	}
}

// armedTimers asks the timer actor *pid (read under h.mu) what it holds.
func armedTimers[T any](h *Hub, pid **actor.PID) ([]T, error) {
	if err := h.awaitFanOut(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	p, closed := *pid, h.closed
	h.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if p == nil {
		return nil, nil
	}
	res, err := h.ask(p, timersQuery{})
	if err != nil {
		return nil, err
	}
	out, _ := res.([]T)
	return out, nil
}
