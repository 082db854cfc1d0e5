package fsm

import (
	"fmt"
	"reflect"

	"github.com/switchboard/switchboard/api"
)

// Op is a command type. Its number is the type byte in the Raft log and must
// never be reused; its name is the wire operation name.
type Op uint8

// OpUnknown is reserved: it is never a valid command.
const OpUnknown Op = 0

// Command is one client command as it travels through the Raft log.
type Command struct {
	Op Op
	// By is the authenticated principal, filled in by the node.
	By api.Principal
	// ClientID and Seq make the command idempotent: a retried command with
	// the same (By, ClientID, Seq) returns the original result without
	// applying twice. Seq 0 disables deduplication.
	ClientID string
	Seq      uint64
	// Time is the proposer's clock in unix nanoseconds. Apply reads no
	// other clock.
	Time int64
	// Args points to the op's argument struct (see OpInfo.NewArgs).
	Args any
}

// roleMask says which roles may send an op.
type roleMask uint8

func roles(rs ...api.Role) roleMask {
	var m roleMask
	for _, r := range rs {
		m |= 1 << r
	}
	return m
}

func (m roleMask) has(r api.Role) bool { return m&(1<<r) != 0 }

// OpInfo describes a registered command type.
type OpInfo struct {
	Op   Op
	Name string
	// Args is the type of the op's argument struct.
	Args reflect.Type
	// Level is the feature level from which the op exists (levels.go):
	// below it the op is refused with CodeFeatureNotEnabled.
	Level uint32
	// Roles that may send it.
	allowed roleMask
	// fields are the argument fields introduced after Level.
	fields []levelledField
	apply  func(s *State, c *Command, out *events) (any, *api.Error)
	// dec is the decoding plan of Args, nil if msgpack decodes them.
	dec *argDecPlan
}

// Allowed reports whether role r may send this op.
func (i *OpInfo) Allowed(r api.Role) bool { return i.allowed.has(r) }

// NewArgs returns a pointer to a fresh, zero argument struct for the op.
func (i *OpInfo) NewArgs() any { return reflect.New(i.Args).Interface() }

// Registry is the command table: one apply function per op, registered once.
type Registry struct {
	byOp   [256]*OpInfo
	byName map[string]*OpInfo
}

// register adds op to the table. Registering an op or name twice panics: it
// is a programming error caught at start-up.
func register[A any](r *Registry, op Op, name string, level uint32, allowed roleMask, fn func(*State, *Command, *A, *events) (any, *api.Error)) {
	if op == OpUnknown {
		panic("fsm: op 0 is reserved")
	}
	if r.byOp[op] != nil {
		panic(fmt.Sprintf("fsm: op %d registered twice", op))
	}
	if _, dup := r.byName[name]; dup {
		panic(fmt.Sprintf("fsm: op name %q registered twice", name))
	}
	if level < Level1 || level > MaxLevel {
		panic(fmt.Sprintf("fsm: op %q at level %d, outside 1..%d", name, level, MaxLevel))
	}
	info := &OpInfo{
		Op:      op,
		Name:    name,
		Level:   level,
		Args:    reflect.TypeFor[A](),
		allowed: allowed,
		fields:  levelledFields(reflect.TypeFor[A](), name),
		apply: func(s *State, c *Command, out *events) (any, *api.Error) {
			a, ok := c.Args.(*A)
			if !ok || a == nil {
				return nil, api.Errorf(api.CodeBadRequest, "%s: arguments of type %T", name, c.Args)
			}
			return fn(s, c, a, out)
		},
	}
	info.dec = argDecPlanFor(info.Args)
	r.byOp[op] = info
	r.byName[name] = info
}

// Lookup returns the op's info, or nil.
func (r *Registry) Lookup(op Op) *OpInfo { return r.byOp[op] }

// LookupName returns the info of the op with this wire name, or nil.
func (r *Registry) LookupName(name string) *OpInfo { return r.byName[name] }

// Ops returns every registered op in numeric order.
func (r *Registry) Ops() []*OpInfo {
	var out []*OpInfo
	for _, i := range r.byOp {
		if i != nil {
			out = append(out, i)
		}
	}
	return out
}

// DecodeArgs decodes msgpack-encoded arguments for op name into its struct,
// exactly as msgpack.Unmarshal does (codec_decode.go).
// An empty raw value decodes to the zero struct.
func (r *Registry) DecodeArgs(name string, raw []byte) (*OpInfo, any, *api.Error) {
	info := r.byName[name]
	if info == nil {
		return nil, nil, api.Errorf(api.CodeUnknownOp, "unknown op %q", name)
	}
	args := info.NewArgs()
	if len(raw) > 0 {
		var err error
		if args, err = decodeArgsValue(raw, info, args); err != nil {
			return info, nil, api.Errorf(api.CodeBadRequest, "%s: arguments: %v", name, err)
		}
	}
	return info, args, nil
}

// NewCommand makes the command a principal sends as a write op with raw
// msgpack arguments: it bounds their size (api.MaxWriteArgsBytes), decodes
// them (CodeUnknownOp, CodeBadRequest) and
// checks that by's role may send op (CodeForbidden). Time is left for the
// proposer to stamp.
func (r *Registry) NewCommand(by api.Principal, clientID string, seq uint64, op string, rawArgs []byte) (*Command, *api.Error) {
	if len(rawArgs) > api.MaxWriteArgsBytes {
		return nil, api.Errorf(api.CodeBadRequest, "%s: arguments of %d bytes, above the %d a write may carry", op, len(rawArgs), api.MaxWriteArgsBytes)
	}
	info, args, err := r.DecodeArgs(op, rawArgs)
	if err != nil {
		return nil, err
	}
	if !info.Allowed(by.Role) {
		return nil, api.Errorf(api.CodeForbidden, "%s may not %s", by.Role, op)
	}
	return &Command{Op: info.Op, By: by, ClientID: clientID, Seq: seq, Args: args}, nil
}

// Commands is the registry of every command this version knows. It is built
// once and never changed afterwards.
var Commands = newRegistry()

func newRegistry() *Registry {
	r := &Registry{byName: map[string]*OpInfo{}}
	registerAdmin(r)
	registerPull(r)
	registerNodes(r)
	registerPush(r)
	registerLevels(r)
	registerSLA(r)
	registerSupervisors(r)
	registerPresence(r)
	registerListAccess(r)
	return r
}
