package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cluster"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

func TestOrphanSweeperLogsOutOnlyAfterAWholeGraceAbsent(t *testing.T) {
	o := &orphanSweeper{grace: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// Each agent's presence value, as the state says at each step: b's
	// changes at 45 s (a session attached and left between two rounds).
	steps := []struct {
		at       time.Duration
		loggedIn []string
		present  []string
		due      []string
		bumped   []string
	}{
		{0, []string{"a", "b", "c"}, []string{"a"}, nil, nil},                          // b, c first missed
		{9 * time.Second, []string{"a", "b", "c"}, []string{"a", "c"}, nil, nil},       // c back: forgotten
		{10 * time.Second, []string{"a", "b", "c"}, []string{"a"}, []string{"b"}, nil}, // b gone 10 s; c starts again
		{15 * time.Second, []string{"a", "c"}, []string{"a"}, nil, nil},                // b logged out: forgotten
		{20 * time.Second, []string{"a", "b", "c"}, nil, []string{"c"}, nil},           // b absent anew, a first missed
		{30 * time.Second, []string{"a", "b", "c"}, nil, []string{"a", "b", "c"}, nil},
		{40 * time.Second, []string{"b"}, nil, []string{"b"}, nil},
		{45 * time.Second, []string{"b"}, nil, nil, []string{"b"}}, // b came and went: absent anew
		{54 * time.Second, []string{"b"}, nil, nil, nil},
		{55 * time.Second, []string{"b"}, nil, []string{"b"}, nil},
	}
	value := map[string]uint64{"a": 1, "b": 2, "c": 3}
	for i, s := range steps {
		for _, id := range s.bumped {
			value[id] += 10
		}
		present := map[string]bool{}
		for _, id := range s.present {
			present[id] = true
		}
		var in []loggedIn
		for _, id := range s.loggedIn {
			in = append(in, loggedIn{id: id, p: fsm.Presence{LoggedIn: true, Value: value[id], Replicated: true}})
		}
		var due []string
		for _, ag := range o.observe(at(s.at), in, present) {
			if ag.p.Value != value[ag.id] {
				t.Fatalf("step %d: %s due with presence %d, want %d", i, ag.id, ag.p.Value, value[ag.id])
			}
			due = append(due, ag.id)
		}
		if !slices.Equal(due, s.due) {
			t.Fatalf("step %d (at %v): due %v, want %v", i, s.at, due, s.due)
		}
	}
	o.reset()
	if due := o.observe(at(70*time.Second), []loggedIn{{id: "a"}}, nil); due != nil {
		t.Fatalf("after reset: due %v, want nothing until a new grace", due)
	}
}

// TestHAOrphanedLoginLoggedOutByLeaderWhenNodeDies: an agent connected to
// a follower that goes away is logged out by the leader's sweep (the dead
// node's own grace can no longer fire), while an agent connected to a
// live node keeps its login.
func TestHAOrphanedLoginLoggedOutByLeaderWhenNodeDies(t *testing.T) {
	const grace = 1500 * time.Millisecond
	c := startHACluster(t, 3, func(cfg *Config) { cfg.LogoutGrace = grace })
	c.waitRegistered()
	l := c.leader()
	li := slices.Index(c.nodes, l)
	f1, f2 := c.nodes[(li+1)%3], c.nodes[(li+2)%3]
	admin := haDial(t, c.addrs(li), "admin", "", haAdminToken, true)
	haCall(t, admin, "create_mrd", api.CreateMRDArgs{ID: "chat"}, nil)
	tokens := map[string]string{}
	for _, a := range []string{"X", "Y"} {
		var cred Credential
		haCall(t, admin, "create_agent", api.CreateAgentArgs{ID: a, Max: map[string]int{"chat": 3}}, &cred)
		tokens[a] = cred.Token
	}
	sess := map[string]*transport.Client{
		"X": haDial(t, []string{f1.client}, "agent", "X", tokens["X"], false),
		"Y": haDial(t, []string{f2.client}, "agent", "Y", tokens["Y"], false),
	}
	for _, a := range []string{"X", "Y"} {
		haCall(t, sess[a], "login", api.AgentArgs{}, nil)
	}
	// Both stay logged in while connected, over several sweeps.
	holdLoggedIn(t, l, 2*grace, "X", "Y")

	// X's node goes away before its own grace could fire.
	stopped := time.Now()
	f1.stop()
	if d := time.Since(stopped); d >= grace {
		t.Skipf("stopping the node took %v, longer than the grace: its own grace may have fired", d)
	}
	waitFor(t, 30*time.Second, func() bool { _, in := pushHAStatus(l, "X"); return !in })
	if d := time.Since(stopped); d < grace {
		t.Fatalf("X logged out %v after its node stopped, before the %v grace", d, grace)
	}
	holdLoggedIn(t, l, 2*grace, "Y")
	if _, in := pushHAStatus(f2, "X"); in {
		t.Fatal("the live follower still has X logged in")
	}

	// With f1 down, the leader's question is still conclusive (f1 counts
	// as having nobody); a node that answers with an error is not.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	present, conclusive := l.srv.presence.presentAnywhere(ctx, []string{"X", "Y"})
	if !conclusive || present["X"] || !present["Y"] {
		t.Fatalf("presentAnywhere = %v, %v; want Y alone, conclusive", present, conclusive)
	}
	if cluster.AskPeers(l.srv.Cluster, ctx, "no_such_op", nil, func(struct{}) {}) {
		t.Fatal("a round where a live node answered with an error counted as conclusive")
	}
}

// holdLoggedIn checks that every agent stays logged in on n for d.
func holdLoggedIn(t *testing.T, n *haNode, d time.Duration, agents ...string) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, a := range agents {
			if _, in := pushHAStatus(n, a); !in {
				t.Fatal(fmt.Sprintf("%s logged out while connected", a))
			}
		}
	}
}
