package fsm

import "slices"

// Read-only push-routing queries.
const (
	// QueryQueue {queue} → QueueView. Admins, and agents who are members of
	// the queue.
	QueryQueue = "get_queue"
	// QueryAgentStates → []AgentStatus, by agent id: every agent for an
	// admin, the caller alone for an agent.
	QueryAgentStates = "get_agent_states"
)

// QueueView is a queue with its waiting requests (in queue order) and its
// pending routing offers.
type QueueView struct {
	ID             string          `msgpack:"id"`
	Name           string          `msgpack:"name"`
	MRD            string          `msgpack:"mrd"`
	Priority       int             `msgpack:"priority"`
	OfferTimeoutMs int64           `msgpack:"offer_timeout_ms"`
	Members        []string        `msgpack:"members"`
	Waiting        []QueuedRequest `msgpack:"waiting"`
	Offers         []OfferInfo     `msgpack:"offers"` // by request id
}

// QueuedRequest is a request waiting in a queue.
type QueuedRequest struct {
	Request  RequestSummary `msgpack:"request"`
	Priority int            `msgpack:"priority"`
	QueuedAt int64          `msgpack:"queued_at"`
	Declined []string       `msgpack:"declined,omitempty"`
}

// AgentPushView is the push part of an agent's stream view: its routing
// status and its pending offers (by request id).
type AgentPushView struct {
	Status AgentStatus `msgpack:"status"`
	Offers []OfferInfo `msgpack:"offers"`
}

func isPushQuery(op string) bool { return op == QueryQueue || op == QueryAgentStates }

// pushQuery answers the push queries; handled is false for any other op.
func (s *State) pushQuery(p Principal, op string, a QueryArgs) (handled bool, v any, err *Error) {
	switch op {
	case QueryQueue:
		q := s.Queues[a.Queue]
		if q == nil {
			return true, nil, Errorf(CodeNotFound, "queue %q not found", a.Queue)
		}
		if p.Role != RoleAdmin && !(p.Role == RoleAgent && containsSorted(q.Members, p.ID)) {
			return true, nil, Errorf(CodeForbidden, "%s %q may not read queue %q", p.Role, p.ID, q.ID)
		}
		return true, s.queueView(q), nil
	case QueryAgentStates:
		switch p.Role {
		case RoleAdmin:
			return true, sortedValues(s.Agents, s.agentStatus), nil
		case RoleAgent:
			if ag := s.Agents[p.ID]; ag != nil {
				return true, []AgentStatus{s.agentStatus(ag)}, nil
			}
		}
		return true, nil, Errorf(CodeForbidden, "%s may not %s", p.Role, op)
	}
	return false, nil, nil
}

func (s *State) queueView(q *Queue) QueueView {
	v := QueueView{
		ID: q.ID, Name: q.Name, MRD: q.MRD, Priority: q.Priority, OfferTimeoutMs: q.OfferTimeoutMs,
		Members: slices.Clone(q.Members), Waiting: []QueuedRequest{}, Offers: []OfferInfo{},
	}
	if v.Members == nil {
		v.Members = []string{}
	}
	for _, id := range q.Waiting {
		r := s.Requests[id]
		v.Waiting = append(v.Waiting, QueuedRequest{Request: r.summary(), Priority: r.Priority, QueuedAt: r.QueuedAt, Declined: slices.Clone(r.Declined)})
	}
	ids := slices.Clone(q.Offered)
	slices.SortFunc(ids, compareRequestIDs)
	for _, id := range ids {
		if r := s.Requests[id]; r != nil && r.Offer != nil {
			v.Offers = append(v.Offers, s.offerInfo(r))
		}
	}
	return v
}

// agentPushView is the agent's push view, or nil if it has never logged in,
// joined a queue, held an offer or changed mode.
func (s *State) agentPushView(ag *Agent) *AgentPushView {
	if !ag.LoggedIn && len(ag.Queues) == 0 && len(ag.Offers) == 0 && ag.Mode == "" && ag.LastAssignedAt == 0 {
		return nil
	}
	v := &AgentPushView{Status: s.agentStatus(ag), Offers: []OfferInfo{}}
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
func (s *State) AgentStatus(id string) (AgentStatus, bool) {
	ag := s.Agents[id]
	if ag == nil {
		return AgentStatus{}, false
	}
	return s.agentStatus(ag), true
}

// QueueView returns the queue's view, and false if there is no such queue.
func (s *State) QueueView(id string) (QueueView, bool) {
	q := s.Queues[id]
	if q == nil {
		return QueueView{}, false
	}
	return s.queueView(q), true
}
