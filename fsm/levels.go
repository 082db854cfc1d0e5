package fsm

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/switchboard/switchboard/api"
)

// Feature levels gate changes to the state machine, so that a cluster
// running two builds during a rolling upgrade applies every entry the same
// way on every node. The replicated state holds the cluster's active level;
// the leader raises it (set_feature_level) only once every voter runs a
// build that supports the new level. Until then:
//
//   - an op introduced at a higher level is refused with
//     CodeFeatureNotEnabled, on every node alike (OpInfo.Level);
//   - an argument field introduced at a higher level (struct tag
//     `level:"N"` on the argument type) is refused the same way when it is
//     set;
//   - a behaviour introduced at a higher level keeps its old form
//     (State.ActiveLevel checks in the apply functions).
//
// A node that meets an entry above the level its build supports (an op it
// does not know, or set_feature_level past MaxLevel) cannot apply it
// faithfully and must stop rather than answer differently from its peers:
// the Raft adapter checks CanApply before Apply.
//
// The levels:
const (
	// Level1 is the state machine as it was before feature levels.
	Level1 uint32 = 1
	// Level2 adds the cap on idempotency sessions (MaxSessions), the
	// list.unsubscribed events of delete_list, delete_connector,
	// offer_timeout refused before the offer's expiry, the bound on
	// agents' and connectors' noop pad (api.MaxNoopPadBytes), list
	// subscribers told when the customer writes to an UNREAD or INACTIVE
	// request (request.updated with unread and latest), a subscribed agent
	// closing such a request from the list without joining,
	// transfer_to_queue offering the request to the others first,
	// aging in queues (create_queue's aging_step_ms and aging_cap),
	// service levels (create_list's and create_queue's sla_ms and
	// sla_warn_pct, set_service_level, the system ops sla_warning and
	// sla_breach refused before their deadline, a request's SLA state met
	// when an agent gets into it, request.sla), and INACTIVE reminders and
	// auto-close (create_list's remind_inactive_ms and close_inactive_ms,
	// the system ops remind_inactive and close_inactive refused before
	// theirs, request.reminder): see sla.go.
	Level2 uint32 = 2
	// Level3 adds the supervisor principal (create_supervisor,
	// delete_supervisor, supervisors acting on requests and agents in
	// their scope, the supervisor event stream): see supervisors.go. It
	// replicates agent presence (agent_present, login stamping a presence
	// value, logout_absent refused once the agent attached or logged in
	// since a node found it absent): see presence.go. It keeps a small
	// idempotency record per result instead of the whole result (at most
	// api.MaxRecordBytes: small results whole, a rejection with its message
	// cut short, api.Applied for views), and caps each principal's client
	// sessions and records (api.MaxClientIDsPerPrincipal,
	// api.MaxRecordsPerPrincipal), evicting its own least recently used:
	// see sessions.go. It
	// adds list access (create_list's access, grant_list, revoke_list,
	// set_list_access: on a restricted list only granted agents may be
	// subscribed, or be transferred or invited into its conversations):
	// see list_access.go. It bounds what views carry (views.go,
	// view_size.go): a subscribe's list view, as result and as
	// list.subscribed, is a first page with its total; summaries' preview
	// and latest are cut to api.MaxPreviewBytes; a conversation holds at
	// most api.MaxParticipants agents, an agent at most api.MaxAgentLists
	// lists and api.MaxAgentOffers pending offers before a transfer or an
	// invitation to it. Other changes of this release add themselves
	// here.
	Level3 uint32 = 3

	// MaxLevel is the highest level this build can apply.
	MaxLevel = Level3
)

// ActiveLevel is the cluster's active feature level.
func (s *State) ActiveLevel() uint32 {
	if s.Level < Level1 {
		return Level1
	}
	return s.Level
}

// levelledField is an argument field introduced after its op.
type levelledField struct {
	index int
	name  string
	level uint32
}

// levelledFields lists the fields of args type t tagged `level:"N"`. A bad
// tag is a programming error caught at start-up.
func levelledFields(t reflect.Type, op string) []levelledField {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []levelledField
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("level")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(tag, 10, 32)
		if err != nil || n < uint64(Level1) || n > uint64(MaxLevel) {
			panic(fmt.Sprintf("fsm: %s.%s: level tag %q outside 1..%d", op, f.Name, tag, MaxLevel))
		}
		out = append(out, levelledField{index: i, name: f.Name, level: uint32(n)})
	}
	return out
}

// checkLevel refuses the op, or a set field of its arguments, introduced
// above the active level.
func (i *OpInfo) checkLevel(args any, active uint32) *api.Error {
	if i.Level > active {
		return api.Errorf(api.CodeFeatureNotEnabled, "%s needs feature level %d; the cluster is at %d", i.Name, i.Level, active)
	}
	if len(i.fields) == 0 {
		return nil
	}
	v := reflect.ValueOf(args)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	for _, f := range i.fields {
		if f.level > active && !v.Field(f.index).IsZero() {
			return api.Errorf(api.CodeFeatureNotEnabled, "%s: argument %s needs feature level %d; the cluster is at %d", i.Name, f.name, f.level, active)
		}
	}
	return nil
}

// CanApply reports whether a build that supports feature levels up to
// maxLevel applies c exactly as its peers do. It does not when c's op is
// unknown or introduced above maxLevel, or when c raises the level above
// maxLevel. The returned error says which upgrade the node needs.
func CanApply(c *Command, maxLevel uint32) error {
	info := Commands.Lookup(c.Op)
	if info == nil {
		return fmt.Errorf("op %d is unknown to this build: the entry comes from a newer Switchboard; upgrade this node", c.Op)
	}
	if info.Level > maxLevel {
		return fmt.Errorf("op %s is at feature level %d, above the %d this node allows: upgrade this node", info.Name, info.Level, maxLevel)
	}
	if a, ok := c.Args.(*api.FeatureLevelArgs); ok && a.Level > maxLevel {
		return fmt.Errorf("the cluster raises its feature level to %d, above the %d this node supports: upgrade this node", a.Level, maxLevel)
	}
	return nil
}

func registerLevels(r *Registry) {
	register(r, OpSetFeatureLevel, api.OpSetFeatureLevel, Level1, roles(api.RoleSystem), applySetFeatureLevel)
}

// applySetFeatureLevel raises the active level. The leader proposes it
// only once every voter supports the level; a node whose build does not
// stops before applying it (CanApply). Levels never go down.
func applySetFeatureLevel(s *State, _ *Command, a *api.FeatureLevelArgs, _ *events) (any, *api.Error) {
	if a.Level > MaxLevel {
		return nil, api.Errorf(api.CodeBadRequest, "feature level %d is above this build's %d", a.Level, MaxLevel)
	}
	if a.Level <= s.ActiveLevel() {
		return api.FeatureLevelArgs{Level: s.ActiveLevel()}, nil
	}
	s.Level = a.Level
	return api.FeatureLevelArgs{Level: s.Level}, nil
}
