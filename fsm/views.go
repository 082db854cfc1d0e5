package fsm

import (
	"slices"

	"github.com/switchboard/switchboard/api"
)

// Views are bounded whatever the size of the state (api/views.go): a sync,
// get_view, a list, a queue and a subscribe's list view carry a first page
// of what they show, within api.MaxViewBytes of estimated encoding, and say
// when there is more; the paged reads fetch the rest. The estimates
// (view_size.go) are upper bounds of the msgpack encoding, so a view never
// encodes larger than its budget says.

// View returns the stream view for recipient key (AgentKey or ConnectorKey),
// and false if the key names nobody: the payload of a sync and of get_view.
// An agent's view holds its push view, its conversations (oldest first, at
// most api.DefaultPageSize and half the budget: more_conversations says
// when there are others) and its lists (at most api.MaxAgentLists, by id),
// each with its oldest requests (at most api.DefaultPageSize each, within
// what is left of the budget; a list's more says when there are others).
// A connector's holds the open requests of its channels, oldest first, as
// an agent's conversations.
func (s *State) View(key string) (api.StreamView, bool) {
	if id := agentIDOf(key); id != "" {
		ag := s.Agents[id]
		if ag == nil {
			return api.StreamView{}, false
		}
		v := api.StreamView{Agent: id, Lists: []api.ListSnapshot{}}
		b := viewBudget{left: api.MaxViewBytes}
		convs := viewBudget{left: api.MaxViewBytes / 2}
		v.Conversations, v.MoreConversations = s.conversationPage(sortedRequestIDs(ag.Conversations), "", api.DefaultPageSize, &convs, false)
		b.left -= api.MaxViewBytes/2 - convs.left
		lists := ag.Lists
		if len(lists) > api.MaxAgentLists {
			lists = lists[:api.MaxAgentLists]
		}
		for _, lid := range lists {
			if l := s.Lists[lid]; l != nil {
				v.Lists = append(v.Lists, s.listPage(l, "", api.DefaultPageSize, &b, false))
			}
		}
		v.Push = s.agentPushView(ag)
		return v, true
	}
	if id := supervisorIDOf(key); id != "" {
		b, ok := s.SupervisorBoard(id)
		if !ok {
			return api.StreamView{}, false
		}
		return api.StreamView{Supervisor: id, Lists: []api.ListSnapshot{}, Conversations: []api.ConversationView{}, Board: b}, true
	}
	cn := s.connectorOf(key)
	if cn == nil {
		return api.StreamView{}, false
	}
	v := api.StreamView{Connector: cn.ID, Lists: []api.ListSnapshot{}}
	b := viewBudget{left: api.MaxViewBytes}
	v.Conversations, v.MoreConversations = s.conversationPage(s.connectorRequests(cn), "", api.DefaultPageSize, &b, false)
	return v, true
}

// connectorOf returns the connector of recipient key, or nil.
func (s *State) connectorOf(key string) *Connector {
	const p = "connector:"
	if len(key) <= len(p) || key[:len(p)] != p {
		return nil
	}
	return s.Connectors[key[len(p):]]
}

// connectorRequests returns the ids of the open requests of cn's channels,
// oldest first.
func (s *State) connectorRequests(cn *Connector) []string {
	var ids []string
	for _, chID := range cn.Channels {
		ids = s.openOn(chID, ids)
	}
	slices.SortFunc(ids, compareRequestIDs)
	// A request is listed once even if two customers name it, as the set
	// per channel that OpenRequests replaced listed it (only a snapshot
	// not written by Apply could hold that).
	return slices.Compact(ids)
}

// sortedRequestIDs returns a copy of ids, oldest first.
func sortedRequestIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.SortFunc(out, compareRequestIDs)
	return out
}

// viewBudget is what is left of a view's bytes (estimated encoding).
type viewBudget struct{ left int }

// take spends n bytes if they fit, or anyway if force is set (the first
// item of a paged read, so that paging always makes progress; no single
// item comes near the budget).
func (b *viewBudget) take(n int, force bool) bool {
	if n > b.left && !force {
		return false
	}
	b.left -= n
	return true
}

// conversationPage returns the conversation views of ids (oldest first)
// after the id after, at most limit of them within b, and whether there
// are others after the last one returned. A paged read (progress) always
// holds at least one if there is one.
func (s *State) conversationPage(ids []string, after string, limit int, b *viewBudget, progress bool) ([]api.ConversationView, bool) {
	out := []api.ConversationView{}
	for i := startAfter(ids, after); i < len(ids); i++ {
		r := s.Requests[ids[i]]
		if r == nil {
			continue
		}
		if len(out) == limit {
			return out, true
		}
		v := s.conversationView(r)
		if !b.take(conversationSize(&v), progress && len(out) == 0) {
			return out, true
		}
		out = append(out, v)
	}
	return out, false
}

// listPage is l with its open requests after the id after (oldest first),
// at most limit within b: Total counts them all, More says some come after
// the page. A paged read (progress) always holds at least one if there is
// one.
func (s *State) listPage(l *List, after string, limit int, b *viewBudget, progress bool) api.ListSnapshot {
	start := startAfter(l.Requests, after)
	snap := api.ListSnapshot{List: l.ID, Name: l.Name, Total: len(l.Requests),
		Requests: make([]api.RequestSummary, 0, min(limit, len(l.Requests)-start))}
	b.left -= listHeaderSize(l)
	for i := start; i < len(l.Requests); i++ {
		r := s.Requests[l.Requests[i]]
		if r == nil {
			continue
		}
		if len(snap.Requests) == limit {
			snap.More = true
			break
		}
		sum := s.summary(r)
		if !b.take(summarySize(&sum), progress && len(snap.Requests) == 0) {
			snap.More = true
			break
		}
		snap.Requests = append(snap.Requests, sum)
	}
	return snap
}

// startAfter is the index of the first id of ids (in request id order)
// that comes after after; 0 if after is "".
func startAfter(ids []string, after string) int {
	if after == "" {
		return 0
	}
	i, found := slices.BinarySearchFunc(ids, after, compareRequestIDs)
	if found {
		i++
	}
	return i
}

// conversationView is r with its transcript: the most recent messages the
// state keeps (api.MaxTranscriptMessages, api.MaxTranscriptBytes of text).
func (s *State) conversationView(r *Request) api.ConversationView {
	return api.ConversationView{Request: s.summary(r), Transcript: slices.Clone(r.Transcript), AgentRequestedAt: r.AgentRequestedAt}
}

// compareRequestIDs orders "R<n>" ids numerically (older first).
func compareRequestIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Summary returns the request's summary as the state's level shapes it.
func (s *State) Summary(r *Request) api.RequestSummary { return s.summary(r) }

// ListSnapshot returns the list's first page of requests, oldest first.
func (s *State) ListSnapshot(l *List) api.ListSnapshot {
	return s.listPage(l, "", api.DefaultPageSize, &viewBudget{left: api.MaxViewBytes}, true)
}

// pageLimit is a read's limit: def when 0, at most api.MaxPageSize.
func pageLimit(limit, def int) (int, *api.Error) {
	switch {
	case limit < 0:
		return 0, api.Errorf(api.CodeBadRequest, "limit must not be negative")
	case limit == 0:
		return def, nil
	}
	return min(limit, api.MaxPageSize), nil
}
