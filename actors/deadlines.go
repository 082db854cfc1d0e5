package actors

import (
	"cmp"
	"log/slog"
	"slices"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// Deadline timers: service levels and INACTIVE reminders (fsm/sla.go).
// They work as the offer timers do (leadertimers.go). While this node leads,
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

// deadlineKey is the key of a deadline timer.
type deadlineKey struct {
	request string
	op      fsm.Op
}

// deadlineRescan is the message of the rescan timer.
type deadlineRescan struct{}

type armedDeadline struct {
	fsm.Deadline
	timerSlot
}

func (a *armedDeadline) stamp() int64 { return a.At }

// deadlineTimers is the actor of this node's deadline timers.
type deadlineTimers struct {
	leaderTimers[deadlineKey, int64, *armedDeadline]
	rescan *time.Timer
}

// ArmedDeadlines returns the deadline timers this node holds, soonest
// first (for tests and debugging).
func (h *Hub) ArmedDeadlines() ([]fsm.Deadline, error) {
	return armedTimers[fsm.Deadline](h, &h.deadlines)
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
	if _, ok := c.Message().(deadlineRescan); ok {
		t.rescanDue()
		return
	}
	t.receive(c)
}

// rescanDue scans again when the rescan timer fires, while this node leads.
func (t *deadlineTimers) rescanDue() {
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
}

// event re-reads the deadlines of the request ev is about.
func (t *deadlineTimers) event(ev fsm.Event) {
	if req := deadlineEvent(ev); req != "" {
		ds, _ := t.hub.cfg.Deadlines(req)
		t.reconcile(ds, func(k deadlineKey) bool { return k.request == req })
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
			t.armAt(k, &armedDeadline{Deadline: d}, d.At)
		}
	}
}

func (t *deadlineTimers) stopAll() {
	t.disarmAll()
	if t.rescan != nil {
		t.rescan.Stop()
		t.rescan = nil
	}
}

func (t *deadlineTimers) command(k deadlineKey, _ *armedDeadline) *fsm.Command {
	return &fsm.Command{Op: k.op, By: t.hub.system(), Args: &api.RequestRef{Request: k.request}}
}

func (t *deadlineTimers) logger(k deadlineKey, _ int64) *slog.Logger {
	return t.hub.log.With("request", k.request, "op", opName(k.op))
}

// pending reports whether the state still holds a deadline of k, and
// when it falls; a is set to it.
func (t *deadlineTimers) pending(k deadlineKey, a *armedDeadline) (at int64, ok bool) {
	ds, _ := t.hub.cfg.Deadlines(k.request)
	i := slices.IndexFunc(ds, func(d fsm.Deadline) bool { return d.Op == k.op })
	if i < 0 {
		return 0, false
	}
	a.Deadline = ds[i]
	return ds[i].At, true
}

func opName(op fsm.Op) string {
	if i := fsm.Commands.Lookup(op); i != nil {
		return i.Name
	}
	return "?"
}

func (t *deadlineTimers) list() any {
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
