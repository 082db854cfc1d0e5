package fsm

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/switchboard/switchboard/api"
)

// Idempotency records and the per-principal caps (feature level 3).
//
// Below level 3 a client session keeps each result whole: a subscribe's
// list view, a join's transcript, an agent's status, in the replicated
// state and every snapshot, for as long as the session keeps the seq
// (128 subscribes from one client id to a busy list grew a snapshot from
// 0.8 to 54 MiB). From level 3 it keeps a record of at most
// api.MaxRecordBytes encoded (record): the result itself when it is small
// by construction, else an api.Applied that says where the write applied.
//
// Below level 3 one principal may also hold any number of sessions, up to
// the global MaxSessions, whose trim then drops every principal's least
// recently used: one agent minting client ids could flush everyone's
// records. From level 3 each principal keeps at most
// api.MaxClientIDsPerPrincipal sessions and api.MaxRecordsPerPrincipal
// records (capPrincipal), losing its own least recently used session past
// either; MaxSessions stays as the last line, which no principal reaches
// alone.

// Per-principal caps, re-exported beside MaxSessions.
const (
	MaxClientIDsPerPrincipal = api.MaxClientIDsPerPrincipal
	MaxRecordsPerPrincipal   = api.MaxRecordsPerPrincipal
	MaxRecordBytes           = api.MaxRecordBytes
)

// maxRecordIDBytes bounds the ids an api.Applied names together, so that
// the record stays within MaxRecordBytes whatever the ids (its fixed part
// and the ids' keys take under 70 bytes). Ids are at most api.MaxIDBytes
// and a record names one, or a request and an offer with short generated
// ids, so this never drops one in practice.
const maxRecordIDBytes = 160

// principalUse indexes one principal's sessions: derived from Sessions,
// unexported, not in snapshots (indexSessions rebuilds it).
type principalUse struct {
	sessions map[string]*ClientSession // by session key
	records  int                       // len(Results) summed over them
}

// principalOf is the principal part of a session key (sessionKey): agent
// and connector ids hold no '/' (checkID), so the first one ends it. It
// is a function of the key alone, so every replica groups sessions alike.
func principalOf(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return key
}

// indexSessions rebuilds the per-principal index from Sessions.
func (s *State) indexSessions() {
	s.principals = make(map[string]*principalUse)
	for k, sess := range s.Sessions {
		s.indexSession(k, sess)
	}
}

func (s *State) indexSession(key string, sess *ClientSession) {
	p := principalOf(key)
	u := s.principals[p]
	if u == nil {
		u = &principalUse{sessions: map[string]*ClientSession{}}
		s.principals[p] = u
	}
	u.sessions[key] = sess
	u.records += len(sess.Results)
}

// principalUseOf returns the index entry of the principal of key, whose
// session exists, (re)building the index first if it lacks the entry: a
// state made without NewState or ReadState has none.
func (s *State) principalUseOf(key string) *principalUse {
	if u := s.principals[principalOf(key)]; u != nil {
		return u
	}
	s.indexSessions()
	return s.principals[principalOf(key)]
}

// addSession adds a new session under key.
func (s *State) addSession(key string, sess *ClientSession) {
	if s.principals == nil {
		s.indexSessions()
	}
	s.Sessions[key] = sess
	s.indexSession(key, sess)
}

// dropSession forgets the session under key.
func (s *State) dropSession(key string) {
	sess, ok := s.Sessions[key]
	if !ok {
		return
	}
	delete(s.Sessions, key)
	if s.principals == nil {
		return
	}
	p := principalOf(key)
	if u := s.principals[p]; u != nil {
		delete(u.sessions, key)
		u.records -= len(sess.Results)
		if len(u.sessions) == 0 {
			delete(s.principals, p)
		}
	}
}

// capPrincipal holds key's principal, whose index entry is u, to its caps
// (level 3): while it has
// more than MaxClientIDsPerPrincipal sessions or MaxRecordsPerPrincipal
// records, its least recently seen session other than key's is forgotten
// (ties: the smaller key first, so map order cannot leak into the state).
// One session holds at most 2*SessionWindow records, so key's own always
// fits.
func (s *State) capPrincipal(key string, u *principalUse) {
	if len(u.sessions) <= MaxClientIDsPerPrincipal && u.records <= MaxRecordsPerPrincipal {
		return
	}
	type aged struct {
		key  string
		seen int64
		n    int
	}
	all := make([]aged, 0, len(u.sessions))
	for k, sess := range u.sessions {
		if k != key {
			all = append(all, aged{k, sess.LastSeen, len(sess.Results)})
		}
	}
	slices.SortFunc(all, func(a, b aged) int {
		if c := cmp.Compare(a.seen, b.seen); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	sessions, records := len(u.sessions), u.records
	for _, a := range all {
		if sessions <= MaxClientIDsPerPrincipal && records <= MaxRecordsPerPrincipal {
			break
		}
		s.dropSession(a.key)
		sessions--
		records -= a.n
	}
}

// record is what a client session keeps of res from level 3 on, at most
// MaxRecordBytes encoded. The choice depends on the result's type alone
// (and ids' lengths, which apply bounds), so every replica keeps the
// same:
//   - a rejection: its code, the message cut to api.MaxRecordErrBytes;
//   - no result, {id}, customer_message's and request_agent's results,
//     request_chat's {pending: true}, the nodes' and levels' results:
//     the result itself;
//   - a view (subscribe's list, join's and accept_offer's conversation,
//     an agent's status, an offer) or anything else: an api.Applied
//     with the entry's index and the ids the write was about.
func (s *State) record(res Result) Result {
	if res.Err != nil {
		return Result{Err: shortError(res.Err)}
	}
	a := api.Applied{Retry: true, Index: s.Index}
	switch d := res.Data.(type) {
	case nil:
		return res
	case api.Created:
		if len(d.ID) <= api.MaxIDBytes {
			return res
		}
	case api.CustomerMessageResult:
		if len(d.Request)+len(d.State) <= api.MaxIDBytes {
			return res
		}
	case api.RequestAgentResult:
		if len(d.Request)+len(d.State) <= api.MaxIDBytes {
			return res
		}
	case RegisterNodeResult, api.FeatureLevelArgs:
		return res
	case api.RequestChatResult:
		if d.Offer == nil {
			return res
		}
		a.Request, a.Offer = d.Offer.Request.ID, d.Offer.ID
	case api.ListSnapshot:
		a.List = d.List
	case api.JoinResult:
		a.Request = d.Request.ID
	case api.AgentStatus:
		a.Agent = d.Agent
	case api.OfferInfo:
		a.Request, a.Offer = d.Request.ID, d.ID
	}
	if len(a.List)+len(a.Agent)+len(a.Request)+len(a.Offer) > maxRecordIDBytes {
		a.List, a.Agent, a.Request, a.Offer = "", "", "", ""
	}
	return Result{Data: a}
}

// shortError returns e, or a copy with its message cut to
// api.MaxRecordErrBytes (at a character boundary) and marked with "…".
func shortError(e *api.Error) *api.Error {
	if len(e.Msg) <= api.MaxRecordErrBytes {
		return e
	}
	i := api.MaxRecordErrBytes - len("…")
	for i > 0 && !utf8.RuneStart(e.Msg[i]) {
		i--
	}
	return &api.Error{Code: e.Code, Msg: e.Msg[:i] + "…"}
}
