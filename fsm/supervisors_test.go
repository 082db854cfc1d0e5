package fsm

import (
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// Supervisors in the push test world: "all" sees everything; "chat" is
// scoped to MRD chat; "qe" to queue QE (email); "lc" to list LC.
var (
	svAll  = api.Principal{Role: api.RoleSupervisor, ID: "all"}
	svChat = api.Principal{Role: api.RoleSupervisor, ID: "chat"}
	svQE   = api.Principal{Role: api.RoleSupervisor, ID: "qe"}
	svLC   = api.Principal{Role: api.RoleSupervisor, ID: "lc"}
)

func svWorld(t *testing.T) *State {
	t.Helper()
	s := ptWorld(t)
	for _, a := range []*api.CreateSupervisorArgs{
		{ID: "all", Name: "Sam"},
		{ID: "chat", MRDs: []string{"chat"}},
		{ID: "qe", Queues: []string{"QE"}},
		{ID: "lc", Lists: []string{"LC"}},
	} {
		a.TokenHash = []byte("h")
		ptApply(t, s, ptCmd(OpCreateSupervisor, ptAdmin, a))
	}
	return s
}

func TestCreateSupervisorValidates(t *testing.T) {
	s := svWorld(t)
	tok := []byte("h")
	for _, c := range []struct {
		name string
		args *api.CreateSupervisorArgs
		code api.Code
	}{
		{"duplicate id", &api.CreateSupervisorArgs{ID: "all", TokenHash: tok}, api.CodeAlreadyExists},
		{"no token", &api.CreateSupervisorArgs{ID: "new"}, api.CodeBadRequest},
		{"bad id", &api.CreateSupervisorArgs{ID: "", TokenHash: tok}, api.CodeBadRequest},
		{"unknown mrd", &api.CreateSupervisorArgs{ID: "new", MRDs: []string{"voice"}, TokenHash: tok}, api.CodeNotFound},
		{"unknown list", &api.CreateSupervisorArgs{ID: "new", Lists: []string{"nope"}, TokenHash: tok}, api.CodeNotFound},
		{"unknown queue", &api.CreateSupervisorArgs{ID: "new", Queues: []string{"nope"}, TokenHash: tok}, api.CodeNotFound},
	} {
		t.Run(c.name, func(t *testing.T) { ptReject(t, s, ptCmd(OpCreateSupervisor, ptAdmin, c.args), c.code) })
	}
	ptReject(t, s, ptCmd(OpCreateSupervisor, ptAgent("X"), &api.CreateSupervisorArgs{ID: "new", TokenHash: tok}), api.CodeForbidden)
	ptReject(t, s, ptCmd(OpCreateSupervisor, svAll, &api.CreateSupervisorArgs{ID: "new", TokenHash: tok}), api.CodeForbidden)
}

// Below level 3 there are no supervisors: the ops are refused as not
// enabled on every node alike.
func TestSupervisorsNeedLevel3(t *testing.T) {
	s := NewState()
	ptApply(t, s, ptCmd(OpSetFeatureLevel, ptSystem, &api.FeatureLevelArgs{Level: Level2}))
	ptReject(t, s, ptCmd(OpCreateSupervisor, ptAdmin, &api.CreateSupervisorArgs{ID: "s", TokenHash: []byte("h")}), api.CodeFeatureNotEnabled)
}

func TestSupervisorCloseInScopeOnly(t *testing.T) {
	s := svWorld(t)
	chat, _ := ptArrive(t, s, "WS", "c1", 0)
	mail, _ := ptArrive(t, s, "ME", "c2", 0)
	ptReject(t, s, ptCmd(OpClose, svChat, &api.RequestArgs{Request: mail}), api.CodeForbidden)
	ptReject(t, s, ptCmd(OpClose, svQE, &api.RequestArgs{Request: chat}), api.CodeForbidden)
	ptReject(t, s, ptCmd(OpClose, api.Principal{Role: api.RoleSupervisor, ID: "ghost"}, &api.RequestArgs{Request: chat}), api.CodeForbidden)
	_, evs := ptApply(t, s, ptCmd(OpClose, svChat, &api.RequestArgs{Request: chat}))
	ptApply(t, s, ptCmd(OpClose, svQE, &api.RequestArgs{Request: mail}))
	if r := s.Requests[chat]; r.State != api.StateClosed {
		t.Fatalf("%s is %s after the supervisor's close", chat, r.State)
	}
	var closed *api.ConversationClosed
	for _, e := range evs {
		if e.Kind == api.EvConversationClosed {
			c := e.Data.(api.ConversationClosed)
			closed = &c
		}
	}
	if closed == nil || closed.By != svChat {
		t.Fatalf("conversation.closed by %+v, want the supervisor", closed)
	}
	ptReject(t, s, ptCmd(OpClose, svAll, &api.RequestArgs{Request: chat}), api.CodeClosed)
}

// A supervisor assigns a waiting request to an agent: it leaves its queue
// and is offered to that agent, whoever routing would have picked.
func TestSupervisorAssignsAWaitingRequest(t *testing.T) {
	s := svWorld(t)
	req, _ := ptArrive(t, s, "WS", "c1", 0) // nobody READY: it waits
	if !s.Requests[req].Queued {
		t.Fatalf("%s is not waiting", req)
	}
	ptReady(t, s, "email", "Y") // logged in, NOT_READY in chat
	ptReject(t, s, ptCmd(OpTransfer, svChat, &api.TransferArgs{Request: req, ToAgent: "Y"}), api.CodeWrongState)
	// In pull chat mode a READY agent is offered nothing until it asks,
	// so the request keeps waiting while Y is READY.
	ptApply(t, s, ptCmd(OpSetAgentMode, ptAgent("Y"), &api.SetAgentModeArgs{Mode: api.AgentModePull}))
	ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("Y"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}))
	if !s.Requests[req].Queued || ptOfferee(s, req) != "" {
		t.Fatalf("%s: queued %v, offered to %q; want waiting", req, s.Requests[req].Queued, ptOfferee(s, req))
	}
	// An admin or an agent may not pick a waiting request for someone.
	ptReject(t, s, ptCmd(OpTransfer, ptAdmin, &api.TransferArgs{Request: req, ToAgent: "Y"}), api.CodeWrongState)
	// The email supervisor may not touch a chat request.
	ptReject(t, s, ptCmd(OpTransfer, svQE, &api.TransferArgs{Request: req, ToAgent: "Y"}), api.CodeForbidden)
	res, evs := ptApply(t, s, ptCmd(OpTransfer, svChat, &api.TransferArgs{Request: req, ToAgent: "Y"}))
	if info := res.Data.(api.OfferInfo); info.Agent != "Y" || info.Kind != api.OfferTransfer {
		t.Fatalf("assign answered %+v", info)
	}
	r := s.Requests[req]
	if r.Queued || ptOfferee(s, req) != "Y" || slices.Contains(s.Queues["QS"].Waiting, req) {
		t.Fatalf("after assign: queued %v, offered to %q, QS waiting %v", r.Queued, ptOfferee(s, req), s.Queues["QS"].Waiting)
	}
	if !hasKindTo(evs, api.EvOfferCreated, api.AgentKey("Y")) {
		t.Fatalf("Y was not told of the offer: %q", ptKinds(evs))
	}
	ptAccept(t, s, "Y", req)
	if !slices.Equal(s.Requests[req].Participants, []string{"Y"}) {
		t.Fatalf("participants %v after accept", s.Requests[req].Participants)
	}
}

// An assignment the agent rejects puts the request back at its place in
// the queue, not behind the requests that arrived since.
func TestRejectedAssignmentKeepsTheQueuePlace(t *testing.T) {
	s := svWorld(t)
	first, _ := ptArrive(t, s, "WS", "c1", 0)
	queuedAt := s.Requests[first].QueuedAt
	ptTick(t, s, 60_000)
	second, _ := ptArrive(t, s, "WS", "c2", 0)
	ptReady(t, s, "email", "Y")
	ptApply(t, s, ptCmd(OpSetAgentMode, ptAgent("Y"), &api.SetAgentModeArgs{Mode: api.AgentModePull}))
	ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("Y"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}))
	ptApply(t, s, ptCmd(OpTransfer, svChat, &api.TransferArgs{Request: first, ToAgent: "Y"}))
	ptApply(t, s, ptCmd(OpRejectOffer, ptAgent("Y"), &api.OfferArgs{Request: first}))
	r := s.Requests[first]
	if !r.Queued || r.QueuedAt != queuedAt || !slices.Equal(s.Queues["QS"].Waiting, []string{first, second}) {
		t.Fatalf("after the rejected assignment: queued %v at %d (was %d), QS waiting %v; want back first in line",
			r.Queued, r.QueuedAt, queuedAt, s.Queues["QS"].Waiting)
	}
}

// A supervisor learns nothing of a request outside its scope from a
// transfer's errors: the scope is checked first.
func TestSupervisorTransferOutsideScopeTellsNothing(t *testing.T) {
	s := svWorld(t)
	ptReady(t, s, "chat", "X")
	req, _ := ptArrive(t, s, "WS", "c1", 0)
	ptAccept(t, s, "X", req)
	ptReject(t, s, ptCmd(OpTransfer, svQE, &api.TransferArgs{Request: req, ToAgent: "X"}), api.CodeForbidden)
	ptReject(t, s, ptCmd(OpTransfer, svQE, &api.TransferArgs{Request: req, Agent: "Z", ToAgent: "Y"}), api.CodeForbidden)
}

// A supervisor of a list oversees its agents in the MRDs of the list's
// channels only.
func TestListSupervisorNotReadyInTheListsMRDOnly(t *testing.T) {
	s := svWorld(t)
	ptReady(t, s, "chat", "X")
	ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("X"), &api.SetAgentStateArgs{MRD: "email", State: api.AgentReady}))
	ptReject(t, s, ptCmd(OpSetAgentState, svLC, &api.SetAgentStateArgs{Agent: "X", MRD: "email", State: api.AgentNotReady}), api.CodeForbidden)
	ptApply(t, s, ptCmd(OpSetAgentState, svLC, &api.SetAgentStateArgs{Agent: "X", MRD: "chat", State: api.AgentNotReady}))
}

// A supervisor hears a request leave its scope and an agent log out of
// it: the events of the move reach those who watched it before.
func TestSupervisorsHearWhatLeavesTheirScope(t *testing.T) {
	s := svWorld(t)
	ptApply(t, s, ptCmd(OpCreateSupervisor, ptAdmin, &api.CreateSupervisorArgs{ID: "qs", Queues: []string{"QS"}, TokenHash: []byte("h")}))
	ptApply(t, s, ptCmd(OpCreateSupervisor, ptAdmin, &api.CreateSupervisorArgs{ID: "em", MRDs: []string{"email"}, TokenHash: []byte("h")}))
	req, _ := ptArrive(t, s, "WS", "c1", 0)
	_, evs := ptApply(t, s, ptCmd(OpTransferToQueue, svChat, &api.TransferToQueueArgs{Request: req, Queue: "QV"}))
	if !hasKindTo(evs, api.EvRequestQueued, api.SupervisorKey("qs")) {
		t.Fatalf("request moved out of QS: supervisor qs not told: %q", ptKinds(evs))
	}
	// W works in email by its state only (no max there, no queue).
	ptApply(t, s, ptCmd(OpCreateAgent, ptAdmin, &api.CreateAgentArgs{ID: "W", TokenHash: []byte("h")}))
	ptReady(t, s, "email", "W")
	_, evs = ptApply(t, s, ptCmd(OpLogout, api.Principal{Role: api.RoleSupervisor, ID: "em"}, &api.AgentArgs{Agent: "W"}))
	if !hasKindTo(evs, api.EvAgentState, api.SupervisorKey("em")) {
		t.Fatalf("W logged out of email: supervisor em not told: %q", ptKinds(evs))
	}
}

// A supervisor moves a conversation from one agent to another, and puts
// another in a queue.
func TestSupervisorTransfers(t *testing.T) {
	s := svWorld(t)
	ptReady(t, s, "chat", "X")
	req, _ := ptArrive(t, s, "WS", "c1", 0)
	ptAccept(t, s, "X", req)
	ptReady(t, s, "chat", "Z")
	ptApply(t, s, ptCmd(OpTransfer, svAll, &api.TransferArgs{Request: req, Agent: "X", ToAgent: "Z"}))
	if got := s.Requests[req]; len(got.Participants) != 0 || ptOfferee(s, req) != "Z" {
		t.Fatalf("after transfer X→Z: participants %v, offered to %q", got.Participants, ptOfferee(s, req))
	}
	ptAccept(t, s, "Z", req)
	ptReject(t, s, ptCmd(OpTransferToQueue, svQE, &api.TransferToQueueArgs{Request: req, Queue: "QV"}), api.CodeForbidden)
	ptApply(t, s, ptCmd(OpTransferToQueue, svChat, &api.TransferToQueueArgs{Request: req, Agent: "Z", Queue: "QV"}))
	if r := s.Requests[req]; r.Queue != "QV" || slices.Contains(r.Participants, "Z") {
		t.Fatalf("after transfer_to_queue: queue %s, participants %v", r.Queue, r.Participants)
	}
}

func TestSupervisorSetsNotReadyAndLogsOut(t *testing.T) {
	s := svWorld(t)
	ptReady(t, s, "chat", "X")
	ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("X"), &api.SetAgentStateArgs{MRD: "email", State: api.AgentReady}))
	// Never READY.
	ptReject(t, s, ptCmd(OpSetAgentState, svAll, &api.SetAgentStateArgs{Agent: "X", MRD: "chat", State: api.AgentReady}), api.CodeForbidden)
	// Y is not in QE, the only place of supervisor qe.
	ptReady(t, s, "chat", "Y")
	ptReject(t, s, ptCmd(OpSetAgentState, svQE, &api.SetAgentStateArgs{Agent: "Y", MRD: "email", State: api.AgentNotReady}), api.CodeForbidden)
	ptReject(t, s, ptCmd(OpLogout, svQE, &api.AgentArgs{Agent: "Y"}), api.CodeForbidden)
	// X is in QE (email): qe may take it off email, not off chat.
	ptReject(t, s, ptCmd(OpSetAgentState, svQE, &api.SetAgentStateArgs{Agent: "X", MRD: "chat", State: api.AgentNotReady}), api.CodeForbidden)
	_, evs := ptApply(t, s, ptCmd(OpSetAgentState, svQE, &api.SetAgentStateArgs{Agent: "X", MRD: "email", State: api.AgentNotReady, Reason: "supervisor"}))
	if st := s.Agents["X"].stateIn("email"); st.State != api.AgentNotReady || st.Reason != "supervisor" {
		t.Fatalf("X in email: %+v", st)
	}
	if !hasKindTo(evs, api.EvAgentState, api.AgentKey("X")) || !hasKindTo(evs, api.EvAgentState, api.SupervisorKey("qe")) {
		t.Fatalf("agent.state not told to X and supervisor qe: %q", ptKinds(evs))
	}
	ptApply(t, s, ptCmd(OpLogout, svChat, &api.AgentArgs{Agent: "Y"}))
	if s.Agents["Y"].LoggedIn {
		t.Fatal("Y still logged in after the supervisor's logout")
	}
	// Supervisors name the agent: without one the command is bad.
	ptReject(t, s, ptCmd(OpLogout, svAll, &api.AgentArgs{}), api.CodeBadRequest)
}

// Every event about a request or agent reaches exactly the supervisors
// whose scope covers it, including events nobody else hears.
func TestSupervisorsHearEventsInScope(t *testing.T) {
	s := svWorld(t)
	// Unsubscribe everyone from LC: request.created then has no agent
	// recipient, but supervisors all and lc (and chat: FC is chat) hear it.
	for _, id := range []string{"X", "Y", "Z"} {
		ptApply(t, s, ptCmd(OpUnsubscribe, ptAgent(id), &api.SubscribeArgs{List: "LC"}))
	}
	_, evs := ptApply(t, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: "p1", Text: "hi"}))
	if !hasKindTo(evs, api.EvRequestCreated, api.SupervisorKey("all")) ||
		!hasKindTo(evs, api.EvRequestCreated, api.SupervisorKey("lc")) ||
		!hasKindTo(evs, api.EvRequestCreated, api.SupervisorKey("chat")) ||
		hasKindTo(evs, api.EvRequestCreated, api.SupervisorKey("qe")) {
		t.Fatalf("request.created on LC: %q", ptKinds(evs))
	}
	_, evs = ptArrive(t, s, "ME", "m1", 0)
	for _, e := range evs {
		got := supervisorsOf(e.To)
		if want := []string{"all", "qe"}; !slices.Equal(got, want) {
			t.Errorf("%s on QE heard by supervisors %v, want %v", e.Kind, got, want)
		}
	}
	if len(evs) == 0 {
		t.Fatal("an email arrival emitted nothing")
	}
}

// An event's recipients slice may be the state's own (a list's
// subscribers); adding supervisors must not change the state.
func TestSupervisorKeysDoNotAliasState(t *testing.T) {
	s := svWorld(t)
	subs := slices.Clone(s.Lists["LC"].Subscribers)
	s.Lists["LC"].Subscribers = slices.Grow(s.Lists["LC"].Subscribers, 8) // spare capacity to scribble in
	ptApply(t, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: "p1", Text: "hi"}))
	if got := s.Lists["LC"].Subscribers; !slices.Equal(got, subs) || slices.ContainsFunc(got[:cap(got)][len(got):], func(k string) bool { return k != "" }) {
		t.Fatalf("LC subscribers %v (backing %v), want %v untouched", got, got[:cap(got)], subs)
	}
}

func TestBoard(t *testing.T) {
	s := svWorld(t)
	ptReady(t, s, "chat", "X")
	busy, _ := ptArrive(t, s, "WS", "c1", 0)
	ptAccept(t, s, "X", busy)
	ptArrive(t, s, "WS", "c2", 0) // offered to X (capacity 3)
	ptArrive(t, s, "ME", "m1", 0) // waits: nobody READY in email
	ptTick(t, s, 5000)
	res, _ := ptApply(t, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: "p1", Text: "hi"}))
	pull := res.Data.(api.CustomerMessageResult).Request

	b, ok := s.SupervisorBoard("all")
	if !ok {
		t.Fatal("no board for supervisor all")
	}
	if len(b.Requests) != 4 || b.Truncated {
		t.Fatalf("board of all lists %d requests (truncated %v), want 4", len(b.Requests), b.Truncated)
	}
	var lc *api.BoardList
	for i := range b.Lists {
		if b.Lists[i].ID == "LC" {
			lc = &b.Lists[i]
		}
	}
	if lc == nil || lc.Unread != 1 || lc.OldestUnreadAt != s.Requests[pull].CreatedAt || lc.Subscribers != 3 {
		t.Fatalf("LC on the board: %+v", lc)
	}
	q := map[string]api.BoardQueue{}
	for _, bq := range b.Queues {
		q[bq.ID] = bq
	}
	if qe := q["QE"]; qe.Waiting != 1 || qe.OldestQueuedAt == 0 || qe.NotReady != 1 {
		t.Fatalf("QE on the board: %+v", qe)
	}
	if qs := q["QS"]; qs.Busy != 1 || qs.LoggedOut != 2 || qs.Members != 3 {
		t.Fatalf("QS on the board: %+v (X busy, Y and Z logged out)", qs)
	}
	if len(b.Agents) != 3 {
		t.Fatalf("board agents: %d, want 3", len(b.Agents))
	}

	qeBoard, _ := s.SupervisorBoard("qe")
	if len(qeBoard.Requests) != 1 || qeBoard.Requests[0].Queue != "QE" || len(qeBoard.Queues) != 1 || len(qeBoard.Lists) != 0 {
		t.Fatalf("board of qe: %d requests %+v, queues %d, lists %d", len(qeBoard.Requests), qeBoard.Requests, len(qeBoard.Queues), len(qeBoard.Lists))
	}
	if ids := agentIDs(qeBoard.Agents); !slices.Equal(ids, []string{"X"}) {
		t.Fatalf("board of qe shows agents %v, want [X] (the only member of QE)", ids)
	}
	v, ok := s.View(api.SupervisorKey("qe"))
	if !ok || v.Board == nil || v.Supervisor != "qe" {
		t.Fatalf("view of supervisor qe: %+v, %v", v, ok)
	}
	if _, ok := s.View(api.SupervisorKey("ghost")); ok {
		t.Fatal("a view for a supervisor that does not exist")
	}
}

// The service level of the day counts met and breached requests per queue
// and starts again on a new (UTC) day.
func TestServiceLevelOfTheDay(t *testing.T) {
	s := svWorld(t)
	ptApply(t, s, ptCmd(OpSetServiceLevel, ptAdmin, &api.ServiceLevelArgs{Queue: "QS", SLAMs: 10_000}))
	late, _ := ptArrive(t, s, "WS", "c1", 0)
	ptTick(t, s, 11_000)
	ptApply(t, s, ptCmd(OpSLABreach, ptSystem, &api.RequestRef{Request: late}))
	ptReady(t, s, "chat", "X")
	ptAccept(t, s, "X", late) // breached stays breached
	fast, _ := ptArrive(t, s, "WS", "c2", 0)
	ptAccept(t, s, "X", fast)
	q := s.Queues["QS"]
	if q.SLMet != 1 || q.SLBreached != 1 || q.SLDay != s.Now/dayNanos {
		t.Fatalf("QS: met %d breached %d day %d", q.SLMet, q.SLBreached, q.SLDay)
	}
	b, _ := s.SupervisorBoard("chat")
	for _, bq := range b.Queues {
		if bq.ID == "QS" && (bq.Met != 1 || bq.Breached != 1) {
			t.Fatalf("board QS: %+v", bq)
		}
	}
	ptTick(t, s, dayNanos/1e6)
	b, _ = s.SupervisorBoard("chat")
	for _, bq := range b.Queues {
		if bq.ID == "QS" && (bq.Met != 0 || bq.Breached != 0) {
			t.Fatalf("board QS the next day: %+v", bq)
		}
	}
	next, _ := ptArrive(t, s, "WS", "c3", 0)
	ptAccept(t, s, "X", next)
	if q.SLMet != 1 || q.SLBreached != 0 {
		t.Fatalf("QS the next day: met %d breached %d", q.SLMet, q.SLBreached)
	}
}

func TestSupervisorQueries(t *testing.T) {
	s := svWorld(t)
	mail, _ := ptArrive(t, s, "ME", "m1", 0)
	chat, _ := ptArrive(t, s, "WS", "c1", 0)
	if _, err := s.Query(svQE, api.QueryRequest, mustPack(t, api.QueryArgs{Request: mail})); err != nil {
		t.Fatalf("qe reading %s: %v", mail, err)
	}
	if _, err := s.Query(svQE, api.QueryRequest, mustPack(t, api.QueryArgs{Request: chat})); err == nil || err.Code != api.CodeForbidden {
		t.Fatalf("qe reading %s: %v, want forbidden", chat, err)
	}
	if _, err := s.Query(svQE, api.QueryAgents, nil); err == nil || err.Code != api.CodeForbidden {
		t.Fatalf("qe listing agents: %v, want forbidden", err)
	}
	// Its arguments are checked as anyone's: a negative limit would page
	// nothing forever.
	if _, err := s.Query(svLC, api.QueryList, mustPack(t, api.QueryArgs{List: "LC", Limit: -1})); err == nil || err.Code != api.CodeBadRequest {
		t.Fatalf("lc reading LC with limit -1: %v, want bad_request", err)
	}
	v, err := s.Query(svQE, api.QueryBoard, nil)
	if err != nil || len(v.(*api.Board).Requests) != 1 {
		t.Fatalf("qe board: %v %+v", err, v)
	}
	infos, err := s.Query(ptAdmin, api.QuerySupervisors, nil)
	if err != nil || len(infos.([]api.SupervisorInfo)) != 4 {
		t.Fatalf("get_supervisors: %v %+v", err, infos)
	}
	ptApply(t, s, ptCmd(OpDeleteSupervisor, ptAdmin, &api.IDArgs{ID: "qe"}))
	if _, err := s.Query(svQE, api.QueryBoard, nil); err == nil || err.Code != api.CodeForbidden {
		t.Fatalf("deleted supervisor's board: %v, want forbidden", err)
	}
	ptReject(t, s, ptCmd(OpClose, svQE, &api.RequestArgs{Request: mail}), api.CodeForbidden)
	ptReject(t, s, ptCmd(OpDeleteSupervisor, ptAdmin, &api.IDArgs{ID: "qe"}), api.CodeNotFound)
}

func hasKindTo(evs []Event, kind api.EventKind, key string) bool {
	for _, e := range evs {
		if e.Kind == kind && slices.Contains(e.To, key) {
			return true
		}
	}
	return false
}

func supervisorsOf(to []string) []string {
	var out []string
	for _, k := range to {
		if id, ok := strings.CutPrefix(k, "supervisor:"); ok {
			out = append(out, id)
		}
	}
	return out
}

func agentIDs(as []api.BoardAgent) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Status.Agent)
	}
	return out
}

func mustPack(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// PrecheckSupervisor refuses a supervisor's transfer_to_queue into a
// queue outside its scope: another queue of the request's MRD, or a queue
// of another MRD (forbidden, where Apply would answer bad_request and
// name that queue's MRD); a queue that does not exist is not_found. It
// lets through a queue in scope (by name or by MRD), any queue for a
// supervisor of everything, every other principal and every other op,
// leaving the rest to Apply; and it changes nothing.
func TestPrecheckSupervisorDestination(t *testing.T) {
	s := svWorld(t)
	qs := api.Principal{Role: api.RoleSupervisor, ID: "qs"}
	ptApply(t, s, ptCmd(OpCreateSupervisor, ptAdmin, &api.CreateSupervisorArgs{ID: "qs", Queues: []string{"QS"}, TokenHash: []byte("h")}))
	req, _ := ptArrive(t, s, "WS", "c1", 0) // waits in QS
	move := func(by api.Principal, queue string) *Command {
		return ptCmd(OpTransferToQueue, by, &api.TransferToQueueArgs{Request: req, Queue: queue})
	}
	before, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cmd  *Command
		code api.Code // CodeOK: let through
	}{
		{"queue supervisor, other queue of the MRD", move(qs, "QV"), api.CodeForbidden},
		{"queue supervisor, queue of another MRD", move(qs, "QE"), api.CodeForbidden},
		{"queue supervisor, no such queue", move(qs, "nope"), api.CodeNotFound},
		{"queue supervisor, its own queue", move(qs, "QS"), api.CodeOK},
		{"email supervisor, its queue", move(svQE, "QE"), api.CodeOK},
		{"MRD supervisor, queue of its MRD", move(svChat, "QV"), api.CodeOK},
		{"MRD supervisor, queue of another MRD", move(svChat, "QE"), api.CodeForbidden},
		{"list supervisor", move(svLC, "QV"), api.CodeForbidden},
		{"supervisor of everything", move(svAll, "nope"), api.CodeOK},
		{"deleted or unknown supervisor", move(api.Principal{Role: api.RoleSupervisor, ID: "ghost"}, "QS"), api.CodeForbidden},
		{"admin", move(ptAdmin, "QV"), api.CodeOK},
		{"agent", move(ptAgent("X"), "QV"), api.CodeOK},
		{"another op", ptCmd(OpClose, qs, &api.RequestArgs{Request: req}), api.CodeOK},
	} {
		err := s.PrecheckSupervisor(tc.cmd)
		if got := api.CodeOf(err); (err == nil) != (tc.code == api.CodeOK) || (err != nil && got != tc.code) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
		if err != nil && tc.code == api.CodeForbidden && strings.Contains(err.Msg, "email") {
			t.Errorf("%s: %q names the queue's MRD", tc.name, err.Msg)
		}
	}
	after, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Fatal("PrecheckSupervisor changed the state")
	}
	// What Apply alone lets a queue supervisor do: the move the
	// precheck refuses.
	ptApply(t, s, move(qs, "QV"))
	if q := s.Requests[req].Queue; q != "QV" {
		t.Fatalf("Apply alone moved %s to %s, want QV", req, q)
	}
}

// PrecheckSupervisor may run before proposing, on any replica, only
// because no op edits a supervisor's scope, deletes a queue or changes a
// queue's MRD (see its comment). These are the ops that were checked for
// that. A new op must be checked too, then added here; if it does any of
// those things, the destination check must move into Apply, behind a
// feature level.
func TestPrecheckSupervisorReviewedOps(t *testing.T) {
	reviewed := []string{
		"create_mrd", "create_channel_type", "create_list", "create_queue", "create_channel", "create_agent",
		"create_connector", "delete_list", "delete_agent", "noop", "delete_connector", "subscribe", "unsubscribe",
		"customer_message", "request_agent", "join", "leave", "close", "send", "login", "logout", "set_agent_state",
		"set_agent_mode", "add_queue_member", "remove_queue_member", "set_pull_policy", "request_chat",
		"accept_offer", "reject_offer", "offer_timeout", "transfer", "transfer_to_queue", "invite",
		"agent_present", "logout_absent", "register_node", "deregister_node", "set_feature_level",
		"set_service_level", "sla_warning", "sla_breach", "remind_inactive", "close_inactive",
		"create_supervisor", "delete_supervisor", "grant_list", "revoke_list", "set_list_access",
	}
	for _, info := range Commands.Ops() {
		if !slices.Contains(reviewed, info.Name) {
			t.Errorf("op %s (%d) is not among the ops checked to leave supervisors' scopes and queues' MRDs as they are: check it, then add it here", info.Name, info.Op)
		}
	}
}
