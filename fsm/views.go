package fsm

import (
	"slices"

	"github.com/switchboard/switchboard/api"
)

// View returns the stream view for recipient key (AgentKey or ConnectorKey),
// and false if the key names nobody.
func (s *State) View(key string) (api.StreamView, bool) {
	if id := agentIDOf(key); id != "" {
		ag := s.Agents[id]
		if ag == nil {
			return api.StreamView{}, false
		}
		v := api.StreamView{Agent: id, Lists: []api.ListSnapshot{}, Conversations: []api.ConversationView{}}
		for _, lid := range ag.Lists {
			if l := s.Lists[lid]; l != nil {
				v.Lists = append(v.Lists, s.listSnapshot(l))
			}
		}
		for _, rid := range ag.Conversations {
			if r := s.Requests[rid]; r != nil {
				v.Conversations = append(v.Conversations, r.view())
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
	const p = "connector:"
	if len(key) <= len(p) || key[:len(p)] != p {
		return api.StreamView{}, false
	}
	cn := s.Connectors[key[len(p):]]
	if cn == nil {
		return api.StreamView{}, false
	}
	v := api.StreamView{Connector: cn.ID, Lists: []api.ListSnapshot{}, Conversations: []api.ConversationView{}}
	var ids []string
	for _, chID := range cn.Channels {
		ids = s.openOn(chID, ids)
	}
	slices.SortFunc(ids, compareRequestIDs)
	for _, rid := range ids {
		v.Conversations = append(v.Conversations, s.Requests[rid].view())
	}
	return v, true
}

func (r *Request) view() api.ConversationView {
	return api.ConversationView{Request: r.summary(), Transcript: slices.Clone(r.Transcript), AgentRequestedAt: r.AgentRequestedAt}
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

// Summary returns the request's list-view summary.
func (r *Request) Summary() api.RequestSummary { return r.summary() }

// ListSnapshot returns the list's current requests, oldest first.
func (s *State) ListSnapshot(l *List) api.ListSnapshot { return s.listSnapshot(l) }
