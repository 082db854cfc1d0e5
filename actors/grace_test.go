package actors

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// presenceNode is a sysNode at feature level 3, where presence is
// replicated, with the push world and A logged in and READY.
func presenceNode(t *testing.T, grace time.Duration) *sysNode {
	t.Helper()
	n := newSysNode(t, grace)
	n.leader = false // the grace logs out through Submit whoever leads
	n.do(api.Principal{Role: api.RoleSystem, ID: "leader"}, fsm.OpSetFeatureLevel, &api.FeatureLevelArgs{Level: fsm.Level3})
	n.world(time.Hour)
	n.ready("A")
	return n
}

// count returns how many submitted commands are desc.
func (n *sysNode) countProposed(desc string) int {
	k := 0
	for _, p := range n.proposed() {
		if p == desc {
			k++
		}
	}
	return k
}

// The race of issue 11: the grace has decided to log A out (no session
// here, none elsewhere) and its logout is on its way to the log when A's
// client comes back. The logout must not apply: A keeps its login.
//
// The fake cluster holds the logout between the decision and its apply
// until the reattach has been made known to the cluster (agent_present
// applied) — at most holdMax, for a build that never announces it, which
// then logs A out and fails.
func TestGraceLogoutRefusedWhenTheAgentReattaches(t *testing.T) {
	n := presenceNode(t, 100*time.Millisecond)
	key := api.AgentKey("A")
	const holdMax = 3 * time.Second

	var (
		mu        sync.Mutex
		decided   bool // the grace's logout reached Submit
		announced = make(chan struct{})
		presents  int         // agent_present A applied
		outcome   *fsm.Result // the logout's
		once      sync.Once
	)
	n.mu.Lock()
	n.before = func(cmd *fsm.Command) {
		if cmd.Op != fsm.OpLogout && cmd.Op != fsm.OpLogoutAbsent {
			return
		}
		mu.Lock()
		decided = true
		mu.Unlock()
		select {
		case <-announced:
		case <-time.After(holdMax):
		}
	}
	n.after = func(cmd *fsm.Command, res fsm.Result) {
		mu.Lock()
		defer mu.Unlock()
		switch cmd.Op {
		case fsm.OpAgentPresent:
			if presents++; presents == 2 {
				once.Do(func() { close(announced) })
			}
		case fsm.OpLogout, fsm.OpLogoutAbsent:
			outcome = &res
		}
	}
	n.mu.Unlock()

	// A's console attaches (announced: the first agent_present) and goes.
	n.hub.Attach(key, 0, false, &outbox{})()
	sysWait(t, "the grace to decide A's logout", func() bool { mu.Lock(); defer mu.Unlock(); return decided })

	// Between the decision and the apply, A comes back.
	n.hub.Attach(key, 0, false, &outbox{})
	sysWait(t, "the logout's outcome", func() bool { mu.Lock(); defer mu.Unlock(); return outcome != nil })
	if st, _ := n.stateOf("A"); st == api.AgentLoggedOut {
		t.Fatalf("A was logged out though its session came back before the logout applied (proposed %q)", n.proposed())
	}
	mu.Lock()
	code := api.CodeOf(outcome.Err)
	mu.Unlock()
	if code != api.CodeWrongState {
		t.Fatalf("the grace's logout: %v, want wrong_state", code)
	}
	if got := n.countProposed("logout_absent A"); got != 1 {
		t.Fatalf("proposed %q: want one logout_absent", n.proposed())
	}

	// A second session of A on this node announces nothing: this node
	// already answers that A is here.
	n.hub.Attach(key, 0, false, &outbox{})()
	if got, err := n.hub.AgentSessions("A"); err != nil || got != 1 {
		t.Fatalf("AgentSessions(A) = %d, %v; want 1", got, err)
	}
	if got := n.countProposed("agent_present A"); got != 2 {
		t.Fatalf("proposed %q: want agent_present A twice (first attach, reattach), no more", n.proposed())
	}
}

// At level 3 an agent that is not logged in, and a connector, announce
// nothing when they attach; the grace still logs out an agent that stays
// away, through logout_absent.
func TestGraceAnnouncesOnlyLoggedInAgents(t *testing.T) {
	n := presenceNode(t, 100*time.Millisecond)
	// B is not logged in; cx is a connector.
	for _, key := range []string{api.AgentKey("B"), api.ConnectorKey("cx")} {
		n.hub.Attach(key, 0, false, &outbox{})()
	}
	detach := n.hub.Attach(api.AgentKey("A"), 0, false, &outbox{})
	sysWait(t, "A's session announced", func() bool { return n.countProposed("agent_present A") == 1 })
	detach()
	sysWait(t, "A logged out", func() bool { st, _ := n.stateOf("A"); return st == api.AgentLoggedOut })
	if got, want := n.proposed(), []string{"agent_present A", "logout_absent A"}; !slices.Equal(got, want) {
		t.Fatalf("proposed %q, want %q", got, want)
	}
}
