package fsm_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

func TestCodeOf(t *testing.T) {
	var nilErr *api.Error
	cases := []struct {
		name string
		err  error
		want api.Code
	}{
		{"nil", nil, api.CodeOK},
		{"nil *Error (a success's Result.Err)", nilErr, api.CodeOK},
		{"*Error", api.Errorf(api.CodeClosed, "closed"), api.CodeClosed},
		{"wrapped *Error", fmt.Errorf("apply: %w", api.Errorf(api.CodeNotFound, "x")), api.CodeNotFound},
		{"plain error", errors.New("boom"), api.CodeInternal},
	}
	for _, tc := range cases {
		if got := api.CodeOf(tc.err); got != tc.want {
			t.Errorf("%s: CodeOf = %s, want %s", tc.name, got, tc.want)
		}
	}
	res := Result{}
	if api.CodeOf(res.Err) != api.CodeOK {
		t.Error("CodeOf of a successful Result.Err is not ok")
	}
}

func TestErrorIsMatchesCode(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", api.Errorf(api.CodeOverCapacity, "agent A1 is full"))
	if !errors.Is(err, &api.Error{Code: api.CodeOverCapacity}) {
		t.Error("errors.Is does not match the same code")
	}
	if errors.Is(err, &api.Error{Code: api.CodeClosed}) {
		t.Error("errors.Is matches another code")
	}
	if got := api.Errorf(api.CodeNotFound, "list %q", "L9").Error(); got != `not_found: list "L9"` {
		t.Errorf("Error() = %q", got)
	}
}

func TestCodeNames(t *testing.T) {
	codes := api.Codes()
	if !slices.IsSorted(codes) || len(codes) == 0 || codes[0] != api.CodeOK {
		t.Fatalf("Codes() = %v", codes)
	}
	seen := map[string]api.Code{}
	for _, c := range codes {
		name := c.String()
		if prev, dup := seen[name]; dup {
			t.Errorf("codes %d and %d share the name %q", prev, c, name)
		}
		seen[name] = c
	}
	// Wire numbers never change.
	fixed := map[api.Code]string{0: "ok", 1: "bad_request", 2: "unknown_op", 4: "forbidden", 5: "not_found", 6: "already_exists",
		7: "wrong_state", 8: "not_participant", 9: "not_subscribed", 10: "already_participant", 11: "stale_sequence",
		12: "over_capacity", 13: "closed", 24: "rate_limited", 50: "internal"}
	for c, name := range fixed {
		if c.String() != name {
			t.Errorf("code %d is %q, want %q", c, c.String(), name)
		}
	}
	if got := api.Code(999).String(); got != "code_999" {
		t.Errorf("unknown code name %q", got)
	}
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		name string
		want api.Role
	}{{"admin", api.RoleAdmin}, {"agent", api.RoleAgent}, {"connector", api.RoleConnector}, {"system", api.RoleNone}, {"none", api.RoleNone}, {"", api.RoleNone}, {"Admin", api.RoleNone}} {
		if got := api.ParseRole(tc.name); got != tc.want {
			t.Errorf("ParseRole(%q) = %s, want %s", tc.name, got, tc.want)
		}
	}
	if api.Role(42).String() != "invalid" {
		t.Errorf("Role(42) is %q", api.Role(42).String())
	}
	if a1.Key() != "agent:A1" || fb.Key() != "connector:fb" || admin.Key() != "" {
		t.Errorf("keys %q %q %q", a1.Key(), fb.Key(), admin.Key())
	}
}
