package fsm

import (
	"maps"
	"slices"

	"github.com/switchboard/switchboard/api"
)

// Supervisors (feature level 3).
//
// A supervisor is a principal an admin creates with a token, like an agent,
// and a scope: every request and agent (no MRDs, lists or queues named), or
// the requests of the named MRDs, lists and queues and the agents who work
// there. A supervisor acts through the ordinary ops (close, transfer,
// transfer_to_queue, set_agent_state to NOT_READY, logout) with itself as
// principal, so its actions are idempotent, audited and refused like any
// other command; outside its scope they are refused with CodeForbidden.
// Apply checks the request or agent acted on; the queue a transfer_to_queue
// moves a request to is checked before proposing (PrecheckSupervisor).
//
// Its stream (api.SupervisorKey) hears every event about the requests and
// agents in its scope: Apply adds the supervisors' keys to each event's
// recipients (superviseEvents), so replicas agree on who heard what, and a
// supervisor resumes by sequence number like any other stream. Its sync
// view is a Board.

// Op numbers of the supervisor commands. Never renumber.
const (
	OpCreateSupervisor Op = 75 // CreateSupervisorArgs; admin
	OpDeleteSupervisor Op = 76 // IDArgs; admin
)

// Supervisor is a supervisor principal and its scope. Scope lists are
// sorted; all empty means everything.
type Supervisor struct {
	ID        string   `msgpack:"id"`
	Name      string   `msgpack:"name"`
	TokenHash []byte   `msgpack:"token_hash"`
	MRDs      []string `msgpack:"mrds,omitempty"`
	Lists     []string `msgpack:"lists,omitempty"`
	Queues    []string `msgpack:"queues,omitempty"`
}

func registerSupervisors(r *Registry) {
	admin := roles(api.RoleAdmin)
	register(r, OpCreateSupervisor, api.OpCreateSupervisor, Level3, admin, applyCreateSupervisor)
	register(r, OpDeleteSupervisor, api.OpDeleteSupervisor, Level3, admin, applyDeleteSupervisor)
}

func applyCreateSupervisor(s *State, _ *Command, a *api.CreateSupervisorArgs, _ *events) (any, *api.Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, api.MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.Supervisors[a.ID] != nil {
		return nil, api.Errorf(api.CodeAlreadyExists, "supervisor %q already exists", a.ID)
	}
	if len(a.TokenHash) == 0 {
		return nil, api.Errorf(api.CodeBadRequest, "token_hash is required")
	}
	sv := &Supervisor{ID: a.ID, Name: a.Name, TokenHash: slices.Clone(a.TokenHash)}
	for _, f := range []struct {
		what string
		ids  []string
		dst  *[]string
		ok   func(string) bool
	}{
		{"mrd", a.MRDs, &sv.MRDs, func(id string) bool { return s.MRDs[id] != nil }},
		{"list", a.Lists, &sv.Lists, func(id string) bool { return s.Lists[id] != nil }},
		{"queue", a.Queues, &sv.Queues, func(id string) bool { return s.Queues[id] != nil }},
	} {
		if len(f.ids) > maxScopeEntries {
			return nil, api.Errorf(api.CodeBadRequest, "at most %d %ss in a supervisor's scope", maxScopeEntries, f.what)
		}
		for _, id := range f.ids {
			if !f.ok(id) {
				return nil, api.Errorf(api.CodeNotFound, "%s %q not found", f.what, id)
			}
			*f.dst, _ = insertSorted(*f.dst, id)
		}
	}
	if s.Supervisors == nil {
		s.Supervisors = map[string]*Supervisor{}
	}
	s.Supervisors[a.ID] = sv
	return api.Created{ID: a.ID}, nil
}

// maxScopeEntries bounds each of a supervisor's scope lists.
const maxScopeEntries = 256

func applyDeleteSupervisor(s *State, _ *Command, a *api.IDArgs, _ *events) (any, *api.Error) {
	if s.Supervisors[a.ID] == nil {
		return nil, api.Errorf(api.CodeNotFound, "supervisor %q not found", a.ID)
	}
	delete(s.Supervisors, a.ID)
	if len(s.Supervisors) == 0 {
		s.Supervisors = nil
	}
	return nil, nil
}

// supervisorIDOf returns the id in a supervisor's recipient key, or "".
func supervisorIDOf(key string) string {
	const p = "supervisor:"
	if len(key) > len(p) && key[:len(p)] == p {
		return key[len(p):]
	}
	return ""
}

// all reports whether sv's scope is everything.
func (sv *Supervisor) all() bool { return len(sv.MRDs)+len(sv.Lists)+len(sv.Queues) == 0 }

// coversPlace reports whether a request of mrd, on list or in queue, is in
// sv's scope.
func (sv *Supervisor) coversPlace(mrd, list, queue string) bool {
	return sv.all() || containsSorted(sv.MRDs, mrd) ||
		(list != "" && containsSorted(sv.Lists, list)) ||
		(queue != "" && containsSorted(sv.Queues, queue))
}

func (sv *Supervisor) coversRequest(r *Request) bool {
	return sv.coversPlace(r.MRD, r.List, r.Queue)
}

// coversAgent reports whether ag works in sv's scope: in mrd if mrd is
// set, anywhere in it otherwise. An agent works in an MRD it has a maximum
// or a state in, in the queues it is a member of (their MRD) and on the
// lists it is subscribed to.
func (s *State) coversAgent(sv *Supervisor, ag *Agent, mrd string) bool {
	if sv.all() {
		return true
	}
	inMRD := func(m string) bool { return mrd == "" || m == mrd }
	for _, m := range sv.MRDs {
		if !inMRD(m) {
			continue
		}
		if _, ok := ag.Max[m]; ok {
			return true
		}
		if _, ok := ag.States[m]; ok {
			return true
		}
	}
	for _, id := range ag.Queues {
		q := s.Queues[id]
		if q != nil && inMRD(q.MRD) && (containsSorted(sv.Queues, id) || containsSorted(sv.MRDs, q.MRD)) {
			return true
		}
	}
	for _, id := range ag.Lists {
		if containsSorted(sv.Lists, id) && (mrd == "" || s.listServes(id, mrd)) {
			return true
		}
	}
	return false
}

// listServes reports whether a channel of MRD mrd parks its requests on
// list id (so that a supervisor of the list oversees its agents there).
func (s *State) listServes(id, mrd string) bool {
	for _, ch := range s.Channels {
		if ch.List == id && ch.MRD == mrd {
			return true
		}
	}
	return false
}

// acting returns the supervisor a command comes from: it must still exist
// (a forged or stale principal is refused).
func (s *State) acting(c *Command) (*Supervisor, *api.Error) {
	sv := s.Supervisors[c.By.ID]
	if sv == nil {
		return nil, api.Errorf(api.CodeForbidden, "supervisor %q not found", c.By.ID)
	}
	return sv, nil
}

// superviseRequest checks that a supervisor's command may act on r.
func (s *State) superviseRequest(c *Command, r *Request) *api.Error {
	if c.By.Role != api.RoleSupervisor {
		return nil
	}
	sv, err := s.acting(c)
	if err != nil {
		return err
	}
	if !sv.coversRequest(r) {
		return api.Errorf(api.CodeForbidden, "request %q is outside supervisor %q's scope", r.ID, sv.ID)
	}
	return nil
}

// PrecheckSupervisor makes, on a replica's state before a supervisor's
// command is proposed, the scope check Apply does not make: the queue a
// transfer_to_queue puts its request in must be in the supervisor's
// scope, as the request must be (Apply checks the request's). It is nil
// for other principals and ops, and for a supervisor of everything. A
// queue this state does not hold is CodeNotFound (as Apply would answer;
// a replica that lags may catch up and look again); one outside the
// scope is CodeForbidden, which tells nothing more of it: not its MRD,
// which Apply's check that it is the request's would name.
//
// The check may be made before proposing, on any replica, because what
// it reads never changes once it exists: no op edits a supervisor's
// scope (deleted and created again, a supervisor is another principal,
// with another token, whose sessions end), and no op deletes a queue or
// changes its MRD. An op that did either would have to move this check
// into Apply, behind a feature level.
func (s *State) PrecheckSupervisor(c *Command) *api.Error {
	if c.By.Role != api.RoleSupervisor {
		return nil
	}
	a, ok := c.Args.(*api.TransferToQueueArgs)
	if !ok {
		return nil
	}
	sv, err := s.acting(c)
	if err != nil {
		return err
	}
	if sv.all() {
		return nil
	}
	q := s.Queues[a.Queue]
	if q == nil {
		return api.Errorf(api.CodeNotFound, "queue %q not found", a.Queue)
	}
	if !sv.coversPlace(q.MRD, "", q.ID) {
		return api.Errorf(api.CodeForbidden, "queue %q is outside supervisor %q's scope", q.ID, sv.ID)
	}
	return nil
}

// superviseAgent checks that a supervisor's command may act on ag (in mrd,
// if set).
func (s *State) superviseAgent(c *Command, ag *Agent, mrd string) *api.Error {
	if c.By.Role != api.RoleSupervisor {
		return nil
	}
	sv, err := s.acting(c)
	if err != nil {
		return err
	}
	if !s.coversAgent(sv, ag, mrd) {
		return api.Errorf(api.CodeForbidden, "agent %q is outside supervisor %q's scope", ag.ID, sv.ID)
	}
	return nil
}

// superviseEvents adds to each event the keys of the supervisors whose
// scope covers it, in supervisor id order, and drops events nobody hears.
// Events kept only for supervisors (ev.keepAll) may have no recipient yet.
func (s *State) superviseEvents(ev *events) {
	ids := slices.Sorted(maps.Keys(s.Supervisors))
	kept := ev.list[:0]
	for _, e := range ev.list {
		var add []string
		if supervised(e.Kind) {
			mrd, list, queue, agent, req := s.eventPlace(e.Data)
			was, moved := ev.wasIn[req]
			var wasAgent *Agent
			if agent != nil {
				wasAgent = ev.wasAgent[agent.ID]
			}
			for _, id := range ids {
				sv := s.Supervisors[id]
				covered := false
				if agent != nil {
					covered = s.coversAgent(sv, agent, mrd) || (wasAgent != nil && s.coversAgent(sv, wasAgent, mrd))
				} else {
					covered = sv.coversPlace(mrd, list, queue) || (moved && sv.coversPlace(was[0], was[1], was[2]))
				}
				if covered {
					add = append(add, api.SupervisorKey(id))
				}
			}
		}
		if len(add) > 0 {
			// A fresh slice: e.To may be the state's own (a list's
			// subscribers), which must not change.
			e.To = slices.Concat(e.To, add)
		}
		if len(e.To) > 0 {
			kept = append(kept, e)
		}
	}
	clear(ev.list[len(kept):])
	ev.list = kept
}

// supervised reports whether supervisors hear events of kind: everything
// but an agent's own list subscriptions.
func supervised(k api.EventKind) bool {
	return k != api.EvListSubscribed && k != api.EvListUnsubscribed && k != api.EvSync
}

// eventPlace says where an event happens: the request's MRD, list and
// queue (and its id), or (for an agent's state or mode) the agent and the
// MRD.
func (s *State) eventPlace(data any) (mrd, list, queue string, agent *Agent, req string) {
	bySummary := func(sum *api.RequestSummary) (string, string, string, *Agent, string) {
		m := ""
		if ch := s.Channels[sum.Channel]; ch != nil {
			m = ch.MRD
		}
		if r := s.Requests[sum.ID]; r != nil {
			m = r.MRD
		}
		return m, sum.List, sum.Queue, nil, sum.ID
	}
	byID := func(id string) (string, string, string, *Agent, string) {
		if r := s.Requests[id]; r != nil {
			return r.MRD, r.List, r.Queue, nil, id
		}
		return "", "", "", nil, id
	}
	switch d := data.(type) {
	case api.RequestSummary:
		return bySummary(&d)
	case api.RequestSLA:
		return bySummary(&d.Request)
	case api.RequestReminder:
		return bySummary(&d.Request)
	case api.RequestQueued:
		return bySummary(&d.Request)
	case api.OfferInfo:
		return bySummary(&d.Request)
	case api.OfferWithdrawn:
		return bySummary(&d.Offer.Request)
	case api.ParticipantChange:
		return byID(d.Request)
	case api.ConversationMessage:
		return byID(d.Request)
	case api.ConversationClosed:
		return byID(d.Request)
	case api.AgentStateChange:
		if ag := s.Agents[d.Agent]; ag != nil {
			return d.MRD, "", "", ag, ""
		}
	case api.AgentModeChange:
		if ag := s.Agents[d.Agent]; ag != nil {
			return "", "", "", ag, ""
		}
	}
	// Unknown to the scope rules: only a supervisor of everything hears
	// it (coversPlace with nothing named).
	return "\x00", "", "", nil, ""
}

// countSL counts r's service level, decided now (met or breached), in its
// queue's figures of the day (level 3).
func (s *State) countSL(r *Request, met bool) {
	q := s.Queues[r.Queue]
	if q == nil || s.ActiveLevel() < Level3 {
		return
	}
	day := s.Now / dayNanos
	if q.SLDay != day {
		q.SLDay, q.SLMet, q.SLBreached = day, 0, 0
	}
	if met {
		q.SLMet++
	} else {
		q.SLBreached++
	}
}

const dayNanos = int64(24 * 60 * 60 * 1e9)

// ServiceLevelToday returns q's requests whose service level was met and
// breached on the state's current (UTC, leader time) day: zeros when its
// figures are of an earlier day.
func (s *State) ServiceLevelToday(q *api.Queue) (met, breached int) {
	if q.SLDay != s.Now/dayNanos {
		return 0, 0
	}
	return q.SLMet, q.SLBreached
}

// SupervisorBoard returns supervisor id's Board, and false if there is no
// such supervisor.
func (s *State) SupervisorBoard(id string) (*api.Board, bool) {
	sv := s.Supervisors[id]
	if sv == nil {
		return nil, false
	}
	return s.board(sv), true
}

// Board budgets: what each part of a Board may take of api.MaxViewBytes
// (estimated as view_size.go does), so that a supervisor's sync stays
// within a view's bound whatever the state's size.
const (
	boardPlacesBytes   = api.MaxViewBytes / 4 // lists and queues
	boardAgentsBytes   = api.MaxViewBytes / 4
	boardRequestsBytes = api.MaxViewBytes / 2
	boardListFixed     = 256
	boardQueueFixed    = 384
	boardAgentFixed    = 256
	boardMRDFixed      = 128
)

// boardAgentSize bounds the encoding of a BoardAgent.
func boardAgentSize(a *api.BoardAgent) int {
	n := boardAgentFixed + strSize(a.Status.Agent) + strSize(a.Name)
	for _, m := range a.Status.MRDs {
		n += boardMRDFixed + strSize(m.MRD) + strSize(m.Reason)
	}
	for _, q := range a.Status.Queues {
		n += strSize(q)
	}
	for _, c := range a.Conversations {
		n += strSize(c)
	}
	return n
}

// board builds a Board of sv's scope (sv of everything for an admin). It
// reads every open request in scope once; what it returns is bounded in
// count (api.MaxBoardRequests, api.MaxBoardAgents) and in bytes (the
// budgets above), Truncated saying when something was left out.
func (s *State) board(sv *Supervisor) *api.Board {
	b := &api.Board{Supervisor: sv.ID, At: s.Now, Lists: []api.BoardList{}, Queues: []api.BoardQueue{},
		Agents: []api.BoardAgent{}, Requests: []api.RequestSummary{}}
	var open []*Request
	places := viewBudget{left: boardPlacesBytes}
	for _, id := range slices.Sorted(maps.Keys(s.Lists)) {
		l := s.Lists[id]
		inList := containsSorted(sv.Lists, id) || sv.all()
		bl := api.BoardList{ID: l.ID, Name: l.Name, SLAMs: l.SLAMs, SLAWarnPct: l.SLAWarnPct, Subscribers: len(l.Subscribers)}
		shown := inList
		for _, rid := range l.Requests {
			r := s.Requests[rid]
			if r == nil || !(inList || sv.coversRequest(r)) {
				continue
			}
			shown = true
			open = append(open, r)
			switch r.State {
			case api.StateUnread:
				bl.Unread++
				if bl.OldestUnreadAt == 0 || r.CreatedAt < bl.OldestUnreadAt {
					bl.OldestUnreadAt = r.CreatedAt
				}
			case api.StateActive:
				bl.Active++
			case api.StateInactive:
				bl.Inactive++
			}
			if r.SLA == api.SLABreached {
				bl.Breached++
			}
		}
		if shown {
			if !places.take(boardListFixed+strSize(bl.ID)+strSize(bl.Name), false) {
				b.Truncated = true
				continue
			}
			b.Lists = append(b.Lists, bl)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.Queues)) {
		q := s.Queues[id]
		if !sv.coversPlace(q.MRD, "", q.ID) {
			continue
		}
		bq := api.BoardQueue{ID: q.ID, Name: q.Name, MRD: q.MRD, SLAMs: q.SLAMs, SLAWarnPct: q.SLAWarnPct,
			Waiting: len(q.Waiting), Offered: len(q.Offered), Members: len(q.Members)}
		for _, rid := range q.Waiting {
			if r := s.Requests[rid]; r != nil && (bq.OldestQueuedAt == 0 || r.QueuedAt < bq.OldestQueuedAt) {
				bq.OldestQueuedAt = r.QueuedAt
			}
		}
		for _, aid := range q.Members {
			ag := s.Agents[aid]
			switch {
			case ag == nil || !ag.LoggedIn:
				bq.LoggedOut++
			case ag.stateIn(q.MRD).State != api.AgentReady:
				bq.NotReady++
			case s.load(ag, q.MRD) > 0:
				bq.Busy++
			default:
				bq.Ready++
			}
		}
		bq.Met, bq.Breached = s.ServiceLevelToday(q)
		if !places.take(boardQueueFixed+strSize(bq.ID)+strSize(bq.Name)+strSize(bq.MRD), false) {
			b.Truncated = true
			continue
		}
		b.Queues = append(b.Queues, bq)
	}
	// Push requests: every open request of a queue in scope (waiting,
	// offered or in conversation).
	for _, ch := range slices.Sorted(maps.Keys(s.Open.byChannel)) {
		c := s.Channels[ch]
		if c == nil || c.Mode != api.ModePush {
			continue
		}
		for _, rid := range s.Open.byChannel[ch] {
			if r := s.Requests[rid]; r != nil && sv.coversRequest(r) {
				open = append(open, r)
			}
		}
	}
	slices.SortFunc(open, func(a, b *Request) int { return compareRequestIDs(a.ID, b.ID) })
	open = slices.CompactFunc(open, func(a, b *Request) bool { return a.ID == b.ID })
	if len(open) > api.MaxBoardRequests {
		open, b.Truncated = open[:api.MaxBoardRequests], true
	}
	reqs := viewBudget{left: boardRequestsBytes}
	for _, r := range open {
		sum := s.summary(r)
		if !reqs.take(summarySize(&sum), false) {
			b.Truncated = true
			break
		}
		b.Requests = append(b.Requests, sum)
	}
	agents := viewBudget{left: boardAgentsBytes}
	for _, id := range slices.Sorted(maps.Keys(s.Agents)) {
		ag := s.Agents[id]
		if !s.coversAgent(sv, ag, "") {
			continue
		}
		ba := api.BoardAgent{Status: s.agentStatus(ag), Name: ag.Name, Conversations: cloneOrEmpty(ag.Conversations)}
		if len(b.Agents) == api.MaxBoardAgents || !agents.take(boardAgentSize(&ba), false) {
			b.Truncated = true
			break
		}
		b.Agents = append(b.Agents, ba)
	}
	return b
}

// supervisorInfos lists the supervisors for get_supervisors.
func (s *State) supervisorInfos() []api.SupervisorInfo {
	return sortedValues(s.Supervisors, page{}, func(sv *Supervisor) api.SupervisorInfo {
		return api.SupervisorInfo{ID: sv.ID, Name: sv.Name, MRDs: cloneOrEmpty(sv.MRDs), Lists: cloneOrEmpty(sv.Lists), Queues: cloneOrEmpty(sv.Queues)}
	})
}

// supervisorQuery answers a supervisor's read (its arguments checked by
// Query): its view and board, and the lists and requests in its scope.
func (s *State) supervisorQuery(p api.Principal, op string, a api.QueryArgs) (any, *api.Error) {
	sv := s.Supervisors[p.ID]
	if sv == nil {
		return nil, api.Errorf(api.CodeForbidden, "supervisor %q not found", p.ID)
	}
	switch op {
	case api.QueryView:
		v, _ := s.View(p.Key())
		return v, nil
	case api.QueryBoard:
		return s.board(sv), nil
	case api.QueryRequest:
		r := s.Requests[a.Request]
		if r == nil {
			return nil, api.Errorf(api.CodeNotFound, "request %q not found", a.Request)
		}
		if !sv.coversRequest(r) {
			return nil, api.Errorf(api.CodeForbidden, "request %q is outside supervisor %q's scope", r.ID, sv.ID)
		}
		return s.conversationView(r), nil
	case api.QueryList:
		l := s.Lists[a.List]
		if l == nil {
			return nil, api.Errorf(api.CodeNotFound, "list %q not found", a.List)
		}
		if !sv.all() && !containsSorted(sv.Lists, l.ID) {
			return nil, api.Errorf(api.CodeForbidden, "list %q is outside supervisor %q's scope", l.ID, sv.ID)
		}
		return s.listQuery(l, a), nil
	case api.QueryQueue:
		q := s.Queues[a.Queue]
		if q == nil {
			return nil, api.Errorf(api.CodeNotFound, "queue %q not found", a.Queue)
		}
		if !sv.coversPlace(q.MRD, "", q.ID) {
			return nil, api.Errorf(api.CodeForbidden, "queue %q is outside supervisor %q's scope", q.ID, sv.ID)
		}
		return s.queueView(q, a.After, a.Limit)
	}
	return nil, api.Errorf(api.CodeForbidden, "supervisor may not %s", op)
}
