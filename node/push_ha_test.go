package node

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

// pushHAStatus reads agent's chat state on node n.
func pushHAStatus(n *haNode, agent string) (st api.AgentMRDStatus, loggedIn bool) {
	n.srv.FSM.Read(func(s *fsm.State, _ uint64) {
		as, _ := s.AgentStatus(agent)
		loggedIn = as.LoggedIn
		for _, m := range as.MRDs {
			if m.MRD == "chat" {
				st = m
			}
		}
	})
	return st, loggedIn
}

// TestHAOfferTimerAndLogoutGraceAcrossNodes: an offer made under one leader
// lapses under the next (its timers arm from the pending offers when it
// gains the lead), and a follower whose agent's last session closed logs
// the agent out through the leader.
func TestHAOfferTimerAndLogoutGraceAcrossNodes(t *testing.T) {
	c := startHACluster(t, 3, func(cfg *Config) { cfg.LogoutGrace = 300 * time.Millisecond })
	l := c.leader()
	li := slices.Index(c.nodes, l)
	f1, f2 := c.nodes[(li+1)%3], c.nodes[(li+2)%3]
	admin := haDial(t, c.addrs(li), "admin", "", haAdminToken, true)
	haCall(t, admin, "create_mrd", api.CreateMRDArgs{ID: "chat"}, nil)
	haCall(t, admin, "create_channel_type", api.CreateChannelTypeArgs{ID: "web", MRD: "chat"}, nil)
	haCall(t, admin, "create_queue", api.CreateQueueArgs{ID: "Q", MRD: "chat", OfferTimeoutMs: 4000}, nil)
	haCall(t, admin, "create_channel", api.CreateChannelArgs{ID: "W", Type: "web", Mode: api.ModePush, Queue: "Q"}, nil)
	tokens := map[string]string{}
	for _, a := range []string{"A", "B", "C"} {
		var cred Credential
		haCall(t, admin, "create_agent", api.CreateAgentArgs{ID: a, Max: map[string]int{"chat": 3}}, &cred)
		tokens[a] = cred.Token
		haCall(t, admin, "add_queue_member", api.QueueMemberArgs{Agent: a, Queue: "Q"}, nil)
	}
	// A and C on followers, B on the leader's node until it stops.
	sess := map[string]*transport.Client{
		"A": haDial(t, []string{f1.client}, "agent", "A", tokens["A"], false),
		"C": haDial(t, []string{f2.client}, "agent", "C", tokens["C"], false),
	}
	for _, a := range []string{"A", "C"} {
		haCall(t, sess[a], "login", api.AgentArgs{}, nil)
		haCall(t, sess[a], "set_agent_state", api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}, nil)
	}
	// C reconnected to f1 while its session on f2 closes: f2 finds C on f1
	// and keeps the login.
	c1 := haDial(t, []string{f1.client}, "agent", "C", tokens["C"], false)
	sess["C"].Close()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if _, in := pushHAStatus(l, "C"); !in {
			t.Fatal("C logged out while connected to another node")
		}
	}
	// C's last session (on f1) closes: after the grace f1 logs C out,
	// through the leader.
	c1.Close()
	waitFor(t, applyWait, func() bool { _, in := pushHAStatus(l, "C"); return !in })

	// A request is offered to A under the first leader...
	var cm api.CustomerMessageResult
	haCall(t, admin, "customer_message", api.CustomerMessageArgs{Channel: "W", CustomerID: "cust", Text: "hi"}, &cm)
	var q api.QueueView
	haCall(t, admin, "get_queue", api.QueryArgs{Queue: "Q"}, &q)
	if len(q.Offers) != 1 || q.Offers[0].Agent != "A" {
		t.Fatalf("offers %+v, want one to A", q.Offers)
	}
	offer := q.Offers[0]
	// ...and lapses under the next one.
	l.stop()
	nl := c.leader()
	b := haDial(t, []string{nl.client}, "agent", "B", tokens["B"], false)
	haCall(t, b, "login", api.AgentArgs{}, nil)
	haCall(t, b, "set_agent_state", api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}, nil)
	waitFor(t, 30*time.Second, func() bool { st, _ := pushHAStatus(f1, "A"); return st.State == api.AgentNotReady })
	if st, _ := pushHAStatus(f1, "A"); st.Reason != api.ReasonRingNoAnswer {
		t.Fatalf("A is %+v, want NOT_READY ring_no_answer", st)
	}
	if now := time.Now().UnixNano(); now < offer.ExpiresAt {
		t.Fatalf("offer withdrawn %v before its expiry", time.Duration(offer.ExpiresAt-now))
	}
	var q2 api.QueueView
	haCall(t, b, "get_queue", api.QueryArgs{Queue: "Q"}, &q2)
	if len(q2.Offers) != 1 || q2.Offers[0].Agent != "B" || q2.Offers[0].Request.ID != cm.Request {
		t.Fatalf("after the timeout: offers %+v, want %s offered to B", q2.Offers, cm.Request)
	}
}
