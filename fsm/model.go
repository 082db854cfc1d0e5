package fsm

import "github.com/switchboard/switchboard/api"

// List is a pull-mode parking place for requests.
type List struct {
	ID   string `msgpack:"id"`
	Name string `msgpack:"name"`
	// Subscribers are recipient keys, sorted. The slice is replaced, never
	// mutated in place, so events may share it.
	Subscribers []string `msgpack:"subscribers,omitempty"`
	// Requests open on the list, in arrival order.
	Requests []string `msgpack:"requests,omitempty"`
	// Service level and INACTIVE settings (api.CreateListArgs; level 2).
	SLAMs            int64 `msgpack:"sla_ms,omitempty"`
	SLAWarnPct       int   `msgpack:"sla_warn_pct,omitempty"`
	RemindInactiveMs int64 `msgpack:"remind_inactive_ms,omitempty"`
	CloseInactiveMs  int64 `msgpack:"close_inactive_ms,omitempty"`
	// Access says who may subscribe ("" is api.ListOpen); Granted are
	// the agent ids an admin granted the list, sorted: on a restricted
	// list, every subscriber is granted (list_access.go; level 3).
	Access  api.ListAccess `msgpack:"access,omitempty"`
	Granted []string       `msgpack:"granted,omitempty"`
}

// Agent is a person who handles requests.
type Agent struct {
	ID        string `msgpack:"id"`
	Name      string `msgpack:"name"`
	TokenHash []byte `msgpack:"token_hash"`
	// Max concurrent conversations per MRD; an MRD absent here is unlimited.
	Max map[string]int `msgpack:"max,omitempty"`
	// Lists the agent is subscribed to, sorted.
	Lists []string `msgpack:"lists,omitempty"`
	// Conversations the agent is in, sorted.
	Conversations []string `msgpack:"conversations,omitempty"`
	// Push routing (routing.go). While LoggedIn, the agent is NOT_READY in
	// every MRD absent from States. Mode "" is AgentModeAuto. Queues the
	// agent is a member of and requests with a pending offer to it are
	// sorted ids. ChatRequested is a pull-chat-mode Request Chat not served
	// yet.
	LoggedIn        bool                     `msgpack:"logged_in,omitempty"`
	LoginAt         int64                    `msgpack:"login_at,omitempty"`
	Mode            api.AgentMode            `msgpack:"mode,omitempty"`
	States          map[string]AgentMRDState `msgpack:"states,omitempty"`
	Queues          []string                 `msgpack:"queues,omitempty"`
	Offers          []string                 `msgpack:"offers,omitempty"`
	LastAssignedAt  int64                    `msgpack:"last_assigned_at,omitempty"`
	ChatRequested   bool                     `msgpack:"chat_requested,omitempty"`
	ChatRequestedAt int64                    `msgpack:"chat_requested_at,omitempty"`
	// Presence changes whenever a session of the agent attaches to a node
	// where it had none, or it logs in (level 3): a node's logout decided
	// before is then refused (presence.go).
	Presence uint64 `msgpack:"presence,omitempty"`
}

// Connector is a channel connector: the software that brings customers'
// messages in from a channel and takes agents' replies out.
type Connector struct {
	ID        string   `msgpack:"id"`
	Name      string   `msgpack:"name"`
	TokenHash []byte   `msgpack:"token_hash"`
	Channels  []string `msgpack:"channels"` // sorted
}

// Request is one customer conversation on a channel.
type Request struct {
	ID           string           `msgpack:"id"`
	Channel      string           `msgpack:"channel"`
	MRD          string           `msgpack:"mrd"`
	List         string           `msgpack:"list,omitempty"`
	Queue        string           `msgpack:"queue,omitempty"`
	Customer     api.Customer     `msgpack:"customer"`
	State        api.RequestState `msgpack:"state"`
	Participants []string         `msgpack:"participants,omitempty"` // agent ids, sorted
	CreatedAt    int64            `msgpack:"created_at"`
	UpdatedAt    int64            `msgpack:"updated_at"`
	Transcript   []api.Message    `msgpack:"transcript,omitempty"`
	// AgentRequestedAt is when the customer last asked for an agent while
	// nobody was in the conversation (0 if never).
	AgentRequestedAt int64 `msgpack:"agent_requested_at,omitempty"`
	// Push routing (routing.go). Priority orders the request in its queue
	// (higher first). QueuedAt is when it last entered its queue (a bounced
	// offer keeps its place). Queued says it is in Queue's waiting line;
	// Offer is its one pending offer. Declined are the agents who rejected
	// or let lapse an offer of it since it was last accepted, sorted: they
	// get it again only when no one else can.
	Priority int      `msgpack:"priority,omitempty"`
	QueuedAt int64    `msgpack:"queued_at,omitempty"`
	Queued   bool     `msgpack:"queued,omitempty"`
	Offer    *Offer   `msgpack:"offer,omitempty"`
	Declined []string `msgpack:"declined,omitempty"`
	// StrictDecline says the Declined agents let the request go by
	// transfer_to_queue: they get it again only when no other member of
	// its queue is READY in its MRD at all, not merely when no other is
	// free this instant (level 2).
	StrictDecline bool `msgpack:"strict_decline,omitempty"`
	// Unread counts the customer's messages since an agent was last in
	// the conversation (UNREAD or INACTIVE; level 2): the list view shows
	// it with the latest one.
	Unread int `msgpack:"unread,omitempty"`
	// Service level (sla.go; level 2). SLA is "" when the request's list
	// or queue had no service level at its arrival. SLAWarnAt and SLADue
	// are its deadlines, fixed at arrival (SLAWarnAt 0: no warning);
	// SLAAt is when SLA last changed. All leader time.
	SLA       api.SLAState `msgpack:"sla,omitempty"`
	SLAAt     int64        `msgpack:"sla_at,omitempty"`
	SLAWarnAt int64        `msgpack:"sla_warn_at,omitempty"`
	SLADue    int64        `msgpack:"sla_due,omitempty"`
	// InactiveSince is when the request last became INACTIVE, on a list
	// with INACTIVE reminders or auto-close (0 otherwise); Reminded says
	// that spell's request.reminder went out.
	InactiveSince int64 `msgpack:"inactive_since,omitempty"`
	Reminded      bool  `msgpack:"reminded,omitempty"`
}
