package fsm

import (
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

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

// QueryArgs are the arguments of get_list and get_request.
type QueryArgs struct {
	List    string `msgpack:"list"`
	Request string `msgpack:"request"`
	Queue   string `msgpack:"queue,omitempty"` // get_queue
}

// IsQuery reports whether op is a query op.
func IsQuery(op string) bool {
	switch op {
	case QueryMRDs, QueryChannelTypes, QueryChannels, QueryLists, QueryQueues,
		QueryAgents, QueryConnectors, QueryList, QueryRequest, QueryView:
		return true
	}
	return isPushQuery(op)
}

// Query answers a read-only op for principal p. Admins may read everything;
// agents and connectors only their own view, the lists they are subscribed
// to and the requests they may see.
func (s *State) Query(p Principal, op string, rawArgs []byte) (any, *Error) {
	if !IsQuery(op) {
		return nil, Errorf(CodeUnknownOp, "unknown op %q", op)
	}
	var a QueryArgs
	if len(rawArgs) > 0 {
		if err := msgpack.Unmarshal(rawArgs, &a); err != nil {
			return nil, Errorf(CodeBadRequest, "%s: arguments: %v", op, err)
		}
	}
	switch p.Role {
	case RoleAdmin, RoleAgent, RoleConnector:
	default:
		return nil, Errorf(CodeForbidden, "%s may not %s", p.Role, op)
	}
	switch op {
	case QueryView:
		v, ok := s.View(p.Key())
		if !ok {
			return nil, Errorf(CodeForbidden, "%s has no stream view", p.Role)
		}
		return v, nil
	case QueryList:
		l := s.Lists[a.List]
		if l == nil {
			return nil, Errorf(CodeNotFound, "list %q not found", a.List)
		}
		if p.Role == RoleAgent && !containsSorted(l.Subscribers, AgentKey(p.ID)) {
			return nil, Errorf(CodeNotSubscribed, "agent %q is not subscribed to list %q", p.ID, l.ID)
		}
		if p.Role == RoleConnector {
			return nil, Errorf(CodeForbidden, "connectors may not read lists")
		}
		return s.listSnapshot(l), nil
	case QueryRequest:
		r := s.Requests[a.Request]
		if r == nil {
			return nil, Errorf(CodeNotFound, "request %q not found", a.Request)
		}
		switch p.Role {
		case RoleAgent:
			ag := s.Agents[p.ID]
			if ag == nil || (!containsSorted(r.Participants, p.ID) && !containsSorted(ag.Lists, r.List)) {
				return nil, Errorf(CodeForbidden, "agent %q may not read request %q", p.ID, r.ID)
			}
		case RoleConnector:
			if ch := s.Channels[r.Channel]; ch == nil || !containsSorted(ch.Connectors, ConnectorKey(p.ID)) {
				return nil, Errorf(CodeForbidden, "connector %q may not read request %q", p.ID, r.ID)
			}
		}
		return r.view(), nil
	}
	if handled, v, err := s.pushQuery(p, op, a); handled {
		return v, err
	}
	if p.Role != RoleAdmin {
		return nil, Errorf(CodeForbidden, "%s may not %s", p.Role, op)
	}
	switch op {
	case QueryMRDs:
		return sortedValues(s.MRDs, func(m *MRD) MRD { return *m }), nil
	case QueryChannelTypes:
		return sortedValues(s.ChannelTypes, func(c *ChannelType) ChannelType { return *c }), nil
	case QueryChannels:
		return sortedValues(s.Channels, func(c *Channel) Channel { return *c }), nil
	case QueryQueues:
		return sortedValues(s.Queues, func(q *Queue) Queue {
			// The answer outlives the read lock: no slice of the state
			// (Waiting is edited in place) may leak into it.
			c := *q
			c.Members, c.Waiting, c.Offered = slices.Clone(q.Members), slices.Clone(q.Waiting), slices.Clone(q.Offered)
			return c
		}), nil
	case QueryLists:
		return sortedValues(s.Lists, func(l *List) ListInfo {
			subs := make([]string, 0, len(l.Subscribers))
			for _, k := range l.Subscribers {
				subs = append(subs, agentIDOf(k))
			}
			return ListInfo{ID: l.ID, Name: l.Name, Subscribers: subs, Open: len(l.Requests)}
		}), nil
	case QueryAgents:
		return sortedValues(s.Agents, func(a *Agent) AgentInfo {
			return AgentInfo{ID: a.ID, Name: a.Name, Max: maps.Clone(a.Max), Lists: slices.Clone(a.Lists), Conversations: slices.Clone(a.Conversations)}
		}), nil
	case QueryConnectors:
		return sortedValues(s.Connectors, func(c *Connector) ConnectorInfo {
			return ConnectorInfo{ID: c.ID, Name: c.Name, Channels: slices.Clone(c.Channels)}
		}), nil
	}
	return nil, Errorf(CodeUnknownOp, "unknown op %q", op)
}

// sortedValues returns conv of every map value, ordered by key.
func sortedValues[V any, R any](m map[string]V, conv func(V) R) []R {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]R, 0, len(keys))
	for _, k := range keys {
		out = append(out, conv(m[k]))
	}
	return out
}
