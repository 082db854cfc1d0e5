package api

// Query ops are read-only: a node answers them from its local state without
// going through Raft. Their names are wire op names, like commands'.
const (
	QueryMRDs         = "get_mrds"          // → []MRD
	QueryChannelTypes = "get_channel_types" // → []ChannelType
	QueryChannels     = "get_channels"      // → []Channel
	QueryLists        = "get_lists"         // → []ListInfo
	QueryQueues       = "get_queues"        // → []Queue
	QueryAgents       = "get_agents"        // → []AgentInfo
	QueryConnectors   = "get_connectors"    // → []ConnectorInfo
	QueryList         = "get_list"          // {list} → ListSnapshot
	QueryRequest      = "get_request"       // {request} → ConversationView
	QueryView         = "get_view"          // → StreamView of the caller
)

// ListInfo is a list in the admin listing.
type ListInfo struct {
	ID          string   `msgpack:"id"`
	Name        string   `msgpack:"name"`
	Subscribers []string `msgpack:"subscribers"` // agent ids
	Open        int      `msgpack:"open"`        // open requests on it
	// The list's service level and INACTIVE settings (0: none).
	SLAMs            int64 `msgpack:"sla_ms,omitempty"`
	SLAWarnPct       int   `msgpack:"sla_warn_pct,omitempty"`
	RemindInactiveMs int64 `msgpack:"remind_inactive_ms,omitempty"`
	CloseInactiveMs  int64 `msgpack:"close_inactive_ms,omitempty"`
	// Access is who may subscribe (ListOpen or ListRestricted); Granted
	// the agents granted the list (grant_list), sorted: on a restricted
	// list, the only ones who may be subscribed.
	Access  ListAccess `msgpack:"access"`
	Granted []string   `msgpack:"granted"`
}

// AgentInfo is an agent in the admin listing (no credentials).
type AgentInfo struct {
	ID            string         `msgpack:"id"`
	Name          string         `msgpack:"name"`
	Max           map[string]int `msgpack:"max"`
	Lists         []string       `msgpack:"lists"`
	Conversations []string       `msgpack:"conversations"`
}

// ConnectorInfo is a connector in the admin listing (no credentials).
type ConnectorInfo struct {
	ID       string   `msgpack:"id"`
	Name     string   `msgpack:"name"`
	Channels []string `msgpack:"channels"`
}

// QueryArgs are the arguments of the reads.
type QueryArgs struct {
	List    string `msgpack:"list"`
	Request string `msgpack:"request"`
	Queue   string `msgpack:"queue,omitempty"` // get_queue
	// After and Limit page a read: its items after the one whose id is
	// After (in the read's order), at most Limit of them (0: the read's
	// default; above MaxPageSize: MaxPageSize). get_list, get_queue and
	// get_conversations default to DefaultPageSize; the admin listings
	// to everything (refused with CodeFrameTooLarge past MaxNodeFrame).
	After string `msgpack:"after,omitempty"`
	Limit int    `msgpack:"limit,omitempty"`
}

// Read-only push-routing queries.
const (
	// QueryQueue {queue} → QueueView. Admins, and agents who are members of
	// the queue.
	QueryQueue = "get_queue"
	// QueryAgentStates → []AgentStatus, by agent id: every agent for an
	// admin, the caller alone for an agent.
	QueryAgentStates = "get_agent_states"
)

// QueueView is a queue with its waiting requests (in queue order) and its
// pending routing offers.
type QueueView struct {
	ID             string          `msgpack:"id"`
	Name           string          `msgpack:"name"`
	MRD            string          `msgpack:"mrd"`
	Priority       int             `msgpack:"priority"`
	OfferTimeoutMs int64           `msgpack:"offer_timeout_ms"`
	Members        []string        `msgpack:"members"`
	Waiting        []QueuedRequest `msgpack:"waiting"`
	Offers         []OfferInfo     `msgpack:"offers"` // by request id
	// WaitingTotal is the number of requests waiting; More says some
	// wait behind the last one carried (get_queue with after fetches
	// them).
	WaitingTotal int  `msgpack:"waiting_total"`
	More         bool `msgpack:"more,omitempty"`
}

// QueuedRequest is a request waiting in a queue.
type QueuedRequest struct {
	Request  RequestSummary `msgpack:"request"`
	Priority int            `msgpack:"priority"`
	QueuedAt int64          `msgpack:"queued_at"`
	Declined []string       `msgpack:"declined,omitempty"`
}

// AgentPushView is the push part of an agent's stream view: its routing
// status and its pending offers (by request id).
type AgentPushView struct {
	Status AgentStatus `msgpack:"status"`
	Offers []OfferInfo `msgpack:"offers"`
}
