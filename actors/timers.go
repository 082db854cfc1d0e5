package actors

import (
	"cmp"
	"log/slog"
	"slices"

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

// ArmedOffer is an offer timer the leader holds (for tests and debugging).
type ArmedOffer struct {
	Request, Offer, Agent string
	ExpiresAt             int64
}

type armedOffer struct {
	ArmedOffer
	timerSlot
}

func (a *armedOffer) stamp() string { return a.Offer }

// offerTimers is the actor of this node's offer timers, by request id.
type offerTimers struct {
	leaderTimers[string, string, *armedOffer]
}

// startTimers spawns the timer actors (offers, deadlines.go's deadlines)
// the hub can propose for.
func (h *Hub) startTimers() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cfg.Submit == nil {
		return
	}
	if h.cfg.Deadlines != nil {
		t := &deadlineTimers{}
		h.deadlines = t.spawn(h, t, "deadlines", timerNames{
			timers: "deadline timers", op: "deadline op", applied: "deadline op applied",
			rearmed: "deadline op refused while still pending; re-armed",
		})
	}
	if h.cfg.PendingOffers != nil {
		t := &offerTimers{}
		h.timers = t.spawn(h, t, "offers", timerNames{
			timers: "offer timers", op: "offer timeout", applied: "offer timed out",
			rearmed: "offer timeout refused while the offer is pending; re-armed",
		})
	}
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
	return armedTimers[ArmedOffer](h, &h.timers)
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
	t.receive(c)
}

// scan arms a timer for every pending offer of the current state.
func (t *offerTimers) scan() {
	offers, index := t.hub.cfg.PendingOffers()
	t.after = syncSeq(index)
	for _, o := range offers {
		t.arm(o)
	}
}

func (t *offerTimers) stopAll() { t.disarmAll() }

func (t *offerTimers) event(ev fsm.Event) {
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
	t.armAt(req, &armedOffer{ArmedOffer: ArmedOffer{Request: req, Offer: o.ID, Agent: o.Agent, ExpiresAt: o.ExpiresAt}}, o.ExpiresAt)
}

func (t *offerTimers) command(req string, a *armedOffer) *fsm.Command {
	return &fsm.Command{Op: fsm.OpOfferTimeout, By: t.hub.system(), Args: &api.OfferArgs{Request: req, OfferID: a.Offer}}
}

func (t *offerTimers) logger(req, offer string) *slog.Logger {
	return t.hub.log.With("request", req, "offer", offer)
}

// pending reports whether the state still holds a's offer as pending, and
// its expiry.
func (t *offerTimers) pending(req string, a *armedOffer) (expiresAt int64, ok bool) {
	offers, _ := t.hub.cfg.PendingOffers()
	for _, o := range offers {
		if o.Request.ID == req && o.ID == a.Offer {
			return o.ExpiresAt, true
		}
	}
	return 0, false
}

func (t *offerTimers) list() any {
	out := make([]ArmedOffer, 0, len(t.armed))
	for _, a := range t.armed {
		out = append(out, a.ArmedOffer)
	}
	slices.SortFunc(out, func(a, b ArmedOffer) int { return cmp.Compare(a.Request, b.Request) })
	return out
}
