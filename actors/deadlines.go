package actors

import (
	"cmp"
	"slices"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// Deadline timers: service levels and INACTIVE reminders (fsm/sla.go).
// They work as the offer timers do (timers.go). While this node leads,
// one actor holds a timer per pending deadline of the state
// (fsm.State.Deadlines: sla_warning, sla_breach, remind_inactive,
// close_inactive of a request), read through Config.Deadlines: every
// deadline when the node gains leadership, after a Reset, after the actor
// restarts and every DeadlineRescan; one request's when an event about it
// is applied (it arrived, an agent joined or left, it was closed, its SLA
// changed...). When a timer fires and the node still leads, it proposes
// the op as RoleSystem through Config.Submit; the FSM checks the deadline
// against the replicated clock and decides. A proposal refused while the
// deadline is still pending (the state's clock had not reached it: an
// early timer) is re-armed, one that did not commit is retried, one made
// stale by an answer is forgotten. A follower holds no timers and
// proposes nothing; a new leader arms every deadline from its state, and a
// lapsed one fires at once.
//
// The rescan catches a request whose change caused no event at all (a
// list with no subscribers, a channel with no connector): such a
// deadline fires at most DeadlineRescan late.

// DefaultDeadlineRescan is how often the leader re-reads every deadline.
const DefaultDeadlineRescan = 10 * time.Second

// Messages of the deadline actor (besides leaderMsg, timersReset and
// fsm.Event).
type (
	deadlineKey struct {
		request string
		op      fsm.Op
	}
	deadlineDue struct {
		key deadlineKey
		at  int64
	}
	deadlineDone struct {
		key deadlineKey
		at  int64
		res fsm.Result
		err error
	}
	deadlineRescan struct{}
	deadlinesQuery struct{}
	armedDeadline  struct {
		fsm.Deadline
		// timer is nil once it fired: the op is being proposed.
		timer *time.Timer
	}
)

// deadlineTimers is the actor of this node's deadline timers.
type deadlineTimers struct {
	hub    *Hub
	self   *actor.PID
	leader bool
	// after is the seq the last full scan reflects.
	after  uint64
	armed  map[deadlineKey]*armedDeadline
	rescan *time.Timer
}

// startDeadlines spawns the deadline actor when the hub can propose.
// Call with h.mu held.
func (h *Hub) startDeadlines() {
	if h.cfg.Submit == nil || h.cfg.Deadlines == nil {
		return
	}
	h.deadlines = h.spawn(&deadlineTimers{hub: h, armed: map[deadlineKey]*armedDeadline{}}, "timers", "deadlines")
}

// ArmedDeadlines returns the deadline timers this node holds, soonest
// first (for tests and debugging).
func (h *Hub) ArmedDeadlines() ([]fsm.Deadline, error) {
	if err := h.awaitFanOut(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	pid, closed := h.deadlines, h.closed
	h.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if pid == nil {
		return nil, nil
	}
	res, err := h.ask(pid, deadlinesQuery{})
	if err != nil {
		return nil, err
	}
	out, _ := res.([]fsm.Deadline)
	return out, nil
}

// deadlineEvent returns the request an event is about, if it can change
// that request's deadlines.
func deadlineEvent(ev fsm.Event) string {
	switch ev.Kind {
	case api.EvRequestCreated, api.EvRequestUpdated, api.EvRequestRemoved:
		s, _ := payload[api.RequestSummary](ev.Data)
		return s.ID
	case api.EvRequestQueued:
		q, _ := payload[api.RequestQueued](ev.Data)
		return q.Request.ID
	case api.EvRequestSLA:
		s, _ := payload[api.RequestSLA](ev.Data)
		return s.Request.ID
	case api.EvRequestReminder:
		r, _ := payload[api.RequestReminder](ev.Data)
		return r.Request.ID
	case api.EvConversationJoined, api.EvConversationLeft:
		pc, _ := payload[api.ParticipantChange](ev.Data)
		return pc.Request
	case api.EvConversationClosed:
		cl, _ := payload[api.ConversationClosed](ev.Data)
		return cl.Request
	}
	return ""
}

// Receive implements actor.Receiver.
func (t *deadlineTimers) Receive(c *actor.Context) {
	defer t.hub.recoverActor("timers", "deadlines", c)
	switch m := c.Message().(type) {
	case actor.Started:
		t.self = c.PID()
		if t.leader {
			t.scan()
		}
	case actor.Stopped:
		t.stopAll()
	case leaderMsg:
		if m.leader == t.leader {
			return
		}
		t.leader = m.leader
		if t.leader {
			t.hub.log.Debug("leading: arming the deadline timers")
			t.scan()
		} else {
			t.hub.log.Debug("no longer leading: deadline timers stopped", "timers", len(t.armed))
			t.stopAll()
		}
	case timersReset:
		t.stopAll()
		if t.leader {
			t.scan()
		}
	case deadlineRescan:
		switch {
		case !t.leader:
		case t.hub.cfg.DeadlinesConfigured == nil || t.hub.cfg.DeadlinesConfigured():
			t.scan()
		default:
			// Nothing sets a deadline: no request can have gained one
			// unseen, and walking them all would stall Apply for nothing
			// (~100 ms per million requests).
			t.rescan = t.afterFunc(t.hub.cfg.DeadlineRescan, deadlineRescan{})
		}
	case fsm.Event:
		if t.leader && m.Seq > t.after {
			if req := deadlineEvent(m); req != "" {
				ds, _ := t.hub.cfg.Deadlines(req)
				t.reconcile(ds, func(k deadlineKey) bool { return k.request == req })
			}
		}
	case deadlineDue:
		t.due(m)
	case deadlineDone:
		t.done(m)
	case deadlinesQuery:
		c.Respond(t.list())
	}
}

// scan arms every deadline of the current state, drops timers the state
// no longer has, and schedules the next scan.
func (t *deadlineTimers) scan() {
	ds, index := t.hub.cfg.Deadlines("")
	t.after = syncSeq(index)
	t.reconcile(ds, func(deadlineKey) bool { return true })
	if t.rescan != nil {
		t.rescan.Stop()
	}
	if every := t.hub.cfg.DeadlineRescan; every > 0 {
		t.rescan = t.afterFunc(every, deadlineRescan{})
	}
}

// reconcile makes the timers whose key matches in agree with ds: a
// deadline not armed, or armed for another time, is (re-)armed; a timer
// matching in that ds lacks is stopped.
func (t *deadlineTimers) reconcile(ds []fsm.Deadline, in func(deadlineKey) bool) {
	want := make(map[deadlineKey]int64, len(ds))
	for _, d := range ds {
		want[deadlineKey{d.Request, d.Op}] = d.At
	}
	for k, a := range t.armed {
		if at, ok := want[k]; in(k) && (!ok || at != a.At) {
			t.disarm(k)
		}
	}
	for _, d := range ds {
		k := deadlineKey{d.Request, d.Op}
		if t.armed[k] == nil {
			a := &armedDeadline{Deadline: d}
			a.timer = t.afterFunc(time.Until(time.Unix(0, d.At)), deadlineDue{key: k, at: d.At})
			t.armed[k] = a
		}
	}
}

// afterFunc sends msg to the actor after d (at once if d <= 0).
func (t *deadlineTimers) afterFunc(d time.Duration, msg any) *time.Timer {
	return sendAfter(t.hub.engine, t.self, d, msg)
}

func (t *deadlineTimers) disarm(k deadlineKey) { disarm(t.armed, k) }

func (t *deadlineTimers) stopAll() {
	disarmAll(t.armed)
	if t.rescan != nil {
		t.rescan.Stop()
		t.rescan = nil
	}
}

// due proposes the op of a deadline that fired.
func (t *deadlineTimers) due(m deadlineDue) {
	a := t.armed[m.key]
	if a == nil || a.At != m.at || a.timer == nil {
		return // answered, re-armed or proposed meanwhile
	}
	a.timer = nil
	if !t.leader || (t.hub.cfg.IsLeader != nil && !t.hub.cfg.IsLeader()) {
		delete(t.armed, m.key) // the new leader's timers take over
		return
	}
	e, pid := t.hub.engine, t.self
	cmd := &fsm.Command{Op: m.key.op, By: t.hub.system(), Args: &api.RequestRef{Request: m.key.request}}
	if !t.hub.submit(cmd, func(res fsm.Result, err error) {
		e.Send(pid, deadlineDone{key: m.key, at: m.at, res: res, err: err})
	}) {
		delete(t.armed, m.key)
	}
}

// done ends a proposed deadline op; one that did not commit is tried
// again, and one refused while its deadline is still pending is re-armed,
// while this node leads.
func (t *deadlineTimers) done(m deadlineDone) {
	log := t.hub.log.With("request", m.key.request, "op", opName(m.key.op))
	a := t.armed[m.key]
	mine := a != nil && a.At == m.at && a.timer == nil
	switch {
	case m.err != nil && mine && t.leader:
		log.Warn("deadline op not committed; retrying", "err", m.err)
		a.timer = t.afterFunc(offerRetryDelay, deadlineDue{key: m.key, at: m.at})
		return
	case m.err != nil:
		log.Info("deadline op not committed", "err", m.err)
	case m.res.Err != nil && mine && t.leader:
		// Refused as early (the state's clock had not reached the
		// deadline) or made stale meanwhile: the FSM decides. A
		// deadline the state still holds is re-armed.
		ds, _ := t.hub.cfg.Deadlines(m.key.request)
		if i := slices.IndexFunc(ds, func(d fsm.Deadline) bool { return d.Op == m.key.op }); i >= 0 {
			log.Debug("deadline op refused while still pending; re-armed", "err", m.res.Err)
			a.Deadline = ds[i]
			a.timer = t.afterFunc(max(time.Until(time.Unix(0, ds[i].At)), offerRetryDelay), deadlineDue{key: m.key, at: ds[i].At})
			return
		}
		log.Debug("deadline op refused", "err", m.res.Err)
	case m.res.Err != nil:
		log.Debug("deadline op refused", "err", m.res.Err)
	default:
		log.Debug("deadline op applied")
	}
	if mine {
		delete(t.armed, m.key)
	}
}

func opName(op fsm.Op) string {
	if i := fsm.Commands.Lookup(op); i != nil {
		return i.Name
	}
	return "?"
}

func (t *deadlineTimers) list() []fsm.Deadline {
	out := make([]fsm.Deadline, 0, len(t.armed))
	for _, a := range t.armed {
		out = append(out, a.Deadline)
	}
	slices.SortFunc(out, func(a, b fsm.Deadline) int {
		if c := cmp.Compare(a.At, b.At); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Request, b.Request); c != 0 {
			return c
		}
		return cmp.Compare(a.Op, b.Op)
	})
	return out
}
