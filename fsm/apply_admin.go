package fsm

import (
	"maps"
	"slices"

	"github.com/switchboard/switchboard/api"
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
	OpDeleteConnector   Op = 12 // Level2
)

func registerAdmin(r *Registry) {
	admin := roles(api.RoleAdmin)
	register(r, OpCreateMRD, api.OpCreateMRD, Level1, admin, applyCreateMRD)
	register(r, OpCreateChannelType, api.OpCreateChannelType, Level1, admin, applyCreateChannelType)
	register(r, OpCreateList, api.OpCreateList, Level1, admin, applyCreateList)
	register(r, OpCreateQueue, api.OpCreateQueue, Level1, admin, applyCreateQueue)
	register(r, OpCreateChannel, api.OpCreateChannel, Level1, admin, applyCreateChannel)
	register(r, OpCreateAgent, api.OpCreateAgent, Level1, admin, applyCreateAgent)
	register(r, OpCreateConnector, api.OpCreateConnector, Level1, admin, applyCreateConnector)
	register(r, OpDeleteList, api.OpDeleteList, Level1, admin, applyDeleteList)
	register(r, OpDeleteAgent, api.OpDeleteAgent, Level1, admin, applyDeleteAgent)
	register(r, OpDeleteConnector, api.OpDeleteConnector, Level2, admin, applyDeleteConnector)
	register(r, OpNoop, api.OpNoop, Level1, roles(api.RoleAdmin, api.RoleAgent, api.RoleConnector), applyNoop)
}

// applyNoop changes nothing. From level 2 only an admin's may carry more
// than api.MaxNoopPadBytes of pad.
func applyNoop(s *State, c *Command, a *api.NoopArgs, _ *events) (any, *api.Error) {
	if len(a.Pad) > api.MaxNoopPadBytes && c.By.Role != api.RoleAdmin && s.ActiveLevel() >= Level2 {
		return nil, api.Errorf(api.CodeBadRequest, "noop pad of %d bytes: at most %d for an %s", len(a.Pad), api.MaxNoopPadBytes, c.By.Role)
	}
	return nil, nil
}

func applyCreateMRD(s *State, _ *Command, a *api.CreateMRDArgs, _ *events) (any, *api.Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, api.MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.MRDs[a.ID] != nil {
		return nil, api.Errorf(api.CodeAlreadyExists, "mrd %q already exists", a.ID)
	}
	s.MRDs[a.ID] = &api.MRD{ID: a.ID, Name: a.Name}
	return api.Created{ID: a.ID}, nil
}

func applyCreateChannelType(s *State, _ *Command, a *api.CreateChannelTypeArgs, _ *events) (any, *api.Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if s.ChannelTypes[a.ID] != nil {
		return nil, api.Errorf(api.CodeAlreadyExists, "channel type %q already exists", a.ID)
	}
	if s.MRDs[a.MRD] == nil {
		return nil, api.Errorf(api.CodeNotFound, "mrd %q not found", a.MRD)
	}
	s.ChannelTypes[a.ID] = &api.ChannelType{ID: a.ID, MRD: a.MRD}
	return api.Created{ID: a.ID}, nil
}

func applyCreateList(s *State, _ *Command, a *api.CreateListArgs, _ *events) (any, *api.Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, api.MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.Lists[a.ID] != nil {
		return nil, api.Errorf(api.CodeAlreadyExists, "list %q already exists", a.ID)
	}
	if err := checkServiceLevel(a.SLAMs, a.SLAWarnPct); err != nil {
		return nil, err
	}
	if err := checkInactive(a.RemindInactiveMs, a.CloseInactiveMs); err != nil {
		return nil, err
	}
	if err := checkAccess(a.Access); err != nil {
		return nil, err
	}
	s.Lists[a.ID] = &List{ID: a.ID, Name: a.Name, SLAMs: a.SLAMs, SLAWarnPct: a.SLAWarnPct,
		RemindInactiveMs: a.RemindInactiveMs, CloseInactiveMs: a.CloseInactiveMs, Access: storedAccess(a.Access)}
	return api.Created{ID: a.ID}, nil
}

// maxAgingCap bounds a queue's aging boost.
const maxAgingCap = 1_000_000

func applyCreateQueue(s *State, _ *Command, a *api.CreateQueueArgs, _ *events) (any, *api.Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, api.MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.Queues[a.ID] != nil {
		return nil, api.Errorf(api.CodeAlreadyExists, "queue %q already exists", a.ID)
	}
	if s.MRDs[a.MRD] == nil {
		return nil, api.Errorf(api.CodeNotFound, "mrd %q not found", a.MRD)
	}
	if a.OfferTimeoutMs < 0 {
		return nil, api.Errorf(api.CodeBadRequest, "offer_timeout_ms must not be negative")
	}
	if a.AgingStepMs < 0 || a.AgingCap < 0 || (a.AgingStepMs == 0) != (a.AgingCap == 0) ||
		a.AgingStepMs > api.MaxOfferTimeoutMs || a.AgingCap > maxAgingCap {
		return nil, api.Errorf(api.CodeBadRequest, "aging_step_ms (at most a day) and aging_cap (at most %d): both positive, or both 0 (no aging)", maxAgingCap)
	}
	if err := checkServiceLevel(a.SLAMs, a.SLAWarnPct); err != nil {
		return nil, err
	}
	s.Queues[a.ID] = &api.Queue{ID: a.ID, Name: a.Name, MRD: a.MRD, Priority: a.Priority, OfferTimeoutMs: a.OfferTimeoutMs,
		AgingStepMs: a.AgingStepMs, AgingCap: a.AgingCap, SLAMs: a.SLAMs, SLAWarnPct: a.SLAWarnPct}
	return api.Created{ID: a.ID}, nil
}

func applyCreateChannel(s *State, _ *Command, a *api.CreateChannelArgs, _ *events) (any, *api.Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if s.Channels[a.ID] != nil {
		return nil, api.Errorf(api.CodeAlreadyExists, "channel %q already exists", a.ID)
	}
	ct := s.ChannelTypes[a.Type]
	if ct == nil {
		return nil, api.Errorf(api.CodeNotFound, "channel type %q not found", a.Type)
	}
	ch := &api.Channel{ID: a.ID, Type: a.Type, MRD: ct.MRD, Mode: a.Mode}
	switch a.Mode {
	case api.ModePull:
		if a.Queue != "" {
			return nil, api.Errorf(api.CodeBadRequest, "a pull channel maps to a list, not a queue")
		}
		if s.Lists[a.List] == nil {
			return nil, api.Errorf(api.CodeNotFound, "list %q not found", a.List)
		}
		ch.List = a.List
	case api.ModePush:
		if a.List != "" {
			return nil, api.Errorf(api.CodeBadRequest, "a push channel maps to a queue, not a list")
		}
		q := s.Queues[a.Queue]
		if q == nil {
			return nil, api.Errorf(api.CodeNotFound, "queue %q not found", a.Queue)
		}
		if q.MRD != ct.MRD {
			return nil, api.Errorf(api.CodeBadRequest, "queue %q is in mrd %q, channel type %q in %q", q.ID, q.MRD, ct.ID, ct.MRD)
		}
		ch.Queue = a.Queue
	default:
		return nil, api.Errorf(api.CodeBadRequest, "mode must be %q or %q, not %q", api.ModePull, api.ModePush, a.Mode)
	}
	s.Channels[a.ID] = ch
	return api.Created{ID: a.ID}, nil
}

func applyCreateAgent(s *State, _ *Command, a *api.CreateAgentArgs, _ *events) (any, *api.Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, api.MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.Agents[a.ID] != nil {
		return nil, api.Errorf(api.CodeAlreadyExists, "agent %q already exists", a.ID)
	}
	if len(a.TokenHash) == 0 {
		return nil, api.Errorf(api.CodeBadRequest, "token_hash is required")
	}
	var maxes map[string]int
	// Sorted: with several bad entries, map order must not pick the error.
	for _, mrd := range slices.Sorted(maps.Keys(a.Max)) {
		n := a.Max[mrd]
		if s.MRDs[mrd] == nil {
			return nil, api.Errorf(api.CodeNotFound, "mrd %q not found", mrd)
		}
		if n < 1 {
			return nil, api.Errorf(api.CodeBadRequest, "max for mrd %q must be at least 1", mrd)
		}
		if maxes == nil {
			maxes = map[string]int{}
		}
		maxes[mrd] = n
	}
	s.Agents[a.ID] = &Agent{ID: a.ID, Name: a.Name, TokenHash: slices.Clone(a.TokenHash), Max: maxes}
	return api.Created{ID: a.ID}, nil
}

func applyCreateConnector(s *State, _ *Command, a *api.CreateConnectorArgs, _ *events) (any, *api.Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	if err := checkText("name", a.Name, api.MaxIDBytes, false); err != nil {
		return nil, err
	}
	if s.Connectors[a.ID] != nil {
		return nil, api.Errorf(api.CodeAlreadyExists, "connector %q already exists", a.ID)
	}
	if len(a.TokenHash) == 0 {
		return nil, api.Errorf(api.CodeBadRequest, "token_hash is required")
	}
	if len(a.Channels) == 0 {
		return nil, api.Errorf(api.CodeBadRequest, "channels is required")
	}
	var chans []string
	for _, id := range a.Channels {
		if s.Channels[id] == nil {
			return nil, api.Errorf(api.CodeNotFound, "channel %q not found", id)
		}
		chans, _ = insertSorted(chans, id)
	}
	key := api.ConnectorKey(a.ID)
	for _, id := range chans {
		ch := s.Channels[id]
		ch.Connectors, _ = insertSorted(ch.Connectors, key)
	}
	s.Connectors[a.ID] = &Connector{ID: a.ID, Name: a.Name, TokenHash: slices.Clone(a.TokenHash), Channels: chans}
	return api.Created{ID: a.ID}, nil
}

func applyDeleteList(s *State, _ *Command, a *api.IDArgs, out *events) (any, *api.Error) {
	l := s.Lists[a.ID]
	if l == nil {
		return nil, api.Errorf(api.CodeNotFound, "list %q not found", a.ID)
	}
	if len(l.Requests) > 0 {
		return nil, api.Errorf(api.CodeWrongState, "list %q has %d open requests", a.ID, len(l.Requests))
	}
	var users []string
	for _, ch := range s.Channels {
		if ch.List == a.ID {
			users = append(users, ch.ID)
		}
	}
	if len(users) > 0 {
		slices.Sort(users) // map order must not reach the result
		return nil, api.Errorf(api.CodeWrongState, "list %q is used by channels %v", a.ID, users)
	}
	for _, key := range l.Subscribers {
		if ag := s.Agents[agentIDOf(key)]; ag != nil {
			ag.Lists, _ = removeSorted(ag.Lists, a.ID)
		}
	}
	if len(l.Subscribers) > 0 && s.ActiveLevel() >= Level2 {
		// Subscribers' consoles drop the list as on their own unsubscribe.
		out.add(api.EvListUnsubscribed, slices.Clone(l.Subscribers), api.ListRef{List: l.ID})
	}
	delete(s.Lists, a.ID)
	return nil, nil
}

func applyDeleteAgent(s *State, _ *Command, a *api.IDArgs, _ *events) (any, *api.Error) {
	ag := s.Agents[a.ID]
	if ag == nil {
		return nil, api.Errorf(api.CodeNotFound, "agent %q not found", a.ID)
	}
	if len(ag.Conversations) > 0 {
		return nil, api.Errorf(api.CodeWrongState, "agent %q is in %d conversations", a.ID, len(ag.Conversations))
	}
	if err := s.unlinkDeletedAgent(ag); err != nil {
		return nil, err
	}
	key := api.AgentKey(a.ID)
	for _, id := range ag.Lists {
		if l := s.Lists[id]; l != nil {
			l.Subscribers, _ = removeSorted(l.Subscribers, key)
		}
	}
	s.dropGrants(a.ID)
	delete(s.Agents, a.ID)
	return nil, nil
}

// applyDeleteConnector removes a connector and its right to speak for its
// channels. Requests belong to channels, not connectors, so they stay.
func applyDeleteConnector(s *State, _ *Command, a *api.IDArgs, _ *events) (any, *api.Error) {
	cn := s.Connectors[a.ID]
	if cn == nil {
		return nil, api.Errorf(api.CodeNotFound, "connector %q not found", a.ID)
	}
	key := api.ConnectorKey(a.ID)
	for _, id := range cn.Channels {
		if ch := s.Channels[id]; ch != nil {
			ch.Connectors, _ = removeSorted(ch.Connectors, key)
		}
	}
	delete(s.Connectors, a.ID)
	return nil, nil
}

func agentIDOf(key string) string {
	const p = "agent:"
	if len(key) > len(p) && key[:len(p)] == p {
		return key[len(p):]
	}
	return ""
}
