package fsm

import "slices"

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

// SubscribeArgs subscribes an agent to a list (or unsubscribes it). An
// agent may only name itself; an admin may name any agent.
type SubscribeArgs struct {
	Agent string `msgpack:"agent"`
	List  string `msgpack:"list"`
}

// CustomerMessageArgs brings a customer's message in on a channel. It opens
// a new request when the customer has none open on the channel.
type CustomerMessageArgs struct {
	Channel      string `msgpack:"channel"`
	CustomerID   string `msgpack:"customer_id"`
	CustomerName string `msgpack:"customer_name"`
	Text         string `msgpack:"text"`
	// Priority orders a new push request in its queue (higher first);
	// ignored for pull channels and for a request already open.
	Priority int `msgpack:"priority,omitempty"`
}

// CustomerMessageResult says which request the message went to.
type CustomerMessageResult struct {
	Request string       `msgpack:"request"`
	Created bool         `msgpack:"created"`
	State   RequestState `msgpack:"state"`
}

// RequestAgentArgs records that the customer asks for a (new) agent. Name
// the request, or the channel and customer.
type RequestAgentArgs struct {
	Request    string `msgpack:"request"`
	Channel    string `msgpack:"channel"`
	CustomerID string `msgpack:"customer_id"`
}

// RequestAgentResult tells whether anything was announced.
type RequestAgentResult struct {
	Request   string       `msgpack:"request"`
	State     RequestState `msgpack:"state"`
	Announced bool         `msgpack:"announced"`
}

// RequestArgs names a request and, for admin callers, the agent acting.
type RequestArgs struct {
	Request string `msgpack:"request"`
	Agent   string `msgpack:"agent"`
}

// SendArgs is an agent's message into a conversation.
type SendArgs struct {
	Request string `msgpack:"request"`
	Agent   string `msgpack:"agent"`
	Text    string `msgpack:"text"`
}

// JoinResult is the conversation as the joining agent finds it.
type JoinResult struct {
	Request    RequestSummary `msgpack:"request"`
	Transcript []Message      `msgpack:"transcript"`
}

func registerPull(r *Registry) {
	agentOrAdmin := roles(RoleAgent, RoleAdmin)
	connector := roles(RoleConnector, RoleAdmin)
	register(r, OpSubscribe, "subscribe", agentOrAdmin, applySubscribe)
	register(r, OpUnsubscribe, "unsubscribe", agentOrAdmin, applyUnsubscribe)
	register(r, OpCustomerMessage, "customer_message", connector, applyCustomerMessage)
	register(r, OpRequestAgent, "request_agent", connector, applyRequestAgent)
	register(r, OpJoin, "join", agentOrAdmin, applyJoin)
	register(r, OpLeave, "leave", agentOrAdmin, applyLeave)
	register(r, OpClose, "close", roles(RoleAgent, RoleAdmin, RoleConnector), applyClose)
	register(r, OpSend, "send", agentOrAdmin, applySend)
}

// actingAgent resolves the agent a command acts for: an agent acts for
// itself only; an admin names one.
func (s *State) actingAgent(c *Command, named string) (*Agent, *Error) {
	id := named
	if c.By.Role == RoleAgent {
		if named != "" && named != c.By.ID {
			return nil, Errorf(CodeForbidden, "agent %q may not act for agent %q", c.By.ID, named)
		}
		id = c.By.ID
	}
	if id == "" {
		return nil, Errorf(CodeBadRequest, "agent is required")
	}
	ag := s.Agents[id]
	if ag == nil {
		return nil, Errorf(CodeNotFound, "agent %q not found", id)
	}
	return ag, nil
}

// liveRequest finds a request that is not closed.
func (s *State) liveRequest(id string) (*Request, *Error) {
	if id == "" {
		return nil, Errorf(CodeBadRequest, "request is required")
	}
	r := s.Requests[id]
	if r == nil {
		return nil, Errorf(CodeNotFound, "request %q not found", id)
	}
	if r.State == StateClosed {
		return nil, Errorf(CodeClosed, "request %q is closed", id)
	}
	return r, nil
}

// connectorChannel checks that a connector caller may speak for channel.
func (s *State) connectorChannel(c *Command, channel string) (*Channel, *Error) {
	ch := s.Channels[channel]
	if ch == nil {
		return nil, Errorf(CodeNotFound, "channel %q not found", channel)
	}
	if c.By.Role == RoleConnector && !containsSorted(ch.Connectors, ConnectorKey(c.By.ID)) {
		return nil, Errorf(CodeForbidden, "connector %q is not allowed on channel %q", c.By.ID, channel)
	}
	return ch, nil
}

func applySubscribe(s *State, c *Command, a *SubscribeArgs, out *events) (any, *Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	l := s.Lists[a.List]
	if l == nil {
		return nil, Errorf(CodeNotFound, "list %q not found", a.List)
	}
	key := AgentKey(ag.ID)
	subs, added := insertSorted(l.Subscribers, key)
	if !added {
		return nil, Errorf(CodeAlreadyExists, "agent %q is already subscribed to list %q", ag.ID, l.ID)
	}
	l.Subscribers = subs
	ag.Lists, _ = insertSorted(ag.Lists, l.ID)
	snap := s.listSnapshot(l)
	out.add(EvListSubscribed, []string{key}, snap)
	return snap, nil
}

func applyUnsubscribe(s *State, c *Command, a *SubscribeArgs, out *events) (any, *Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	l := s.Lists[a.List]
	if l == nil {
		return nil, Errorf(CodeNotFound, "list %q not found", a.List)
	}
	key := AgentKey(ag.ID)
	subs, removed := removeSorted(l.Subscribers, key)
	if !removed {
		return nil, Errorf(CodeNotSubscribed, "agent %q is not subscribed to list %q", ag.ID, l.ID)
	}
	l.Subscribers = subs
	ag.Lists, _ = removeSorted(ag.Lists, l.ID)
	out.add(EvListUnsubscribed, []string{key}, ListRef{List: l.ID})
	return nil, nil
}

func openKey(channel, customer string) string { return channel + "\x00" + customer }

func applyCustomerMessage(s *State, c *Command, a *CustomerMessageArgs, out *events) (any, *Error) {
	ch, err := s.connectorChannel(c, a.Channel)
	if err != nil {
		return nil, err
	}
	if err := checkID("customer_id", a.CustomerID); err != nil {
		return nil, err
	}
	if err := checkText("customer_name", a.CustomerName, MaxIDBytes, false); err != nil {
		return nil, err
	}
	if err := checkText("text", a.Text, MaxTextBytes, true); err != nil {
		return nil, err
	}
	msg := Message{From: Principal{Role: RoleConnector, ID: a.CustomerID}, Name: a.CustomerName, Text: a.Text, At: s.Now}
	if id, ok := s.Open[openKey(ch.ID, a.CustomerID)]; ok {
		r := s.Requests[id]
		r.addMessage(msg)
		r.UpdatedAt = s.Now
		out.add(EvConversationMessage, agentKeys(r.Participants), ConversationMessage{Request: r.ID, Message: msg})
		return CustomerMessageResult{Request: r.ID, State: r.State}, nil
	}
	if ch.Mode == ModePush {
		return s.openPushRequest(ch, a, msg, out)
	}
	l := s.Lists[ch.List]
	if l == nil {
		return nil, Errorf(CodeNotFound, "list %q of channel %q not found", ch.List, ch.ID)
	}
	r := &Request{
		ID:        s.newRequestID(),
		Channel:   ch.ID,
		MRD:       ch.MRD,
		List:      l.ID,
		Customer:  Customer{ID: a.CustomerID, Name: a.CustomerName},
		State:     StateUnread,
		CreatedAt: s.Now,
		UpdatedAt: s.Now,
	}
	r.addMessage(msg)
	s.Requests[r.ID] = r
	s.Open[openKey(ch.ID, a.CustomerID)] = r.ID
	l.Requests = append(l.Requests, r.ID)
	out.add(EvRequestCreated, l.Subscribers, r.summary())
	return CustomerMessageResult{Request: r.ID, Created: true, State: r.State}, nil
}

func applyRequestAgent(s *State, c *Command, a *RequestAgentArgs, _ *events) (any, *Error) {
	id := a.Request
	if id == "" {
		ch, err := s.connectorChannel(c, a.Channel)
		if err != nil {
			return nil, err
		}
		open, ok := s.Open[openKey(ch.ID, a.CustomerID)]
		if !ok {
			return nil, Errorf(CodeNotFound, "customer %q has no open request on channel %q", a.CustomerID, ch.ID)
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
	if r.State != StateActive {
		r.AgentRequestedAt = s.Now
		r.UpdatedAt = s.Now
	}
	return RequestAgentResult{Request: r.ID, State: r.State, Announced: false}, nil
}

func applyJoin(s *State, c *Command, a *RequestArgs, out *events) (any, *Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, err
	}
	if containsSorted(r.Participants, ag.ID) {
		return nil, Errorf(CodeAlreadyParticipant, "agent %q is already in request %q", ag.ID, r.ID)
	}
	if r.List != "" && !containsSorted(ag.Lists, r.List) {
		return nil, Errorf(CodeNotSubscribed, "agent %q is not subscribed to list %q", ag.ID, r.List)
	}
	if err := s.checkJoinPush(ag, r); err != nil {
		return nil, err
	}
	if max, ok := ag.Max[r.MRD]; ok && s.load(ag, r.MRD) >= max {
		return nil, Errorf(CodeOverCapacity, "agent %q is at its maximum of %d in mrd %q", ag.ID, max, r.MRD)
	}
	r.Participants, _ = insertSorted(r.Participants, ag.ID)
	ag.Conversations, _ = insertSorted(ag.Conversations, r.ID)
	r.UpdatedAt = s.Now
	r.AgentRequestedAt = 0
	wasState := r.State
	r.State = StateActive
	change := ParticipantChange{Request: r.ID, Agent: ag.ID, State: r.State, Participants: r.Participants}
	out.add(EvConversationJoined, s.conversationAudience(r), change)
	if wasState != r.State || r.List != "" {
		s.announceUpdate(r, out)
	}
	return JoinResult{Request: r.summary(), Transcript: slices.Clone(r.Transcript)}, nil
}

func applyLeave(s *State, c *Command, a *RequestArgs, out *events) (any, *Error) {
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
		return nil, Errorf(CodeNotParticipant, "agent %q is not in request %q", ag.ID, r.ID)
	}
	// The leaving agent hears of its own leave, then the rest.
	audience := s.conversationAudience(r)
	r.Participants = parts
	ag.Conversations, _ = removeSorted(ag.Conversations, r.ID)
	r.UpdatedAt = s.Now
	if len(parts) == 0 {
		r.State = StateInactive
	}
	out.add(EvConversationLeft, audience, ParticipantChange{Request: r.ID, Agent: ag.ID, State: r.State, Participants: r.Participants})
	s.announceUpdate(r, out)
	s.afterLeave(r, ag, out)
	return nil, nil
}

func applyClose(s *State, c *Command, a *RequestArgs, out *events) (any, *Error) {
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, err
	}
	switch c.By.Role {
	case RoleConnector:
		if _, err := s.connectorChannel(c, r.Channel); err != nil {
			return nil, err
		}
	case RoleAgent:
		if !containsSorted(r.Participants, c.By.ID) {
			return nil, Errorf(CodeNotParticipant, "agent %q is not in request %q", c.By.ID, r.ID)
		}
	}
	s.beforeClose(r, out)
	audience := s.conversationAudience(r)
	for _, id := range r.Participants {
		if ag := s.Agents[id]; ag != nil {
			ag.Conversations, _ = removeSorted(ag.Conversations, r.ID)
		}
	}
	r.State = StateClosed
	r.UpdatedAt = s.Now
	delete(s.Open, openKey(r.Channel, r.Customer.ID))
	out.add(EvConversationClosed, audience, ConversationClosed{Request: r.ID, By: c.By})
	if l := s.Lists[r.List]; l != nil {
		l.Requests = removeListed(l.Requests, r.ID)
		out.add(EvRequestRemoved, l.Subscribers, r.summary())
	}
	s.retireClosed(r.ID)
	s.route(out)
	return nil, nil
}

func applySend(s *State, c *Command, a *SendArgs, out *events) (any, *Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	r, err := s.liveRequest(a.Request)
	if err != nil {
		return nil, err
	}
	if !containsSorted(r.Participants, ag.ID) {
		return nil, Errorf(CodeNotParticipant, "agent %q is not in request %q", ag.ID, r.ID)
	}
	if err := checkText("text", a.Text, MaxTextBytes, true); err != nil {
		return nil, err
	}
	msg := Message{From: Principal{Role: RoleAgent, ID: ag.ID}, Name: ag.Name, Text: a.Text, At: s.Now}
	r.addMessage(msg)
	r.UpdatedAt = s.Now
	out.add(EvConversationMessage, s.conversationAudience(r), ConversationMessage{Request: r.ID, Message: msg})
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
		out.add(EvRequestUpdated, l.Subscribers, r.summary())
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
		out[i] = AgentKey(id)
	}
	return out
}

func (r *Request) addMessage(m Message) {
	r.Transcript = append(r.Transcript, m)
	size := 0
	for _, x := range r.Transcript {
		size += len(x.Text)
	}
	drop := 0
	for len(r.Transcript)-drop > MaxTranscriptMessages || (size > MaxTranscriptBytes && len(r.Transcript)-drop > 1) {
		size -= len(r.Transcript[drop].Text)
		drop++
	}
	if drop > 0 {
		r.Transcript = slices.Clone(r.Transcript[drop:])
	}
}

func (r *Request) summary() RequestSummary {
	sum := RequestSummary{
		ID:           r.ID,
		Channel:      r.Channel,
		List:         r.List,
		Queue:        r.Queue,
		Customer:     r.Customer,
		State:        r.State,
		Participants: r.Participants,
		CreatedAt:    r.CreatedAt,
		UpdatedAt:    r.UpdatedAt,
	}
	if sum.Participants == nil {
		sum.Participants = []string{}
	}
	for _, m := range r.Transcript {
		if m.From.Role == RoleConnector {
			sum.Preview = m.Text
			break
		}
	}
	return sum
}

func (s *State) listSnapshot(l *List) ListSnapshot {
	snap := ListSnapshot{List: l.ID, Name: l.Name, Requests: make([]RequestSummary, 0, len(l.Requests))}
	for _, id := range l.Requests {
		if r := s.Requests[id]; r != nil {
			snap.Requests = append(snap.Requests, r.summary())
		}
	}
	return snap
}
