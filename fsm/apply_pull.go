package fsm

import (
	"slices"

	"github.com/switchboard/switchboard/api"
)

// Op numbers of the agent and connector commands. Never renumber.
const (
	OpSubscribe       Op = 20
	OpUnsubscribe     Op = 21
	OpCustomerMessage Op = 22
	OpRequestAgent    Op = 23
	OpJoin            Op = 24
	OpLeave           Op = 25
	OpClose           Op = 26
	OpSend            Op = 27
)

func registerPull(r *Registry) {
	agentOrAdmin := roles(api.RoleAgent, api.RoleAdmin)
	connector := roles(api.RoleConnector, api.RoleAdmin)
	register(r, OpSubscribe, api.OpSubscribe, Level1, agentOrAdmin, applySubscribe)
	register(r, OpUnsubscribe, api.OpUnsubscribe, Level1, agentOrAdmin, applyUnsubscribe)
	register(r, OpCustomerMessage, api.OpCustomerMessage, Level1, connector, applyCustomerMessage)
	register(r, OpRequestAgent, api.OpRequestAgent, Level1, connector, applyRequestAgent)
	register(r, OpJoin, api.OpJoin, Level1, agentOrAdmin, applyJoin)
	register(r, OpLeave, api.OpLeave, Level1, agentOrAdmin, applyLeave)
	register(r, OpClose, api.OpClose, Level1, roles(api.RoleAgent, api.RoleAdmin, api.RoleConnector, api.RoleSupervisor), applyClose)
	register(r, OpSend, api.OpSend, Level1, agentOrAdmin, applySend)
}

// actingAgent resolves the agent a command acts for: an agent acts for
// itself only; an admin names one.
func (s *State) actingAgent(c *Command, named string) (*Agent, *api.Error) {
	id := named
	if c.By.Role == api.RoleAgent {
		if named != "" && named != c.By.ID {
			return nil, api.Errorf(api.CodeForbidden, "agent %q may not act for agent %q", c.By.ID, named)
		}
		id = c.By.ID
	}
	if id == "" {
		return nil, api.Errorf(api.CodeBadRequest, "agent is required")
	}
	ag := s.Agents[id]
	if ag == nil {
		return nil, api.Errorf(api.CodeNotFound, "agent %q not found", id)
	}
	return ag, nil
}

// liveRequest finds a request that is not closed.
func (s *State) liveRequest(id string) (*Request, *api.Error) {
	if id == "" {
		return nil, api.Errorf(api.CodeBadRequest, "request is required")
	}
	r := s.Requests[id]
	if r == nil {
		return nil, api.Errorf(api.CodeNotFound, "request %q not found", id)
	}
	if r.State == api.StateClosed {
		return nil, api.Errorf(api.CodeClosed, "request %q is closed", id)
	}
	return r, nil
}

// connectorChannel checks that a connector caller may speak for channel.
func (s *State) connectorChannel(c *Command, channel string) (*api.Channel, *api.Error) {
	ch := s.Channels[channel]
	if ch == nil {
		return nil, api.Errorf(api.CodeNotFound, "channel %q not found", channel)
	}
	if c.By.Role == api.RoleConnector && !containsSorted(ch.Connectors, api.ConnectorKey(c.By.ID)) {
		return nil, api.Errorf(api.CodeForbidden, "connector %q is not allowed on channel %q", c.By.ID, channel)
	}
	return ch, nil
}

func applySubscribe(s *State, c *Command, a *api.SubscribeArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	l := s.Lists[a.List]
	if l == nil {
		return nil, api.Errorf(api.CodeNotFound, "list %q not found", a.List)
	}
	if !l.mayAccess(ag.ID) {
		// Whoever asks: an admin grants first (grant_list).
		return nil, api.Errorf(api.CodeForbidden, "list %q is restricted and agent %q holds no grant of it", l.ID, ag.ID)
	}
	key := api.AgentKey(ag.ID)
	subs, added := insertSorted(l.Subscribers, key)
	if !added {
		return nil, api.Errorf(api.CodeAlreadyExists, "agent %q is already subscribed to list %q", ag.ID, l.ID)
	}
	if len(ag.Lists) >= api.MaxAgentLists && s.ActiveLevel() >= Level3 {
		// A sync shows every list of the agent's: their number is bounded.
		return nil, api.Errorf(api.CodeOverCapacity, "agent %q is subscribed to %d lists, the most it may be", ag.ID, len(ag.Lists))
	}
	l.Subscribers = subs
	ag.Lists, _ = insertSorted(ag.Lists, l.ID)
	var snap api.ListSnapshot
	if s.ActiveLevel() >= Level3 {
		// The first page: the rest comes from get_list (api/views.go).
		snap = s.ListSnapshot(l)
	} else {
		snap = s.wholeList(l)
	}
	out.add(api.EvListSubscribed, []string{key}, snap)
	return snap, nil
}

func applyUnsubscribe(s *State, c *Command, a *api.SubscribeArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	l := s.Lists[a.List]
	if l == nil {
		return nil, api.Errorf(api.CodeNotFound, "list %q not found", a.List)
	}
	key := api.AgentKey(ag.ID)
	subs, removed := removeSorted(l.Subscribers, key)
	if !removed {
		return nil, api.Errorf(api.CodeNotSubscribed, "agent %q is not subscribed to list %q", ag.ID, l.ID)
	}
	l.Subscribers = subs
	ag.Lists, _ = removeSorted(ag.Lists, l.ID)
	out.add(api.EvListUnsubscribed, []string{key}, api.ListRef{List: l.ID})
	return nil, nil
}

func applyCustomerMessage(s *State, c *Command, a *api.CustomerMessageArgs, out *events) (any, *api.Error) {
	ch, err := s.connectorChannel(c, a.Channel)
	if err != nil {
		return nil, err
	}
	if err := checkID("customer_id", a.CustomerID); err != nil {
		return nil, err
	}
	if err := checkText("customer_name", a.CustomerName, api.MaxIDBytes, false); err != nil {
		return nil, err
	}
	if err := checkText("text", a.Text, api.MaxTextBytes, true); err != nil {
		return nil, err
	}
	msg := api.Message{From: api.Principal{Role: api.RoleConnector, ID: a.CustomerID}, Name: a.CustomerName, Text: a.Text, At: s.Now}
	if id, ok := s.Open.Get(ch.ID, a.CustomerID); ok {
		r := s.Requests[id]
		r.addMessage(msg)
		r.UpdatedAt = s.Now
		out.add(api.EvConversationMessage, agentKeys(r.Participants), api.ConversationMessage{Request: r.ID, Message: msg})
		if r.State != api.StateActive && s.ActiveLevel() >= Level2 {
			// Nobody is in the conversation: the list's subscribers
			// see that the customer wrote again (a view update, never
			// a second request.created).
			r.Unread++
			s.announceUpdate(r, out)
		}
		return api.CustomerMessageResult{Request: r.ID, State: r.State}, nil
	}
	if ch.Mode == api.ModePush {
		return s.openPushRequest(ch, a, msg, out)
	}
	l := s.Lists[ch.List]
	if l == nil {
		return nil, api.Errorf(api.CodeNotFound, "list %q of channel %q not found", ch.List, ch.ID)
	}
	r := &Request{
		ID:        s.newRequestID(),
		Channel:   ch.ID,
		MRD:       ch.MRD,
		List:      l.ID,
		Customer:  api.Customer{ID: a.CustomerID, Name: a.CustomerName},
		State:     api.StateUnread,
		CreatedAt: s.Now,
		UpdatedAt: s.Now,
	}
	r.addMessage(msg)
	if s.ActiveLevel() >= Level2 {
		r.Unread = 1
	}
	s.startSLA(r, l.SLAMs, l.SLAWarnPct)
	s.Requests[r.ID] = r
	s.setOpen(ch.ID, a.CustomerID, r.ID)
	l.Requests = append(l.Requests, r.ID)
	out.add(api.EvRequestCreated, l.Subscribers, s.summary(r))
	return api.CustomerMessageResult{Request: r.ID, Created: true, State: r.State}, nil
}

func applyRequestAgent(s *State, c *Command, a *api.RequestAgentArgs, _ *events) (any, *api.Error) {
	id := a.Request
	if id == "" {
		ch, err := s.connectorChannel(c, a.Channel)
		if err != nil {
			return nil, err
		}
		open, ok := s.Open.Get(ch.ID, a.CustomerID)
		if !ok {
			return nil, api.Errorf(api.CodeNotFound, "customer %q has no open request on channel %q", a.CustomerID, ch.ID)
		}
		id = open
	}
	r, err := s.liveRequest(id)
	if err != nil {
		return nil, err
	}
	if _, err := s.connectorChannel(c, r.Channel); err != nil {
		return nil, err
	}
	// The spec's rule: an UNREAD or INACTIVE request is already listed, so
	// asking for a new agent publishes nothing new on the list.
	if r.State != api.StateActive {
		r.AgentRequestedAt = s.Now
		r.UpdatedAt = s.Now
	}
	return api.RequestAgentResult{Request: r.ID, State: r.State, Announced: false}, nil
}

func applyJoin(s *State, c *Command, a *api.RequestArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, err
	}
	if containsSorted(r.Participants, ag.ID) {
		return nil, api.Errorf(api.CodeAlreadyParticipant, "agent %q is already in request %q", ag.ID, r.ID)
	}
	if r.List != "" && !containsSorted(ag.Lists, r.List) {
		return nil, api.Errorf(api.CodeNotSubscribed, "agent %q is not subscribed to list %q", ag.ID, r.List)
	}
	if err := s.checkJoinPush(ag, r); err != nil {
		return nil, err
	}
	if err := s.checkRoomFor(r, 1); err != nil {
		return nil, err
	}
	if max, ok := ag.Max[r.MRD]; ok && s.load(ag, r.MRD) >= max {
		return nil, api.Errorf(api.CodeOverCapacity, "agent %q is at its maximum of %d in mrd %q", ag.ID, max, r.MRD)
	}
	r.Participants, _ = insertSorted(r.Participants, ag.ID)
	ag.Conversations, _ = insertSorted(ag.Conversations, r.ID)
	r.UpdatedAt = s.Now
	r.AgentRequestedAt = 0
	r.Unread = 0
	r.markActive()
	wasState := r.State
	r.State = api.StateActive
	change := api.ParticipantChange{Request: r.ID, Agent: ag.ID, State: r.State, Participants: r.Participants}
	out.add(api.EvConversationJoined, s.conversationAudience(r), change)
	met := s.slaMet(r) // the update below carries it; request.sla after
	if wasState != r.State || r.List != "" {
		s.announceUpdate(r, out)
	}
	if met {
		s.tellSLA(r, out)
	}
	return api.JoinResult{Request: s.summary(r), Transcript: slices.Clone(r.Transcript)}, nil
}

func applyLeave(s *State, c *Command, a *api.RequestArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, err
	}
	parts, removed := removeSorted(r.Participants, ag.ID)
	if !removed {
		return nil, api.Errorf(api.CodeNotParticipant, "agent %q is not in request %q", ag.ID, r.ID)
	}
	// The leaving agent hears of its own leave, then the rest.
	audience := s.conversationAudience(r)
	r.Participants = parts
	ag.Conversations, _ = removeSorted(ag.Conversations, r.ID)
	r.UpdatedAt = s.Now
	if len(parts) == 0 {
		r.State = api.StateInactive
		s.markInactive(r)
	}
	out.add(api.EvConversationLeft, audience, api.ParticipantChange{Request: r.ID, Agent: ag.ID, State: r.State, Participants: r.Participants})
	s.announceUpdate(r, out)
	s.afterLeave(r, ag, out)
	return nil, nil
}

func applyClose(s *State, c *Command, a *api.RequestArgs, out *events) (any, *api.Error) {
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, err
	}
	switch c.By.Role {
	case api.RoleConnector:
		if _, err := s.connectorChannel(c, r.Channel); err != nil {
			return nil, err
		}
	case api.RoleAgent:
		if !containsSorted(r.Participants, c.By.ID) && !s.closesFromList(c.By.ID, r) {
			return nil, api.Errorf(api.CodeNotParticipant, "agent %q is not in request %q", c.By.ID, r.ID)
		}
	case api.RoleSupervisor:
		if err := s.superviseRequest(c, r); err != nil {
			return nil, err
		}
	}
	s.closeRequest(r, c.By, out)
	return nil, nil
}

// closeRequest closes r for by: its participants leave it, its list drops
// it, and routing runs (an offer of it is withdrawn first).
func (s *State) closeRequest(r *Request, by api.Principal, out *events) {
	s.beforeClose(r, out)
	audience := s.conversationAudience(r)
	for _, id := range r.Participants {
		if ag := s.Agents[id]; ag != nil {
			ag.Conversations, _ = removeSorted(ag.Conversations, r.ID)
		}
	}
	r.State = api.StateClosed
	r.UpdatedAt = s.Now
	s.deleteOpen(r.Channel, r.Customer.ID)
	out.add(api.EvConversationClosed, audience, api.ConversationClosed{Request: r.ID, By: by})
	if l := s.Lists[r.List]; l != nil {
		l.Requests = removeListed(l.Requests, r.ID)
		out.add(api.EvRequestRemoved, l.Subscribers, s.summary(r))
	}
	s.retireClosed(r.ID)
	s.route(out)
}

// closesFromList reports whether agent may close r without being in it: r
// waits on a list the agent is subscribed to with nobody in it (UNREAD or
// INACTIVE), e.g. spam or a question answered elsewhere (level 2).
func (s *State) closesFromList(agent string, r *Request) bool {
	if s.ActiveLevel() < Level2 || r.List == "" || (r.State != api.StateUnread && r.State != api.StateInactive) {
		return false
	}
	ag := s.Agents[agent]
	return ag != nil && containsSorted(ag.Lists, r.List)
}

func applySend(s *State, c *Command, a *api.SendArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, err
	}
	if !containsSorted(r.Participants, ag.ID) {
		return nil, api.Errorf(api.CodeNotParticipant, "agent %q is not in request %q", ag.ID, r.ID)
	}
	if err := checkText("text", a.Text, api.MaxTextBytes, true); err != nil {
		return nil, err
	}
	msg := api.Message{From: api.Principal{Role: api.RoleAgent, ID: ag.ID}, Name: ag.Name, Text: a.Text, At: s.Now}
	r.addMessage(msg)
	r.UpdatedAt = s.Now
	out.add(api.EvConversationMessage, s.conversationAudience(r), api.ConversationMessage{Request: r.ID, Message: msg})
	return nil, nil
}

// retireClosed keeps a closed request queryable until MaxClosedKept newer
// ones have closed, then forgets it. ClosedOrder is a queue: the oldest id
// leaves by re-slicing past it (O(1)); append moves the live ids to a new
// array when the old one's tail is used up, i.e. once per few thousand
// closes. Its contents, and so the snapshot, are as before.
func (s *State) retireClosed(id string) {
	s.ClosedOrder = append(s.ClosedOrder, id)
	if len(s.ClosedOrder) > MaxClosedKept {
		old := s.ClosedOrder[0]
		s.ClosedOrder[0] = "" // the array outlives the id
		s.ClosedOrder = s.ClosedOrder[1:]
		delete(s.Requests, old)
	}
}

// removeListed removes id from a list's open requests, keeping their
// order. Requests join a list only when created (applyCustomerMessage), and
// request ids grow, so a list is in id order ("R" + a counter: shorter
// first, then bytewise): binary search finds id in O(log n), with a linear
// scan as the fallback should a list ever not be in that order. Removal
// shifts the tail down (one memmove).
func removeListed(ids []string, id string) []string {
	i, found := slices.BinarySearchFunc(ids, id, keyCompare)
	if !found {
		if i = slices.Index(ids, id); i < 0 {
			return ids
		}
	}
	return slices.Delete(ids, i, i+1)
}

// announceUpdate tells the request's list subscribers of its new state.
func (s *State) announceUpdate(r *Request, out *events) {
	if l := s.Lists[r.List]; l != nil {
		out.add(api.EvRequestUpdated, l.Subscribers, s.summary(r))
	}
}

// conversationAudience is who hears a conversation's events: its
// participants and its channel's connectors.
func (s *State) conversationAudience(r *Request) []string {
	keys := agentKeys(r.Participants)
	if ch := s.Channels[r.Channel]; ch != nil {
		keys = append(keys, ch.Connectors...)
	}
	return keys
}

// load counts the agent's conversations and pending offers in an MRD.
func (s *State) load(ag *Agent, mrd string) int {
	n := 0
	for _, id := range ag.Conversations {
		if r := s.Requests[id]; r != nil && r.MRD == mrd {
			n++
		}
	}
	for _, id := range ag.Offers {
		if r := s.Requests[id]; r != nil && r.MRD == mrd {
			n++
		}
	}
	return n
}

func agentKeys(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = api.AgentKey(id)
	}
	return out
}

func (r *Request) addMessage(m api.Message) {
	r.Transcript = append(r.Transcript, m)
	size := 0
	for _, x := range r.Transcript {
		size += len(x.Text)
	}
	drop := 0
	for len(r.Transcript)-drop > api.MaxTranscriptMessages || (size > api.MaxTranscriptBytes && len(r.Transcript)-drop > 1) {
		size -= len(r.Transcript[drop].Text)
		drop++
	}
	if drop > 0 {
		r.Transcript = slices.Clone(r.Transcript[drop:])
	}
}

// wholeList is l with every open request, oldest first: a subscribe's
// list view below level 3.
func (s *State) wholeList(l *List) api.ListSnapshot {
	snap := api.ListSnapshot{List: l.ID, Name: l.Name, Requests: make([]api.RequestSummary, 0, len(l.Requests))}
	for _, id := range l.Requests {
		if r := s.Requests[id]; r != nil {
			snap.Requests = append(snap.Requests, s.summary(r))
		}
	}
	return snap
}

// checkRoomFor refuses n more agents in r's conversation past
// api.MaxParticipants (level 3): a summary lists them all.
func (s *State) checkRoomFor(r *Request, n int) *api.Error {
	if len(r.Participants)+n > api.MaxParticipants && s.ActiveLevel() >= Level3 {
		return api.Errorf(api.CodeOverCapacity, "request %q has %d agents in it, the most a conversation holds is %d", r.ID, len(r.Participants), api.MaxParticipants)
	}
	return nil
}
