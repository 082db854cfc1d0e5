package fsm

import "slices"

// ConversationView is a conversation with its recent transcript.
type ConversationView struct {
	Request    RequestSummary `msgpack:"request"`
	Transcript []Message      `msgpack:"transcript"`
}

// StreamView is everything a stream's owner needs to rebuild its screen: for
// an agent, its lists with their requests and its conversations; for a
// connector, the open conversations of its channels. It is the payload of
// the "sync" event.
type StreamView struct {
	Agent         string             `msgpack:"agent,omitempty"`
	Connector     string             `msgpack:"connector,omitempty"`
	Lists         []ListSnapshot     `msgpack:"lists"`
	Conversations []ConversationView `msgpack:"conversations"`
	// Push is an agent's routing status and pending offers; nil for a
	// connector and for an agent that has never touched push routing.
	Push *AgentPushView `msgpack:"push,omitempty"`
}

// EvSync is the kind of the event that carries a StreamView: sent on a fresh
// connection, when a resume cursor is older than the node's history, and
// after a snapshot restore.
const EvSync EventKind = "sync"

// View returns the stream view for recipient key (AgentKey or ConnectorKey),
// and false if the key names nobody.
func (s *State) View(key string) (StreamView, bool) {
	if id := agentIDOf(key); id != "" {
		ag := s.Agents[id]
		if ag == nil {
			return StreamView{}, false
		}
		v := StreamView{Agent: id, Lists: []ListSnapshot{}, Conversations: []ConversationView{}}
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
	const p = "connector:"
	if len(key) <= len(p) || key[:len(p)] != p {
		return StreamView{}, false
	}
	cn := s.Connectors[key[len(p):]]
	if cn == nil {
		return StreamView{}, false
	}
	v := StreamView{Connector: cn.ID, Lists: []ListSnapshot{}, Conversations: []ConversationView{}}
	var ids []string
	for _, chID := range cn.Channels {
		for k, rid := range s.Open {
			if len(k) > len(chID) && k[:len(chID)] == chID && k[len(chID)] == 0 {
				ids = append(ids, rid)
			}
		}
	}
	slices.SortFunc(ids, compareRequestIDs)
	for _, rid := range ids {
		v.Conversations = append(v.Conversations, s.Requests[rid].view())
	}
	return v, true
}

func (r *Request) view() ConversationView {
	return ConversationView{Request: r.summary(), Transcript: slices.Clone(r.Transcript)}
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
func (r *Request) Summary() RequestSummary { return r.summary() }

// ListSnapshot returns the list's current requests, oldest first.
func (s *State) ListSnapshot(l *List) ListSnapshot { return s.listSnapshot(l) }
