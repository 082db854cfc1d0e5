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
}

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
