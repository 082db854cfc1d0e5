package api

// AgentArgs names the agent a command acts for: an agent may only name
// itself (or leave it empty); an admin or the system must name one.
type AgentArgs struct {
	Agent string `msgpack:"agent"`
}

// SetAgentStateArgs sets an agent's state in one MRD: READY, or NOT_READY
// with an optional reason (LOGGED_OUT is logout's business).
type SetAgentStateArgs struct {
	Agent  string     `msgpack:"agent"`
	MRD    string     `msgpack:"mrd"`
	State  AgentState `msgpack:"state"`
	Reason string     `msgpack:"reason"`
}

// SetAgentModeArgs sets an agent's mode: auto or pull.
type SetAgentModeArgs struct {
	Agent string    `msgpack:"agent"`
	Mode  AgentMode `msgpack:"mode"`
}

// QueueMemberArgs names an agent and a queue.
type QueueMemberArgs struct {
	Agent string `msgpack:"agent"`
	Queue string `msgpack:"queue"`
}

// SetPullPolicyArgs sets the global pull policy.
type SetPullPolicyArgs struct {
	Policy PullPolicy `msgpack:"policy"`
}

// OfferArgs names a request's pending offer. Agent is the acting agent (as
// in RequestArgs; unused by offer_timeout). OfferID is optional for accept
// and reject (when set it must match: a stale answer to an offer that was
// withdrawn and remade fails) and required for offer_timeout.
type OfferArgs struct {
	Request string `msgpack:"request"`
	Agent   string `msgpack:"agent"`
	OfferID string `msgpack:"offer_id"`
}

// TransferArgs hands a conversation (transfer) or an invitation to join it
// (invite) to ToAgent. Agent is the acting participant: an agent acts for
// itself; an admin may name one or none.
type TransferArgs struct {
	Request string `msgpack:"request"`
	Agent   string `msgpack:"agent"`
	ToAgent string `msgpack:"to_agent"`
}

// TransferToQueueArgs puts a push conversation back in a queue (its own or
// another of the same MRD). Agent is the acting participant, who leaves.
type TransferToQueueArgs struct {
	Request string `msgpack:"request"`
	Agent   string `msgpack:"agent"`
	Queue   string `msgpack:"queue"`
}

// AgentStatus is an agent's routing status: the result of login, logout,
// set_agent_state and set_agent_mode, and a row of get_agent_states.
type AgentStatus struct {
	Agent          string           `msgpack:"agent"`
	Mode           AgentMode        `msgpack:"mode"`
	LoggedIn       bool             `msgpack:"logged_in"`
	ChatRequested  bool             `msgpack:"chat_requested"`
	LastAssignedAt int64            `msgpack:"last_assigned_at"`
	Queues         []string         `msgpack:"queues"`
	MRDs           []AgentMRDStatus `msgpack:"mrds"` // every MRD, by id
}

// AgentMRDStatus is an agent's state and load in one MRD. Max 0 means no
// maximum.
type AgentMRDStatus struct {
	MRD           string     `msgpack:"mrd"`
	State         AgentState `msgpack:"state"`
	Reason        string     `msgpack:"reason,omitempty"`
	Since         int64      `msgpack:"since"`
	Conversations int        `msgpack:"conversations"`
	Offers        int        `msgpack:"offers"`
	Max           int        `msgpack:"max"`
}

// RequestChatResult is the outcome of request_chat: the offer made at once,
// or Pending when nothing waits (the next request that arrives and suits the
// agent is offered to it).
type RequestChatResult struct {
	Offer   *OfferInfo `msgpack:"offer,omitempty"`
	Pending bool       `msgpack:"pending"`
}

// AgentState is an agent's readiness in one MRD.
type AgentState string

// Agent states.
const (
	AgentReady     AgentState = "READY"      // takes offers in the MRD
	AgentNotReady  AgentState = "NOT_READY"  // logged in, takes no offers (see Reason)
	AgentLoggedOut AgentState = "LOGGED_OUT" // no session: logged out in every MRD
)

// ReasonRingNoAnswer is the NOT_READY reason set when an agent lets an offer
// lapse.
const ReasonRingNoAnswer = "ring_no_answer"

// AgentMode says how an agent is given push requests.
type AgentMode string

// Agent modes.
const (
	AgentModeAuto AgentMode = "auto" // offered the next request whenever eligible (the default)
	AgentModePull AgentMode = "pull" // pull chat mode: offered one request per request_chat
)

// PullPolicy orders the queued requests across queues: it decides which
// request a free agent gets next, in auto mode as in pull chat mode. Within
// one queue the order is always request priority (highest first), then
// arrival (QueuedAt), then request id.
type PullPolicy string

// Pull policies. The policy is one global setting (set_pull_policy).
const (
	// PolicyStrictPriority (the default): the highest-priority queue with a
	// request the agent may take first (ties: queue id), in queue order.
	PolicyStrictPriority PullPolicy = "strict_priority"
	// PolicyFirstDue: across queues, the request that has waited longest
	// (ties: higher queue priority, then queue id), each queue still giving
	// up its requests in queue order.
	PolicyFirstDue PullPolicy = "first_due"
)

// OfferKind says why an offer was made.
type OfferKind string

// Offer kinds.
const (
	OfferRoute    OfferKind = "route"    // the route pass offers a queued request
	OfferTransfer OfferKind = "transfer" // an agent (or admin) transfers the conversation to this agent
	OfferInvite   OfferKind = "invite"   // an agent (or admin) invites this agent into the conversation
)

// DefaultOfferTimeoutMs is an offer's lifetime when its queue sets none (or
// the request is on a list); MaxOfferTimeoutMs caps a queue's setting.
const (
	DefaultOfferTimeoutMs = int64(30_000)
	MaxOfferTimeoutMs     = int64(24 * 60 * 60 * 1000)
)

// Withdrawal reasons (OfferWithdrawn.Reason).
const (
	WithdrawRejected    = "rejected"    // the agent rejected it
	WithdrawTimeout     = "timeout"     // not answered in time
	WithdrawNotReady    = "not_ready"   // the agent went NOT_READY in the MRD
	WithdrawLoggedOut   = "logged_out"  // the agent logged out
	WithdrawClosed      = "closed"      // the request was closed
	WithdrawTransferred = "transferred" // the request was moved to a queue
	WithdrawRemoved     = "removed"     // the agent left the offering queue
)

// Reasons a request enters a queue (RequestQueued.Reason).
const (
	QueuedArrival        = "arrival"         // a new request on a push channel
	QueuedTransfer       = "transfer"        // transfer_to_queue
	QueuedTransferFailed = "transfer_failed" // a transfer or invitation to an agent was not taken up and nobody is left in the conversation
	QueuedAgentLeft      = "agent_left"      // the last agent left without closing
)
