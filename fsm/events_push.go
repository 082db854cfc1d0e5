package fsm

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
