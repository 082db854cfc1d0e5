package fsm

import (
	"maps"
	"slices"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// IsQuery reports whether op is a query op.
func IsQuery(op string) bool {
	switch op {
	case api.QueryMRDs, api.QueryChannelTypes, api.QueryChannels, api.QueryLists, api.QueryQueues,
		api.QueryAgents, api.QueryConnectors, api.QueryList, api.QueryRequest, api.QueryView, api.QueryConversations,
		api.QueryBoard, api.QuerySupervisors:
		return true
	}
	return isPushQuery(op)
}

// Query answers a read-only op for principal p. Admins may read everything;
// agents and connectors only their own view, the lists they are subscribed
// to and the requests they may see.
func (s *State) Query(p api.Principal, op string, rawArgs []byte) (any, *api.Error) {
	if !IsQuery(op) {
		return nil, api.Errorf(api.CodeUnknownOp, "unknown op %q", op)
	}
	var a api.QueryArgs
	if len(rawArgs) > 0 {
		if err := msgpack.Unmarshal(rawArgs, &a); err != nil {
			return nil, api.Errorf(api.CodeBadRequest, "%s: arguments: %v", op, err)
		}
	}
	switch p.Role {
	case api.RoleAdmin, api.RoleAgent, api.RoleConnector, api.RoleSupervisor:
	default:
		return nil, api.Errorf(api.CodeForbidden, "%s may not %s", p.Role, op)
	}
	if a.Limit < 0 {
		return nil, api.Errorf(api.CodeBadRequest, "%s: limit must not be negative", op)
	}
	if p.Role == api.RoleSupervisor {
		return s.supervisorQuery(p, op, a)
	}
	switch op {
	case api.QueryView:
		v, ok := s.View(p.Key())
		if !ok {
			return nil, api.Errorf(api.CodeForbidden, "%s has no stream view", p.Role)
		}
		return v, nil
	case api.QueryConversations:
		var ids []string
		if id := agentIDOf(p.Key()); id != "" && s.Agents[id] != nil {
			ids = sortedRequestIDs(s.Agents[id].Conversations)
		} else if cn := s.connectorOf(p.Key()); cn != nil {
			ids = s.connectorRequests(cn)
		} else {
			return nil, api.Errorf(api.CodeForbidden, "%s has no conversations", p.Role)
		}
		limit, _ := pageLimit(a.Limit, api.DefaultPageSize)
		page := api.ConversationPage{Seq: api.SyncSeq(s.Index)}
		page.Conversations, page.More = s.conversationPage(ids, a.After, limit, &viewBudget{left: api.MaxViewBytes}, true)
		return page, nil
	case api.QueryList:
		l := s.Lists[a.List]
		if l == nil {
			return nil, api.Errorf(api.CodeNotFound, "list %q not found", a.List)
		}
		if p.Role == api.RoleAgent && !containsSorted(l.Subscribers, api.AgentKey(p.ID)) {
			return nil, api.Errorf(api.CodeNotSubscribed, "agent %q is not subscribed to list %q", p.ID, l.ID)
		}
		if p.Role == api.RoleAgent && !l.mayAccess(p.ID) {
			// Never true while subscribed (list_access.go): the rule,
			// checked where it is read as well.
			return nil, api.Errorf(api.CodeForbidden, "list %q is restricted and agent %q holds no grant of it", l.ID, p.ID)
		}
		if p.Role == api.RoleConnector {
			return nil, api.Errorf(api.CodeForbidden, "connectors may not read lists")
		}
		return s.listQuery(l, a), nil
	case api.QueryRequest:
		r := s.Requests[a.Request]
		if r == nil {
			return nil, api.Errorf(api.CodeNotFound, "request %q not found", a.Request)
		}
		switch p.Role {
		case api.RoleAgent:
			ag := s.Agents[p.ID]
			if ag == nil || (!containsSorted(r.Participants, p.ID) && !s.readsFromList(ag, r)) {
				return nil, api.Errorf(api.CodeForbidden, "agent %q may not read request %q", p.ID, r.ID)
			}
		case api.RoleConnector:
			if ch := s.Channels[r.Channel]; ch == nil || !containsSorted(ch.Connectors, api.ConnectorKey(p.ID)) {
				return nil, api.Errorf(api.CodeForbidden, "connector %q may not read request %q", p.ID, r.ID)
			}
		}
		return s.conversationView(r), nil
	}
	if handled, v, err := s.pushQuery(p, op, a); handled {
		return v, err
	}
	if p.Role != api.RoleAdmin {
		return nil, api.Errorf(api.CodeForbidden, "%s may not %s", p.Role, op)
	}
	pg := page{after: a.After, limit: a.Limit}
	switch op {
	case api.QueryBoard:
		return s.board(&Supervisor{ID: p.ID}), nil
	case api.QuerySupervisors:
		return s.supervisorInfos(), nil
	case api.QueryMRDs:
		return sortedValues(s.MRDs, pg, func(m *api.MRD) api.MRD { return *m }), nil
	case api.QueryChannelTypes:
		return sortedValues(s.ChannelTypes, pg, func(c *api.ChannelType) api.ChannelType { return *c }), nil
	case api.QueryChannels:
		return sortedValues(s.Channels, pg, func(c *api.Channel) api.Channel { return *c }), nil
	case api.QueryQueues:
		return sortedValues(s.Queues, pg, func(q *api.Queue) api.Queue {
			// The answer outlives the read lock: no slice of the state
			// (Waiting is edited in place) may leak into it.
			c := *q
			c.Members, c.Waiting, c.Offered = slices.Clone(q.Members), slices.Clone(q.Waiting), slices.Clone(q.Offered)
			return c
		}), nil
	case api.QueryLists:
		return sortedValues(s.Lists, pg, func(l *List) api.ListInfo {
			subs := make([]string, 0, len(l.Subscribers))
			for _, k := range l.Subscribers {
				subs = append(subs, agentIDOf(k))
			}
			return api.ListInfo{ID: l.ID, Name: l.Name, Subscribers: subs, Open: len(l.Requests),
				SLAMs: l.SLAMs, SLAWarnPct: l.SLAWarnPct, RemindInactiveMs: l.RemindInactiveMs, CloseInactiveMs: l.CloseInactiveMs,
				Access: l.accessOf(), Granted: cloneOrEmpty(l.Granted)}
		}), nil
	case api.QueryAgents:
		return sortedValues(s.Agents, pg, func(a *Agent) api.AgentInfo {
			// Collections always present, empty rather than nil
			// (docs/PROTOCOL.md §2).
			max := maps.Clone(a.Max)
			if max == nil {
				max = map[string]int{}
			}
			return api.AgentInfo{ID: a.ID, Name: a.Name, Max: max, Lists: cloneOrEmpty(a.Lists), Conversations: cloneOrEmpty(a.Conversations)}
		}), nil
	case api.QueryConnectors:
		return sortedValues(s.Connectors, pg, func(c *Connector) api.ConnectorInfo {
			return api.ConnectorInfo{ID: c.ID, Name: c.Name, Channels: cloneOrEmpty(c.Channels)}
		}), nil
	}
	return nil, api.Errorf(api.CodeUnknownOp, "unknown op %q", op)
}

// readsFromList reports whether agent ag may read r as a request of a list
// it is subscribed to (and, the list being restricted, granted).
func (s *State) readsFromList(ag *Agent, r *Request) bool {
	if r.List == "" || !containsSorted(ag.Lists, r.List) {
		return false
	}
	l := s.Lists[r.List]
	return l == nil || l.mayAccess(ag.ID)
}

// page selects the entries of an admin listing: those whose id sorts
// after after, at most limit of them (0: all; above api.MaxPageSize:
// that many).
type page struct {
	after string
	limit int
}

// sortedValues returns conv of the map values pg selects, ordered by key.
func sortedValues[V any, R any](m map[string]V, pg page, conv func(V) R) []R {
	keys := slices.Sorted(maps.Keys(m))
	if pg.after != "" {
		i, found := slices.BinarySearch(keys, pg.after)
		if found {
			i++
		}
		keys = keys[i:]
	}
	if pg.limit > 0 {
		keys = keys[:min(len(keys), pg.limit, api.MaxPageSize)]
	}
	out := make([]R, 0, len(keys))
	for _, k := range keys {
		out = append(out, conv(m[k]))
	}
	return out
}

// cloneOrEmpty copies xs, as an empty slice (encoded [], not nil) when
// there is nothing to copy.
func cloneOrEmpty(xs []string) []string {
	return append(make([]string, 0, len(xs)), xs...)
}

// listQuery answers get_list: a page of l's open requests after a.After
// (a.Limit checked by Query), with the seq it reflects.
func (s *State) listQuery(l *List, a api.QueryArgs) api.ListSnapshot {
	limit, _ := pageLimit(a.Limit, api.DefaultPageSize) // not negative: checked by Query
	snap := s.listPage(l, a.After, limit, &viewBudget{left: api.MaxViewBytes}, true)
	snap.Seq = api.SyncSeq(s.Index)
	return snap
}
