package fsm_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/msgp"
)

// level1World is the walkthrough setup in a cluster that has not raised
// its feature level (a state written before levels existed).
func level1World(t *testing.T) *State {
	t.Helper()
	s := NewState()
	for _, c := range walkthroughCommands()[1:] { // without the raise
		mustApply(t, s, c)
	}
	if s.ActiveLevel() != Level1 {
		t.Fatalf("fresh state at level %d, want %d", s.ActiveLevel(), Level1)
	}
	return s
}

// An op introduced at a level the cluster has not reached is refused with
// feature_not_enabled and changes nothing; once the level is raised it
// works.
func TestOpAboveActiveLevelRefused(t *testing.T) {
	s := level1World(t)
	before := marshal(t, s)
	res, evs := s.Apply(at(t0+1, cmd(OpDeleteConnector, admin, &api.IDArgs{ID: "fb"})))
	if api.CodeOf(res.Err) != api.CodeFeatureNotEnabled || len(evs) != 0 {
		t.Fatalf("delete_connector at level 1: %v, %d events; want feature_not_enabled", res.Err, len(evs))
	}
	// Only the clock moved.
	s.Now = t0
	if !bytes.Equal(marshal(t, s), before) {
		t.Fatal("a refused op changed the state")
	}
	mustApply(t, s, at(t0+2, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: Level2})))
	if s.ActiveLevel() != Level2 {
		t.Fatalf("active level %d after the raise, want %d", s.ActiveLevel(), Level2)
	}
	mustApply(t, s, at(t0+3, cmd(OpDeleteConnector, admin, &api.IDArgs{ID: "fb"})))
	if s.Connectors["fb"] != nil || len(s.Channels["C2"].Connectors) != 0 {
		t.Fatalf("connector fb still there: %+v, C2 connectors %v", s.Connectors["fb"], s.Channels["C2"].Connectors)
	}
}

// Only the engine raises the level; it never goes down; a level this
// build does not know is refused.
func TestSetFeatureLevel(t *testing.T) {
	s := level1World(t)
	for _, p := range []api.Principal{admin, a1, fb} {
		res, _ := s.Apply(cmd(OpSetFeatureLevel, p, &api.FeatureLevelArgs{Level: Level2}))
		if api.CodeOf(res.Err) != api.CodeForbidden {
			t.Errorf("set_feature_level by %s: %v, want forbidden", p.Role, res.Err)
		}
	}
	res, _ := s.Apply(cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: MaxLevel + 1}))
	if api.CodeOf(res.Err) != api.CodeBadRequest || s.ActiveLevel() != Level1 {
		t.Errorf("raise past MaxLevel: %v, level %d; want bad_request at level 1", res.Err, s.ActiveLevel())
	}
	res = mustApplyResult(t, s, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: Level2}))
	if got := res.Data.(api.FeatureLevelArgs).Level; got != Level2 {
		t.Errorf("raise answered level %d, want %d", got, Level2)
	}
	res = mustApplyResult(t, s, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: Level1}))
	if got := res.Data.(api.FeatureLevelArgs).Level; got != Level2 || s.ActiveLevel() != Level2 {
		t.Errorf("lowering answered %d with the state at %d, want both %d", got, s.ActiveLevel(), Level2)
	}
}

func mustApplyResult(t *testing.T, s *State, c *Command) Result {
	t.Helper()
	res, _ := mustApply(t, s, c)
	return res
}

// delete_list tells its subscribers only from level 2 on: at level 1 it
// behaves as the build before levels did.
func TestDeleteListEventsGatedByLevel(t *testing.T) {
	for _, raise := range []bool{false, true} {
		s := level1World(t)
		if raise {
			mustApply(t, s, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: Level2}))
		}
		_, evs := mustApply(t, s, cmd(OpDeleteList, admin, &api.IDArgs{ID: "L2"}))
		want := 0
		if raise {
			want = 1
		}
		if len(evs) != want {
			t.Errorf("level %d: delete_list caused %d events, want %d", s.ActiveLevel(), len(evs), want)
		}
	}
}

// The cap on idempotency sessions applies from level 2 on.
func TestSessionCapGatedByLevel(t *testing.T) {
	s := level1World(t)
	for i := range MaxSessions + 1 {
		mustApply(t, s, keyed(fmt.Sprintf("c%06d", i), 1, at(t0, cmd(OpNoop, a1, &api.NoopArgs{}))))
	}
	if n := len(s.Sessions); n != MaxSessions+1 {
		t.Fatalf("level 1: %d sessions after %d clients, want all kept", n, MaxSessions+1)
	}
	mustApply(t, s, at(t0, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: Level2})))
	mustApply(t, s, keyed("one-more", 1, at(t0, cmd(OpNoop, a1, &api.NoopArgs{}))))
	if n := len(s.Sessions); n != MaxSessions*9/10 {
		t.Fatalf("level 2: %d sessions, want %d", n, MaxSessions*9/10)
	}
}

// CanApply tells a node whether its build applies an entry as its peers
// do: an unknown op, an op above the node's level and a raise above it are
// entries it must stop at.
func TestCanApply(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *Command
		max  uint32
		ok   bool
	}{
		{"known op", cmd(OpNoop, a1, &api.NoopArgs{}), Level1, true},
		{"unknown op", cmd(Op(250), a1, &api.NoopArgs{}), MaxLevel, false},
		{"op above the node's level", cmd(OpDeleteConnector, admin, &api.IDArgs{ID: "x"}), Level1, false},
		{"op at the node's level", cmd(OpDeleteConnector, admin, &api.IDArgs{ID: "x"}), Level2, true},
		{"raise above the node's level", cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: Level2}), Level1, false},
		{"raise past this build", cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: MaxLevel + 1}), MaxLevel, false},
		{"raise within the node's level", cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: Level2}), Level2, true},
	} {
		if err := CanApply(tc.c, tc.max); (err == nil) != tc.ok {
			t.Errorf("%s: CanApply = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// From level 2, an agent's or connector's noop carries at most
// MaxNoopPadBytes of pad; an admin's is not bounded by it. Below level 2
// the old rule holds.
func TestNoopPadBounded(t *testing.T) {
	big := &api.NoopArgs{Pad: make([]byte, api.MaxNoopPadBytes+1)}
	s := walkthrough(t)
	for _, p := range []api.Principal{a1, fb} {
		res, _ := s.Apply(cmd(OpNoop, p, big))
		if api.CodeOf(res.Err) != api.CodeBadRequest {
			t.Errorf("noop with %d bytes of pad by %s: %v, want bad_request", len(big.Pad), p.Role, res.Err)
		}
	}
	mustApply(t, s, cmd(OpNoop, a1, &api.NoopArgs{Pad: make([]byte, api.MaxNoopPadBytes)}))
	mustApply(t, s, cmd(OpNoop, admin, big))
	mustApply(t, level1World(t), cmd(OpNoop, a1, big))
}

// A write whose arguments exceed MaxWriteArgsBytes is refused before it is
// decoded, whoever sends it.
func TestWriteArgsBounded(t *testing.T) {
	encode := func(pad int) []byte {
		raw, err := msgp.AppendValue(nil, &api.NoopArgs{Pad: make([]byte, pad)})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if raw := encode(api.MaxWriteArgsBytes); len(raw) <= api.MaxWriteArgsBytes {
		t.Fatalf("%d bytes of args: not above the bound", len(raw))
	} else if _, err := Commands.NewCommand(admin, "c", 1, api.OpNoop, raw); api.CodeOf(err) != api.CodeBadRequest {
		t.Fatalf("noop with %d bytes of args: %v, want bad_request", len(raw), err)
	}
	if raw := encode(api.MaxWriteArgsBytes - 16); len(raw) > api.MaxWriteArgsBytes {
		t.Fatalf("%d bytes of args: above the bound", len(raw))
	} else if _, err := Commands.NewCommand(admin, "c", 1, api.OpNoop, raw); err != nil {
		t.Fatalf("noop with %d bytes of args, within the bound: %v", len(raw), err)
	}
}
