package fsm

import (
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/api"
)

// Registering op 0, an op twice or a name twice is a programming error and
// panics at start-up.
func TestRegisterPanicsOnMisuse(t *testing.T) {
	noop := func(*State, *Command, *api.NoopArgs, *events) (any, *api.Error) { return nil, nil }
	for _, tc := range []struct {
		name string
		fn   func(r *Registry)
	}{
		{"op 0", func(r *Registry) { register(r, OpUnknown, "zero", Level1, roles(api.RoleAdmin), noop) }},
		{"same op twice", func(r *Registry) { register(r, 1, "other", Level1, roles(api.RoleAdmin), noop) }},
		{"same name twice", func(r *Registry) { register(r, 2, "one", Level1, roles(api.RoleAdmin), noop) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Registry{byName: map[string]*OpInfo{}}
			register(r, 1, "one", Level1, roles(api.RoleAdmin), noop)
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", tc.name)
				}
			}()
			tc.fn(r)
		})
	}
}

// The command table and api's list of write ops name the same ops: the
// transport routes a req by api.IsWrite, so an op registered here but not
// listed there would be sent to the query path, and the reverse would be
// answered unknown_op by a node that should know it.
func TestRegistryMatchesAPIWriteOps(t *testing.T) {
	var names []string
	for _, info := range Commands.Ops() {
		names = append(names, info.Name)
		if !api.IsWrite(info.Name) {
			t.Errorf("op %q is registered but api.IsWrite says it is not a write", info.Name)
		}
	}
	for _, op := range api.WriteOps() {
		if Commands.LookupName(op) == nil {
			t.Errorf("api lists write op %q that fsm does not register", op)
		}
		if IsQuery(op) {
			t.Errorf("write op %q is also a query", op)
		}
	}
	if len(names) != len(api.WriteOps()) {
		t.Errorf("%d ops registered, api lists %d", len(names), len(api.WriteOps()))
	}
}

// An argument field tagged with a level above the active one is refused
// when set, and ignored when empty.
func TestLevelledFieldRefused(t *testing.T) {
	type probeArgs struct {
		Old string `msgpack:"old"`
		New string `msgpack:"new" level:"2"`
	}
	r := &Registry{byName: map[string]*OpInfo{}}
	register(r, 200, "probe", Level1, roles(api.RoleAdmin), func(*State, *Command, *probeArgs, *events) (any, *api.Error) { return nil, nil })
	info := r.LookupName("probe")
	for _, tc := range []struct {
		args   probeArgs
		active uint32
		code   api.Code
	}{
		{probeArgs{Old: "x"}, Level1, api.CodeOK},
		{probeArgs{Old: "x", New: "y"}, Level1, api.CodeFeatureNotEnabled},
		{probeArgs{Old: "x", New: "y"}, Level2, api.CodeOK},
	} {
		if got := api.CodeOf(info.checkLevel(&tc.args, tc.active)); got != tc.code {
			t.Errorf("%+v at level %d: %v, want %v", tc.args, tc.active, got, tc.code)
		}
	}
	for _, bad := range []string{"0", "x", "99"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("level tag %q did not panic", bad)
				}
			}()
			levelledFields(reflect.StructOf([]reflect.StructField{{Name: "F", Type: reflect.TypeFor[string](), Tag: reflect.StructTag(`level:"` + bad + `"`)}}), "bad")
		}()
	}
}
