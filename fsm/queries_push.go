package fsm

import (
	"slices"

	"github.com/switchboard/switchboard/api"
)

func isPushQuery(op string) bool { return op == api.QueryQueue || op == api.QueryAgentStates }

// pushQuery answers the push queries; handled is false for any other op.
func (s *State) pushQuery(p api.Principal, op string, a api.QueryArgs) (handled bool, v any, err *api.Error) {
	switch op {
	case api.QueryQueue:
		q := s.Queues[a.Queue]
		if q == nil {
			return true, nil, api.Errorf(api.CodeNotFound, "queue %q not found", a.Queue)
		}
		if p.Role != api.RoleAdmin && !(p.Role == api.RoleAgent && containsSorted(q.Members, p.ID)) {
			return true, nil, api.Errorf(api.CodeForbidden, "%s %q may not read queue %q", p.Role, p.ID, q.ID)
		}
		v, err := s.queueView(q, a.After, a.Limit)
		return true, v, err
	case api.QueryAgentStates:
		switch p.Role {
		case api.RoleAdmin:
			return true, sortedValues(s.Agents, page{after: a.After, limit: a.Limit}, s.agentStatus), nil
		case api.RoleAgent:
			if ag := s.Agents[p.ID]; ag != nil {
				return true, []api.AgentStatus{s.agentStatus(ag)}, nil
			}
		}
		return true, nil, api.Errorf(api.CodeForbidden, "%s may not %s", p.Role, op)
	}
	return false, nil, nil
}

// queueView is q with a page of its waiting requests: those behind the
// request after in queue order (from the start if after is ""), at most
// limit (0: api.DefaultPageSize) within api.MaxViewBytes. A queue's order
// changes as requests are offered and come back, so a page is a view of
// the moment: the queue's events keep a console true.
func (s *State) queueView(q *api.Queue, after string, limit int) (api.QueueView, *api.Error) {
	v := api.QueueView{
		ID: q.ID, Name: q.Name, MRD: q.MRD, Priority: q.Priority, OfferTimeoutMs: q.OfferTimeoutMs,
		Members: slices.Clone(q.Members), Waiting: []api.QueuedRequest{}, Offers: []api.OfferInfo{},
		WaitingTotal: len(q.Waiting),
	}
	if v.Members == nil {
		v.Members = []string{}
	}
	limit, err := pageLimit(limit, api.DefaultPageSize)
	if err != nil {
		return v, err
	}
	start := 0
	if after != "" {
		r := s.Requests[after]
		if r == nil {
			return v, api.Errorf(api.CodeNotFound, "request %q not found", after)
		}
		i, found := s.waitingIndex(q, r)
		if found {
			i++
		}
		start = i
	}
	b := viewBudget{left: api.MaxViewBytes}
	for _, id := range q.Waiting[start:] {
		r := s.Requests[id]
		if len(v.Waiting) == limit {
			v.More = true
			break
		}
		w := api.QueuedRequest{Request: s.summary(r), Priority: r.Priority, QueuedAt: r.QueuedAt, Declined: slices.Clone(r.Declined)}
		if !b.take(queuedSize(&w), len(v.Waiting) == 0) {
			v.More = true
			break
		}
		v.Waiting = append(v.Waiting, w)
	}
	ids := slices.Clone(q.Offered)
	slices.SortFunc(ids, compareRequestIDs)
	for _, id := range ids {
		if r := s.Requests[id]; r != nil && r.Offer != nil {
			v.Offers = append(v.Offers, s.offerInfo(r))
		}
	}
	return v, nil
}

// agentPushView is the agent's push view, or nil if it has never logged in,
// joined a queue, held an offer or changed mode.
func (s *State) agentPushView(ag *Agent) *api.AgentPushView {
	if !ag.LoggedIn && len(ag.Queues) == 0 && len(ag.Offers) == 0 && ag.Mode == "" && ag.LastAssignedAt == 0 {
		return nil
	}
	v := &api.AgentPushView{Status: s.agentStatus(ag), Offers: []api.OfferInfo{}}
	ids := slices.Clone(ag.Offers)
	slices.SortFunc(ids, compareRequestIDs)
	for _, id := range ids {
		if r := s.Requests[id]; r != nil && r.Offer != nil {
			v.Offers = append(v.Offers, s.offerInfo(r))
		}
	}
	return v
}

// AgentStatus returns the routing status of agent id, and false if there is
// no such agent.
func (s *State) AgentStatus(id string) (api.AgentStatus, bool) {
	ag := s.Agents[id]
	if ag == nil {
		return api.AgentStatus{}, false
	}
	return s.agentStatus(ag), true
}

// QueueView returns the queue's view, and false if there is no such queue.
func (s *State) QueueView(id string) (api.QueueView, bool) {
	q := s.Queues[id]
	if q == nil {
		return api.QueueView{}, false
	}
	v, _ := s.queueView(q, "", 0)
	return v, true
}
