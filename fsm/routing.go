package fsm

import (
	"cmp"
	"maps"
	"slices"
	"strconv"

	"github.com/switchboard/switchboard/api"
)

// Push routing: the queues, offers, agent states and the route pass.
//
// A request on a PUSH channel waits in its queue (Request.Queued, listed in
// Queue.Waiting) until the route pass offers it to one agent (Request.Offer,
// listed in Agent.Offers and Queue.Offered). The agent accepts (joins), or
// rejects, or lets the offer lapse (offer_timeout, proposed by the leader's
// timer); a returned routing offer goes back to its place in the queue.
//
// The route pass runs at the end of every command that can make an agent
// eligible or a request routable. It takes the queued requests in the pull
// policy's order and offers each to the best eligible member of its queue:
//
//   - eligible: logged in; READY in the queue's MRD; below its maximum there,
//     counting its conversations in that MRD (pushed or joined from a list)
//     and its pending offers (of any kind) in that MRD; not already in the
//     conversation; in auto mode, holding no other routing offer in that MRD
//     (the console asks for the next chat only once it has answered the
//     last); in pull chat mode, with a Request Chat pending (served once).
//   - best: fewest conversations + offers in the MRD, then the longest since
//     its last assignment (LastAssignedAt: set when a routing offer is made
//     and when an offer is accepted), then the smallest id.
//   - agents who declined the request (rejected it or let it lapse) are taken
//     only when no other agent is eligible: first a pass without them, then a
//     last-resort pass with them.
//
// Offers only consume capacity, so one pass in order is complete: after it,
// no queued request has an eligible agent. Every choice is made from sorted
// keys and the state, never from map order or a clock.

// Offer is a request's pending offer to one agent. It reserves capacity in
// the request's MRD until accepted, rejected, timed out or withdrawn.
type Offer struct {
	ID        string        `msgpack:"id"`
	Kind      api.OfferKind `msgpack:"kind"`
	Agent     string        `msgpack:"agent"`
	From      string        `msgpack:"from,omitempty"` // transferring or inviting agent
	CreatedAt int64         `msgpack:"created_at"`
	ExpiresAt int64         `msgpack:"expires_at"`
	// QueuedAt is when the request had been queued, for an offer a
	// supervisor made of a request waiting in its queue (level 3): if the
	// offer is not accepted, the request goes back to its place.
	QueuedAt int64 `msgpack:"queued_at,omitempty"`
}

// AgentMRDState is an agent's state in one MRD while logged in.
type AgentMRDState struct {
	State  api.AgentState `msgpack:"state"`
	Reason string         `msgpack:"reason,omitempty"`
	Since  int64          `msgpack:"since"`
}

func (a *Agent) mode() api.AgentMode {
	if a.Mode == "" {
		return api.AgentModeAuto
	}
	return a.Mode
}

// stateIn returns the agent's effective state in mrd.
func (a *Agent) stateIn(mrd string) AgentMRDState {
	if !a.LoggedIn {
		return AgentMRDState{State: api.AgentLoggedOut}
	}
	if st, ok := a.States[mrd]; ok {
		return st
	}
	return AgentMRDState{State: api.AgentNotReady, Since: a.LoginAt}
}

// hasRouteOffer reports whether the agent holds a routing offer in mrd.
func (s *State) hasRouteOffer(ag *Agent, mrd string) bool {
	for _, id := range ag.Offers {
		if r := s.Requests[id]; r != nil && r.Offer != nil && r.Offer.Kind == api.OfferRoute && r.MRD == mrd {
			return true
		}
	}
	return false
}

// hasCapacity reports whether the agent is below its maximum in mrd,
// counting conversations and pending offers.
func (s *State) hasCapacity(ag *Agent, mrd string) bool {
	max, ok := ag.Max[mrd]
	return !ok || s.load(ag, mrd) < max
}

// available reports whether the route pass may offer the agent a request of
// mrd (the request-independent part of eligibility).
func (s *State) available(ag *Agent, mrd string) bool {
	if !ag.LoggedIn || ag.stateIn(mrd).State != api.AgentReady {
		return false
	}
	switch ag.mode() {
	case api.AgentModePull:
		if !ag.ChatRequested {
			return false
		}
	default:
		if s.hasRouteOffer(ag, mrd) {
			return false
		}
	}
	return s.hasCapacity(ag, mrd)
}

// compareQueued is the order within a queue: priority (highest first), then
// QueuedAt, then request id.
func compareQueued(a, b *Request) int {
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	if c := cmp.Compare(a.QueuedAt, b.QueuedAt); c != 0 {
		return c
	}
	return compareRequestIDs(a.ID, b.ID)
}

// compareOfferIDs orders "O<n>" ids numerically.
func compareOfferIDs(a, b string) int { return compareRequestIDs(a, b) }

func (s *State) waitingIndex(q *api.Queue, r *Request) (int, bool) {
	return slices.BinarySearchFunc(q.Waiting, r, func(id string, t *Request) int {
		return compareQueued(s.Requests[id], t)
	})
}

// putInQueue puts r in its queue's waiting line at its place.
func (s *State) putInQueue(r *Request) {
	q := s.Queues[r.Queue]
	if q == nil || r.Queued {
		return
	}
	i, _ := s.waitingIndex(q, r)
	q.Waiting = slices.Insert(q.Waiting, i, r.ID)
	r.Queued = true
}

// takeFromQueue removes r from its queue's waiting line.
func (s *State) takeFromQueue(r *Request) {
	if !r.Queued {
		return
	}
	r.Queued = false
	q := s.Queues[r.Queue]
	if q == nil {
		return
	}
	if i, found := s.waitingIndex(q, r); found {
		q.Waiting = slices.Delete(q.Waiting, i, i+1)
	}
}

// enqueue makes r a new arrival in its queue (QueuedAt now) and tells the
// conversation's audience.
func (s *State) enqueue(r *Request, reason string, out *events) {
	r.QueuedAt = s.Now
	s.putInQueue(r)
	out.add(api.EvRequestQueued, s.conversationAudience(r), api.RequestQueued{Request: s.summary(r), Queue: r.Queue, Priority: r.Priority, Reason: reason})
}

// offerTimeoutMs is the lifetime of an offer of r.
func (s *State) offerTimeoutMs(r *Request) int64 {
	ms := api.DefaultOfferTimeoutMs
	if q := s.Queues[r.Queue]; q != nil && q.OfferTimeoutMs > 0 {
		ms = min(q.OfferTimeoutMs, api.MaxOfferTimeoutMs)
	}
	return ms
}

// makeOffer offers r to ag. A routing offer takes r out of its queue and
// serves a pending Request Chat.
func (s *State) makeOffer(r *Request, ag *Agent, kind api.OfferKind, from string, out *events) *Offer {
	s.NextOffer++
	o := &Offer{
		ID:        "O" + strconv.FormatUint(s.NextOffer, 10),
		Kind:      kind,
		Agent:     ag.ID,
		From:      from,
		CreatedAt: s.Now,
		ExpiresAt: s.Now + s.offerTimeoutMs(r)*1_000_000,
	}
	if kind == api.OfferRoute {
		s.takeFromQueue(r)
		if q := s.Queues[r.Queue]; q != nil {
			q.Offered, _ = insertSorted(q.Offered, r.ID)
		}
		ag.LastAssignedAt = s.Now
		if ag.mode() == api.AgentModePull {
			ag.ChatRequested, ag.ChatRequestedAt = false, 0
		}
	}
	r.Offer = o
	ag.Offers, _ = insertSorted(ag.Offers, r.ID)
	out.add(api.EvOfferCreated, []string{api.AgentKey(ag.ID)}, s.offerInfo(r))
	return o
}

// clearOffer removes r's offer from the indexes, without events.
func (s *State) clearOffer(r *Request) *Offer {
	o := r.Offer
	if o == nil {
		return nil
	}
	r.Offer = nil
	if ag := s.Agents[o.Agent]; ag != nil {
		ag.Offers, _ = removeSorted(ag.Offers, r.ID)
	}
	if o.Kind == api.OfferRoute {
		if q := s.Queues[r.Queue]; q != nil {
			q.Offered, _ = removeSorted(q.Offered, r.ID)
		}
	}
	return o
}

// withdrawOffer removes r's offer and tells the agent (and the transferring
// or inviting agent) why.
func (s *State) withdrawOffer(r *Request, reason string, out *events) *Offer {
	if r.Offer == nil {
		return nil
	}
	info := s.offerInfo(r)
	o := s.clearOffer(r)
	to := []string{api.AgentKey(o.Agent)}
	if o.From != "" && o.From != o.Agent && s.Agents[o.From] != nil {
		to = append(to, api.AgentKey(o.From))
	}
	out.add(api.EvOfferWithdrawn, to, api.OfferWithdrawn{Offer: info, Reason: reason})
	return o
}

// returnOffer withdraws r's offer and puts the request back where it must
// wait: a routing offer goes back to its place in the queue; a transfer or
// invitation of a push request nobody is left in goes to its queue as a new
// arrival. With decline, the agent joins r.Declined. The caller routes.
func (s *State) returnOffer(r *Request, reason string, decline bool, out *events) {
	o := s.withdrawOffer(r, reason, out)
	if o == nil {
		return
	}
	if decline {
		r.Declined, _ = insertSorted(r.Declined, o.Agent)
	}
	switch {
	case r.Queue == "" || r.State == api.StateClosed:
	case o.Kind == api.OfferRoute:
		s.putInQueue(r)
	case o.QueuedAt != 0:
		// A supervisor's assignment of a waiting request: back to its
		// place, as a routing offer goes.
		r.QueuedAt = o.QueuedAt
		s.putInQueue(r)
	case len(r.Participants) == 0:
		s.enqueue(r, api.QueuedTransferFailed, out)
	}
}

// returnAgentOffers returns every offer the agent holds in mrd ("" for every
// MRD), in request id order.
func (s *State) returnAgentOffers(ag *Agent, mrd, reason string, out *events) {
	for _, id := range slices.Clone(ag.Offers) {
		if r := s.Requests[id]; r != nil && (mrd == "" || r.MRD == mrd) {
			s.returnOffer(r, reason, false, out)
		}
	}
}

// route offers queued requests to eligible agents (see the file comment) and
// returns the requests it offered, in order.
func (s *State) route(out *events) []*Request {
	var qs []*api.Queue
	for _, id := range slices.Sorted(maps.Keys(s.Queues)) {
		q := s.Queues[id]
		if len(q.Waiting) > 0 && s.anyAvailable(q) {
			qs = append(qs, q)
		}
	}
	if len(qs) == 0 {
		return nil
	}
	var offered []*Request
	exhausted := map[string]bool{}
	for _, lastResort := range []bool{false, true} {
		for _, r := range s.waitingOrder(qs) {
			if !r.Queued || exhausted[r.Queue] {
				continue
			}
			ag, any := s.pickAgent(r, lastResort)
			if !any {
				exhausted[r.Queue] = true
				continue
			}
			if ag != nil {
				s.makeOffer(r, ag, api.OfferRoute, "", out)
				offered = append(offered, r)
			}
		}
	}
	return offered
}

func (s *State) anyAvailable(q *api.Queue) bool {
	for _, id := range q.Members {
		if ag := s.Agents[id]; ag != nil && s.available(ag, q.MRD) {
			return true
		}
	}
	return false
}

// pickAgent returns the best eligible member for r (nil if none), and
// whether any member of the queue is available at all. Without lastResort,
// agents who declined r are skipped.
func (s *State) pickAgent(r *Request, lastResort bool) (best *Agent, anyAvailable bool) {
	q := s.Queues[r.Queue]
	if q == nil {
		return nil, false
	}
	bestLoad := 0
	for _, id := range q.Members {
		ag := s.Agents[id]
		if ag == nil || !s.available(ag, q.MRD) {
			continue
		}
		anyAvailable = true
		if containsSorted(r.Participants, id) || (containsSorted(r.Declined, id) && (!lastResort || (r.StrictDecline && s.otherReady(q, r)))) {
			continue
		}
		load := s.load(ag, q.MRD)
		if best == nil || load < bestLoad || (load == bestLoad && ag.LastAssignedAt < best.LastAssignedAt) {
			// Members are sorted, so on a full tie the smaller id stays.
			best, bestLoad = ag, load
		}
	}
	return best, anyAvailable
}

// otherReady reports whether a member of q other than r's decliners is
// logged in and READY in q's MRD, free or not: someone who will be able
// to take r without handing it back to the agent who let it go.
func (s *State) otherReady(q *api.Queue, r *Request) bool {
	for _, id := range q.Members {
		if containsSorted(r.Declined, id) {
			continue
		}
		if ag := s.Agents[id]; ag != nil && ag.LoggedIn && ag.stateIn(q.MRD).State == api.AgentReady {
			return true
		}
	}
	return false
}

// waitingOrder lists the queued requests of qs in the pull policy's order.
func (s *State) waitingOrder(qs []*api.Queue) []*Request {
	n := 0
	for _, q := range qs {
		n += len(q.Waiting)
	}
	order := make([]*Request, 0, n)
	if s.PullPolicy == api.PolicyFirstDue {
		pos := make([]int, len(qs))
		for {
			bi := -1
			var br *Request
			for i, q := range qs {
				if pos[i] >= len(q.Waiting) {
					continue
				}
				r := s.Requests[q.Waiting[pos[i]]]
				if bi < 0 || r.QueuedAt < br.QueuedAt || (r.QueuedAt == br.QueuedAt && q.Priority > qs[bi].Priority) {
					bi, br = i, r // qs is sorted by id: a full tie keeps the smaller id
				}
			}
			if bi < 0 {
				return order
			}
			order = append(order, br)
			pos[bi]++
		}
	}
	sorted := slices.Clone(qs)
	slices.SortStableFunc(sorted, func(a, b *api.Queue) int { return cmp.Compare(b.Priority, a.Priority) })
	// Strict priority: the queues' heads by effective priority (the
	// queue's, raised by aging), each queue in its own order; a tie goes
	// to the higher queue priority, then the smaller id (sorted's order).
	pos := make([]int, len(sorted))
	for {
		bi, best := -1, 0
		for i, q := range sorted {
			if pos[i] >= len(q.Waiting) {
				continue
			}
			if p := s.effectivePriority(q, s.Requests[q.Waiting[pos[i]]]); bi < 0 || p > best {
				bi, best = i, p
			}
		}
		if bi < 0 {
			return order
		}
		order = append(order, s.Requests[sorted[bi].Waiting[pos[bi]]])
		pos[bi]++
	}
}

// effectivePriority is q's priority for its waiting request r, raised by
// one per AgingStepMs r has waited (leader time), at most AgingCap.
func (s *State) effectivePriority(q *api.Queue, r *Request) int {
	if q.AgingStepMs <= 0 || q.AgingCap <= 0 || s.Now <= r.QueuedAt {
		return q.Priority
	}
	steps := (s.Now - r.QueuedAt) / (q.AgingStepMs * 1_000_000)
	return q.Priority + int(min(steps, int64(q.AgingCap)))
}

// offerInfo describes r's pending offer.
func (s *State) offerInfo(r *Request) api.OfferInfo {
	o := r.Offer
	return api.OfferInfo{
		ID:        o.ID,
		Kind:      o.Kind,
		Agent:     o.Agent,
		From:      o.From,
		Request:   s.summary(r),
		Queue:     r.Queue,
		MRD:       r.MRD,
		Priority:  r.Priority,
		CreatedAt: o.CreatedAt,
		ExpiresAt: o.ExpiresAt,
	}
}

// PendingOffers returns every pending offer, soonest expiry first (then
// offer id): what the leader's offer timers need. Each lapsed offer is
// withdrawn by proposing offer_timeout {request, offer_id} as RoleSystem.
func (s *State) PendingOffers() []api.OfferInfo {
	var out []api.OfferInfo
	for _, ag := range s.Agents {
		for _, id := range ag.Offers {
			if r := s.Requests[id]; r != nil && r.Offer != nil {
				out = append(out, s.offerInfo(r))
			}
		}
	}
	slices.SortFunc(out, func(a, b api.OfferInfo) int {
		if c := cmp.Compare(a.ExpiresAt, b.ExpiresAt); c != 0 {
			return c
		}
		return compareOfferIDs(a.ID, b.ID)
	})
	return out
}

// setAgentState changes the agent's state in mrd and tells it. Going
// NOT_READY returns the agent's offers in that MRD. The caller routes.
func (s *State) setAgentState(ag *Agent, mrd string, st api.AgentState, reason string, out *events) {
	if ag.States == nil {
		ag.States = map[string]AgentMRDState{}
	}
	ag.States[mrd] = AgentMRDState{State: st, Reason: reason, Since: s.Now}
	if st == api.AgentNotReady {
		s.returnAgentOffers(ag, mrd, api.WithdrawNotReady, out)
	}
	out.add(api.EvAgentState, []string{api.AgentKey(ag.ID)}, api.AgentStateChange{Agent: ag.ID, MRD: mrd, State: st, Reason: reason, Since: s.Now})
}

// dropParticipant takes ag out of r (as leave does) and tells the audience.
func (s *State) dropParticipant(r *Request, ag *Agent, out *events) {
	audience := s.conversationAudience(r)
	r.Participants, _ = removeSorted(r.Participants, ag.ID)
	ag.Conversations, _ = removeSorted(ag.Conversations, r.ID)
	r.UpdatedAt = s.Now
	if len(r.Participants) == 0 {
		r.State = api.StateInactive
		s.markInactive(r)
	}
	out.add(api.EvConversationLeft, audience, api.ParticipantChange{Request: r.ID, Agent: ag.ID, State: r.State, Participants: r.Participants})
	s.announceUpdate(r, out)
}

// Hooks called from the pull-mode commands.

// checkJoinPush refuses a join that would bypass push routing: of a push
// request that is waiting for routing, by an agent not in its queue, or by
// an agent holding the request's offer (it accepts the offer instead).
func (s *State) checkJoinPush(ag *Agent, r *Request) *api.Error {
	if r.Offer != nil && r.Offer.Agent == ag.ID {
		return api.Errorf(api.CodeWrongState, "agent %q has a pending offer of request %q: accept_offer it", ag.ID, r.ID)
	}
	if r.Queue == "" {
		return nil
	}
	if r.Queued || (r.Offer != nil && r.Offer.Kind != api.OfferInvite) {
		return api.Errorf(api.CodeWrongState, "request %q is waiting for push routing", r.ID)
	}
	if !containsSorted(ag.Queues, r.Queue) {
		return api.Errorf(api.CodeNotSubscribed, "agent %q is not a member of queue %q", ag.ID, r.Queue)
	}
	return nil
}

// afterLeave re-queues a push request its last agent left without closing
// (so no push request is ever stranded), then routes: the leaver has
// capacity again.
func (s *State) afterLeave(r *Request, ag *Agent, out *events) {
	if r.Queue != "" && len(r.Participants) == 0 && !r.Queued && r.Offer == nil {
		r.Declined, _ = insertSorted(nil, ag.ID)
		s.enqueue(r, api.QueuedAgentLeft, out)
	}
	s.route(out)
}

// beforeClose takes a closing request out of push routing: its offer is
// withdrawn, or it leaves its queue.
func (s *State) beforeClose(r *Request, out *events) {
	s.withdrawOffer(r, api.WithdrawClosed, out)
	s.takeFromQueue(r)
}

// unlinkDeletedAgent refuses to delete an agent holding offers (changing
// nothing); otherwise it drops the agent's queue memberships.
func (s *State) unlinkDeletedAgent(ag *Agent) *api.Error {
	if len(ag.Offers) > 0 {
		return api.Errorf(api.CodeWrongState, "agent %q has %d pending offers", ag.ID, len(ag.Offers))
	}
	for _, id := range ag.Queues {
		if q := s.Queues[id]; q != nil {
			q.Members, _ = removeSorted(q.Members, ag.ID)
		}
	}
	return nil
}
