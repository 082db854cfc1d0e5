package actors

import (
	"cmp"
	"slices"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// Offer timers. While this node leads (SetLeader), one actor holds a timer
// per pending offer: armed from offer.created events, and from
// Config.PendingOffers when the node gains leadership, after a Reset and
// after the actor restarts. An offer accepted (conversation.joined by the
// offered agent), withdrawn or closed loses its timer. When a timer fires
// and the node still leads, it proposes offer_timeout {request, offer_id}
// as RoleSystem. The decision to withdraw is that command, applied like
// any other, so the FSM stays free of clocks; a timer racing an answer
// gets wrong_state, which is expected and logged at debug. A follower
// holds no timers and proposes nothing.

// offerRetryDelay is the pause before an offer_timeout that could not be
// committed (no leader for a moment, a timeout) is proposed again.
const offerRetryDelay = time.Second

// Messages of the timer actor (besides fsm.Event).
type (
	leaderMsg   struct{ leader bool }
	timersReset struct{}
	offerDue    struct{ request, offer string }
	offerDone   struct {
		request, offer string
		res            fsm.Result
		err            error
	}
	timersQuery struct{}
)

// ArmedOffer is an offer timer the leader holds (for tests and debugging).
type ArmedOffer struct {
	Request, Offer, Agent string
	ExpiresAt             int64
}

type armedOffer struct {
	ArmedOffer
	// timer is nil once it fired: the offer_timeout is being proposed.
	timer *time.Timer
}

// offerTimers is the actor of this node's offer timers.
type offerTimers struct {
	hub    *Hub
	self   *actor.PID
	leader bool
	// after is the seq the last PendingOffers scan reflects: events up to
	// it are already in the timers.
	after uint64
	armed map[string]*armedOffer // by request id
}

// startTimers spawns the timer actor when the hub can propose.
func (h *Hub) startTimers() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.startDeadlines()
	if h.cfg.Submit == nil || h.cfg.PendingOffers == nil {
		return
	}
	h.timers = h.spawn(&offerTimers{hub: h, armed: map[string]*armedOffer{}}, "timers", "offers")
}

// SetLeader tells the hub whether this node leads the cluster. Gaining the
// lead arms a timer for every pending offer (lapsed ones fire at once);
// losing it stops them all. Repeating the current value does nothing.
func (h *Hub) SetLeader(leader bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for _, pid := range []*actor.PID{h.timers, h.deadlines} {
		if pid != nil {
			h.engine.Send(pid, leaderMsg{leader: leader})
		}
	}
}

// ArmedOffers returns the offer timers this node holds, by request id.
func (h *Hub) ArmedOffers() ([]ArmedOffer, error) {
	if err := h.awaitFanOut(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	pid, closed := h.timers, h.closed
	h.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if pid == nil {
		return nil, nil
	}
	res, err := h.ask(pid, timersQuery{})
	if err != nil {
		return nil, err
	}
	out, _ := res.([]ArmedOffer)
	return out, nil
}

// routeTimers hands the timer actor the events that start or end an
// offer. Call with h.mu held.
func (h *Hub) routeTimers(ev fsm.Event) {
	if h.deadlines != nil && deadlineEvent(ev) != "" {
		h.engine.Send(h.deadlines, ev)
	}
	if h.timers == nil {
		return
	}
	switch ev.Kind {
	case api.EvOfferCreated, api.EvOfferWithdrawn, api.EvConversationJoined, api.EvConversationClosed:
		h.engine.Send(h.timers, ev)
	}
}

// Receive implements actor.Receiver.
func (t *offerTimers) Receive(c *actor.Context) {
	defer t.hub.recoverActor("timers", "offers", c)
	switch m := c.Message().(type) {
	case actor.Started:
		t.self = c.PID()
		if t.leader {
			t.scan() // restarted: the timers were stopped with it
		}
	case actor.Stopped:
		t.stopAll()
	case leaderMsg:
		if m.leader == t.leader {
			return
		}
		t.leader = m.leader
		if t.leader {
			t.hub.log.Debug("leading: arming the offer timers")
			t.scan()
		} else {
			t.hub.log.Debug("no longer leading: offer timers stopped", "timers", len(t.armed))
			t.stopAll()
		}
	case timersReset:
		t.stopAll()
		if t.leader {
			t.scan()
		}
	case fsm.Event:
		if t.leader && m.Seq > t.after {
			t.apply(m)
		}
	case offerDue:
		t.due(m)
	case offerDone:
		t.done(m)
	case timersQuery:
		c.Respond(t.list())
	}
}

// scan arms a timer for every pending offer of the current state.
func (t *offerTimers) scan() {
	offers, index := t.hub.cfg.PendingOffers()
	t.after = syncSeq(index)
	for _, o := range offers {
		t.arm(o)
	}
}

func (t *offerTimers) apply(ev fsm.Event) {
	switch ev.Kind {
	case api.EvOfferCreated:
		if o, ok := payload[api.OfferInfo](ev.Data); ok {
			t.arm(o)
		}
	case api.EvOfferWithdrawn:
		if w, ok := payload[api.OfferWithdrawn](ev.Data); ok {
			if a := t.armed[w.Offer.Request.ID]; a != nil && a.Offer == w.Offer.ID {
				t.disarm(w.Offer.Request.ID)
			}
		}
	case api.EvConversationJoined:
		// An accepted offer ends with its agent joining.
		if pc, ok := payload[api.ParticipantChange](ev.Data); ok {
			if a := t.armed[pc.Request]; a != nil && a.Agent == pc.Agent {
				t.disarm(pc.Request)
			}
		}
	case api.EvConversationClosed:
		if cl, ok := payload[api.ConversationClosed](ev.Data); ok {
			t.disarm(cl.Request)
		}
	}
}

// arm sets the timer of offer o, replacing one of an older offer of the
// same request.
func (t *offerTimers) arm(o api.OfferInfo) {
	req := o.Request.ID
	if req == "" || o.ID == "" {
		return
	}
	if a := t.armed[req]; a != nil {
		if a.Offer == o.ID {
			return
		}
		t.disarm(req)
	}
	a := &armedOffer{ArmedOffer: ArmedOffer{Request: req, Offer: o.ID, Agent: o.Agent, ExpiresAt: o.ExpiresAt}}
	a.timer = t.afterFunc(time.Until(time.Unix(0, o.ExpiresAt)), offerDue{request: req, offer: o.ID})
	t.armed[req] = a
}

// afterFunc sends msg to the actor after d (at once if d <= 0).
func (t *offerTimers) afterFunc(d time.Duration, msg any) *time.Timer {
	return sendAfter(t.hub.engine, t.self, d, msg)
}

func (t *offerTimers) disarm(req string) { disarm(t.armed, req) }

func (t *offerTimers) stopAll() { disarmAll(t.armed) }

// due proposes the offer_timeout of a timer that fired.
func (t *offerTimers) due(m offerDue) {
	a := t.armed[m.request]
	if a == nil || a.Offer != m.offer || a.timer == nil {
		return // answered, withdrawn or re-offered meanwhile
	}
	a.timer = nil
	if !t.leader || (t.hub.cfg.IsLeader != nil && !t.hub.cfg.IsLeader()) {
		// The new leader's timers take over.
		delete(t.armed, m.request)
		return
	}
	e, pid := t.hub.engine, t.self
	cmd := &fsm.Command{Op: fsm.OpOfferTimeout, By: t.hub.system(), Args: &api.OfferArgs{Request: m.request, OfferID: m.offer}}
	if !t.hub.submit(cmd, func(res fsm.Result, err error) {
		e.Send(pid, offerDone{request: m.request, offer: m.offer, res: res, err: err})
	}) {
		delete(t.armed, m.request)
	}
}

// done ends a proposed offer_timeout; one that did not commit is tried
// again while this node leads and the offer is still armed.
func (t *offerTimers) done(m offerDone) {
	log := t.hub.log.With("request", m.request, "offer", m.offer)
	a := t.armed[m.request]
	mine := a != nil && a.Offer == m.offer && a.timer == nil
	switch {
	case m.err != nil && mine && t.leader:
		log.Warn("offer timeout not committed; retrying", "err", m.err)
		a.timer = t.afterFunc(offerRetryDelay, offerDue{request: m.request, offer: m.offer})
		return
	case m.err != nil:
		log.Info("offer timeout not committed", "err", m.err)
	case m.res.Err != nil && mine && t.leader:
		// Answered or withdrawn meanwhile, or refused as early (the
		// state's clock had not reached the expiry): the FSM decides.
		// An offer still pending is re-armed for its expiry.
		if at, ok := t.stillPending(m.request, m.offer); ok {
			log.Debug("offer timeout refused while the offer is pending; re-armed", "err", m.res.Err)
			a.timer = t.afterFunc(max(time.Until(time.Unix(0, at)), offerRetryDelay), offerDue{request: m.request, offer: m.offer})
			return
		}
		log.Debug("offer timeout refused", "err", m.res.Err)
	case m.res.Err != nil:
		log.Debug("offer timeout refused", "err", m.res.Err)
	default:
		log.Debug("offer timed out")
	}
	if mine {
		delete(t.armed, m.request)
	}
}

// stillPending reports whether the state still holds offer of request as
// pending, and its expiry.
func (t *offerTimers) stillPending(request, offer string) (expiresAt int64, ok bool) {
	offers, _ := t.hub.cfg.PendingOffers()
	for _, o := range offers {
		if o.Request.ID == request && o.ID == offer {
			return o.ExpiresAt, true
		}
	}
	return 0, false
}

func (t *offerTimers) list() []ArmedOffer {
	out := make([]ArmedOffer, 0, len(t.armed))
	for _, a := range t.armed {
		out = append(out, a.ArmedOffer)
	}
	slices.SortFunc(out, func(a, b ArmedOffer) int { return cmp.Compare(a.Request, b.Request) })
	return out
}
