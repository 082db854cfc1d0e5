package fsm_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	. "github.com/switchboard/switchboard/fsm"
)

func TestCodeOf(t *testing.T) {
	var nilErr *Error
	cases := []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, CodeOK},
		{"nil *Error (a success's Result.Err)", nilErr, CodeOK},
		{"*Error", Errorf(CodeClosed, "closed"), CodeClosed},
		{"wrapped *Error", fmt.Errorf("apply: %w", Errorf(CodeNotFound, "x")), CodeNotFound},
		{"plain error", errors.New("boom"), CodeInternal},
	}
	for _, tc := range cases {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("%s: CodeOf = %s, want %s", tc.name, got, tc.want)
		}
	}
	res := Result{}
	if CodeOf(res.Err) != CodeOK {
		t.Error("CodeOf of a successful Result.Err is not ok")
	}
}

func TestErrorIsMatchesCode(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", Errorf(CodeOverCapacity, "agent A1 is full"))
	if !errors.Is(err, &Error{Code: CodeOverCapacity}) {
		t.Error("errors.Is does not match the same code")
	}
	if errors.Is(err, &Error{Code: CodeClosed}) {
		t.Error("errors.Is matches another code")
	}
	if got := Errorf(CodeNotFound, "list %q", "L9").Error(); got != `not_found: list "L9"` {
		t.Errorf("Error() = %q", got)
	}
}

func TestCodeNames(t *testing.T) {
	codes := Codes()
	if !slices.IsSorted(codes) || len(codes) == 0 || codes[0] != CodeOK {
		t.Fatalf("Codes() = %v", codes)
	}
	seen := map[string]Code{}
	for _, c := range codes {
		name := c.String()
		if prev, dup := seen[name]; dup {
			t.Errorf("codes %d and %d share the name %q", prev, c, name)
		}
		seen[name] = c
	}
	// Wire numbers never change.
	fixed := map[Code]string{0: "ok", 1: "bad_request", 2: "unknown_op", 4: "forbidden", 5: "not_found", 6: "already_exists",
		7: "wrong_state", 8: "not_participant", 9: "not_subscribed", 10: "already_participant", 11: "stale_sequence",
		12: "over_capacity", 13: "closed", 50: "internal"}
	for c, name := range fixed {
		if c.String() != name {
			t.Errorf("code %d is %q, want %q", c, c.String(), name)
		}
	}
	if got := Code(999).String(); got != "code_999" {
		t.Errorf("unknown code name %q", got)
	}
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Role
	}{{"admin", RoleAdmin}, {"agent", RoleAgent}, {"connector", RoleConnector}, {"system", RoleNone}, {"none", RoleNone}, {"", RoleNone}, {"Admin", RoleNone}} {
		if got := ParseRole(tc.name); got != tc.want {
			t.Errorf("ParseRole(%q) = %s, want %s", tc.name, got, tc.want)
		}
	}
	if Role(42).String() != "invalid" {
		t.Errorf("Role(42) is %q", Role(42).String())
	}
	if a1.Key() != "agent:A1" || fb.Key() != "connector:fb" || admin.Key() != "" {
		t.Errorf("keys %q %q %q", a1.Key(), fb.Key(), admin.Key())
	}
}
