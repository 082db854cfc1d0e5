package fsm

import (
	"maps"
	"slices"
)

// Op numbers of the admin commands. Never renumber.
const (
	OpCreateMRD         Op = 1
	OpCreateChannelType Op = 2
	OpCreateList        Op = 3
	OpCreateQueue       Op = 4
	OpCreateChannel     Op = 5
	OpCreateAgent       Op = 6
	OpCreateConnector   Op = 7
	OpDeleteList        Op = 8
	OpDeleteAgent       Op = 9
	OpNoop              Op = 10
)

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

// Created is the result of a create command.
type Created struct {
	ID string `msgpack:"id"`
}

func registerAdmin(r *Registry) {
	admin := roles(RoleAdmin)
	register(r, OpCreateMRD, "create_mrd", admin, applyCreateMRD)
	register(r, OpCreateChannelType, "create_channel_type", admin, applyCreateChannelType)
	register(r, OpCreateList, "create_list", admin, applyCreateList)
	register(r, OpCreateQueue, "create_queue", admin, applyCreateQueue)
	register(r, OpCreateChannel, "create_channel", admin, applyCreateChannel)
	register(r, OpCreateAgent, "create_agent", admin, applyCreateAgent)
	register(r, OpCreateConnector, "create_connector", admin, applyCreateConnector)
	register(r, OpDeleteList, "delete_list", admin, applyDeleteList)
	register(r, OpDeleteAgent, "delete_agent", admin, applyDeleteAgent)
	register(r, OpNoop, "noop", roles(RoleAdmin, RoleAgent, RoleConnector), applyNoop)
}

func applyNoop(*State, *Command, *NoopArgs, *events) (any, *Error) { return nil, nil }

func applyCreateMRD(s *State, _ *Command, a *CreateMRDArgs, _ *events) (any, *Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.MRDs[a.ID] != nil {
		return nil, Errorf(CodeAlreadyExists, "mrd %q already exists", a.ID)
	}
	s.MRDs[a.ID] = &MRD{ID: a.ID, Name: a.Name}
	return Created{ID: a.ID}, nil
}

func applyCreateChannelType(s *State, _ *Command, a *CreateChannelTypeArgs, _ *events) (any, *Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if s.ChannelTypes[a.ID] != nil {
		return nil, Errorf(CodeAlreadyExists, "channel type %q already exists", a.ID)
	}
	if s.MRDs[a.MRD] == nil {
		return nil, Errorf(CodeNotFound, "mrd %q not found", a.MRD)
	}
	s.ChannelTypes[a.ID] = &ChannelType{ID: a.ID, MRD: a.MRD}
	return Created{ID: a.ID}, nil
}

func applyCreateList(s *State, _ *Command, a *CreateListArgs, _ *events) (any, *Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.Lists[a.ID] != nil {
		return nil, Errorf(CodeAlreadyExists, "list %q already exists", a.ID)
	}
	s.Lists[a.ID] = &List{ID: a.ID, Name: a.Name}
	return Created{ID: a.ID}, nil
}

func applyCreateQueue(s *State, _ *Command, a *CreateQueueArgs, _ *events) (any, *Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.Queues[a.ID] != nil {
		return nil, Errorf(CodeAlreadyExists, "queue %q already exists", a.ID)
	}
	if s.MRDs[a.MRD] == nil {
		return nil, Errorf(CodeNotFound, "mrd %q not found", a.MRD)
	}
	if a.OfferTimeoutMs < 0 {
		return nil, Errorf(CodeBadRequest, "offer_timeout_ms must not be negative")
	}
	s.Queues[a.ID] = &Queue{ID: a.ID, Name: a.Name, MRD: a.MRD, Priority: a.Priority, OfferTimeoutMs: a.OfferTimeoutMs}
	return Created{ID: a.ID}, nil
}

func applyCreateChannel(s *State, _ *Command, a *CreateChannelArgs, _ *events) (any, *Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if s.Channels[a.ID] != nil {
		return nil, Errorf(CodeAlreadyExists, "channel %q already exists", a.ID)
	}
	ct := s.ChannelTypes[a.Type]
	if ct == nil {
		return nil, Errorf(CodeNotFound, "channel type %q not found", a.Type)
	}
	ch := &Channel{ID: a.ID, Type: a.Type, MRD: ct.MRD, Mode: a.Mode}
	switch a.Mode {
	case ModePull:
		if a.Queue != "" {
			return nil, Errorf(CodeBadRequest, "a pull channel maps to a list, not a queue")
		}
		if s.Lists[a.List] == nil {
			return nil, Errorf(CodeNotFound, "list %q not found", a.List)
		}
		ch.List = a.List
	case ModePush:
		if a.List != "" {
			return nil, Errorf(CodeBadRequest, "a push channel maps to a queue, not a list")
		}
		q := s.Queues[a.Queue]
		if q == nil {
			return nil, Errorf(CodeNotFound, "queue %q not found", a.Queue)
		}
		if q.MRD != ct.MRD {
			return nil, Errorf(CodeBadRequest, "queue %q is in mrd %q, channel type %q in %q", q.ID, q.MRD, ct.ID, ct.MRD)
		}
		ch.Queue = a.Queue
	default:
		return nil, Errorf(CodeBadRequest, "mode must be %q or %q, not %q", ModePull, ModePush, a.Mode)
	}
	s.Channels[a.ID] = ch
	return Created{ID: a.ID}, nil
}

func applyCreateAgent(s *State, _ *Command, a *CreateAgentArgs, _ *events) (any, *Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.Agents[a.ID] != nil {
		return nil, Errorf(CodeAlreadyExists, "agent %q already exists", a.ID)
	}
	if len(a.TokenHash) == 0 {
		return nil, Errorf(CodeBadRequest, "token_hash is required")
	}
	var maxes map[string]int
	// Sorted: with several bad entries, map order must not pick the error.
	for _, mrd := range slices.Sorted(maps.Keys(a.Max)) {
		n := a.Max[mrd]
		if s.MRDs[mrd] == nil {
			return nil, Errorf(CodeNotFound, "mrd %q not found", mrd)
		}
		if n < 1 {
			return nil, Errorf(CodeBadRequest, "max for mrd %q must be at least 1", mrd)
		}
		if maxes == nil {
			maxes = map[string]int{}
		}
		maxes[mrd] = n
	}
	s.Agents[a.ID] = &Agent{ID: a.ID, Name: a.Name, TokenHash: slices.Clone(a.TokenHash), Max: maxes}
	return Created{ID: a.ID}, nil
}

func applyCreateConnector(s *State, _ *Command, a *CreateConnectorArgs, _ *events) (any, *Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.Connectors[a.ID] != nil {
		return nil, Errorf(CodeAlreadyExists, "connector %q already exists", a.ID)
	}
	if len(a.TokenHash) == 0 {
		return nil, Errorf(CodeBadRequest, "token_hash is required")
	}
	if len(a.Channels) == 0 {
		return nil, Errorf(CodeBadRequest, "channels is required")
	}
	var chans []string
	for _, id := range a.Channels {
		if s.Channels[id] == nil {
			return nil, Errorf(CodeNotFound, "channel %q not found", id)
		}
		chans, _ = insertSorted(chans, id)
	}
	key := ConnectorKey(a.ID)
	for _, id := range chans {
		ch := s.Channels[id]
		ch.Connectors, _ = insertSorted(ch.Connectors, key)
	}
	s.Connectors[a.ID] = &Connector{ID: a.ID, Name: a.Name, TokenHash: slices.Clone(a.TokenHash), Channels: chans}
	return Created{ID: a.ID}, nil
}

func applyDeleteList(s *State, _ *Command, a *IDArgs, out *events) (any, *Error) {
	l := s.Lists[a.ID]
	if l == nil {
		return nil, Errorf(CodeNotFound, "list %q not found", a.ID)
	}
	if len(l.Requests) > 0 {
		return nil, Errorf(CodeWrongState, "list %q has %d open requests", a.ID, len(l.Requests))
	}
	var users []string
	for _, ch := range s.Channels {
		if ch.List == a.ID {
			users = append(users, ch.ID)
		}
	}
	if len(users) > 0 {
		slices.Sort(users) // map order must not reach the result
		return nil, Errorf(CodeWrongState, "list %q is used by channels %v", a.ID, users)
	}
	for _, key := range l.Subscribers {
		if ag := s.Agents[agentIDOf(key)]; ag != nil {
			ag.Lists, _ = removeSorted(ag.Lists, a.ID)
		}
	}
	if len(l.Subscribers) > 0 {
		// Subscribers' consoles drop the list as on their own unsubscribe.
		out.add(EvListUnsubscribed, slices.Clone(l.Subscribers), ListRef{List: l.ID})
	}
	delete(s.Lists, a.ID)
	return nil, nil
}

func applyDeleteAgent(s *State, _ *Command, a *IDArgs, _ *events) (any, *Error) {
	ag := s.Agents[a.ID]
	if ag == nil {
		return nil, Errorf(CodeNotFound, "agent %q not found", a.ID)
	}
	if len(ag.Conversations) > 0 {
		return nil, Errorf(CodeWrongState, "agent %q is in %d conversations", a.ID, len(ag.Conversations))
	}
	if err := s.unlinkDeletedAgent(ag); err != nil {
		return nil, err
	}
	key := AgentKey(a.ID)
	for _, id := range ag.Lists {
		if l := s.Lists[id]; l != nil {
			l.Subscribers, _ = removeSorted(l.Subscribers, key)
		}
	}
	delete(s.Agents, a.ID)
	return nil, nil
}

func agentIDOf(key string) string {
	const p = "agent:"
	if len(key) > len(p) && key[:len(p)] == p {
		return key[len(p):]
	}
	return ""
}
