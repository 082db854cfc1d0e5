package fsm

import (
	"cmp"

	"slices"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/switchboard/switchboard/api"
)

// Result is the outcome of one command: Err is nil on success, and Data holds
// the op's result value.
type Result struct {
	Err  *api.Error `msgpack:"err,omitempty"`
	Data any        `msgpack:"data,omitempty"`
}

// DecodeMsgpack decodes a result as a snapshot stores it. Its Data keeps
// the raw msgpack it was written as: the Go type it had is not recorded,
// and decoding it into generic values would change its encoding (a small
// int read back as int8 is written wider), so a restored replica's next
// snapshot would differ from its peers'. A retried command answered from
// a restored record sends those bytes as they were.
func (r *Result) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 {
		*r = Result{}
		return err
	}
	*r = Result{}
	for range n {
		key, err := d.DecodeString()
		if err != nil {
			return err
		}
		switch key {
		case "err":
			if err := d.Decode(&r.Err); err != nil {
				return err
			}
		case "data":
			raw, err := d.DecodeRaw()
			if err != nil {
				return err
			}
			if len(raw) != 1 || raw[0] != msgpcode.Nil {
				r.Data = raw
			}
		default:
			if err := d.Skip(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Idempotency window: how many recent results a client session keeps, and
// how long a silent client's session lives (leader time).
const (
	SessionWindow     = api.SessionWindow
	SessionTTL        = int64(60 * 60 * 1e9)
	sessionSweepEvery = int64(60 * 1e9)
	// MaxSessions bounds the client sessions kept, whatever their age: a
	// client that opened a new client id per command would otherwise grow
	// the state for a whole SessionTTL. Past it, the least recently seen
	// tenth is dropped (their retries then apply as new commands). From
	// level 3 each principal is held to MaxClientIDsPerPrincipal sessions
	// first (sessions.go), so this is the last line, which no principal
	// reaches alone.
	MaxSessions = 65536
	// MaxClosedKept bounds how many closed requests stay queryable.
	MaxClosedKept = 10000
)

// ClientSession remembers a client's recent results for idempotent
// retries: whole below level 3, as small records from level 3 on (record,
// sessions.go).
type ClientSession struct {
	MaxSeq   uint64            `msgpack:"max_seq"`
	Results  map[uint64]Result `msgpack:"results"`
	LastSeen int64             `msgpack:"last_seen"`
}

// State is the whole replicated state. It has no pointer to anything outside
// itself; only Apply and Restore change it.
type State struct {
	MRDs         map[string]*api.MRD         `msgpack:"mrds"`
	ChannelTypes map[string]*api.ChannelType `msgpack:"channel_types"`
	Channels     map[string]*api.Channel     `msgpack:"channels"`
	Lists        map[string]*List            `msgpack:"lists"`
	Queues       map[string]*api.Queue       `msgpack:"queues"`
	Agents       map[string]*Agent           `msgpack:"agents"`
	Connectors   map[string]*Connector       `msgpack:"connectors"`
	Requests     map[string]*Request         `msgpack:"requests"`
	// Open holds each customer's open request on each channel, by
	// channel (open_index.go); a snapshot holds it as a flat map of
	// channel+"\x00"+customer id to request id. Write it only through
	// setOpen and deleteOpen.
	Open OpenRequests `msgpack:"open"`
	// ClosedOrder holds closed request ids, oldest first, for eviction.
	ClosedOrder []string `msgpack:"closed_order"`
	// Sessions are the idempotency sessions, by sessionKey. Add and drop
	// them only through addSession and dropSession (sessions.go), which
	// keep principals in step.
	Sessions map[string]*ClientSession `msgpack:"sessions"`
	// principals indexes Sessions by principal, with their record counts
	// (sessions.go). Derived, unexported: not in snapshots.
	principals map[string]*principalUse

	NextRequest uint64 `msgpack:"next_request"`

	// Supervisors by id (supervisors.go; level 3); nil when there are none.
	Supervisors map[string]*Supervisor `msgpack:"supervisors,omitempty"`

	// Nodes is the cluster's node registry (apply_nodes.go), by node id.
	Nodes map[string]*NodeInfo `msgpack:"nodes,omitempty"`

	// Index is the Raft log index of the last entry applied (set by FSM).
	Index uint64 `msgpack:"index"`
	// Now is the latest command time seen (monotonic: never goes back).
	Now       int64 `msgpack:"now"`
	LastSweep int64 `msgpack:"last_sweep"`
	// PullPolicy orders requests across queues (routing.go); "" is
	// PolicyStrictPriority. NextOffer numbers offers.
	PullPolicy api.PullPolicy `msgpack:"pull_policy,omitempty"`
	NextOffer  uint64         `msgpack:"next_offer,omitempty"`
	// Level is the cluster's active feature level (levels.go); 0, in a
	// state written before levels existed, is Level1.
	Level uint32 `msgpack:"level,omitempty"`
	// NextPresence numbers agents' presence values (presence.go).
	NextPresence uint64 `msgpack:"next_presence,omitempty"`
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		MRDs:         map[string]*api.MRD{},
		ChannelTypes: map[string]*api.ChannelType{},
		Channels:     map[string]*api.Channel{},
		Lists:        map[string]*List{},
		Queues:       map[string]*api.Queue{},
		Agents:       map[string]*Agent{},
		Connectors:   map[string]*Connector{},
		Requests:     map[string]*Request{},
		Open:         OpenRequests{byChannel: map[string]map[string]string{}},
		Sessions:     map[string]*ClientSession{},
		principals:   map[string]*principalUse{},
	}
}

// Apply validates and applies one command, returning its result and the
// events it caused. A rejected command changes nothing (beyond recording its
// result for idempotent retry) and causes no events.
func (s *State) Apply(c *Command) (Result, []Event) {
	if c.Time > s.Now {
		s.Now = c.Time
	}
	s.sweepSessions()
	info := Commands.Lookup(c.Op)
	if info == nil {
		return Result{Err: api.Errorf(api.CodeUnknownOp, "unknown op %d", c.Op)}, nil
	}
	if !info.Allowed(c.By.Role) {
		return Result{Err: api.Errorf(api.CodeForbidden, "%s may not %s", c.By.Role, info.Name)}, nil
	}
	if err := info.checkLevel(c.Args, s.ActiveLevel()); err != nil {
		return Result{Err: err}, nil
	}
	if c.By.Role == api.RoleSupervisor {
		// Supervisors exist from level 3 on; one that does not exist
		// (deleted, or never created) sends nothing.
		if _, err := s.acting(c); err != nil {
			return Result{Err: err}, nil
		}
	}
	var (
		sess *ClientSession
		key  string
		use  *principalUse // sess's principal's (sessions.go)
	)
	if c.Seq != 0 && c.ClientID != "" {
		key = sessionKey(c)
		sess = s.Sessions[key]
		if sess == nil {
			sess = &ClientSession{Results: map[uint64]Result{}}
			s.addSession(key, sess)
		}
		sess.LastSeen = s.Now
		use = s.principalUseOf(key)
		if s.ActiveLevel() >= Level3 {
			s.capPrincipal(key, use)
		}
		if len(s.Sessions) > MaxSessions && s.ActiveLevel() >= Level2 {
			s.trimSessions(key)
		}
		if r, ok := sess.Results[c.Seq]; ok {
			return r, nil
		}
		if sess.MaxSeq >= SessionWindow && c.Seq <= sess.MaxSeq-SessionWindow {
			return Result{Err: api.Errorf(api.CodeStaleSequence, "sequence %d is older than the idempotency window (latest %d)", c.Seq, sess.MaxSeq)}, nil
		}
	}
	ev := events{keepAll: len(s.Supervisors) > 0}
	data, err := info.apply(s, c, &ev)
	res := Result{Err: err, Data: data}
	if err != nil {
		ev.list = nil
	} else if ev.keepAll {
		s.superviseEvents(&ev)
	}
	if sess != nil {
		had := len(sess.Results)
		if s.ActiveLevel() >= Level3 {
			sess.Results[c.Seq] = s.record(res)
		} else {
			sess.Results[c.Seq] = res
		}
		if c.Seq > sess.MaxSeq {
			sess.MaxSeq = c.Seq
		}
		if c.Seq > SessionWindow {
			delete(sess.Results, c.Seq-SessionWindow)
		}
		if len(sess.Results) > 2*SessionWindow {
			// Sequences with gaps: drop everything outside the window.
			for seq := range sess.Results {
				if seq+SessionWindow <= sess.MaxSeq {
					delete(sess.Results, seq)
				}
			}
		}
		use.records += len(sess.Results) - had
		if s.ActiveLevel() >= Level3 {
			s.capPrincipal(key, use)
		}
	}
	return res, ev.list
}

func sessionKey(c *Command) string {
	return c.By.Role.String() + ":" + c.By.ID + "/" + c.ClientID
}

// sweepSessions drops client sessions silent for longer than SessionTTL,
// at most once a minute of leader time. Deletion order does not matter, so
// map iteration order cannot leak into the state.
func (s *State) sweepSessions() {
	if s.Now-s.LastSweep < sessionSweepEvery {
		return
	}
	s.LastSweep = s.Now
	for k, sess := range s.Sessions {
		if s.Now-sess.LastSeen > SessionTTL {
			s.dropSession(k)
		}
	}
}

// trimSessions drops the least recently seen sessions (ties: the smaller
// key first, so map order cannot leak into the state) down to nine tenths
// of MaxSessions, never keep's. It runs once per MaxSessions/10 new
// sessions at most, so its sort is cheap per command.
func (s *State) trimSessions(keep string) {
	type aged struct {
		key  string
		seen int64
	}
	all := make([]aged, 0, len(s.Sessions))
	for k, sess := range s.Sessions {
		if k != keep {
			all = append(all, aged{k, sess.LastSeen})
		}
	}
	slices.SortFunc(all, func(a, b aged) int {
		if c := cmp.Compare(a.seen, b.seen); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for _, a := range all[:len(s.Sessions)-MaxSessions*9/10] {
		s.dropSession(a.key)
	}
}

func (s *State) newRequestID() string {
	s.NextRequest++
	return "R" + strconv.FormatUint(s.NextRequest, 10)
}
