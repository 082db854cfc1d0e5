package fsm

import (
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
		{"op 0", func(r *Registry) { register(r, OpUnknown, "zero", roles(api.RoleAdmin), noop) }},
		{"same op twice", func(r *Registry) { register(r, 1, "other", roles(api.RoleAdmin), noop) }},
		{"same name twice", func(r *Registry) { register(r, 2, "one", roles(api.RoleAdmin), noop) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Registry{byName: map[string]*OpInfo{}}
			register(r, 1, "one", roles(api.RoleAdmin), noop)
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", tc.name)
				}
			}()
			tc.fn(r)
		})
	}
}
