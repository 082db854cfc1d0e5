package fsm

import (
	"maps"
	"slices"
)

// Op numbers of the push-routing commands. Never renumber.
const (
	OpLogin             Op = 40 // AgentArgs; agent (itself) or admin
	OpLogout            Op = 41 // AgentArgs; agent (itself), admin or system (session grace timer)
	OpSetAgentState     Op = 42 // SetAgentStateArgs; agent (itself) or admin
	OpSetAgentMode      Op = 43 // SetAgentModeArgs; agent (itself) or admin
	OpAddQueueMember    Op = 44 // QueueMemberArgs; admin
	OpRemoveQueueMember Op = 45 // QueueMemberArgs; admin
	OpSetPullPolicy     Op = 46 // SetPullPolicyArgs; admin
	OpRequestChat       Op = 47 // AgentArgs; agent (itself) or admin
	OpAcceptOffer       Op = 48 // OfferArgs; agent (itself) or admin
	OpRejectOffer       Op = 49 // OfferArgs; agent (itself) or admin
	OpOfferTimeout      Op = 50 // OfferArgs; system (the leader's offer timer)
	OpTransfer          Op = 51 // TransferArgs; agent (a participant) or admin
	OpTransferToQueue   Op = 52 // TransferToQueueArgs; agent (a participant) or admin
	OpInvite            Op = 53 // TransferArgs; agent (a participant) or admin
)

// AgentArgs names the agent a command acts for: an agent may only name
// itself (or leave it empty); an admin or the system must name one.
type AgentArgs struct {
	Agent string `msgpack:"agent"`
}

// SetAgentStateArgs sets an agent's state in one MRD: READY, or NOT_READY
// with an optional reason (LOGGED_OUT is logout's business).
type SetAgentStateArgs struct {
	Agent  string     `msgpack:"agent"`
	MRD    string     `msgpack:"mrd"`
	State  AgentState `msgpack:"state"`
	Reason string     `msgpack:"reason"`
}

// SetAgentModeArgs sets an agent's mode: auto or pull.
type SetAgentModeArgs struct {
	Agent string    `msgpack:"agent"`
	Mode  AgentMode `msgpack:"mode"`
}

// QueueMemberArgs names an agent and a queue.
type QueueMemberArgs struct {
	Agent string `msgpack:"agent"`
	Queue string `msgpack:"queue"`
}

// SetPullPolicyArgs sets the global pull policy.
type SetPullPolicyArgs struct {
	Policy PullPolicy `msgpack:"policy"`
}

// OfferArgs names a request's pending offer. Agent is the acting agent (as
// in RequestArgs; unused by offer_timeout). OfferID is optional for accept
// and reject (when set it must match: a stale answer to an offer that was
// withdrawn and remade fails) and required for offer_timeout.
type OfferArgs struct {
	Request string `msgpack:"request"`
	Agent   string `msgpack:"agent"`
	OfferID string `msgpack:"offer_id"`
}

// TransferArgs hands a conversation (transfer) or an invitation to join it
// (invite) to ToAgent. Agent is the acting participant: an agent acts for
// itself; an admin may name one or none.
type TransferArgs struct {
	Request string `msgpack:"request"`
	Agent   string `msgpack:"agent"`
	ToAgent string `msgpack:"to_agent"`
}

// TransferToQueueArgs puts a push conversation back in a queue (its own or
// another of the same MRD). Agent is the acting participant, who leaves.
type TransferToQueueArgs struct {
	Request string `msgpack:"request"`
	Agent   string `msgpack:"agent"`
	Queue   string `msgpack:"queue"`
}

// AgentStatus is an agent's routing status: the result of login, logout,
// set_agent_state and set_agent_mode, and a row of get_agent_states.
type AgentStatus struct {
	Agent          string           `msgpack:"agent"`
	Mode           AgentMode        `msgpack:"mode"`
	LoggedIn       bool             `msgpack:"logged_in"`
	ChatRequested  bool             `msgpack:"chat_requested"`
	LastAssignedAt int64            `msgpack:"last_assigned_at"`
	Queues         []string         `msgpack:"queues"`
	MRDs           []AgentMRDStatus `msgpack:"mrds"` // every MRD, by id
}

// AgentMRDStatus is an agent's state and load in one MRD. Max 0 means no
// maximum.
type AgentMRDStatus struct {
	MRD           string     `msgpack:"mrd"`
	State         AgentState `msgpack:"state"`
	Reason        string     `msgpack:"reason,omitempty"`
	Since         int64      `msgpack:"since"`
	Conversations int        `msgpack:"conversations"`
	Offers        int        `msgpack:"offers"`
	Max           int        `msgpack:"max"`
}

// RequestChatResult is the outcome of request_chat: the offer made at once,
// or Pending when nothing waits (the next request that arrives and suits the
// agent is offered to it).
type RequestChatResult struct {
	Offer   *OfferInfo `msgpack:"offer,omitempty"`
	Pending bool       `msgpack:"pending"`
}

func registerPush(r *Registry) {
	admin := roles(RoleAdmin)
	agentOrAdmin := roles(RoleAgent, RoleAdmin)
	register(r, OpLogin, "login", agentOrAdmin, applyLogin)
	register(r, OpLogout, "logout", roles(RoleAgent, RoleAdmin, RoleSystem), applyLogout)
	register(r, OpSetAgentState, "set_agent_state", agentOrAdmin, applySetAgentState)
	register(r, OpSetAgentMode, "set_agent_mode", agentOrAdmin, applySetAgentMode)
	register(r, OpAddQueueMember, "add_queue_member", admin, applyAddQueueMember)
	register(r, OpRemoveQueueMember, "remove_queue_member", admin, applyRemoveQueueMember)
	register(r, OpSetPullPolicy, "set_pull_policy", admin, applySetPullPolicy)
	register(r, OpRequestChat, "request_chat", agentOrAdmin, applyRequestChat)
	register(r, OpAcceptOffer, "accept_offer", agentOrAdmin, applyAcceptOffer)
	register(r, OpRejectOffer, "reject_offer", agentOrAdmin, applyRejectOffer)
	register(r, OpOfferTimeout, "offer_timeout", roles(RoleSystem), applyOfferTimeout)
	register(r, OpTransfer, "transfer", agentOrAdmin, applyTransfer)
	register(r, OpTransferToQueue, "transfer_to_queue", agentOrAdmin, applyTransferToQueue)
	register(r, OpInvite, "invite", agentOrAdmin, applyInvite)
}

// agentStatus reports the agent's routing status.
func (s *State) agentStatus(ag *Agent) AgentStatus {
	st := AgentStatus{
		Agent:          ag.ID,
		Mode:           ag.mode(),
		LoggedIn:       ag.LoggedIn,
		ChatRequested:  ag.ChatRequested,
		LastAssignedAt: ag.LastAssignedAt,
		Queues:         slices.Clone(ag.Queues),
		MRDs:           []AgentMRDStatus{},
	}
	if st.Queues == nil {
		st.Queues = []string{}
	}
	for _, mrd := range slices.Sorted(maps.Keys(s.MRDs)) {
		ms := ag.stateIn(mrd)
		row := AgentMRDStatus{MRD: mrd, State: ms.State, Reason: ms.Reason, Since: ms.Since, Max: ag.Max[mrd]}
		for _, id := range ag.Conversations {
			if r := s.Requests[id]; r != nil && r.MRD == mrd {
				row.Conversations++
			}
		}
		for _, id := range ag.Offers {
			if r := s.Requests[id]; r != nil && r.MRD == mrd {
				row.Offers++
			}
		}
		st.MRDs = append(st.MRDs, row)
	}
	return st
}

// applyLogin logs the agent in: NOT_READY in every MRD. Logging in an agent
// that is logged in changes nothing (every new session may send it).
func applyLogin(s *State, c *Command, a *AgentArgs, out *events) (any, *Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if !ag.LoggedIn {
		ag.LoggedIn, ag.LoginAt, ag.States = true, s.Now, nil
		out.add(EvAgentState, []string{AgentKey(ag.ID)}, AgentStateChange{Agent: ag.ID, State: AgentNotReady, Since: s.Now})
	}
	return s.agentStatus(ag), nil
}

// applyLogout logs the agent out of every MRD: its pending offers go back
// to their queues (and are routed to others), a pending Request Chat is
// dropped. Its conversations stay.
func applyLogout(s *State, c *Command, a *AgentArgs, out *events) (any, *Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if !ag.LoggedIn {
		return nil, Errorf(CodeWrongState, "agent %q is not logged in", ag.ID)
	}
	ag.LoggedIn, ag.LoginAt, ag.States = false, 0, nil
	ag.ChatRequested, ag.ChatRequestedAt = false, 0
	s.returnAgentOffers(ag, "", WithdrawLoggedOut, out)
	out.add(EvAgentState, []string{AgentKey(ag.ID)}, AgentStateChange{Agent: ag.ID, State: AgentLoggedOut, Since: s.Now})
	s.route(out)
	return s.agentStatus(ag), nil
}

// applySetAgentState sets the agent READY or NOT_READY in one MRD. NOT_READY
// returns the agent's offers in that MRD. Setting the current state and
// reason again changes nothing.
func applySetAgentState(s *State, c *Command, a *SetAgentStateArgs, out *events) (any, *Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if s.MRDs[a.MRD] == nil {
		return nil, Errorf(CodeNotFound, "mrd %q not found", a.MRD)
	}
	switch a.State {
	case AgentReady:
		if a.Reason != "" {
			return nil, Errorf(CodeBadRequest, "reason is only for %s", AgentNotReady)
		}
	case AgentNotReady:
		if err := checkText("reason", a.Reason, MaxIDBytes, false); err != nil {
			return nil, err
		}
	case AgentLoggedOut:
		return nil, Errorf(CodeBadRequest, "state %s is set by logout", AgentLoggedOut)
	default:
		return nil, Errorf(CodeBadRequest, "state must be %s or %s, not %q", AgentReady, AgentNotReady, a.State)
	}
	if !ag.LoggedIn {
		return nil, Errorf(CodeWrongState, "agent %q is not logged in", ag.ID)
	}
	if cur := ag.stateIn(a.MRD); cur.State != a.State || cur.Reason != a.Reason {
		s.setAgentState(ag, a.MRD, a.State, a.Reason, out)
		s.route(out)
	}
	return s.agentStatus(ag), nil
}

// applySetAgentMode switches the agent between auto and pull chat mode.
// Pending offers stay; leaving pull mode drops a pending Request Chat.
func applySetAgentMode(s *State, c *Command, a *SetAgentModeArgs, out *events) (any, *Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if a.Mode != AgentModeAuto && a.Mode != AgentModePull {
		return nil, Errorf(CodeBadRequest, "mode must be %q or %q, not %q", AgentModeAuto, AgentModePull, a.Mode)
	}
	if ag.mode() != a.Mode {
		ag.Mode = a.Mode
		ag.ChatRequested, ag.ChatRequestedAt = false, 0
		out.add(EvAgentMode, []string{AgentKey(ag.ID)}, AgentModeChange{Agent: ag.ID, Mode: a.Mode})
		s.route(out)
	}
	return s.agentStatus(ag), nil
}

func (s *State) memberArgs(a *QueueMemberArgs) (*Agent, *Queue, *Error) {
	ag := s.Agents[a.Agent]
	if ag == nil {
		return nil, nil, Errorf(CodeNotFound, "agent %q not found", a.Agent)
	}
	q := s.Queues[a.Queue]
	if q == nil {
		return nil, nil, Errorf(CodeNotFound, "queue %q not found", a.Queue)
	}
	return ag, q, nil
}

func applyAddQueueMember(s *State, _ *Command, a *QueueMemberArgs, out *events) (any, *Error) {
	ag, q, err := s.memberArgs(a)
	if err != nil {
		return nil, err
	}
	members, added := insertSorted(q.Members, ag.ID)
	if !added {
		return nil, Errorf(CodeAlreadyExists, "agent %q is already a member of queue %q", ag.ID, q.ID)
	}
	q.Members = members
	ag.Queues, _ = insertSorted(ag.Queues, q.ID)
	s.route(out)
	return nil, nil
}

// applyRemoveQueueMember takes the agent out of the queue; its routing
// offers from that queue go back to it (to other agents).
func applyRemoveQueueMember(s *State, _ *Command, a *QueueMemberArgs, out *events) (any, *Error) {
	ag, q, err := s.memberArgs(a)
	if err != nil {
		return nil, err
	}
	members, removed := removeSorted(q.Members, ag.ID)
	if !removed {
		return nil, Errorf(CodeNotSubscribed, "agent %q is not a member of queue %q", ag.ID, q.ID)
	}
	q.Members = members
	ag.Queues, _ = removeSorted(ag.Queues, q.ID)
	for _, id := range slices.Clone(ag.Offers) {
		if r := s.Requests[id]; r != nil && r.Queue == q.ID && r.Offer.Kind == OfferRoute {
			s.returnOffer(r, WithdrawRemoved, false, out)
		}
	}
	s.route(out)
	return nil, nil
}

func applySetPullPolicy(s *State, _ *Command, a *SetPullPolicyArgs, out *events) (any, *Error) {
	if a.Policy != PolicyFirstDue && a.Policy != PolicyStrictPriority {
		return nil, Errorf(CodeBadRequest, "policy must be %q or %q, not %q", PolicyFirstDue, PolicyStrictPriority, a.Policy)
	}
	s.PullPolicy = a.Policy
	s.route(out)
	return nil, nil
}

// applyRequestChat is pull chat mode's "Request Chat": the agent is offered
// the next request of its queues under the pull policy, within its
// capacity; with nothing waiting, the request stays pending and the next
// suitable arrival is offered to it.
func applyRequestChat(s *State, c *Command, a *AgentArgs, out *events) (any, *Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if ag.mode() != AgentModePull {
		return nil, Errorf(CodeWrongState, "agent %q is in %s mode, not %s", ag.ID, ag.mode(), AgentModePull)
	}
	if !ag.LoggedIn {
		return nil, Errorf(CodeWrongState, "agent %q is not logged in", ag.ID)
	}
	if ag.ChatRequested {
		return nil, Errorf(CodeWrongState, "agent %q already has a chat request pending", ag.ID)
	}
	if len(ag.Queues) == 0 {
		return nil, Errorf(CodeWrongState, "agent %q is a member of no queue", ag.ID)
	}
	ready, room := false, false
	for _, qid := range ag.Queues {
		if q := s.Queues[qid]; q != nil && ag.stateIn(q.MRD).State == AgentReady {
			ready = true
			room = room || s.hasCapacity(ag, q.MRD)
		}
	}
	if !ready {
		return nil, Errorf(CodeWrongState, "agent %q is not READY in the mrd of any of its queues", ag.ID)
	}
	if !room {
		return nil, Errorf(CodeOverCapacity, "agent %q is at its maximum in every mrd it is READY in", ag.ID)
	}
	ag.ChatRequested, ag.ChatRequestedAt = true, s.Now
	for _, r := range s.route(out) {
		if r.Offer != nil && r.Offer.Agent == ag.ID {
			info := s.offerInfo(r)
			return RequestChatResult{Offer: &info}, nil
		}
	}
	return RequestChatResult{Pending: true}, nil
}

// heldOffer finds the pending offer of request id to the acting agent.
func (s *State) heldOffer(c *Command, a *OfferArgs) (*Agent, *Request, *Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, nil, err
	}
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, nil, err
	}
	if r.Offer == nil || r.Offer.Agent != ag.ID {
		return nil, nil, Errorf(CodeWrongState, "agent %q has no pending offer of request %q", ag.ID, r.ID)
	}
	if a.OfferID != "" && a.OfferID != r.Offer.ID {
		return nil, nil, Errorf(CodeWrongState, "offer %q of request %q is no longer pending (pending: %q)", a.OfferID, r.ID, r.Offer.ID)
	}
	return ag, r, nil
}

// applyAcceptOffer joins the agent to the offered conversation (as join
// does), then routes: in auto mode the next request, if one waits, is
// offered at once.
func applyAcceptOffer(s *State, c *Command, a *OfferArgs, out *events) (any, *Error) {
	ag, r, err := s.heldOffer(c, a)
	if err != nil {
		return nil, err
	}
	if containsSorted(r.Participants, ag.ID) {
		return nil, Errorf(CodeAlreadyParticipant, "agent %q is already in request %q", ag.ID, r.ID)
	}
	s.clearOffer(r)
	r.Participants, _ = insertSorted(r.Participants, ag.ID)
	ag.Conversations, _ = insertSorted(ag.Conversations, r.ID)
	ag.LastAssignedAt = s.Now
	r.UpdatedAt = s.Now
	r.AgentRequestedAt = 0
	r.Declined = nil
	wasState := r.State
	r.State = StateActive
	out.add(EvConversationJoined, s.conversationAudience(r), ParticipantChange{Request: r.ID, Agent: ag.ID, State: r.State, Participants: r.Participants})
	if wasState != r.State || r.List != "" {
		s.announceUpdate(r, out)
	}
	s.route(out)
	return JoinResult{Request: r.summary(), Transcript: slices.Clone(r.Transcript)}, nil
}

// applyRejectOffer returns the offer; the request goes to another eligible
// agent (the rejecting one only if no one else is eligible).
func applyRejectOffer(s *State, c *Command, a *OfferArgs, out *events) (any, *Error) {
	_, r, err := s.heldOffer(c, a)
	if err != nil {
		return nil, err
	}
	s.returnOffer(r, WithdrawRejected, true, out)
	s.route(out)
	return nil, nil
}

// applyOfferTimeout withdraws a lapsed offer (proposed by the leader's
// timer, see PendingOffers): the request goes to another agent, and the
// agent who let it lapse becomes NOT_READY (ring_no_answer) in its MRD. An
// offer that is no longer pending is refused with CodeWrongState and
// nothing changes; the FSM does not second-guess the timer's clock.
func applyOfferTimeout(s *State, _ *Command, a *OfferArgs, out *events) (any, *Error) {
	if a.OfferID == "" {
		return nil, Errorf(CodeBadRequest, "offer_id is required")
	}
	r := s.Requests[a.Request]
	if r == nil {
		return nil, Errorf(CodeNotFound, "request %q not found", a.Request)
	}
	if r.Offer == nil || r.Offer.ID != a.OfferID {
		return nil, Errorf(CodeWrongState, "offer %q of request %q is no longer pending", a.OfferID, r.ID)
	}
	ag := s.Agents[r.Offer.Agent]
	s.returnOffer(r, WithdrawTimeout, true, out)
	if ag != nil && ag.stateIn(r.MRD).State == AgentReady {
		s.setAgentState(ag, r.MRD, AgentNotReady, ReasonRingNoAnswer, out)
	}
	s.route(out)
	return nil, nil
}

// handover resolves the acting participant of transfer, invite and
// transfer_to_queue: an agent must be in the conversation; an admin may name
// a participant or nobody (nil).
func (s *State) handover(c *Command, named string, r *Request) (*Agent, *Error) {
	if c.By.Role != RoleAgent && named == "" {
		return nil, nil
	}
	ag, err := s.actingAgent(c, named)
	if err != nil {
		return nil, err
	}
	if !containsSorted(r.Participants, ag.ID) {
		return nil, Errorf(CodeNotParticipant, "agent %q is not in request %q", ag.ID, r.ID)
	}
	return ag, nil
}

// directedOffer validates a transfer or invitation of a.Request to
// a.ToAgent: the receiver must be logged in, READY in the request's MRD and
// below its maximum there, and not in the conversation already; the request
// must not be waiting for routing or hold another offer.
func (s *State) directedOffer(c *Command, a *TransferArgs) (from, to *Agent, r *Request, err *Error) {
	if r, err = s.liveRequest(a.Request); err != nil {
		return nil, nil, nil, err
	}
	if from, err = s.handover(c, a.Agent, r); err != nil {
		return nil, nil, nil, err
	}
	if a.ToAgent == "" {
		return nil, nil, nil, Errorf(CodeBadRequest, "to_agent is required")
	}
	if to = s.Agents[a.ToAgent]; to == nil {
		return nil, nil, nil, Errorf(CodeNotFound, "agent %q not found", a.ToAgent)
	}
	if containsSorted(r.Participants, to.ID) {
		return nil, nil, nil, Errorf(CodeAlreadyParticipant, "agent %q is already in request %q", to.ID, r.ID)
	}
	if r.Queued || r.Offer != nil {
		return nil, nil, nil, Errorf(CodeWrongState, "request %q is waiting for another offer to be answered", r.ID)
	}
	if st := to.stateIn(r.MRD); st.State != AgentReady {
		return nil, nil, nil, Errorf(CodeWrongState, "agent %q is %s in mrd %q", to.ID, st.State, r.MRD)
	}
	if !s.hasCapacity(to, r.MRD) {
		return nil, nil, nil, Errorf(CodeOverCapacity, "agent %q is at its maximum of %d in mrd %q", to.ID, to.Max[r.MRD], r.MRD)
	}
	return from, to, r, nil
}

// applyTransfer hands the conversation to another agent: the acting
// participant leaves at once, and the receiver is offered the conversation
// (an offer of kind transfer, reserving its capacity) — it is not joined
// without its consent. If the receiver rejects it or lets it lapse and
// nobody is left in a push conversation, the request goes to its queue.
func applyTransfer(s *State, c *Command, a *TransferArgs, out *events) (any, *Error) {
	from, to, r, err := s.directedOffer(c, a)
	if err != nil {
		return nil, err
	}
	fromID := ""
	if from != nil {
		fromID = from.ID
		s.dropParticipant(r, from, out)
		r.Declined, _ = insertSorted(r.Declined, from.ID)
	}
	s.makeOffer(r, to, OfferTransfer, fromID, out)
	info := s.offerInfo(r)
	s.route(out)
	return info, nil
}

// applyInvite invites another agent into the conversation (conference): it
// is offered an invitation (an offer of kind invite, reserving its
// capacity), and joins alongside the participants when it accepts.
func applyInvite(s *State, c *Command, a *TransferArgs, out *events) (any, *Error) {
	from, to, r, err := s.directedOffer(c, a)
	if err != nil {
		return nil, err
	}
	fromID := ""
	if from != nil {
		fromID = from.ID
	}
	s.makeOffer(r, to, OfferInvite, fromID, out)
	return s.offerInfo(r), nil
}

// applyTransferToQueue puts a push conversation in a queue of the same MRD
// as a new arrival: a pending offer is withdrawn, the acting participant
// leaves (and is the last resort for the request), other participants
// stay.
func applyTransferToQueue(s *State, c *Command, a *TransferToQueueArgs, out *events) (any, *Error) {
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, err
	}
	from, err := s.handover(c, a.Agent, r)
	if err != nil {
		return nil, err
	}
	q := s.Queues[a.Queue]
	if q == nil {
		return nil, Errorf(CodeNotFound, "queue %q not found", a.Queue)
	}
	if r.Queue == "" {
		return nil, Errorf(CodeWrongState, "request %q is on list %q, not in push routing", r.ID, r.List)
	}
	if q.MRD != r.MRD {
		return nil, Errorf(CodeBadRequest, "queue %q is in mrd %q, request %q in %q", q.ID, q.MRD, r.ID, r.MRD)
	}
	if r.Queued && r.Queue == q.ID {
		return nil, Errorf(CodeWrongState, "request %q is already waiting in queue %q", r.ID, q.ID)
	}
	s.withdrawOffer(r, WithdrawTransferred, out)
	s.takeFromQueue(r)
	r.Declined = nil
	if from != nil {
		s.dropParticipant(r, from, out)
		r.Declined = []string{from.ID}
	}
	r.Queue = q.ID
	s.enqueue(r, QueuedTransfer, out)
	s.route(out)
	return nil, nil
}

// openPushRequest opens a request on a push channel: it waits in the
// channel's queue (UNREAD) and is routed at once.
func (s *State) openPushRequest(ch *Channel, a *CustomerMessageArgs, msg Message, out *events) (any, *Error) {
	q := s.Queues[ch.Queue]
	if q == nil {
		return nil, Errorf(CodeNotFound, "queue %q of channel %q not found", ch.Queue, ch.ID)
	}
	r := &Request{
		ID:        s.newRequestID(),
		Channel:   ch.ID,
		MRD:       ch.MRD,
		Queue:     q.ID,
		Customer:  Customer{ID: a.CustomerID, Name: a.CustomerName},
		State:     StateUnread,
		CreatedAt: s.Now,
		UpdatedAt: s.Now,
		Priority:  a.Priority,
	}
	r.addMessage(msg)
	s.Requests[r.ID] = r
	s.Open[openKey(ch.ID, a.CustomerID)] = r.ID
	s.enqueue(r, QueuedArrival, out)
	s.route(out)
	return CustomerMessageResult{Request: r.ID, Created: true, State: r.State}, nil
}
