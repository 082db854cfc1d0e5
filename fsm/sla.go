package fsm

import (
	"cmp"
	"slices"

	"github.com/switchboard/switchboard/api"
)

// Service levels and INACTIVE reminders (feature level 2).
//
// A list or queue may carry a service level: a request that arrives there
// must have an agent in it (joined, or its offer accepted) within sla_ms,
// with a warning at sla_warn_pct of that. The deadlines are fixed at the
// request's arrival. A list may also remind its subscribers of a request
// left INACTIVE (remind_inactive_ms) and close one left INACTIVE longer
// (close_inactive_ms).
//
// The state machine reads no clock, so nothing here happens by itself: the
// leader's timers (actors/deadlines.go) watch Deadlines and propose the
// system ops sla_warning, sla_breach, remind_inactive and close_inactive
// when one is due. Each op checks the replicated clock (s.Now, the latest
// leader time seen, the command's own included) against the deadline: an
// early timer (a leader whose clock runs ahead, a new leader's) or a stale
// one (the request was answered, closed or became ACTIVE again
// meanwhile) is refused with CodeWrongState and changes nothing.

// Op numbers of the service-level commands. Never renumber.
const (
	OpSetServiceLevel Op = 70 // ServiceLevelArgs; admin
	OpSLAWarning      Op = 71 // RequestRef; system (the leader's SLA timer)
	OpSLABreach       Op = 72 // RequestRef; system
	OpRemindInactive  Op = 73 // RequestRef; system (the leader's INACTIVE timer)
	OpCloseInactive   Op = 74 // RequestRef; system
)

func registerSLA(r *Registry) {
	system := roles(api.RoleSystem)
	register(r, OpSetServiceLevel, api.OpSetServiceLevel, Level2, roles(api.RoleAdmin), applySetServiceLevel)
	register(r, OpSLAWarning, api.OpSLAWarning, Level2, system, applySLAWarning)
	register(r, OpSLABreach, api.OpSLABreach, Level2, system, applySLABreach)
	register(r, OpRemindInactive, api.OpRemindInactive, Level2, system, applyRemindInactive)
	register(r, OpCloseInactive, api.OpCloseInactive, Level2, system, applyCloseInactive)
}

// checkServiceLevel validates a service level: sla_ms in 0..MaxSLAMs,
// warn_pct in 0..99, and no warning without a target.
func checkServiceLevel(ms int64, pct int) *api.Error {
	if ms < 0 || ms > api.MaxSLAMs {
		return api.Errorf(api.CodeBadRequest, "sla_ms must be between 0 (none) and %d (a day), not %d", api.MaxSLAMs, ms)
	}
	if pct < 0 || pct > 99 {
		return api.Errorf(api.CodeBadRequest, "warn_pct must be between 0 (no warning) and 99, not %d", pct)
	}
	if ms == 0 && pct != 0 {
		return api.Errorf(api.CodeBadRequest, "warn_pct needs sla_ms")
	}
	return nil
}

// checkInactive validates a list's INACTIVE reminder and auto-close.
func checkInactive(remind, close int64) *api.Error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"remind_inactive_ms", remind}, {"close_inactive_ms", close}} {
		if f.v < 0 || f.v > api.MaxInactiveMs {
			return api.Errorf(api.CodeBadRequest, "%s must be between 0 (off) and %d (30 days), not %d", f.name, api.MaxInactiveMs, f.v)
		}
	}
	return nil
}

// applySetServiceLevel changes the service level of a list or a queue. It
// applies to requests that arrive afterwards.
func applySetServiceLevel(s *State, _ *Command, a *api.ServiceLevelArgs, _ *events) (any, *api.Error) {
	if (a.List == "") == (a.Queue == "") {
		return nil, api.Errorf(api.CodeBadRequest, "name a list or a queue (one of them)")
	}
	if err := checkServiceLevel(a.SLAMs, a.WarnPct); err != nil {
		return nil, err
	}
	if a.List != "" {
		l := s.Lists[a.List]
		if l == nil {
			return nil, api.Errorf(api.CodeNotFound, "list %q not found", a.List)
		}
		l.SLAMs, l.SLAWarnPct = a.SLAMs, a.WarnPct
		return nil, nil
	}
	q := s.Queues[a.Queue]
	if q == nil {
		return nil, api.Errorf(api.CodeNotFound, "queue %q not found", a.Queue)
	}
	q.SLAMs, q.SLAWarnPct = a.SLAMs, a.WarnPct
	return nil, nil
}

// startSLA sets the deadlines of a request arriving where the service
// level is ms with a warning at pct percent.
func (s *State) startSLA(r *Request, ms int64, pct int) {
	if ms <= 0 || s.ActiveLevel() < Level2 {
		return
	}
	r.SLA, r.SLAAt = api.SLAOk, s.Now
	r.SLADue = s.Now + ms*1e6
	if pct > 0 {
		r.SLAWarnAt = s.Now + ms*1e6*int64(pct)/100
	}
}

// slaMet records that an agent got into r: a request still ok or in
// warning has met its service level. It reports whether r changed; the
// caller tells (tellSLA).
func (s *State) slaMet(r *Request) bool {
	if r.SLA != api.SLAOk && r.SLA != api.SLAWarning {
		return false
	}
	r.SLA, r.SLAAt = api.SLAMet, s.Now
	s.countSL(r, true)
	return true
}

// setSLA changes r's SLA state and tells.
func (s *State) setSLA(r *Request, st api.SLAState, out *events) {
	r.SLA, r.SLAAt = st, s.Now
	s.tellSLA(r, out)
}

// tellSLA tells r's list's subscribers or queue's members its SLA state.
func (s *State) tellSLA(r *Request, out *events) {
	out.add(api.EvRequestSLA, s.slaAudience(r), api.RequestSLA{Request: s.summary(r), List: r.List, Queue: r.Queue, SLA: r.SLA, At: r.SLAAt})
}

// slaAudience is who hears of a request's service level: its list's
// subscribers, or its queue's members.
func (s *State) slaAudience(r *Request) []string {
	if l := s.Lists[r.List]; l != nil {
		return l.Subscribers
	}
	if q := s.Queues[r.Queue]; q != nil {
		return agentKeys(q.Members)
	}
	return nil
}

// timedRequest finds the request a system timer op names: any request
// the state still holds (a closed one is refused by the op's own check).
func (s *State) timedRequest(id string) (*Request, *api.Error) {
	if id == "" {
		return nil, api.Errorf(api.CodeBadRequest, "request is required")
	}
	r := s.Requests[id]
	if r == nil {
		return nil, api.Errorf(api.CodeNotFound, "request %q not found", id)
	}
	return r, nil
}

// notYet refuses a timer op proposed before its deadline by the
// replicated clock.
func (s *State) notYet(op string, r *Request, at int64) *api.Error {
	if s.Now < at {
		return api.Errorf(api.CodeWrongState, "%s of request %q is due at %d, not yet (now %d)", op, r.ID, at, s.Now)
	}
	return nil
}

// applySLAWarning moves an ok request whose warning is due to warning.
func applySLAWarning(s *State, _ *Command, a *api.RequestRef, out *events) (any, *api.Error) {
	r, err := s.timedRequest(a.Request)
	if err != nil {
		return nil, err
	}
	if r.State == api.StateClosed || r.SLA != api.SLAOk || r.SLAWarnAt == 0 {
		return nil, api.Errorf(api.CodeWrongState, "request %q has no SLA warning pending (sla %q, state %s)", r.ID, r.SLA, r.State)
	}
	if err := s.notYet(api.OpSLAWarning, r, r.SLAWarnAt); err != nil {
		return nil, err
	}
	s.setSLA(r, api.SLAWarning, out)
	return nil, nil
}

// applySLABreach moves an unanswered request whose deadline passed to
// breached.
func applySLABreach(s *State, _ *Command, a *api.RequestRef, out *events) (any, *api.Error) {
	r, err := s.timedRequest(a.Request)
	if err != nil {
		return nil, err
	}
	if r.State == api.StateClosed || (r.SLA != api.SLAOk && r.SLA != api.SLAWarning) {
		return nil, api.Errorf(api.CodeWrongState, "request %q has no SLA deadline pending (sla %q, state %s)", r.ID, r.SLA, r.State)
	}
	if err := s.notYet(api.OpSLABreach, r, r.SLADue); err != nil {
		return nil, err
	}
	s.setSLA(r, api.SLABreached, out)
	s.countSL(r, false)
	return nil, nil
}

// markInactive starts r's INACTIVE spell on a list that reminds or
// auto-closes; markActive ends it.
func (s *State) markInactive(r *Request) {
	if l := s.Lists[r.List]; l != nil && s.ActiveLevel() >= Level2 && (l.RemindInactiveMs > 0 || l.CloseInactiveMs > 0) {
		r.InactiveSince, r.Reminded = s.Now, false
	}
}

func (r *Request) markActive() { r.InactiveSince, r.Reminded = 0, false }

// inactiveList returns r's list if r is in an INACTIVE spell on it.
func (s *State) inactiveList(r *Request) *List {
	if r.State != api.StateInactive || r.InactiveSince == 0 {
		return nil
	}
	return s.Lists[r.List]
}

// applyRemindInactive tells the list's subscribers, once per spell, of a
// request INACTIVE for the list's remind_inactive_ms.
func applyRemindInactive(s *State, _ *Command, a *api.RequestRef, out *events) (any, *api.Error) {
	r, err := s.timedRequest(a.Request)
	if err != nil {
		return nil, err
	}
	l := s.inactiveList(r)
	if l == nil || l.RemindInactiveMs == 0 || r.Reminded {
		return nil, api.Errorf(api.CodeWrongState, "request %q has no INACTIVE reminder pending (state %s)", r.ID, r.State)
	}
	if err := s.notYet(api.OpRemindInactive, r, r.InactiveSince+l.RemindInactiveMs*1e6); err != nil {
		return nil, err
	}
	r.Reminded = true
	out.add(api.EvRequestReminder, l.Subscribers, api.RequestReminder{Request: s.summary(r), List: l.ID, InactiveSince: r.InactiveSince, At: s.Now})
	return nil, nil
}

// applyCloseInactive closes a request INACTIVE for its list's
// close_inactive_ms, as close does, by the system.
func applyCloseInactive(s *State, c *Command, a *api.RequestRef, out *events) (any, *api.Error) {
	r, err := s.timedRequest(a.Request)
	if err != nil {
		return nil, err
	}
	l := s.inactiveList(r)
	if l == nil || l.CloseInactiveMs == 0 {
		return nil, api.Errorf(api.CodeWrongState, "request %q has no INACTIVE auto-close pending (state %s)", r.ID, r.State)
	}
	if err := s.notYet(api.OpCloseInactive, r, r.InactiveSince+l.CloseInactiveMs*1e6); err != nil {
		return nil, err
	}
	s.closeRequest(r, c.By, out)
	return nil, nil
}

// Deadline is a system op due on a request at leader time At: what the
// leader's timers propose (as RoleSystem, with api.RequestRef) once it is
// due.
type Deadline struct {
	Request string
	Op      Op
	At      int64
}

// Deadlines returns the pending deadlines of request id, or of every open
// request when id is "", soonest first (then request id, then op).
func (s *State) Deadlines(id string) []Deadline {
	var out []Deadline
	if id != "" {
		if r := s.Requests[id]; r != nil {
			out = s.appendDeadlines(out, r)
		}
	} else {
		for _, r := range s.Requests {
			out = s.appendDeadlines(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Deadline) int {
		if c := cmp.Compare(a.At, b.At); c != 0 {
			return c
		}
		if c := keyCompare(a.Request, b.Request); c != 0 {
			return c
		}
		return cmp.Compare(a.Op, b.Op)
	})
	return out
}

// DeadlinesConfigured reports whether any list or queue sets a service
// level or an INACTIVE reminder or auto-close: without, no new request
// gets a deadline. It reads the lists and queues only.
func (s *State) DeadlinesConfigured() bool {
	for _, l := range s.Lists {
		if l.SLAMs > 0 || l.RemindInactiveMs > 0 || l.CloseInactiveMs > 0 {
			return true
		}
	}
	for _, q := range s.Queues {
		if q.SLAMs > 0 {
			return true
		}
	}
	return false
}

func (s *State) appendDeadlines(out []Deadline, r *Request) []Deadline {
	if r.State == api.StateClosed {
		return out
	}
	if r.SLA == api.SLAOk && r.SLAWarnAt != 0 {
		out = append(out, Deadline{r.ID, OpSLAWarning, r.SLAWarnAt})
	}
	if r.SLA == api.SLAOk || r.SLA == api.SLAWarning {
		out = append(out, Deadline{r.ID, OpSLABreach, r.SLADue})
	}
	if l := s.inactiveList(r); l != nil {
		if l.RemindInactiveMs > 0 && !r.Reminded {
			out = append(out, Deadline{r.ID, OpRemindInactive, r.InactiveSince + l.RemindInactiveMs*1e6})
		}
		if l.CloseInactiveMs > 0 {
			out = append(out, Deadline{r.ID, OpCloseInactive, r.InactiveSince + l.CloseInactiveMs*1e6})
		}
	}
	return out
}
