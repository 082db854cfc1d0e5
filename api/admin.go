package api

// CreateMRDArgs creates a media routing domain.
type CreateMRDArgs struct {
	ID   string `msgpack:"id"`
	Name string `msgpack:"name"`
}

// CreateChannelTypeArgs creates a channel type within an MRD.
type CreateChannelTypeArgs struct {
	ID  string `msgpack:"id"`
	MRD string `msgpack:"mrd"`
}

// CreateListArgs creates a list.
type CreateListArgs struct {
	ID   string `msgpack:"id"`
	Name string `msgpack:"name"`
	// SLAMs and SLAWarnPct set the list's service level (feature level 2;
	// see ServiceLevelArgs).
	SLAMs      int64 `msgpack:"sla_ms,omitempty" level:"2"`
	SLAWarnPct int   `msgpack:"sla_warn_pct,omitempty" level:"2"`
	// RemindInactiveMs: after a request has been INACTIVE this long, the
	// list's subscribers get request.reminder (once per INACTIVE spell).
	// CloseInactiveMs: after this long INACTIVE, the system closes it.
	// 0: off (the default). Feature level 2.
	RemindInactiveMs int64 `msgpack:"remind_inactive_ms,omitempty" level:"2"`
	CloseInactiveMs  int64 `msgpack:"close_inactive_ms,omitempty" level:"2"`
	// Access says who may subscribe to the list (ListAccess; "" is
	// ListOpen). Feature level 3.
	Access ListAccess `msgpack:"access,omitempty" level:"3"`
}

// ListAccess says who may subscribe to a list, and so see its requests.
type ListAccess string

// List access modes (feature level 3).
const (
	// ListOpen: any agent may subscribe itself (an admin may subscribe
	// any agent). Every list created before level 3 is open.
	ListOpen ListAccess = "open"
	// ListRestricted: only the agents an admin granted the list
	// (grant_list) may be subscribed to it, by themselves or by an admin.
	// Revoking a grant, or restricting a list, unsubscribes the agents
	// without one.
	ListRestricted ListAccess = "restricted"
)

// ListGrantArgs are the arguments of grant_list and revoke_list: the agent
// that may (or may no longer) subscribe to a restricted list.
type ListGrantArgs struct {
	List  string `msgpack:"list"`
	Agent string `msgpack:"agent"`
}

// ListAccessArgs are the arguments of set_list_access.
type ListAccessArgs struct {
	List   string     `msgpack:"list"`
	Access ListAccess `msgpack:"access"`
}

// CreateQueueArgs creates a push-mode queue.
type CreateQueueArgs struct {
	ID             string `msgpack:"id"`
	Name           string `msgpack:"name"`
	MRD            string `msgpack:"mrd"`
	Priority       int    `msgpack:"priority"`
	OfferTimeoutMs int64  `msgpack:"offer_timeout_ms"`
	// AgingStepMs and AgingCap turn on aging (api.Queue; feature level 2):
	// every AgingStepMs of waiting raises a request's effective priority
	// by one, at most AgingCap. Both or neither.
	AgingStepMs int64 `msgpack:"aging_step_ms,omitempty" level:"2"`
	AgingCap    int   `msgpack:"aging_cap,omitempty" level:"2"`
	// SLAMs and SLAWarnPct set the queue's service level (feature level
	// 2; see ServiceLevelArgs).
	SLAMs      int64 `msgpack:"sla_ms,omitempty" level:"2"`
	SLAWarnPct int   `msgpack:"sla_warn_pct,omitempty" level:"2"`
}

// ServiceLevelArgs are the arguments of set_service_level: the service
// level of one list or one queue (name exactly one). A request that
// arrives there must have an agent in it (joined, or its offer accepted)
// within SLAMs of its arrival; at WarnPct percent of that (1..99; 0: no
// warning) it is in warning. SLAMs 0 turns the service level off. A
// change applies to requests that arrive afterwards: a request's
// deadlines are fixed at its arrival.
type ServiceLevelArgs struct {
	List    string `msgpack:"list,omitempty"`
	Queue   string `msgpack:"queue,omitempty"`
	SLAMs   int64  `msgpack:"sla_ms"`
	WarnPct int    `msgpack:"warn_pct"`
}

// RequestRef names a request: the arguments of the system ops the
// leader's timers propose (sla_warning, sla_breach, remind_inactive,
// close_inactive).
type RequestRef struct {
	Request string `msgpack:"request"`
}

// Bounds of the service-level and INACTIVE settings.
const (
	// MaxSLAMs bounds sla_ms: one day.
	MaxSLAMs = 24 * 60 * 60 * 1000
	// MaxInactiveMs bounds remind_inactive_ms and close_inactive_ms: 30
	// days.
	MaxInactiveMs = 30 * MaxSLAMs
)

// CreateChannelArgs creates a channel: Mode pull needs List, push needs Queue.
type CreateChannelArgs struct {
	ID    string      `msgpack:"id"`
	Type  string      `msgpack:"type"`
	Mode  RoutingMode `msgpack:"mode"`
	List  string      `msgpack:"list"`
	Queue string      `msgpack:"queue"`
}

// CreateAgentArgs creates an agent. TokenHash is set by the node (the
// SHA-256 of a token it generated); a client-sent value is overwritten.
type CreateAgentArgs struct {
	ID        string         `msgpack:"id"`
	Name      string         `msgpack:"name"`
	Max       map[string]int `msgpack:"max"`
	TokenHash []byte         `msgpack:"token_hash"`
}

// CreateConnectorArgs creates a channel connector allowed on Channels.
// TokenHash is set by the node, as for agents.
type CreateConnectorArgs struct {
	ID        string   `msgpack:"id"`
	Name      string   `msgpack:"name"`
	Channels  []string `msgpack:"channels"`
	TokenHash []byte   `msgpack:"token_hash"`
}

// CreateSupervisorArgs creates a supervisor (feature level 3). Its scope is
// every request and agent when MRDs, Lists and Queues are all empty;
// otherwise the requests of those MRDs, lists and queues, and the agents
// who work there (SupervisorScope). TokenHash is set by the node, as for
// agents.
type CreateSupervisorArgs struct {
	ID        string   `msgpack:"id"`
	Name      string   `msgpack:"name"`
	MRDs      []string `msgpack:"mrds,omitempty"`
	Lists     []string `msgpack:"lists,omitempty"`
	Queues    []string `msgpack:"queues,omitempty"`
	TokenHash []byte   `msgpack:"token_hash"`
}

// SupervisorInfo is one supervisor as get_supervisors lists it.
type SupervisorInfo struct {
	ID     string   `msgpack:"id"`
	Name   string   `msgpack:"name"`
	MRDs   []string `msgpack:"mrds"`
	Lists  []string `msgpack:"lists"`
	Queues []string `msgpack:"queues"`
}

// IDArgs names one entity.
type IDArgs struct {
	ID string `msgpack:"id"`
}

// NoopArgs is the payload of a no-op command (the bench baseline).
type NoopArgs struct {
	Pad []byte `msgpack:"pad,omitempty"`
}

// FeatureLevelArgs are the arguments of set_feature_level, and its result.
type FeatureLevelArgs struct {
	Level uint32 `msgpack:"level"`
}

// Created is the result of a create command.
type Created struct {
	ID string `msgpack:"id"`
}
