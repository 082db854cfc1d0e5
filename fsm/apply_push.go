package fsm

import (
	"maps"
	"slices"

	"github.com/switchboard/switchboard/api"
)

// Op numbers of the push-routing commands. Never renumber.
const (
	OpLogin             Op = 40 // AgentArgs; agent (itself) or admin
	OpLogout            Op = 41 // AgentArgs; agent (itself), admin or system (session grace timer, below Level3: presence.go)
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

func registerPush(r *Registry) {
	admin := roles(api.RoleAdmin)
	agentOrAdmin := roles(api.RoleAgent, api.RoleAdmin)
	// Supervisors (level 3: none exists below it) act on the requests
	// and agents in their scope (supervisors.go).
	supervised3 := roles(api.RoleAgent, api.RoleAdmin, api.RoleSupervisor)
	register(r, OpLogin, api.OpLogin, Level1, agentOrAdmin, applyLogin)
	register(r, OpLogout, api.OpLogout, Level1, roles(api.RoleAgent, api.RoleAdmin, api.RoleSystem, api.RoleSupervisor), applyLogout)
	register(r, OpSetAgentState, api.OpSetAgentState, Level1, supervised3, applySetAgentState)
	register(r, OpSetAgentMode, api.OpSetAgentMode, Level1, agentOrAdmin, applySetAgentMode)
	register(r, OpAddQueueMember, api.OpAddQueueMember, Level1, admin, applyAddQueueMember)
	register(r, OpRemoveQueueMember, api.OpRemoveQueueMember, Level1, admin, applyRemoveQueueMember)
	register(r, OpSetPullPolicy, api.OpSetPullPolicy, Level1, admin, applySetPullPolicy)
	register(r, OpRequestChat, api.OpRequestChat, Level1, agentOrAdmin, applyRequestChat)
	register(r, OpAcceptOffer, api.OpAcceptOffer, Level1, agentOrAdmin, applyAcceptOffer)
	register(r, OpRejectOffer, api.OpRejectOffer, Level1, agentOrAdmin, applyRejectOffer)
	register(r, OpOfferTimeout, api.OpOfferTimeout, Level1, roles(api.RoleSystem), applyOfferTimeout)
	register(r, OpTransfer, api.OpTransfer, Level1, supervised3, applyTransfer)
	register(r, OpTransferToQueue, api.OpTransferToQueue, Level1, supervised3, applyTransferToQueue)
	register(r, OpInvite, api.OpInvite, Level1, agentOrAdmin, applyInvite)
}

// agentStatus reports the agent's routing status.
func (s *State) agentStatus(ag *Agent) api.AgentStatus {
	st := api.AgentStatus{
		Agent:          ag.ID,
		Mode:           ag.mode(),
		LoggedIn:       ag.LoggedIn,
		ChatRequested:  ag.ChatRequested,
		LastAssignedAt: ag.LastAssignedAt,
		Queues:         slices.Clone(ag.Queues),
		MRDs:           []api.AgentMRDStatus{},
	}
	if st.Queues == nil {
		st.Queues = []string{}
	}
	for _, mrd := range slices.Sorted(maps.Keys(s.MRDs)) {
		ms := ag.stateIn(mrd)
		row := api.AgentMRDStatus{MRD: mrd, State: ms.State, Reason: ms.Reason, Since: ms.Since, Max: ag.Max[mrd]}
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
func applyLogin(s *State, c *Command, a *api.AgentArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if !ag.LoggedIn {
		ag.LoggedIn, ag.LoginAt, ag.States = true, s.Now, nil
		if s.ActiveLevel() >= Level3 {
			// A node's logout decided before this login must not
			// apply to it (presence.go).
			s.stampPresence(ag)
		}
		out.add(api.EvAgentState, []string{api.AgentKey(ag.ID)}, api.AgentStateChange{Agent: ag.ID, State: api.AgentNotReady, Since: s.Now})
	}
	return s.agentStatus(ag), nil
}

// applyLogout logs the agent out of every MRD: its pending offers go back
// to their queues (and are routed to others), a pending Request Chat is
// dropped. Its conversations stay.
func applyLogout(s *State, c *Command, a *api.AgentArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if err := s.superviseAgent(c, ag, ""); err != nil {
		return nil, err
	}
	if !ag.LoggedIn {
		return nil, api.Errorf(api.CodeWrongState, "agent %q is not logged in", ag.ID)
	}
	return s.logout(ag, out), nil
}

// logout logs out ag, which is logged in, and returns its status.
func (s *State) logout(ag *Agent, out *events) api.AgentStatus {
	out.agentChanges(ag) // its MRD states go: supervisors of them hear the logout
	ag.LoggedIn, ag.LoginAt, ag.States = false, 0, nil
	ag.ChatRequested, ag.ChatRequestedAt = false, 0
	s.returnAgentOffers(ag, "", api.WithdrawLoggedOut, out)
	out.add(api.EvAgentState, []string{api.AgentKey(ag.ID)}, api.AgentStateChange{Agent: ag.ID, State: api.AgentLoggedOut, Since: s.Now})
	s.route(out)
	return s.agentStatus(ag)
}

// applySetAgentState sets the agent READY or NOT_READY in one MRD. NOT_READY
// returns the agent's offers in that MRD. Setting the current state and
// reason again changes nothing.
func applySetAgentState(s *State, c *Command, a *api.SetAgentStateArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if s.MRDs[a.MRD] == nil {
		return nil, api.Errorf(api.CodeNotFound, "mrd %q not found", a.MRD)
	}
	if c.By.Role == api.RoleSupervisor {
		// A supervisor may take an agent off routing, never put one on.
		if a.State != api.AgentNotReady {
			return nil, api.Errorf(api.CodeForbidden, "a supervisor may set an agent %s only", api.AgentNotReady)
		}
		if err := s.superviseAgent(c, ag, a.MRD); err != nil {
			return nil, err
		}
	}
	switch a.State {
	case api.AgentReady:
		if a.Reason != "" {
			return nil, api.Errorf(api.CodeBadRequest, "reason is only for %s", api.AgentNotReady)
		}
	case api.AgentNotReady:
		if err := checkText("reason", a.Reason, api.MaxIDBytes, false); err != nil {
			return nil, err
		}
	case api.AgentLoggedOut:
		return nil, api.Errorf(api.CodeBadRequest, "state %s is set by logout", api.AgentLoggedOut)
	default:
		return nil, api.Errorf(api.CodeBadRequest, "state must be %s or %s, not %q", api.AgentReady, api.AgentNotReady, a.State)
	}
	if !ag.LoggedIn {
		return nil, api.Errorf(api.CodeWrongState, "agent %q is not logged in", ag.ID)
	}
	if cur := ag.stateIn(a.MRD); cur.State != a.State || cur.Reason != a.Reason {
		s.setAgentState(ag, a.MRD, a.State, a.Reason, out)
		s.route(out)
	}
	return s.agentStatus(ag), nil
}

// applySetAgentMode switches the agent between auto and pull chat mode.
// Pending offers stay; leaving pull mode drops a pending Request Chat.
func applySetAgentMode(s *State, c *Command, a *api.SetAgentModeArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if a.Mode != api.AgentModeAuto && a.Mode != api.AgentModePull {
		return nil, api.Errorf(api.CodeBadRequest, "mode must be %q or %q, not %q", api.AgentModeAuto, api.AgentModePull, a.Mode)
	}
	if ag.mode() != a.Mode {
		ag.Mode = a.Mode
		ag.ChatRequested, ag.ChatRequestedAt = false, 0
		out.add(api.EvAgentMode, []string{api.AgentKey(ag.ID)}, api.AgentModeChange{Agent: ag.ID, Mode: a.Mode})
		s.route(out)
	}
	return s.agentStatus(ag), nil
}

func (s *State) memberArgs(a *api.QueueMemberArgs) (*Agent, *api.Queue, *api.Error) {
	ag := s.Agents[a.Agent]
	if ag == nil {
		return nil, nil, api.Errorf(api.CodeNotFound, "agent %q not found", a.Agent)
	}
	q := s.Queues[a.Queue]
	if q == nil {
		return nil, nil, api.Errorf(api.CodeNotFound, "queue %q not found", a.Queue)
	}
	return ag, q, nil
}

func applyAddQueueMember(s *State, _ *Command, a *api.QueueMemberArgs, out *events) (any, *api.Error) {
	ag, q, err := s.memberArgs(a)
	if err != nil {
		return nil, err
	}
	members, added := insertSorted(q.Members, ag.ID)
	if !added {
		return nil, api.Errorf(api.CodeAlreadyExists, "agent %q is already a member of queue %q", ag.ID, q.ID)
	}
	q.Members = members
	ag.Queues, _ = insertSorted(ag.Queues, q.ID)
	s.route(out)
	return nil, nil
}

// applyRemoveQueueMember takes the agent out of the queue; its routing
// offers from that queue go back to it (to other agents).
func applyRemoveQueueMember(s *State, _ *Command, a *api.QueueMemberArgs, out *events) (any, *api.Error) {
	ag, q, err := s.memberArgs(a)
	if err != nil {
		return nil, err
	}
	members, removed := removeSorted(q.Members, ag.ID)
	if !removed {
		return nil, api.Errorf(api.CodeNotSubscribed, "agent %q is not a member of queue %q", ag.ID, q.ID)
	}
	q.Members = members
	ag.Queues, _ = removeSorted(ag.Queues, q.ID)
	for _, id := range slices.Clone(ag.Offers) {
		if r := s.Requests[id]; r != nil && r.Queue == q.ID && r.Offer.Kind == api.OfferRoute {
			s.returnOffer(r, api.WithdrawRemoved, false, out)
		}
	}
	s.route(out)
	return nil, nil
}

func applySetPullPolicy(s *State, _ *Command, a *api.SetPullPolicyArgs, out *events) (any, *api.Error) {
	if a.Policy != api.PolicyFirstDue && a.Policy != api.PolicyStrictPriority {
		return nil, api.Errorf(api.CodeBadRequest, "policy must be %q or %q, not %q", api.PolicyFirstDue, api.PolicyStrictPriority, a.Policy)
	}
	s.PullPolicy = a.Policy
	s.route(out)
	return nil, nil
}

// applyRequestChat is pull chat mode's "Request Chat": the agent is offered
// the next request of its queues under the pull policy, within its
// capacity; with nothing waiting, the request stays pending and the next
// suitable arrival is offered to it.
func applyRequestChat(s *State, c *Command, a *api.AgentArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if ag.mode() != api.AgentModePull {
		return nil, api.Errorf(api.CodeWrongState, "agent %q is in %s mode, not %s", ag.ID, ag.mode(), api.AgentModePull)
	}
	if !ag.LoggedIn {
		return nil, api.Errorf(api.CodeWrongState, "agent %q is not logged in", ag.ID)
	}
	if ag.ChatRequested {
		return nil, api.Errorf(api.CodeWrongState, "agent %q already has a chat request pending", ag.ID)
	}
	if len(ag.Queues) == 0 {
		return nil, api.Errorf(api.CodeWrongState, "agent %q is a member of no queue", ag.ID)
	}
	ready, room := false, false
	for _, qid := range ag.Queues {
		if q := s.Queues[qid]; q != nil && ag.stateIn(q.MRD).State == api.AgentReady {
			ready = true
			room = room || s.hasCapacity(ag, q.MRD)
		}
	}
	if !ready {
		return nil, api.Errorf(api.CodeWrongState, "agent %q is not READY in the mrd of any of its queues", ag.ID)
	}
	if !room {
		return nil, api.Errorf(api.CodeOverCapacity, "agent %q is at its maximum in every mrd it is READY in", ag.ID)
	}
	ag.ChatRequested, ag.ChatRequestedAt = true, s.Now
	for _, r := range s.route(out) {
		if r.Offer != nil && r.Offer.Agent == ag.ID {
			info := s.offerInfo(r)
			return api.RequestChatResult{Offer: &info}, nil
		}
	}
	return api.RequestChatResult{Pending: true}, nil
}

// heldOffer finds the pending offer of request id to the acting agent.
func (s *State) heldOffer(c *Command, a *api.OfferArgs) (*Agent, *Request, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, nil, err
	}
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, nil, err
	}
	if r.Offer == nil || r.Offer.Agent != ag.ID {
		return nil, nil, api.Errorf(api.CodeWrongState, "agent %q has no pending offer of request %q", ag.ID, r.ID)
	}
	if a.OfferID != "" && a.OfferID != r.Offer.ID {
		return nil, nil, api.Errorf(api.CodeWrongState, "offer %q of request %q is no longer pending (pending: %q)", a.OfferID, r.ID, r.Offer.ID)
	}
	return ag, r, nil
}

// applyAcceptOffer joins the agent to the offered conversation (as join
// does), then routes: in auto mode the next request, if one waits, is
// offered at once.
func applyAcceptOffer(s *State, c *Command, a *api.OfferArgs, out *events) (any, *api.Error) {
	ag, r, err := s.heldOffer(c, a)
	if err != nil {
		return nil, err
	}
	if containsSorted(r.Participants, ag.ID) {
		return nil, api.Errorf(api.CodeAlreadyParticipant, "agent %q is already in request %q", ag.ID, r.ID)
	}
	if err := s.checkRoomFor(r, 1); err != nil {
		return nil, err
	}
	s.clearOffer(r)
	r.Participants, _ = insertSorted(r.Participants, ag.ID)
	ag.Conversations, _ = insertSorted(ag.Conversations, r.ID)
	ag.LastAssignedAt = s.Now
	r.UpdatedAt = s.Now
	r.AgentRequestedAt = 0
	r.Declined = nil
	r.StrictDecline = false
	r.Unread = 0
	r.markActive()
	wasState := r.State
	r.State = api.StateActive
	out.add(api.EvConversationJoined, s.conversationAudience(r), api.ParticipantChange{Request: r.ID, Agent: ag.ID, State: r.State, Participants: r.Participants})
	met := s.slaMet(r) // the update below carries it; request.sla after
	if wasState != r.State || r.List != "" {
		s.announceUpdate(r, out)
	}
	if met {
		s.tellSLA(r, out)
	}
	s.route(out)
	return api.JoinResult{Request: s.summary(r), Transcript: slices.Clone(r.Transcript)}, nil
}

// applyRejectOffer returns the offer; the request goes to another eligible
// agent (the rejecting one only if no one else is eligible).
func applyRejectOffer(s *State, c *Command, a *api.OfferArgs, out *events) (any, *api.Error) {
	_, r, err := s.heldOffer(c, a)
	if err != nil {
		return nil, err
	}
	s.returnOffer(r, api.WithdrawRejected, true, out)
	s.route(out)
	return nil, nil
}

// applyOfferTimeout withdraws a lapsed offer (proposed by the leader's
// timer, see PendingOffers): the request goes to another agent, and the
// agent who let it lapse becomes NOT_READY (ring_no_answer) in its MRD. An
// offer that is no longer pending is refused with CodeWrongState and
// nothing changes; the FSM does not second-guess the timer's clock.
func applyOfferTimeout(s *State, _ *Command, a *api.OfferArgs, out *events) (any, *api.Error) {
	if a.OfferID == "" {
		return nil, api.Errorf(api.CodeBadRequest, "offer_id is required")
	}
	r := s.Requests[a.Request]
	if r == nil {
		return nil, api.Errorf(api.CodeNotFound, "request %q not found", a.Request)
	}
	if r.Offer == nil || r.Offer.ID != a.OfferID {
		return nil, api.Errorf(api.CodeWrongState, "offer %q of request %q is no longer pending", a.OfferID, r.ID)
	}
	if s.Now < r.Offer.ExpiresAt && s.ActiveLevel() >= Level2 {
		// An early or stale timer (a leader whose clock runs ahead, a
		// command delayed in flight) must not withdraw a live offer. The
		// replicated clock decides: it is the latest leader time seen,
		// this command's included.
		return nil, api.Errorf(api.CodeWrongState, "offer %q of request %q expires at %d, not yet (now %d)", a.OfferID, r.ID, r.Offer.ExpiresAt, s.Now)
	}
	ag := s.Agents[r.Offer.Agent]
	s.returnOffer(r, api.WithdrawTimeout, true, out)
	if ag != nil && ag.stateIn(r.MRD).State == api.AgentReady {
		s.setAgentState(ag, r.MRD, api.AgentNotReady, api.ReasonRingNoAnswer, out)
	}
	s.route(out)
	return nil, nil
}

// handover resolves the acting participant of transfer, invite and
// transfer_to_queue: an agent must be in the conversation; an admin may name
// a participant or nobody (nil).
func (s *State) handover(c *Command, named string, r *Request) (*Agent, *api.Error) {
	if c.By.Role != api.RoleAgent && named == "" {
		return nil, nil
	}
	ag, err := s.actingAgent(c, named)
	if err != nil {
		return nil, err
	}
	if !containsSorted(r.Participants, ag.ID) {
		return nil, api.Errorf(api.CodeNotParticipant, "agent %q is not in request %q", ag.ID, r.ID)
	}
	return ag, nil
}

// directedOffer validates a transfer or invitation of a.Request to
// a.ToAgent: the receiver must be logged in, READY in the request's MRD and
// below its maximum there, and not in the conversation already; the request
// must not be waiting for routing or hold another offer.
func (s *State) directedOffer(c *Command, a *api.TransferArgs) (from, to *Agent, r *Request, err *api.Error) {
	if r, err = s.liveRequest(a.Request); err != nil {
		return nil, nil, nil, err
	}
	// Before anything about the request is told, so that a supervisor
	// learns nothing of one outside its scope.
	if err := s.superviseRequest(c, r); err != nil {
		return nil, nil, nil, err
	}
	if from, err = s.handover(c, a.Agent, r); err != nil {
		return nil, nil, nil, err
	}
	if a.ToAgent == "" {
		return nil, nil, nil, api.Errorf(api.CodeBadRequest, "to_agent is required")
	}
	if to = s.Agents[a.ToAgent]; to == nil {
		return nil, nil, nil, api.Errorf(api.CodeNotFound, "agent %q not found", a.ToAgent)
	}
	if containsSorted(r.Participants, to.ID) {
		return nil, nil, nil, api.Errorf(api.CodeAlreadyParticipant, "agent %q is already in request %q", to.ID, r.ID)
	}
	if l := s.Lists[r.List]; l != nil && !l.mayAccess(to.ID) {
		// A restricted list's conversations are for its granted agents.
		return nil, nil, nil, api.Errorf(api.CodeForbidden, "list %q of request %q is restricted and agent %q holds no grant of it", l.ID, r.ID, to.ID)
	}
	if err := s.superviseAgent(c, to, r.MRD); err != nil {
		return nil, nil, nil, err
	}
	// A supervisor may assign a request waiting in its queue (the
	// caller takes it out of the queue); an agent or admin may not.
	if (r.Queued && c.By.Role != api.RoleSupervisor) || r.Offer != nil {
		return nil, nil, nil, api.Errorf(api.CodeWrongState, "request %q is waiting for another offer to be answered", r.ID)
	}
	if st := to.stateIn(r.MRD); st.State != api.AgentReady {
		return nil, nil, nil, api.Errorf(api.CodeWrongState, "agent %q is %s in mrd %q", to.ID, st.State, r.MRD)
	}
	if !s.hasCapacity(to, r.MRD) {
		return nil, nil, nil, api.Errorf(api.CodeOverCapacity, "agent %q is at its maximum of %d in mrd %q", to.ID, to.Max[r.MRD], r.MRD)
	}
	if len(to.Offers) >= api.MaxAgentOffers && s.ActiveLevel() >= Level3 {
		// Its sync shows every pending offer: their number is bounded.
		return nil, nil, nil, api.Errorf(api.CodeOverCapacity, "agent %q holds %d pending offers, the most it may", to.ID, len(to.Offers))
	}
	return from, to, r, nil
}

// applyTransfer hands the conversation to another agent: the acting
// participant leaves at once, and the receiver is offered the conversation
// (an offer of kind transfer, reserving its capacity) — it is not joined
// without its consent. If the receiver rejects it or lets it lapse and
// nobody is left in a push conversation, the request goes to its queue.
func applyTransfer(s *State, c *Command, a *api.TransferArgs, out *events) (any, *api.Error) {
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
	wasQueued := r.Queued
	s.takeFromQueue(r) // a supervisor's assignment of a waiting request
	o := s.makeOffer(r, to, api.OfferTransfer, fromID, out)
	if wasQueued {
		o.QueuedAt = r.QueuedAt
	}
	info := s.offerInfo(r)
	s.route(out)
	return info, nil
}

// applyInvite invites another agent into the conversation (conference): it
// is offered an invitation (an offer of kind invite, reserving its
// capacity), and joins alongside the participants when it accepts.
func applyInvite(s *State, c *Command, a *api.TransferArgs, out *events) (any, *api.Error) {
	from, to, r, err := s.directedOffer(c, a)
	if err != nil {
		return nil, err
	}
	if err := s.checkRoomFor(r, 1); err != nil {
		return nil, err
	}
	fromID := ""
	if from != nil {
		fromID = from.ID
	}
	s.makeOffer(r, to, api.OfferInvite, fromID, out)
	return s.offerInfo(r), nil
}

// applyTransferToQueue puts a push conversation in a queue of the same MRD
// as a new arrival: a pending offer is withdrawn, the acting participant
// leaves (and is the last resort for the request), other participants
// stay.
func applyTransferToQueue(s *State, c *Command, a *api.TransferToQueueArgs, out *events) (any, *api.Error) {
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, err
	}
	if err := s.superviseRequest(c, r); err != nil {
		return nil, err
	}
	from, err := s.handover(c, a.Agent, r)
	if err != nil {
		return nil, err
	}
	q := s.Queues[a.Queue]
	if q == nil {
		return nil, api.Errorf(api.CodeNotFound, "queue %q not found", a.Queue)
	}
	if r.Queue == "" {
		return nil, api.Errorf(api.CodeWrongState, "request %q is on list %q, not in push routing", r.ID, r.List)
	}
	if q.MRD != r.MRD {
		return nil, api.Errorf(api.CodeBadRequest, "queue %q is in mrd %q, request %q in %q", q.ID, q.MRD, r.ID, r.MRD)
	}
	if r.Queued && r.Queue == q.ID {
		return nil, api.Errorf(api.CodeWrongState, "request %q is already waiting in queue %q", r.ID, q.ID)
	}
	s.withdrawOffer(r, api.WithdrawTransferred, out)
	s.takeFromQueue(r)
	r.Declined = nil
	r.StrictDecline = false
	if from != nil {
		s.dropParticipant(r, from, out)
		r.Declined = []string{from.ID}
		// The agent let it go on purpose: others first, and back to it
		// only when no other member is READY at all (level 2).
		r.StrictDecline = s.ActiveLevel() >= Level2
	}
	out.requestMoves(r) // supervisors of its old queue hear it leave
	r.Queue = q.ID
	s.enqueue(r, api.QueuedTransfer, out)
	s.route(out)
	return nil, nil
}

// openPushRequest opens a request on a push channel: it waits in the
// channel's queue (UNREAD) and is routed at once.
func (s *State) openPushRequest(ch *api.Channel, a *api.CustomerMessageArgs, msg api.Message, out *events) (any, *api.Error) {
	q := s.Queues[ch.Queue]
	if q == nil {
		return nil, api.Errorf(api.CodeNotFound, "queue %q of channel %q not found", ch.Queue, ch.ID)
	}
	r := &Request{
		ID:        s.newRequestID(),
		Channel:   ch.ID,
		MRD:       ch.MRD,
		Queue:     q.ID,
		Customer:  api.Customer{ID: a.CustomerID, Name: a.CustomerName},
		State:     api.StateUnread,
		CreatedAt: s.Now,
		UpdatedAt: s.Now,
		Priority:  a.Priority,
	}
	r.addMessage(msg)
	s.startSLA(r, q.SLAMs, q.SLAWarnPct)
	s.Requests[r.ID] = r
	s.setOpen(ch.ID, a.CustomerID, r.ID)
	s.enqueue(r, api.QueuedArrival, out)
	s.route(out)
	return api.CustomerMessageResult{Request: r.ID, Created: true, State: r.State}, nil
}
