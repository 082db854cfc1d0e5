package actors

import (
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/anthdm/hollywood/actor"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// routeView sends ev to the list or conversation actor it concerns,
// spawning that actor on first sight. Call with h.mu held, after the
// event went to its recipients.
func (h *Hub) routeView(ev fsm.Event) {
	switch ev.Kind {
	case api.EvRequestCreated, api.EvRequestUpdated, api.EvRequestRemoved:
		sum, ok := payload[api.RequestSummary](ev.Data)
		if !ok {
			break
		}
		if sum.List != "" {
			h.engine.Send(h.listActor(sum.List), ev)
		}
		// An open conversation also learns of activity that changed the
		// request (joins and leaves carry no time of their own).
		if pid := h.convs[sum.ID]; pid != nil {
			h.engine.Send(pid, ev)
		}
	case api.EvListSubscribed:
		if snap, ok := payload[api.ListSnapshot](ev.Data); ok && snap.List != "" {
			h.engine.Send(h.listActor(snap.List), ev)
		}
	case api.EvListUnsubscribed:
		if ref, ok := payload[api.ListRef](ev.Data); ok && ref.List != "" {
			h.engine.Send(h.listActor(ref.List), ev)
		}
	case api.EvConversationJoined, api.EvConversationLeft, api.EvConversationMessage, api.EvConversationClosed:
		id := conversationOf(ev)
		if id == "" {
			break
		}
		pid := h.convs[id]
		if pid == nil {
			h.spawned++
			pid = h.spawn(&conversation{hub: h, id: id}, "conversation", fmt.Sprintf("%s#%d", id, h.spawned))
			h.convs[id] = pid
		}
		h.engine.Send(pid, ev)
		if ev.Kind == api.EvConversationClosed {
			// The actor stops itself once it has processed this.
			delete(h.convs, id)
		}
	}
}

// listActor returns the list's actor, spawning it. Call with h.mu held.
func (h *Hub) listActor(id string) *actor.PID {
	pid := h.lists[id]
	if pid == nil {
		pid = h.spawn(&list{hub: h, id: id, open: map[string]openRequest{}}, "list", id)
		h.lists[id] = pid
	}
	return pid
}

// seedLists offers the lists of a sync view, which reflects seq, to their
// actors: a list actor that has not seen anything newer takes the
// snapshot as its view. This is how list views recover after a restart
// or Reset.
func (h *Hub) seedLists(seq uint64, lists []api.ListSnapshot) {
	if len(lists) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for i := range lists {
		if lists[i].List != "" {
			h.engine.Send(h.listActor(lists[i].List), listSeed{seq: seq, snap: &lists[i]})
		}
	}
}

// ListView returns this node's live view of a list: how many requests are
// open on it and the creation time (unix nanoseconds, leader time) of its
// oldest UNREAD request, 0 if none. The view is built from the events this
// node applied; it returns ErrNoView for a list no event has named yet.
func (h *Hub) ListView(list string) (open int, oldestUnreadAt int64, err error) {
	if err := h.awaitFanOut(); err != nil {
		return 0, 0, err
	}
	pid, err := h.lookup(h.lists, list)
	if err != nil {
		return 0, 0, err
	}
	res, err := h.ask(pid, listQuery{})
	if err != nil {
		return 0, 0, fmt.Errorf("list %q: %w", list, err)
	}
	r, ok := res.(listReply)
	if !ok {
		return 0, 0, fmt.Errorf("list %q: unexpected answer %T", list, res)
	}
	return r.open, r.oldestUnreadAt, nil
}

// Conversation returns this node's live view of an open conversation: its
// participants (agent ids, sorted) and the time (unix nanoseconds, leader
// time) of its last activity, 0 if none seen. It returns ErrNoView for a
// request with no conversation event seen, or closed.
func (h *Hub) Conversation(request string) (participants []string, lastActivity int64, err error) {
	if err := h.awaitFanOut(); err != nil {
		return nil, 0, err
	}
	pid, err := h.lookup(h.convs, request)
	if err != nil {
		return nil, 0, err
	}
	res, err := h.ask(pid, conversationQuery{})
	if err != nil {
		return nil, 0, fmt.Errorf("conversation %q: %w", request, err)
	}
	r, ok := res.(conversationReply)
	if !ok {
		return nil, 0, fmt.Errorf("conversation %q: unexpected answer %T", request, res)
	}
	return r.participants, r.lastActivity, nil
}

// Messages of the list actor (besides fsm.Event).
type (
	listSeed struct {
		seq  uint64
		snap *api.ListSnapshot
	}
	// listReset clears the view: the state was replaced at seq.
	listReset struct{ seq uint64 }
	listQuery struct{}
	listReply struct {
		open           int
		oldestUnreadAt int64
	}
)

type openRequest struct {
	state     api.RequestState
	createdAt int64
}

// list is the actor of one list: this node's live view of the requests
// open on it. Wait-time timers will hang here (offer timers are the
// timer actor's, timers.go).
type list struct {
	hub  *Hub
	id   string
	seq  uint64 // the last event or snapshot the view reflects
	open map[string]openRequest
}

// Receive implements actor.Receiver.
func (l *list) Receive(c *actor.Context) {
	defer l.hub.recoverActor("list", l.id, c)
	switch m := c.Message().(type) {
	case fsm.Event:
		if m.Seq <= l.seq {
			return // already reflected by a newer snapshot
		}
		l.seq = m.Seq
		l.apply(m)
	case listSeed:
		// A snapshot at the same seq as the view is the same state, and
		// one taken right after a Reset must win over the empty view.
		if m.seq >= l.seq {
			l.seq = m.seq
			l.replace(m.snap)
		}
	case listReset:
		l.seq = max(l.seq, m.seq)
		clear(l.open)
	case listQuery:
		c.Respond(l.reply())
	}
}

func (l *list) apply(ev fsm.Event) {
	switch ev.Kind {
	case api.EvRequestCreated, api.EvRequestUpdated:
		if sum, ok := payload[api.RequestSummary](ev.Data); ok {
			if sum.State == api.StateClosed {
				delete(l.open, sum.ID)
			} else {
				l.open[sum.ID] = openRequest{state: sum.State, createdAt: sum.CreatedAt}
			}
		}
	case api.EvRequestRemoved:
		if sum, ok := payload[api.RequestSummary](ev.Data); ok {
			delete(l.open, sum.ID)
		}
	case api.EvListSubscribed:
		if snap, ok := payload[api.ListSnapshot](ev.Data); ok {
			l.replace(&snap)
		}
	}
}

// replace takes snap's requests as the view. A snapshot that is a first
// page (More: views are paged, api/views.go) does not show the rest: its
// requests are taken in, and the view keeps what it knew of the others.
func (l *list) replace(snap *api.ListSnapshot) {
	if !snap.More {
		clear(l.open)
	}
	for _, r := range snap.Requests {
		if r.State != api.StateClosed {
			l.open[r.ID] = openRequest{state: r.State, createdAt: r.CreatedAt}
		}
	}
}

func (l *list) reply() listReply {
	r := listReply{open: len(l.open)}
	for _, o := range l.open {
		if o.state == api.StateUnread && (r.oldestUnreadAt == 0 || o.createdAt < r.oldestUnreadAt) {
			r.oldestUnreadAt = o.createdAt
		}
	}
	return r
}

// Messages of the conversation actor (besides fsm.Event).
type (
	conversationQuery struct{}
	conversationReply struct {
		participants []string
		lastActivity int64
	}
)

// conversation is the actor of one open conversation: its participants and
// last activity. Idle timers will hang here. It stops itself
// after conversation.closed.
type conversation struct {
	hub          *Hub
	id           string
	participants []string // agent ids, sorted; shared with events, never mutated
	lastActivity int64
}

// Receive implements actor.Receiver.
func (cv *conversation) Receive(c *actor.Context) {
	defer cv.hub.recoverActor("conversation", cv.id, c)
	switch m := c.Message().(type) {
	case fsm.Event:
		cv.apply(m)
		if m.Kind == api.EvConversationClosed {
			c.Engine().Poison(c.PID())
		}
	case conversationQuery:
		c.Respond(conversationReply{participants: slices.Clone(cv.participants), lastActivity: cv.lastActivity})
	}
}

func (cv *conversation) apply(ev fsm.Event) {
	switch ev.Kind {
	case api.EvConversationJoined, api.EvConversationLeft:
		if pc, ok := payload[api.ParticipantChange](ev.Data); ok {
			cv.participants = pc.Participants
		}
	case api.EvConversationMessage:
		if msg, ok := payload[api.ConversationMessage](ev.Data); ok {
			cv.lastActivity = max(cv.lastActivity, msg.Message.At)
		}
		// A message goes to the participants (and connectors): the only
		// source of them for an actor spawned mid-conversation.
		cv.participants = agentsIn(ev.To)
	case api.EvRequestCreated, api.EvRequestUpdated, api.EvRequestRemoved:
		if sum, ok := payload[api.RequestSummary](ev.Data); ok {
			cv.lastActivity = max(cv.lastActivity, sum.UpdatedAt)
		}
	}
}

// agentsIn returns the sorted agent ids among recipient keys.
func agentsIn(keys []string) []string {
	var ids []string
	for _, k := range keys {
		if id, ok := strings.CutPrefix(k, "agent:"); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// conversationOf returns the request id a conversation event is about.
func conversationOf(ev fsm.Event) string {
	switch ev.Kind {
	case api.EvConversationJoined, api.EvConversationLeft:
		pc, _ := payload[api.ParticipantChange](ev.Data)
		return pc.Request
	case api.EvConversationMessage:
		m, _ := payload[api.ConversationMessage](ev.Data)
		return m.Request
	case api.EvConversationClosed:
		cl, _ := payload[api.ConversationClosed](ev.Data)
		return cl.Request
	}
	return ""
}

// payload returns an event's data as a T, whether it holds a T or a *T.
func payload[T any](data any) (T, bool) {
	switch v := data.(type) {
	case T:
		return v, true
	case *T:
		if v != nil {
			return *v, true
		}
	}
	var zero T
	return zero, false
}

// recoverActor logs a panic of a view actor and swallows it: the message
// is lost, the view kept. Deferred in Receive.
func (h *Hub) recoverActor(kind, id string, c *actor.Context) {
	if v := recover(); v != nil {
		h.log.Error("actor panicked; message dropped", "actor", kind, "id", id,
			"msg", fmt.Sprintf("%T", c.Message()), "panic", v, "stack", string(debug.Stack()))
	}
}
