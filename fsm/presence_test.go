package fsm

import (
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/api"
)

// A node's logout decided on a presence the agent no longer has — it
// attached a session somewhere (agent_present) or logged in again since —
// is refused with wrong_state and changes nothing; decided on the current
// presence, it applies exactly as logout does.
func TestLogoutAbsentRefusedOnceTheAgentReattached(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X", "Y")
	ptArrive(t, s, "WS", "c1", 0)
	ptEqual(t, "offers", ptOffered(s), []string{"R1→X"})
	seen := s.PresenceOf("X")
	if !seen.LoggedIn || !seen.Replicated || seen.Value == 0 {
		t.Fatalf("X after login: %+v, want logged in with a presence value, replicated", seen)
	}

	// X's session attaches on some node between the decision and the apply.
	ptApply(t, s, ptCmd(OpAgentPresent, ptSystem, &api.AgentArgs{Agent: "X"}))
	now := s.PresenceOf("X")
	if now.Value == seen.Value || !now.LoggedIn {
		t.Fatalf("X after agent_present: %+v, want a new presence value than %d", now, seen.Value)
	}
	ptReject(t, s, AbsentLogout(ptSystem, "X", seen), api.CodeWrongState)
	ptEqual(t, "offers", ptOffered(s), []string{"R1→X"})

	// Decided on the current presence: applied, as a logout.
	twin := ptWorld(t)
	ptReady(t, twin, "chat", "X", "Y")
	ptArrive(t, twin, "WS", "c1", 0)
	ptApply(t, twin, ptCmd(OpAgentPresent, ptSystem, &api.AgentArgs{Agent: "X"}))
	want, wantEvs := ptApply(t, twin, ptCmd(OpLogout, ptSystem, &api.AgentArgs{Agent: "X"}))
	res, evs := ptApply(t, s, AbsentLogout(ptSystem, "X", now))
	if !reflect.DeepEqual(res, want) || !reflect.DeepEqual(evs, wantEvs) {
		t.Fatalf("logout_absent: %+v %s; logout: %+v %s", res, ptKinds(evs), want, ptKinds(wantEvs))
	}
	ptEqual(t, "offers", ptOffered(s), []string{"R1→Y"})
	// Logged out: a second one is refused.
	ptReject(t, s, AbsentLogout(ptSystem, "X", s.PresenceOf("X")), api.CodeWrongState)

	// A login after the decision (X logged out by itself and back in)
	// also stamps a new presence.
	seen = s.PresenceOf("Y")
	ptApply(t, s, ptCmd(OpLogout, ptAgent("Y"), &api.AgentArgs{}))
	ptApply(t, s, ptCmd(OpLogin, ptAgent("Y"), &api.AgentArgs{}))
	ptReject(t, s, AbsentLogout(ptSystem, "Y", seen), api.CodeWrongState)
	// Logging in while logged in stamps nothing: nothing to protect.
	seen = s.PresenceOf("Y")
	ptApply(t, s, ptCmd(OpLogin, ptAgent("Y"), &api.AgentArgs{}))
	ptApply(t, s, AbsentLogout(ptSystem, "Y", seen))
}

// Presence values are never reused, across agents and across an agent
// deleted and created again.
func TestPresenceValuesNeverRepeat(t *testing.T) {
	s := ptWorld(t)
	seen := map[uint64]string{}
	stamp := func(who string, c *Command) {
		t.Helper()
		ptApply(t, s, c)
		v := s.PresenceOf(who).Value
		if prev, dup := seen[v]; dup {
			t.Fatalf("presence %d given to %s, already given to %s", v, who, prev)
		}
		seen[v] = who
	}
	stamp("X", ptCmd(OpLogin, ptAgent("X"), &api.AgentArgs{}))
	stamp("Y", ptCmd(OpLogin, ptAgent("Y"), &api.AgentArgs{}))
	stamp("X", ptCmd(OpAgentPresent, ptSystem, &api.AgentArgs{Agent: "X"}))
	// Z is not logged in: the stamp costs nothing and harms nothing.
	stamp("Z", ptCmd(OpAgentPresent, ptSystem, &api.AgentArgs{Agent: "Z"}))
	ptApply(t, s, ptCmd(OpCreateAgent, ptAdmin, &api.CreateAgentArgs{ID: "W", TokenHash: []byte("h")}))
	stamp("W", ptCmd(OpLogin, ptAgent("W"), &api.AgentArgs{}))
	old := s.PresenceOf("W")
	ptApply(t, s, ptCmd(OpLogout, ptAgent("W"), &api.AgentArgs{}))
	ptApply(t, s, ptCmd(OpDeleteAgent, ptAdmin, &api.IDArgs{ID: "W"}))
	ptApply(t, s, ptCmd(OpCreateAgent, ptAdmin, &api.CreateAgentArgs{ID: "W", TokenHash: []byte("h")}))
	stamp("W", ptCmd(OpLogin, ptAgent("W"), &api.AgentArgs{}))
	// The logout decided on the first W does not apply to the second.
	ptReject(t, s, AbsentLogout(ptSystem, "W", old), api.CodeWrongState)
}

// The presence ops are the nodes' own: clients get forbidden; they name an
// agent that exists.
func TestPresenceOpsSystemOnly(t *testing.T) {
	s := ptWorld(t)
	ptApply(t, s, ptCmd(OpLogin, ptAgent("X"), &api.AgentArgs{}))
	v := s.PresenceOf("X").Value
	for _, by := range []api.Principal{ptAgent("X"), ptAdmin, ptConn} {
		ptReject(t, s, ptCmd(OpAgentPresent, by, &api.AgentArgs{Agent: "X"}), api.CodeForbidden)
		ptReject(t, s, ptCmd(OpLogoutAbsent, by, &LogoutAbsentArgs{Agent: "X", Presence: v}), api.CodeForbidden)
	}
	ptReject(t, s, ptCmd(OpAgentPresent, ptSystem, &api.AgentArgs{Agent: "nobody"}), api.CodeNotFound)
	ptReject(t, s, ptCmd(OpLogoutAbsent, ptSystem, &LogoutAbsentArgs{Agent: "nobody"}), api.CodeNotFound)
	ptReject(t, s, ptCmd(OpAgentPresent, ptSystem, &api.AgentArgs{}), api.CodeBadRequest)
	ptReject(t, s, ptCmd(OpLogoutAbsent, ptSystem, &LogoutAbsentArgs{Agent: "Y"}), api.CodeWrongState)
	if p := s.PresenceOf("nobody"); p != (Presence{}) {
		t.Fatalf("PresenceOf(nobody) = %+v", p)
	}
}

// Below level 3 nothing changes: the presence ops are refused on every
// node alike, login stamps nothing (the state encodes as before), and a
// node's logout is the plain logout.
func TestPresenceBelowLevel3(t *testing.T) {
	s := NewState()
	for _, c := range ptWorldCommands() {
		if c.Op == OpSetFeatureLevel {
			c = ptCmd(OpSetFeatureLevel, ptSystem, &api.FeatureLevelArgs{Level: Level2})
		}
		ptApply(t, s, c)
	}
	ptApply(t, s, ptCmd(OpLogin, ptAgent("X"), &api.AgentArgs{}))
	p := s.PresenceOf("X")
	if p != (Presence{LoggedIn: true}) || s.NextPresence != 0 {
		t.Fatalf("at level 2, X after login: %+v (next %d); want logged in, no presence, not replicated", p, s.NextPresence)
	}
	ptReject(t, s, ptCmd(OpAgentPresent, ptSystem, &api.AgentArgs{Agent: "X"}), api.CodeFeatureNotEnabled)
	ptReject(t, s, ptCmd(OpLogoutAbsent, ptSystem, &LogoutAbsentArgs{Agent: "X"}), api.CodeFeatureNotEnabled)
	c := AbsentLogout(ptSystem, "X", p)
	if c.Op != OpLogout {
		t.Fatalf("AbsentLogout below level 3 is %s, want logout", ptOpName(c.Op))
	}
	ptApply(t, s, c)

	// Raised to 3: the next login stamps.
	ptApply(t, s, ptCmd(OpSetFeatureLevel, ptSystem, &api.FeatureLevelArgs{Level: Level3}))
	ptApply(t, s, ptCmd(OpLogin, ptAgent("X"), &api.AgentArgs{}))
	if p := s.PresenceOf("X"); !p.Replicated || p.Value == 0 {
		t.Fatalf("at level 3, X after login: %+v", p)
	}
}
