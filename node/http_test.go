package node

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/switchboard/switchboard/transport"
)

// startHTTPNode starts a single bootstrapped node with an HTTP listener.
func startHTTPNode(t *testing.T, tune func(*Config)) *haNode {
	t.Helper()
	n := newHANode(t, "n1", func(cfg *Config) {
		cfg.HTTPListener = httpListener(t)
		cfg.Version = "v9.8.7-test"
		if tune != nil {
			tune(cfg)
		}
	})
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	n.waitReady()
	return n
}

// TestHTTPHealthAndReady: over real HTTP, /healthz and /readyz of a ready
// single node answer 200, /readyz with the node's figures in JSON; a node
// without an HTTP listener has no HTTP address.
func TestHTTPHealthAndReady(t *testing.T) {
	n := startHTTPNode(t, nil)
	base := "http://" + n.srv.HTTPAddr()

	code, body := httpGet(t, base+"/healthz", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	waitFor(t, applyWait, func() bool { c, _ := readyz(t, n.srv); return c == http.StatusOK })
	code, rd := readyz(t, n.srv)
	if code != http.StatusOK || !rd.Ready || rd.Reason != "ready" || rd.Node != "n1" || rd.Leader != "n1" ||
		rd.CommitIndex == 0 || rd.AppliedIndex < rd.CommitIndex {
		t.Fatalf("/readyz: %d %+v", code, rd)
	}

	bare := newHANode(t, "bare", nil)
	bare.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	if a := bare.srv.HTTPAddr(); a != "" {
		t.Fatalf("a node without HTTPAddr serves HTTP at %s", a)
	}
}

// TestHTTPPprofNeedsAdminToken: /debug/pprof/ answers 401 without the
// admin token or with a wrong one, and serves the profiles with it.
func TestHTTPPprofNeedsAdminToken(t *testing.T) {
	n := startHTTPNode(t, nil)
	base := "http://" + n.srv.HTTPAddr()
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/debug/pprof/", "", http.StatusUnauthorized},
		{"/debug/pprof/", "wrong-token", http.StatusUnauthorized},
		{"/debug/pprof/goroutine?debug=1", "", http.StatusUnauthorized},
		{"/debug/pprof/cmdline", haAdminToken + "x", http.StatusUnauthorized},
		{"/debug/pprof/", haAdminToken, http.StatusOK},
		{"/debug/pprof/goroutine?debug=1", haAdminToken, http.StatusOK},
		{"/debug/pprof/cmdline", haAdminToken, http.StatusOK},
	} {
		code, body := httpGet(t, base+tc.path, tc.token)
		if code != tc.want {
			t.Errorf("GET %s with token %q: %d, want %d (%.100s)", tc.path, tc.token, code, tc.want, body)
		}
		if code == http.StatusOK && tc.path == "/debug/pprof/goroutine?debug=1" && !strings.Contains(string(body), "goroutine") {
			t.Errorf("goroutine profile: %.200s", body)
		}
	}
}

// TestHTTPMetricsAfterCommands scrapes /metrics of a real node over HTTP,
// parses it with Prometheus's text parser and checks the figures that
// known commands must have produced: commands by op and outcome and their
// latency histogram, Raft's figures, event streams and deliveries, the
// build, and the domain's live numbers computed from the state.
func TestHTTPMetricsAfterCommands(t *testing.T) {
	n := startHTTPNode(t, nil)
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, fbToken := haSetup(t, admin, "a1", "a2") // pull: list L1, channel C1
	// Push: queue Q in MRD chat, channel W; agent p is a member.
	haCall(t, admin, "create_mrd", api.CreateMRDArgs{ID: "chat"}, nil)
	haCall(t, admin, "create_channel_type", api.CreateChannelTypeArgs{ID: "web", MRD: "chat"}, nil)
	haCall(t, admin, "create_queue", api.CreateQueueArgs{ID: "Q", MRD: "chat", OfferTimeoutMs: 60000}, nil)
	haCall(t, admin, "create_channel", api.CreateChannelArgs{ID: "W", Type: "web", Mode: api.ModePush, Queue: "Q"}, nil)
	var pcred Credential
	haCall(t, admin, "create_agent", api.CreateAgentArgs{ID: "p", Max: map[string]int{"chat": 2}}, &pcred)
	haCall(t, admin, "add_queue_member", api.QueueMemberArgs{Agent: "p", Queue: "Q"}, nil)
	// One refused business op: applied as a no-op with its code.
	if err := admin.Call(context.Background(), "create_list", api.CreateListArgs{ID: "L1"}, nil); haCode(err) != api.CodeAlreadyExists {
		t.Fatalf("duplicate create_list: %v", err)
	}

	// a1 connects (a stream, a sync delivered) and logs in; p logs in and
	// stays NOT_READY, so the push request waits in Q.
	a1 := haDial(t, []string{n.client}, "agent", "a1", tokens["a1"], false)
	haCall(t, a1, "login", api.AgentArgs{}, nil)
	p := haDial(t, []string{n.client}, "agent", "p", pcred.Token, false)
	haCall(t, p, "login", api.AgentArgs{}, nil)
	fb := haDial(t, []string{n.client}, "connector", "fb", fbToken, false)
	haCall(t, fb, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: "c1", Text: "hi"}, nil)
	haCall(t, fb, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: "c2", Text: "hi"}, nil)
	last := haCall(t, admin, "customer_message", api.CustomerMessageArgs{Channel: "W", CustomerID: "c3", Text: "hi"}, nil)
	haNextEvent(t, a1) // a1's stream is live: frames were delivered

	// Raft counts an entry applied only once the FSM has returned from it,
	// a moment after the write's answer: scrape until it has caught up.
	var fams map[string]*dto.MetricFamily
	testutil.WaitFor(t, 10*time.Second, func() bool {
		fams = scrape(t, n.srv)
		applied, _ := sample(fams, "switchboard_raft_applied_index", nil)
		ready, _ := sample(fams, "switchboard_node_ready", nil)
		return applied >= float64(last) && ready == 1
	}, "raft's applied index to reach %d and the node to be ready", last)
	expect := func(name string, lbl map[string]string, want float64) {
		t.Helper()
		got, ok := sample(fams, name, lbl)
		if !ok {
			t.Errorf("%s%v: missing (families: %s)", name, lbl, familyNames(fams))
		} else if got != want {
			t.Errorf("%s%v = %v, want %v", name, lbl, got, want)
		}
	}
	atLeast := func(name string, lbl map[string]string, min float64) float64 {
		t.Helper()
		got, ok := sample(fams, name, lbl)
		if !ok || got < min {
			t.Errorf("%s%v = %v (present %v), want at least %v", name, lbl, got, ok, min)
		}
		return got
	}

	expect("switchboard_build_info", labels("version", "v9.8.7-test"), 1)
	// Commands by op and outcome, and their latency.
	expect("switchboard_commands_total", labels("op", "create_agent", "outcome", "ok"), 3)
	expect("switchboard_commands_total", labels("op", "create_list", "outcome", "ok"), 1)
	expect("switchboard_commands_total", labels("op", "create_list", "outcome", "already_exists"), 1)
	expect("switchboard_commands_total", labels("op", "customer_message", "outcome", "ok"), 3)
	expect("switchboard_commands_duration_seconds", labels("op", "create_agent"), 3) // histogram count
	expect("switchboard_commands_duration_seconds", labels("op", "login"), 2)
	// Raft.
	expect("switchboard_raft_state", labels("state", "Leader"), 1)
	expect("switchboard_raft_state", labels("state", "Follower"), 0)
	expect("switchboard_raft_last_contact_seconds", nil, 0) // the leader
	expect("switchboard_raft_members", labels("suffrage", "Voter"), 1)
	atLeast("switchboard_raft_term", nil, 1)
	atLeast("switchboard_raft_commit_index", nil, float64(last))
	atLeast("switchboard_raft_applied_index", nil, float64(last))
	expect("switchboard_fsm_applied_index", nil, float64(last)) // nothing after it
	atLeast("switchboard_raft_last_log_index", nil, float64(last))
	expect("switchboard_node_ready", nil, 1)
	expect("switchboard_node_removed", nil, 0)
	expect("switchboard_fsm_feature_level", nil, float64(n.srv.Backend.Status().FeatureLevel))
	expect("switchboard_node_max_feature_level", nil, float64(n.srv.FSM.MaxLevel()))
	// Sessions and delivery: admin, a1, p, fb connected; a1 and p are
	// agent streams, fb a connector stream.
	expect("switchboard_transport_sessions", nil, 4)
	expect("switchboard_transport_streams", labels("role", "agent"), 2)
	expect("switchboard_transport_streams", labels("role", "connector"), 1)
	atLeast("switchboard_events_delivered_total", nil, 3) // at least each stream's sync
	expect("switchboard_events_sessions_dropped_total", nil, 0)
	// The domain, from the state.
	expect("switchboard_requests_open", labels("state", "UNREAD"), 3)
	expect("switchboard_requests_open", labels("state", "ACTIVE"), 0)
	expect("switchboard_list_requests", labels("list", "L1", "state", "UNREAD"), 2)
	expect("switchboard_list_requests", labels("list", "L1", "state", "INACTIVE"), 0)
	expect("switchboard_list_oldest_request_age_seconds", labels("list", "L1", "state", "INACTIVE"), 0)
	if age := atLeast("switchboard_list_oldest_request_age_seconds", labels("list", "L1", "state", "UNREAD"), 0); age <= 0 || age > 600 {
		t.Errorf("oldest UNREAD age on L1 = %v s", age)
	}
	expect("switchboard_queue_waiting_requests", labels("queue", "Q"), 1)
	expect("switchboard_queue_offered_requests", labels("queue", "Q"), 0)
	if wait := atLeast("switchboard_queue_longest_wait_seconds", labels("queue", "Q"), 0); wait <= 0 || wait > 600 {
		t.Errorf("longest wait in Q = %v s", wait)
	}
	expect("switchboard_agents_logged_in", nil, 2)
	expect("switchboard_agents", labels("mrd", "chat", "state", "NOT_READY"), 2)  // a1 and p logged in
	expect("switchboard_agents", labels("mrd", "chat", "state", "LOGGED_OUT"), 1) // a2
	expect("switchboard_agents", labels("mrd", "chat", "state", "READY"), 0)

	// p goes READY: the request is offered to it; the figures follow the
	// state with nothing kept in sync by hand.
	haCall(t, p, "set_agent_state", api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}, nil)
	waitFor(t, applyWait, func() bool {
		fams = scrape(t, n.srv)
		off, _ := sample(fams, "switchboard_queue_offered_requests", labels("queue", "Q"))
		return off == 1
	})
	expect("switchboard_queue_waiting_requests", labels("queue", "Q"), 0)
	expect("switchboard_queue_longest_wait_seconds", labels("queue", "Q"), 0)
	expect("switchboard_agents", labels("mrd", "chat", "state", "READY"), 1)
	expect("switchboard_commands_total", labels("op", "set_agent_state", "outcome", "ok"), 1)

	// A snapshot is counted.
	haCall(t, admin, OpSnapshotTake, nil, nil)
	fams = scrape(t, n.srv)
	atLeast("switchboard_raft_snapshots_total", nil, 1)
	atLeast("switchboard_raft_last_snapshot_index", nil, float64(last))
}

// TestHTTPMetricsLeaderChanges: a leadership transfer is counted as a
// leader change on every node, and the followers report their last
// contact with the leader.
func TestHTTPMetricsLeaderChanges(t *testing.T) {
	c := startHAClusterWith(t, 3, func(*haNode) func(*Config) { return withHTTP(t) })
	l := c.leader()
	f := c.followers()
	admin := haDial(t, []string{f[0].client}, "admin", "", haAdminToken, true)
	before := map[string]float64{}
	for _, n := range c.nodes {
		before[n.id], _ = sample(scrape(t, n.srv), "switchboard_raft_leader_changes_total", nil)
	}
	haCall(t, admin, OpTransferLeadership, cluster.NodeIDArgs{Node: f[1].id}, nil)
	waitFor(t, leaderWait, func() bool { return c.leader() == f[1] })
	for _, n := range c.nodes {
		waitFor(t, leaderWait, func() bool {
			got, _ := sample(scrape(t, n.srv), "switchboard_raft_leader_changes_total", nil)
			return got == before[n.id]+1
		})
	}
	fams := scrape(t, l.srv) // a follower now
	lc, ok := sample(fams, "switchboard_raft_last_contact_seconds", nil)
	if !ok || lc < 0 || lc > 5 || math.IsNaN(lc) {
		t.Fatalf("old leader's last contact with the new one: %v (present %v)", lc, ok)
	}
	if v, _ := sample(fams, "switchboard_raft_state", labels("state", "Follower")); v != 1 {
		t.Fatalf("old leader's raft state: Follower = %v", v)
	}
}

// startHAClusterWith is startHACluster with a tune function per node.
func startHAClusterWith(t testing.TB, size int, tune func(*haNode) func(*Config)) *haCluster {
	t.Helper()
	c := &haCluster{t: t}
	for i := range size {
		n := newHANode(t, "n"+string(rune('1'+i)), nil)
		n.tune = tune(n)
		c.nodes = append(c.nodes, n)
	}
	c.nodes[0].start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	for _, n := range c.nodes[1:] {
		n.start(func(cfg *Config) { cfg.Join = []string{c.nodes[0].client} })
	}
	for _, n := range c.nodes {
		n.waitReady()
	}
	c.waitRegistered()
	return c
}

// TestReadyzFollowerCutOff: a follower cut off from the others' Raft
// traffic loses its leader and its /readyz turns 503 (no leader), while
// the others stay 200; reconnected, it is 200 again.
func TestReadyzFollowerCutOff(t *testing.T) {
	cn := newCutNet()
	c := startHAClusterWith(t, 3, func(n *haNode) func(*Config) {
		cut, http := cn.tune(n), withHTTP(t)
		return func(cfg *Config) { cut(cfg); http(cfg) }
	})
	for _, n := range c.nodes {
		waitFor(t, leaderWait, func() bool { code, _ := readyz(t, n.srv); return code == http.StatusOK })
	}
	victim := c.followers()[0]
	cn.Isolate(victim.id)
	var rd Readiness
	waitFor(t, leaderWait, func() bool {
		var code int
		code, rd = readyz(t, victim.srv)
		return code == http.StatusServiceUnavailable
	})
	if rd.Ready || !strings.HasPrefix(rd.Reason, ReasonNoLeader) {
		t.Fatalf("cut-off follower's /readyz: %+v", rd)
	}
	for _, n := range c.nodes {
		if n == victim {
			continue
		}
		if code, rd := readyz(t, n.srv); code != http.StatusOK {
			t.Fatalf("%s (not cut off): /readyz %d %+v", n.id, code, rd)
		}
	}
	if v, _ := sample(scrape(t, victim.srv), "switchboard_node_ready", nil); v != 0 {
		t.Fatalf("cut-off follower: switchboard_node_ready = %v", v)
	}

	cn.Rejoin(victim.id)
	waitFor(t, leaderWait, func() bool { code, _ := readyz(t, victim.srv); return code == http.StatusOK })
	if v, _ := sample(scrape(t, victim.srv), "switchboard_node_ready", nil); v != 1 {
		t.Fatalf("reconnected follower: switchboard_node_ready = %v", v)
	}
}

// TestRemovedNode: a node removed from the configuration says so in its
// status and /readyz (503 "removed"), refuses new clients and the
// commands of sessions it had with a typed unavailable error saying it
// was removed, and closes RemovedCh; the others are unaffected.
func TestRemovedNode(t *testing.T) {
	c := startHAClusterWith(t, 3, func(*haNode) func(*Config) { return withHTTP(t) })
	victim := c.followers()[0]
	var other *haNode
	for _, n := range c.nodes {
		if n != victim {
			other = n
			break
		}
	}
	admin := haDial(t, []string{other.client}, "admin", "", haAdminToken, false)
	onVictim := haDial(t, []string{victim.client}, "admin", "", haAdminToken, false)
	if v := victim.srv.Backend.Status(); v.Removed {
		t.Fatalf("removed before removal: %+v", v)
	}

	haCall(t, admin, OpClusterRemove, cluster.NodeIDArgs{Node: victim.id}, nil)
	select {
	case <-victim.srv.RemovedCh():
	case <-time.After(leaderWait):
		t.Fatalf("%s never learned it was removed: %+v", victim.id, victim.srv.Node.Status())
	}
	if !victim.srv.Removed() || !victim.srv.Backend.Status().Removed {
		t.Fatal("Removed or status.removed false after RemovedCh closed")
	}
	code, rd := readyz(t, victim.srv)
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(rd.Reason, ReasonRemoved) {
		t.Fatalf("removed node's /readyz: %d %+v", code, rd)
	}
	if v, _ := sample(scrape(t, victim.srv), "switchboard_node_removed", nil); v != 1 {
		t.Fatalf("switchboard_node_removed = %v", v)
	}

	// A session it had: commands refused, typed.
	err := onVictim.Call(context.Background(), "create_list", api.CreateListArgs{ID: "on-removed"}, nil)
	if haCode(err) != api.CodeUnavailable || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("command on the removed node: %v", err)
	}
	// A new client: refused at hello, typed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = transport.Dial(ctx, transport.ClientConfig{Addrs: []string{victim.client}, Role: "admin", Token: haAdminToken, DialTimeout: 3 * time.Second})
	if haCode(err) != api.CodeUnavailable || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("dialing the removed node: %v", err)
	}
	// Its status still answers (for ctl), and says removed.
	var st api.NodeStatus
	haCall(t, onVictim, QueryStatus, nil, &st)
	if !st.Removed {
		t.Fatalf("status of the removed node: %+v", st)
	}

	// The others are ready and not removed.
	for _, n := range c.nodes {
		if n == victim {
			continue
		}
		if n.srv.Removed() {
			t.Fatalf("%s thinks it was removed", n.id)
		}
		if code, rd := readyz(t, n.srv); code != http.StatusOK {
			t.Fatalf("%s: /readyz %d %+v", n.id, code, rd)
		}
	}
	haCall(t, admin, "create_list", api.CreateListArgs{ID: "after-remove"}, nil)
}

// TestReadyzJSONWhenStarting: a node that has not caught up (nothing to
// join yet) answers 503 with a reason in JSON, and /healthz 200.
func TestReadyzJSONWhenStarting(t *testing.T) {
	n := newHANode(t, "lonely", withHTTP(t))
	n.start(nil) // no bootstrap, nothing to join: waits to be added
	code, body := httpGet(t, "http://"+n.srv.HTTPAddr()+"/readyz", "")
	var rd Readiness
	if err := json.Unmarshal(body, &rd); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if code != http.StatusServiceUnavailable || rd.Ready || !strings.HasPrefix(rd.Reason, ReasonStarting) {
		t.Fatalf("/readyz of a node waiting to join: %d %+v", code, rd)
	}
	if code, _ := httpGet(t, "http://"+n.srv.HTTPAddr()+"/healthz", ""); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
}
