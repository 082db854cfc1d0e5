package fsm

import (
	"testing"

	"github.com/switchboard/switchboard/api"
)

// slaCmd is a system timer op on request r, stamped at the state's clock.
func slaCmd(op Op, r string) *Command { return ptCmd(op, ptSystem, &api.RequestRef{Request: r}) }

// slaArriveOnList opens a request on list LC (channel FC) and returns it.
func slaArriveOnList(tb ptTB, s *State, customer string) (string, []Event) {
	tb.Helper()
	res, evs := ptApply(tb, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: customer, Text: "hi"}))
	return res.Data.(api.CustomerMessageResult).Request, evs
}

func slaData(tb ptTB, e Event) api.RequestSLA {
	tb.Helper()
	d, ok := e.Data.(api.RequestSLA)
	if !ok {
		tb.Fatalf("%s carries %T, want api.RequestSLA", e.Kind, e.Data)
	}
	return d
}

var slaSubscribers = "request.sla→" + api.AgentKey("X") + "," + api.AgentKey("Y") + "," + api.AgentKey("Z")

// An unanswered list request goes ok → warning → breached, each step
// proposed by the leader's timer and refused one nanosecond early by the
// replicated clock; an agent joining late leaves it breached.
func TestSLAListWarningThenBreach(t *testing.T) {
	s := ptWorld(t)
	ptApply(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{List: "LC", SLAMs: 10_000, WarnPct: 80}))
	r, evs := slaArriveOnList(t, s, "u1")
	arrived := s.Now
	if got := evs[len(evs)-1].Data.(api.RequestSummary).SLA; got != api.SLAOk {
		t.Fatalf("request.created carries sla %q, want ok", got)
	}
	ptEqual(t, "deadlines", s.Deadlines(r), []Deadline{{r, OpSLAWarning, arrived + 8e9}, {r, OpSLABreach, arrived + 10e9}})

	ptTick(t, s, 8000)
	s.Now-- // the warning is one nanosecond away
	ptReject(t, s, slaCmd(OpSLAWarning, r), api.CodeWrongState)
	ptReject(t, s, slaCmd(OpSLABreach, r), api.CodeWrongState)
	s.Now++
	_, evs = ptApply(t, s, slaCmd(OpSLAWarning, r))
	ptWantKinds(t, evs, slaSubscribers)
	if d := slaData(t, evs[0]); d.SLA != api.SLAWarning || d.At != s.Now || d.List != "LC" || d.Request.ID != r || d.Request.SLA != api.SLAWarning {
		t.Fatalf("request.sla: %+v", d)
	}
	ptReject(t, s, slaCmd(OpSLAWarning, r), api.CodeWrongState) // warned already
	ptEqual(t, "deadlines after the warning", s.Deadlines(r), []Deadline{{r, OpSLABreach, arrived + 10e9}})

	ptTick(t, s, 2000)
	_, evs = ptApply(t, s, slaCmd(OpSLABreach, r))
	ptWantKinds(t, evs, slaSubscribers)
	if d := slaData(t, evs[0]); d.SLA != api.SLABreached || d.At != s.Now {
		t.Fatalf("request.sla: %+v", d)
	}
	ptReject(t, s, slaCmd(OpSLABreach, r), api.CodeWrongState)
	ptEqual(t, "deadlines after the breach", s.Deadlines(r), []Deadline(nil))

	_, evs = ptApply(t, s, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: r}))
	for _, e := range evs {
		if e.Kind == api.EvRequestSLA {
			t.Fatalf("a late join changed the SLA: %+v", e.Data)
		}
	}
	ptEqual(t, "sla after a late join", s.Requests[r].SLA, api.SLABreached)
	ptEqual(t, "summary", s.Requests[r].summary().SLA, api.SLABreached)
}

// A request answered in time is met; its timers, if they fire anyway,
// are refused and change nothing.
func TestSLAMetWhenAnsweredInTime(t *testing.T) {
	s := ptWorld(t)
	ptApply(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{List: "LC", SLAMs: 10_000, WarnPct: 50}))
	r, _ := slaArriveOnList(t, s, "u1")
	ptTick(t, s, 4000)
	_, evs := ptApply(t, s, ptCmd(OpJoin, ptAgent("Y"), &api.RequestArgs{Request: r}))
	ptWantKinds(t, evs, "conversation.joined→"+api.AgentKey("Y")+","+api.ConnectorKey("cx"),
		"request.updated→"+api.AgentKey("X")+","+api.AgentKey("Y")+","+api.AgentKey("Z"), slaSubscribers)
	if got := evs[1].Data.(api.RequestSummary).SLA; got != api.SLAMet {
		t.Fatalf("request.updated carries sla %q, want met", got)
	}
	if d := slaData(t, evs[2]); d.SLA != api.SLAMet || d.At != s.Now {
		t.Fatalf("request.sla: %+v", d)
	}
	ptEqual(t, "deadlines", s.Deadlines(r), []Deadline(nil))
	ptTick(t, s, 10_000)
	ptReject(t, s, slaCmd(OpSLAWarning, r), api.CodeWrongState)
	ptReject(t, s, slaCmd(OpSLABreach, r), api.CodeWrongState)
	// Leaving and another join: met stays met, nothing more is told.
	ptApply(t, s, ptCmd(OpLeave, ptAgent("Y"), &api.RequestArgs{Request: r}))
	_, evs = ptApply(t, s, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: r}))
	for _, e := range evs {
		if e.Kind == api.EvRequestSLA {
			t.Fatalf("a second join told the SLA again: %+v", e.Data)
		}
	}
	// A closed request's timers are refused too.
	r2, _ := slaArriveOnList(t, s, "u2")
	ptApply(t, s, ptCmd(OpClose, ptConn, &api.RequestArgs{Request: r2}))
	ptTick(t, s, 10_000)
	ptReject(t, s, slaCmd(OpSLABreach, r2), api.CodeWrongState)
	ptEqual(t, "deadlines of a closed request", s.Deadlines(r2), []Deadline(nil))
}

// A queue's service level: the queue's members hear of it, and an
// accepted offer meets it.
func TestSLAQueue(t *testing.T) {
	s := ptWorld(t)
	ptApply(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{Queue: "QS", SLAMs: 20_000, WarnPct: 50}))
	r, _ := ptArrive(t, s, "WS", "c1", 0)
	ptEqual(t, "sla", s.Requests[r].SLA, api.SLAOk)
	ptTick(t, s, 10_000)
	_, evs := ptApply(t, s, slaCmd(OpSLAWarning, r))
	ptWantKinds(t, evs, slaSubscribers) // X, Y, Z are QS's members
	if d := slaData(t, evs[0]); d.Queue != "QS" || d.List != "" || d.SLA != api.SLAWarning {
		t.Fatalf("request.sla: %+v", d)
	}
	ptReady(t, s, "chat", "X")
	_, evs = ptApply(t, s, ptCmd(OpAcceptOffer, ptAgent("X"), &api.OfferArgs{Request: r}))
	var met bool
	for _, e := range evs {
		if e.Kind == api.EvRequestSLA {
			met = slaData(t, e).SLA == api.SLAMet
		}
	}
	if !met || s.Requests[r].SLA != api.SLAMet {
		t.Fatalf("accepting the offer in time: sla %q, events %q", s.Requests[r].SLA, ptKinds(evs))
	}
	// A queue without a service level tracks nothing.
	r2, _ := ptArrive(t, s, "WV", "c2", 0)
	ptEqual(t, "sla without a service level", s.Requests[r2].SLA, api.SLAState(""))
	ptReject(t, s, slaCmd(OpSLABreach, r2), api.CodeWrongState)
}

// The timer ops are the system's alone and name a known request.
func TestSLAOpsRefused(t *testing.T) {
	s := ptWorld(t)
	ptApply(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{List: "LC", SLAMs: 1000}))
	r, _ := slaArriveOnList(t, s, "u1")
	ptTick(t, s, 5000)
	for _, op := range []Op{OpSLAWarning, OpSLABreach, OpRemindInactive, OpCloseInactive} {
		for _, by := range []api.Principal{ptAdmin, ptAgent("X"), ptConn} {
			ptReject(t, s, ptCmd(op, by, &api.RequestRef{Request: r}), api.CodeForbidden)
		}
		ptReject(t, s, slaCmd(op, "R999"), api.CodeNotFound)
		ptReject(t, s, slaCmd(op, ""), api.CodeBadRequest)
	}
	// No warning configured: only the breach is due.
	ptReject(t, s, slaCmd(OpSLAWarning, r), api.CodeWrongState)
	ptApply(t, s, slaCmd(OpSLABreach, r))
}

// Settings are validated at create time and by set_service_level, which
// applies to later arrivals only.
func TestServiceLevelSettings(t *testing.T) {
	s := ptWorld(t)
	for _, a := range []*api.CreateListArgs{
		{ID: "B1", SLAMs: -1},
		{ID: "B2", SLAMs: api.MaxSLAMs + 1},
		{ID: "B3", SLAMs: 1000, SLAWarnPct: 100},
		{ID: "B4", SLAMs: 1000, SLAWarnPct: -1},
		{ID: "B5", SLAWarnPct: 50},
		{ID: "B6", RemindInactiveMs: -1},
		{ID: "B7", CloseInactiveMs: api.MaxInactiveMs + 1},
	} {
		ptReject(t, s, ptCmd(OpCreateList, ptAdmin, a), api.CodeBadRequest)
	}
	ptReject(t, s, ptCmd(OpCreateQueue, ptAdmin, &api.CreateQueueArgs{ID: "B8", MRD: "chat", SLAMs: 1000, SLAWarnPct: 100}), api.CodeBadRequest)
	for _, a := range []*api.ServiceLevelArgs{
		{SLAMs: 1000},
		{List: "LC", Queue: "QS", SLAMs: 1000},
		{List: "LC", SLAMs: -5},
		{Queue: "QS", WarnPct: 80},
	} {
		ptReject(t, s, ptCmd(OpSetServiceLevel, ptAdmin, a), api.CodeBadRequest)
	}
	ptReject(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{List: "nope", SLAMs: 1}), api.CodeNotFound)
	ptReject(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{Queue: "nope", SLAMs: 1}), api.CodeNotFound)
	ptReject(t, s, ptCmd(OpSetServiceLevel, ptAgent("X"), &api.ServiceLevelArgs{List: "LC", SLAMs: 1}), api.CodeForbidden)

	ptApply(t, s, ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "L2", SLAMs: 30_000, SLAWarnPct: 80, RemindInactiveMs: 1, CloseInactiveMs: 2}))
	ptApply(t, s, ptCmd(OpCreateQueue, ptAdmin, &api.CreateQueueArgs{ID: "Q2", MRD: "chat", SLAMs: 30_000, SLAWarnPct: 80}))
	ptEqual(t, "list", *s.Lists["L2"], List{ID: "L2", SLAMs: 30_000, SLAWarnPct: 80, RemindInactiveMs: 1, CloseInactiveMs: 2})
	ptEqual(t, "queue sla", [2]int64{s.Queues["Q2"].SLAMs, int64(s.Queues["Q2"].SLAWarnPct)}, [2]int64{30_000, 80})

	ptApply(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{List: "LC", SLAMs: 10_000}))
	r1, _ := slaArriveOnList(t, s, "u1")
	due1 := s.Requests[r1].SLADue
	ptApply(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{List: "LC", SLAMs: 60_000, WarnPct: 10}))
	r2, _ := slaArriveOnList(t, s, "u2")
	ptEqual(t, "the earlier request keeps its deadline", s.Requests[r1].SLADue, due1)
	ptEqual(t, "the later one has the new", s.Deadlines(r2), []Deadline{{r2, OpSLAWarning, s.Now + 6e9}, {r2, OpSLABreach, s.Now + 60e9}})
	ptApply(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{List: "LC"})) // off
	r3, _ := slaArriveOnList(t, s, "u3")
	ptEqual(t, "sla after turning it off", s.Requests[r3].SLA, api.SLAState(""))
}

// At feature level 1 the settings and the ops are refused, and nothing
// else changes.
func TestSLAFeatureLevel1(t *testing.T) {
	s := NewState()
	ptApply(t, s, ptCmd(OpCreateMRD, ptAdmin, &api.CreateMRDArgs{ID: "chat"}))
	ptApply(t, s, ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "L"}))
	for _, c := range []*Command{
		ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "L1", SLAMs: 1000}),
		ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "L1", SLAWarnPct: 50}),
		ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "L1", RemindInactiveMs: 1000}),
		ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "L1", CloseInactiveMs: 1000}),
		ptCmd(OpCreateQueue, ptAdmin, &api.CreateQueueArgs{ID: "Q1", MRD: "chat", SLAMs: 1000}),
		ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{List: "L", SLAMs: 1000}),
		slaCmd(OpSLAWarning, "R1"),
		slaCmd(OpSLABreach, "R1"),
		slaCmd(OpRemindInactive, "R1"),
		slaCmd(OpCloseInactive, "R1"),
	} {
		ptReject(t, s, c, api.CodeFeatureNotEnabled)
	}
}

// inactiveWorld adds list LI (reminder after 60 s, auto-close after 120 s
// INACTIVE) with pull channel FI and subscribers X and Y; customers write
// through admin.
func inactiveWorld(tb ptTB) *State {
	tb.Helper()
	s := ptWorld(tb)
	ptApply(tb, s, ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "LI", RemindInactiveMs: 60_000, CloseInactiveMs: 120_000}))
	ptApply(tb, s, ptCmd(OpCreateChannel, ptAdmin, &api.CreateChannelArgs{ID: "FI", Type: "forum", Mode: api.ModePull, List: "LI"}))
	for _, id := range []string{"X", "Y"} {
		ptApply(tb, s, ptCmd(OpSubscribe, ptAgent(id), &api.SubscribeArgs{List: "LI"}))
	}
	return s
}

var inactiveSubscribers = api.AgentKey("X") + "," + api.AgentKey("Y")

// A request left INACTIVE is reminded once per spell (never announced as
// created again), then closed by the system; timers of an ended spell are
// refused.
func TestInactiveReminderThenClose(t *testing.T) {
	s := inactiveWorld(t)
	res, _ := ptApply(t, s, ptCmd(OpCustomerMessage, ptAdmin, &api.CustomerMessageArgs{Channel: "FI", CustomerID: "u1", Text: "hi"}))
	r := res.Data.(api.CustomerMessageResult).Request
	ptEqual(t, "deadlines of an UNREAD request", s.Deadlines(r), []Deadline(nil))
	ptReject(t, s, slaCmd(OpRemindInactive, r), api.CodeWrongState)
	ptApply(t, s, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: r}))
	ptTick(t, s, 1000)
	ptApply(t, s, ptCmd(OpLeave, ptAgent("X"), &api.RequestArgs{Request: r}))
	since := s.Now
	ptEqual(t, "deadlines", s.Deadlines(r), []Deadline{{r, OpRemindInactive, since + 60e9}, {r, OpCloseInactive, since + 120e9}})

	ptTick(t, s, 60_000)
	s.Now--
	ptReject(t, s, slaCmd(OpRemindInactive, r), api.CodeWrongState)
	s.Now++
	_, evs := ptApply(t, s, slaCmd(OpRemindInactive, r))
	ptWantKinds(t, evs, "request.reminder→"+inactiveSubscribers)
	rem := evs[0].Data.(api.RequestReminder)
	if rem.Request.ID != r || rem.List != "LI" || rem.InactiveSince != since || rem.At != s.Now {
		t.Fatalf("request.reminder: %+v", rem)
	}
	ptReject(t, s, slaCmd(OpRemindInactive, r), api.CodeWrongState) // once per spell

	// A join ends the spell: its timers are stale.
	ptApply(t, s, ptCmd(OpJoin, ptAgent("Y"), &api.RequestArgs{Request: r}))
	ptTick(t, s, 60_000) // past the first spell's close
	ptReject(t, s, slaCmd(OpCloseInactive, r), api.CodeWrongState)
	ptEqual(t, "deadlines while ACTIVE", s.Deadlines(r), []Deadline(nil))
	ptApply(t, s, ptCmd(OpLeave, ptAgent("Y"), &api.RequestArgs{Request: r}))
	since = s.Now
	ptEqual(t, "the new spell's deadlines", s.Deadlines(r), []Deadline{{r, OpRemindInactive, since + 60e9}, {r, OpCloseInactive, since + 120e9}})
	ptTick(t, s, 119_999)
	ptReject(t, s, slaCmd(OpCloseInactive, r), api.CodeWrongState) // the new spell's is not due
	_, evs = ptApply(t, s, slaCmd(OpRemindInactive, r))            // a new spell, a new reminder
	ptWantKinds(t, evs, "request.reminder→"+inactiveSubscribers)
	ptTick(t, s, 1)
	_, evs = ptApply(t, s, slaCmd(OpCloseInactive, r))
	ptWantKinds(t, evs, "request.removed→"+inactiveSubscribers)
	if got := s.Requests[r]; got.State != api.StateClosed || containsSorted(s.Lists["LI"].Requests, r) || len(s.Lists["LI"].Requests) != 0 {
		t.Fatalf("after close_inactive: state %s, list %v", got.State, s.Lists["LI"].Requests)
	}
	if _, open := s.Open.Get("FI", "u1"); open {
		t.Fatal("the customer still has an open request")
	}
	ptReject(t, s, slaCmd(OpCloseInactive, r), api.CodeWrongState)
}

// conversation.closed of an auto-close names the system as the closer.
func TestInactiveCloseBySystem(t *testing.T) {
	s := ptWorld(t)
	ptApply(t, s, ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "LI", CloseInactiveMs: 1000}))
	ptApply(t, s, ptCmd(OpCreateChannel, ptAdmin, &api.CreateChannelArgs{ID: "FI", Type: "forum", Mode: api.ModePull, List: "LI"}))
	ptApply(t, s, ptCmd(OpCreateConnector, ptAdmin, &api.CreateConnectorArgs{ID: "ci", Channels: []string{"FI"}, TokenHash: []byte("h")}))
	ptApply(t, s, ptCmd(OpSubscribe, ptAgent("X"), &api.SubscribeArgs{List: "LI"}))
	res, _ := ptApply(t, s, ptCmd(OpCustomerMessage, api.Principal{Role: api.RoleConnector, ID: "ci"}, &api.CustomerMessageArgs{Channel: "FI", CustomerID: "u1", Text: "hi"}))
	r := res.Data.(api.CustomerMessageResult).Request
	ptApply(t, s, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: r}))
	ptApply(t, s, ptCmd(OpLeave, ptAgent("X"), &api.RequestArgs{Request: r}))
	ptEqual(t, "deadlines (no reminder set)", s.Deadlines(r), []Deadline{{r, OpCloseInactive, s.Now + 1e9}})
	ptReject(t, s, slaCmd(OpRemindInactive, r), api.CodeWrongState)
	ptTick(t, s, 1000)
	_, evs := ptApply(t, s, slaCmd(OpCloseInactive, r))
	ptWantKinds(t, evs, "conversation.closed→"+api.ConnectorKey("ci"), "request.removed→"+api.AgentKey("X"))
	ptEqual(t, "closed by", evs[0].Data.(api.ConversationClosed).By, ptSystem)
}

// Off by default: a list without the settings keeps the product's rule
// (an INACTIVE request stays listed, nothing reminds or closes it).
func TestInactiveOffByDefault(t *testing.T) {
	s := ptWorld(t)
	r, _ := slaArriveOnList(t, s, "u1")
	ptApply(t, s, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: r}))
	ptApply(t, s, ptCmd(OpLeave, ptAgent("X"), &api.RequestArgs{Request: r}))
	ptTick(t, s, api.MaxInactiveMs)
	ptEqual(t, "inactive since", s.Requests[r].InactiveSince, int64(0))
	ptEqual(t, "deadlines", s.Deadlines(""), []Deadline(nil))
	ptReject(t, s, slaCmd(OpRemindInactive, r), api.CodeWrongState)
	ptReject(t, s, slaCmd(OpCloseInactive, r), api.CodeWrongState)
}

// Deadlines("") is every open request's, soonest first.
func TestDeadlinesOrder(t *testing.T) {
	s := ptWorld(t)
	ptApply(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{List: "LC", SLAMs: 10_000, WarnPct: 50}))
	ptApply(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{Queue: "QS", SLAMs: 3_000}))
	r1, _ := slaArriveOnList(t, s, "u1")
	t1 := s.Now
	ptTick(t, s, 1000)
	r2, _ := ptArrive(t, s, "WS", "c1", 0)
	t2 := s.Now
	ptEqual(t, "deadlines", s.Deadlines(""), []Deadline{{r2, OpSLABreach, t2 + 3e9}, {r1, OpSLAWarning, t1 + 5e9}, {r1, OpSLABreach, t1 + 10e9}})
}
