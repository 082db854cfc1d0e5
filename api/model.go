package api

// RequestState is the lifecycle state of a request (a conversation).
type RequestState string

// Request states, from the product spec.
const (
	StateUnread   RequestState = "UNREAD"   // listed, no agent has joined yet
	StateActive   RequestState = "ACTIVE"   // at least one agent is in it
	StateInactive RequestState = "INACTIVE" // agents joined, then all left without closing
	StateClosed   RequestState = "CLOSED"   // closed and removed from its list
)

// RoutingMode says how a channel routes its requests.
type RoutingMode string

// Routing modes.
const (
	ModePull RoutingMode = "pull" // parked on a list, announced to its subscribers
	ModePush RoutingMode = "push" // queued and offered to one agent
)

// Role is the kind of principal a command comes from.
type Role uint8

// Roles. RoleSystem is for commands proposed by the engine itself (timers).
const (
	RoleNone Role = iota
	RoleAdmin
	RoleAgent
	RoleConnector
	RoleSystem
	// RoleSupervisor watches and steers the requests and agents in its
	// scope (feature level 3).
	RoleSupervisor
)

var roleNames = [...]string{"none", "admin", "agent", "connector", "system", "supervisor"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "invalid"
}

// ParseRole maps a wire role name to a Role (RoleNone if unknown).
func ParseRole(s string) Role {
	for i, n := range roleNames {
		if n == s && i != int(RoleNone) && i != int(RoleSystem) {
			return Role(i)
		}
	}
	return RoleNone
}

// Principal is who sent a command: set by the node from the authenticated
// session, never taken from the client's arguments.
type Principal struct {
	Role Role   `msgpack:"role"`
	ID   string `msgpack:"id"`
}

// Key returns the principal's stream key (see AgentKey, ConnectorKey).
func (p Principal) Key() string {
	switch p.Role {
	case RoleAgent:
		return AgentKey(p.ID)
	case RoleConnector:
		return ConnectorKey(p.ID)
	case RoleSupervisor:
		return SupervisorKey(p.ID)
	}
	return ""
}

// AgentKey is the recipient key of an agent's event stream.
func AgentKey(id string) string { return "agent:" + id }

// ConnectorKey is the recipient key of a channel connector's event stream.
func ConnectorKey(id string) string { return "connector:" + id }

// SupervisorKey is the recipient key of a supervisor's event stream: every
// event about the requests and agents in the supervisor's scope.
func SupervisorKey(id string) string { return "supervisor:" + id }

// MRD is a media routing domain: a kind of work (chat, social, email, voice).
type MRD struct {
	ID   string `msgpack:"id"`
	Name string `msgpack:"name"`
}

// ChannelType is a kind of channel (facebook, webchat) within one MRD.
type ChannelType struct {
	ID  string `msgpack:"id"`
	MRD string `msgpack:"mrd"`
}

// Channel is an entry point of a channel type with a routing mode.
type Channel struct {
	ID    string      `msgpack:"id"`
	Type  string      `msgpack:"type"`
	MRD   string      `msgpack:"mrd"`
	Mode  RoutingMode `msgpack:"mode"`
	List  string      `msgpack:"list,omitempty"`  // ModePull
	Queue string      `msgpack:"queue,omitempty"` // ModePush
	// Connectors allowed to speak for this channel, sorted.
	Connectors []string `msgpack:"connectors,omitempty"`
}

// Queue is a push-mode waiting line.
type Queue struct {
	ID             string `msgpack:"id"`
	Name           string `msgpack:"name"`
	MRD            string `msgpack:"mrd"`
	Priority       int    `msgpack:"priority"`
	OfferTimeoutMs int64  `msgpack:"offer_timeout_ms"`
	// Push routing (routing.go). Members are the agents who take requests
	// from the queue, sorted. Waiting holds the queued requests in queue
	// order (request priority, highest first; then QueuedAt; then id).
	// Offered holds the queue's requests with a pending routing offer,
	// sorted.
	Members []string `msgpack:"members,omitempty"`
	Waiting []string `msgpack:"waiting,omitempty"`
	Offered []string `msgpack:"offered,omitempty"`
	// Aging (strict-priority routing): a waiting request's effective
	// priority is Priority + min(AgingCap, wait / AgingStepMs), so a
	// low-priority queue is not starved forever. 0: no aging.
	AgingStepMs int64 `msgpack:"aging_step_ms,omitempty"`
	AgingCap    int   `msgpack:"aging_cap,omitempty"`
	// Service level (ServiceLevelArgs; feature level 2). 0: none.
	SLAMs      int64 `msgpack:"sla_ms,omitempty"`
	SLAWarnPct int   `msgpack:"sla_warn_pct,omitempty"`
	// Service level of the day (feature level 3): SLDay is the UTC day
	// (unix days, leader time) that SLMet and SLBreached count requests
	// of, whose service level was met or breached that day.
	SLDay      int64 `msgpack:"sl_day,omitempty"`
	SLMet      int   `msgpack:"sl_met,omitempty"`
	SLBreached int   `msgpack:"sl_breached,omitempty"`
}

// Customer identifies the person behind a request.
type Customer struct {
	ID   string `msgpack:"id"`
	Name string `msgpack:"name,omitempty"`
}

// Message is one line of a request's transcript.
type Message struct {
	From Principal `msgpack:"from"` // RoleConnector+customer id for the customer, RoleAgent for agents
	Name string    `msgpack:"name,omitempty"`
	Text string    `msgpack:"text"`
	At   int64     `msgpack:"at"` // unix nanoseconds, leader time
}

// Transcript bounds: a request keeps its most recent messages only.
const (
	MaxTranscriptMessages = 20
	MaxTranscriptBytes    = 8 << 10
	MaxTextBytes          = 4 << 10
	MaxIDBytes            = 128
)

// Write bounds.
const (
	// SessionWindow is the idempotency window: a node remembers the
	// results of a client session's last SessionWindow seqs. A client
	// never sends a seq SessionWindow or more above its oldest write still
	// unanswered (docs/PROTOCOL.md §6), so that every retry it may make
	// stays within the window.
	SessionWindow = 128
	// MaxWriteArgsBytes bounds the msgpack arguments of one write op: a
	// larger one is refused (bad_request) before it reaches the log.
	MaxWriteArgsBytes = 64 << 10
	// MaxNoopPadBytes bounds a noop's pad for agents and connectors
	// (feature level 2): the noop is the benchmark's baseline, not a way
	// to fill every replica's disk.
	MaxNoopPadBytes = 256
)

// Idempotency records (feature level 3; docs/PROTOCOL.md §6). The nodes
// keep, per client session, a small record of each recent write's outcome
// rather than its whole result, and cap what one principal may hold, so
// that no principal can grow the replicated state or push out another
// principal's records.
const (
	// MaxRecordBytes bounds one idempotency record, msgpack-encoded.
	MaxRecordBytes = 256
	// MaxRecordErrBytes bounds a kept rejection's message: a longer one
	// is cut at a character boundary and ends with "…".
	MaxRecordErrBytes = 160
	// MaxClientIDsPerPrincipal bounds the client sessions one principal
	// (an agent, a connector, the admins, a node) keeps: past it the
	// principal's least recently used session is forgotten.
	MaxClientIDsPerPrincipal = 64
	// MaxRecordsPerPrincipal bounds the records of one principal's
	// sessions together (16 sessions with a full SessionWindow each):
	// past it, too, its least recently used session is forgotten.
	MaxRecordsPerPrincipal = 16 * SessionWindow
)

// Applied is the answer to a write re-sent with the seq of one that
// already applied, when that write's result was a view of the state (a
// list, a conversation, an agent's status, an offer): the cluster keeps
// only this record of it (feature level 3; docs/PROTOCOL.md §6). The
// write applied once, in the log entry at Index, whose events carry seqs
// with seq >> 20 == Index. The view itself comes as events (a subscribe's
// list.subscribed, or a sync on resume) or from a read (get_list,
// get_request, get_agent_states, get_view), which shows the state as it
// is now. The id fields name what the write was about, where it had one.
type Applied struct {
	// Retry is always true: the mark of this record.
	Retry bool   `msgpack:"retry"`
	Index uint64 `msgpack:"index"`
	// List is a subscribe's list.
	List string `msgpack:"list,omitempty"`
	// Agent is the agent whose status login, logout, set_agent_state or
	// set_agent_mode returned.
	Agent string `msgpack:"agent,omitempty"`
	// Request is the request of a join, accept_offer, transfer, invite,
	// or of the offer a request_chat got at once.
	Request string `msgpack:"request,omitempty"`
	// Offer is the offer a transfer, an invite or a request_chat made.
	Offer string `msgpack:"offer,omitempty"`
}
