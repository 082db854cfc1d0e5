package fsm

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

// Event is a notification caused by a command, with the recipient keys
// (AgentKey / ConnectorKey) computed from the state at apply time. Data is
// immutable once emitted: it may be shared by every recipient.
type Event struct {
	// Seq numbers the event in the log: see SeqOf. Set by the FSM adapter.
	Seq  uint64
	Kind EventKind
	To   []string
	Data any
}

// SeqShift is how far the Raft log index is shifted in an event sequence
// number: Seq = index<<SeqShift | position of the event within the entry.
const SeqShift = 20

// SeqOf returns the sequence number of the pos'th event of log entry index.
func SeqOf(index uint64, pos int) uint64 { return index<<SeqShift | uint64(pos) }

// IndexOf returns the log index an event sequence number belongs to.
func IndexOf(seq uint64) uint64 { return seq >> SeqShift }

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
}

// ListSnapshot is a list and its current requests, oldest first.
type ListSnapshot struct {
	List     string           `msgpack:"list"`
	Name     string           `msgpack:"name"`
	Requests []RequestSummary `msgpack:"requests"`
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

// events accumulates the events of one command.
type events struct{ list []Event }

func (e *events) add(kind EventKind, to []string, data any) {
	if len(to) == 0 {
		return
	}
	e.list = append(e.list, Event{Kind: kind, To: to, Data: data})
}
