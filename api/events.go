package api

// EventKind names a notification. Kinds are part of the wire protocol.
type EventKind string

// Event kinds.
const (
	// To list subscribers.
	EvRequestCreated EventKind = "request.created" // a request landed on the list (RequestSummary)
	EvRequestUpdated EventKind = "request.updated" // state or participants changed (RequestSummary)
	EvRequestRemoved EventKind = "request.removed" // closed and removed from the list (RequestSummary)
	// To the subscribing agent itself.
	EvListSubscribed   EventKind = "list.subscribed"   // ListSnapshot: current requests, then live changes
	EvListUnsubscribed EventKind = "list.unsubscribed" // ListRef
	// To a conversation's participants and its channel's connectors.
	EvConversationJoined  EventKind = "conversation.joined"  // ParticipantChange
	EvConversationLeft    EventKind = "conversation.left"    // ParticipantChange
	EvConversationMessage EventKind = "conversation.message" // ConversationMessage
	EvConversationClosed  EventKind = "conversation.closed"  // ConversationClosed
)

// SeqShift is how far the Raft log index is shifted in an event sequence
// number: Seq = index<<SeqShift | position of the event within the entry.
const SeqShift = 20

// SeqOf returns the sequence number of the pos'th event of log entry index.
func SeqOf(index uint64, pos int) uint64 { return index<<SeqShift | uint64(pos) }

// IndexOf returns the log index an event sequence number belongs to.
func IndexOf(seq uint64) uint64 { return seq >> SeqShift }

// How a newly attached event stream caught up: the mode of the caught_up
// frame a session that asked for it (hello marker) receives once the
// replay or the sync is delivered (docs/PROTOCOL.md §4).
const (
	CaughtUpReplay = "replay" // events after the cursor were replayed from the history
	CaughtUpNone   = "none"   // the history holds no event for the stream after the cursor
	CaughtUpSync   = "sync"   // a sync event came first (no cursor, or one the history does not cover)
)

// RequestSummary is how a request appears in a list view and its events.
type RequestSummary struct {
	ID           string       `msgpack:"id"`
	Channel      string       `msgpack:"channel"`
	List         string       `msgpack:"list,omitempty"`
	Queue        string       `msgpack:"queue,omitempty"`
	Customer     Customer     `msgpack:"customer"`
	State        RequestState `msgpack:"state"`
	Participants []string     `msgpack:"participants"`
	CreatedAt    int64        `msgpack:"created_at"`
	UpdatedAt    int64        `msgpack:"updated_at"`
	// Preview is the first customer message, for the list view.
	Preview string `msgpack:"preview,omitempty"`
	// Unread counts the customer's messages since an agent was last in
	// the conversation, and Latest is the last of them: what a list view
	// shows of an UNREAD or INACTIVE request the customer wrote to again
	// (feature level 2; absent when 0).
	Unread int    `msgpack:"unread,omitempty"`
	Latest string `msgpack:"latest,omitempty"`
	// SLA is the request's service-level state, for consoles to colour
	// it: absent when its list or queue had no service level at its
	// arrival (feature level 2).
	SLA SLAState `msgpack:"sla,omitempty"`
}

// SLAState is a request's service-level state (feature level 2).
type SLAState string

// SLA states. A request on a list or queue with a service level starts
// ok; the leader's timers move it to warning, then breached, unless an
// agent gets into it first (joined, or its offer accepted), which makes it
// met. A breached request stays breached; met, breached and a closed
// request's state never change again.
const (
	SLAOk       SLAState = "ok"
	SLAWarning  SLAState = "warning"
	SLABreached SLAState = "breached"
	SLAMet      SLAState = "met"
)

// Event kinds of service levels and INACTIVE reminders (feature level 2).
const (
	// EvRequestSLA goes to the list's subscribers, or the queue's members,
	// when a request's SLA state changes: a RequestSLA.
	EvRequestSLA EventKind = "request.sla"
	// EvRequestReminder goes to the list's subscribers when a request has
	// been INACTIVE for the list's remind_inactive_ms: a RequestReminder.
	// It is a reminder of a request already listed, never a second
	// request.created.
	EvRequestReminder EventKind = "request.reminder"
)

// RequestSLA says a request's SLA state changed, at leader time At.
type RequestSLA struct {
	Request RequestSummary `msgpack:"request"`
	List    string         `msgpack:"list,omitempty"`
	Queue   string         `msgpack:"queue,omitempty"`
	SLA     SLAState       `msgpack:"sla"`
	At      int64          `msgpack:"at"`
}

// RequestReminder says a request has been INACTIVE since InactiveSince
// (leader time), reminded at At.
type RequestReminder struct {
	Request       RequestSummary `msgpack:"request"`
	List          string         `msgpack:"list"`
	InactiveSince int64          `msgpack:"inactive_since"`
	At            int64          `msgpack:"at"`
}

// ListSnapshot is a list and its current requests, oldest first: from
// feature level 3 (and in every read) a page of them (api/views.go).
type ListSnapshot struct {
	List     string           `msgpack:"list"`
	Name     string           `msgpack:"name"`
	Requests []RequestSummary `msgpack:"requests"`
	// Total is the number of requests open on the list, and More says
	// some come after the last one carried (get_list with after fetches
	// them). Both are absent from a list.subscribed event or a subscribe
	// result below feature level 3, whose Requests is the whole list.
	Total int  `msgpack:"total,omitempty"`
	More  bool `msgpack:"more,omitempty"`
	// Seq, in a get_list answer, is the point of the event stream the
	// page reflects (SyncSeq of the log index the node had applied).
	Seq uint64 `msgpack:"seq,omitempty"`
}

// ListRef names a list.
type ListRef struct {
	List string `msgpack:"list"`
}

// ParticipantChange says an agent joined or left a conversation.
type ParticipantChange struct {
	Request      string       `msgpack:"request"`
	Agent        string       `msgpack:"agent"`
	State        RequestState `msgpack:"state"`
	Participants []string     `msgpack:"participants"`
}

// ConversationMessage is a message added to a conversation.
type ConversationMessage struct {
	Request string  `msgpack:"request"`
	Message Message `msgpack:"message"`
}

// ConversationClosed says a conversation was closed.
type ConversationClosed struct {
	Request string    `msgpack:"request"`
	By      Principal `msgpack:"by"`
}

// Event kinds of push routing. Like the others, they are part of the wire
// protocol.
const (
	// EvOfferCreated goes to the offered agent: an OfferInfo. The agent
	// answers with accept_offer or reject_offer before ExpiresAt, after which
	// the leader withdraws it (offer_timeout).
	EvOfferCreated EventKind = "offer.created"
	// EvOfferWithdrawn goes to the offered agent, and for a transfer or an
	// invitation also to the agent who made it: an OfferWithdrawn. An
	// accepted offer is not withdrawn: its agent receives
	// conversation.joined for the request instead.
	EvOfferWithdrawn EventKind = "offer.withdrawn"
	// EvAgentState goes to the agent whose state changed: an
	// AgentStateChange. MRD "" means every MRD (login, logout).
	EvAgentState EventKind = "agent.state"
	// EvAgentMode goes to the agent whose mode changed: an AgentModeChange.
	EvAgentMode EventKind = "agent.mode"
	// EvRequestQueued goes to the conversation's audience (its participants,
	// if any, and its channel's connectors) when a push request enters a
	// queue as a new arrival: a RequestQueued. A bounced offer (rejected,
	// lapsed, withdrawn) puts the request back at its place silently.
	EvRequestQueued EventKind = "request.queued"
)

// OfferInfo describes a pending offer: the payload of offer.created, inside
// offer.withdrawn, in PendingOffers, get_queue and the agent's sync view.
type OfferInfo struct {
	ID        string         `msgpack:"id"`
	Kind      OfferKind      `msgpack:"kind"`
	Agent     string         `msgpack:"agent"`          // the offered agent
	From      string         `msgpack:"from,omitempty"` // transferring or inviting agent
	Request   RequestSummary `msgpack:"request"`
	Queue     string         `msgpack:"queue,omitempty"` // the request's queue ("" for a list request)
	MRD       string         `msgpack:"mrd"`
	Priority  int            `msgpack:"priority"`
	CreatedAt int64          `msgpack:"created_at"`
	ExpiresAt int64          `msgpack:"expires_at"` // unix nanoseconds, leader time
}

// OfferWithdrawn says an offer ended without being accepted. Reason is one
// of the Withdraw* constants.
type OfferWithdrawn struct {
	Offer  OfferInfo `msgpack:"offer"`
	Reason string    `msgpack:"reason"`
}

// AgentStateChange says an agent's state changed in MRD ("" for every MRD).
type AgentStateChange struct {
	Agent  string     `msgpack:"agent"`
	MRD    string     `msgpack:"mrd"`
	State  AgentState `msgpack:"state"`
	Reason string     `msgpack:"reason,omitempty"`
	Since  int64      `msgpack:"since"`
}

// AgentModeChange says an agent's mode changed.
type AgentModeChange struct {
	Agent string    `msgpack:"agent"`
	Mode  AgentMode `msgpack:"mode"`
}

// RequestQueued says a push request entered a queue. Reason is one of the
// Queued* constants.
type RequestQueued struct {
	Request  RequestSummary `msgpack:"request"`
	Queue    string         `msgpack:"queue"`
	Priority int            `msgpack:"priority"`
	Reason   string         `msgpack:"reason"`
}

// ConversationView is a conversation with its recent transcript.
type ConversationView struct {
	Request    RequestSummary `msgpack:"request"`
	Transcript []Message      `msgpack:"transcript"`
	// AgentRequestedAt is when the customer last asked for an agent
	// (request_agent) while nobody was in the conversation; absent if it
	// did not, or an agent has joined since.
	AgentRequestedAt int64 `msgpack:"agent_requested_at,omitempty"`
}

// StreamView is everything a stream's owner needs to rebuild its screen: for
// an agent, its lists with their requests and its conversations; for a
// connector, the open conversations of its channels. It is the payload of
// the "sync" event.
type StreamView struct {
	Agent         string             `msgpack:"agent,omitempty"`
	Connector     string             `msgpack:"connector,omitempty"`
	Supervisor    string             `msgpack:"supervisor,omitempty"`
	Lists         []ListSnapshot     `msgpack:"lists"`
	Conversations []ConversationView `msgpack:"conversations"`
	// Push is an agent's routing status and pending offers; nil for a
	// connector and for an agent that has never touched push routing.
	Push *AgentPushView `msgpack:"push,omitempty"`
	// Board is a supervisor's wallboard (api/supervise.go); nil otherwise.
	Board *Board `msgpack:"board,omitempty"`
	// MoreConversations says Conversations is a first page: the rest
	// come from get_conversations, after the last one carried.
	MoreConversations bool `msgpack:"more_conversations,omitempty"`
}

// EvSync is the kind of the event that carries a StreamView: sent on a fresh
// connection, when a resume cursor is older than the node's history, and
// after a snapshot restore.
const EvSync EventKind = "sync"
