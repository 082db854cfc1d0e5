package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testutil"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// soak reports whether the long variants run (SWITCHBOARD_SOAK=1).
func soak() bool { return os.Getenv("SWITCHBOARD_SOAK") == "1" }

// e2eSnapshotFlags make the nodes snapshot and compact often, so that a
// wiped node catches up by snapshot install.
var e2eSnapshotFlags = []string{"--snapshot-threshold", "500", "--trailing-logs", "200", "--snapshot-interval", "1s"}

// failover is what one leader kill measured.
type failover struct {
	firstStamp  time.Duration // kill → first command stamped by the new leader
	firstAck    time.Duration // kill → first such command acknowledged to its client
	reconnected time.Duration // kill → every agent connected to another node
	agentsAlive time.Duration // kill → every agent received an event of the new leader
}

// killScenario runs, on a healthy cluster: the domain, three agents
// watching L1 from the leader, four writers streaming commands through all
// nodes; then kill -9 of the leader. It returns once the new leader has
// committed commands and every agent has resumed on another node, with the
// writers still running.
func killScenario(t *testing.T, c *procCluster) (admin *transport.Client, ws []*watcher, w *writers, killed *procNode, t0 time.Time, reconnected time.Duration) {
	t.Helper()
	leader := c.waitHealthy(e2eWait)
	admin = e2eDial(t, c.addrs(leader), "admin", "", e2eAdminToken)
	agents := []string{"a1", "a2", "a3"}
	tokens, fbToken := e2eSetup(t, admin, agents)
	for _, a := range agents {
		cl := e2eDial(t, c.addrs(leader), "agent", a, tokens[a])
		ws = append(ws, watch(a, cl))
	}
	waitUntil(t, "agents synced", func() bool {
		for _, x := range ws {
			if x.syncCount() == 0 {
				return false
			}
		}
		return true
	})
	w = startWriters(t, c, fbToken, 4, 2*time.Millisecond)
	waitUntil(t, "warm-up writes", func() bool { return countAcked(w.snapshot()) >= 300 })

	killed = leader
	t0 = time.Now()
	killed.kill()
	moved := make(chan time.Duration, 1)
	go func() {
		for time.Since(t0) < e2eWait {
			all := true
			for _, x := range ws {
				if x.client.Welcome().Node == killed.id {
					all = false
				}
			}
			if all {
				moved <- time.Since(t0)
				return
			}
			time.Sleep(time.Millisecond)
		}
		moved <- 0
	}()
	t.Logf("killed the leader %s (kill -9) after %d acknowledged writes", killed.id, countAcked(w.snapshot()))
	newLeader := c.waitHealthy(e2eWait)
	t.Logf("new leader %s", newLeader.id)
	waitUntil(t, "every agent resumed", func() bool {
		for _, x := range ws {
			if _, ok := x.resumedAt(t0); !ok {
				return false
			}
		}
		return true
	})
	reconnected = <-moved
	for _, x := range ws {
		if node := x.client.Welcome().Node; node == killed.id {
			t.Errorf("agent %s still on the killed node %s", x.name, node)
		}
	}
	return admin, ws, w, killed, t0, reconnected
}

// measure computes the failover figures from the outcomes and L1.
func measure(t *testing.T, t0 time.Time, reconnected time.Duration, acks []ack, l1 map[string]api.RequestSummary, ws []*watcher) failover {
	m := failover{reconnected: reconnected}
	for _, r := range l1 {
		if d := time.Duration(r.CreatedAt - t0.UnixNano()); d > 0 && (m.firstStamp == 0 || d < m.firstStamp) {
			m.firstStamp = d
		}
	}
	for _, a := range acks {
		if r, ok := l1[a.request]; ok && a.err == nil && r.CreatedAt > t0.UnixNano() {
			if d := a.at.Sub(t0); m.firstAck == 0 || d < m.firstAck {
				m.firstAck = d
			}
		}
	}
	for _, x := range ws {
		if at, ok := x.resumedAt(t0); ok && at.Sub(t0) > m.agentsAlive {
			m.agentsAlive = at.Sub(t0)
		}
	}
	t.Logf("failover: kill -9 of the leader → first command stamped by the new leader %v, first acknowledged %v; all %d agents reconnected to another node %v, received the new leader's first events %v",
		m.firstStamp.Round(time.Millisecond), m.firstAck.Round(time.Millisecond), len(ws),
		m.reconnected.Round(time.Millisecond), m.agentsAlive.Round(time.Millisecond))
	return m
}

// TestClusterKillLeaderE2E: three switchboard processes; four writers and
// three agents watching a list; kill -9 of the leader. A new leader takes
// over, every acknowledged write is present exactly once, every agent
// resumes on another node and receives every event exactly once and in
// order; the killed node restarts on its data dir and catches up, and a
// wiped node rejoins (by snapshot install).
func TestClusterKillLeaderE2E(t *testing.T) {
	c := startProcCluster(t, 3, e2eSnapshotFlags...)
	admin, ws, w, killed, t0, reconnected := killScenario(t, c)

	// The killed node restarts with its data dir and catches up.
	waitUntil(t, "writes after the failover", func() bool { return countAcked(w.snapshot()) >= 800 })
	killed.start()
	c.waitCaughtUp(killed, e2eWait)
	t.Logf("%s restarted and caught up", killed.id)

	// A follower loses its data dir and rejoins under the same id.
	leader := c.waitHealthy(e2eWait)
	var wiped *procNode
	for _, n := range c.nodes {
		if n != leader && n != killed {
			wiped = n
		}
	}
	wiped.kill()
	if err := os.RemoveAll(wiped.dir); err != nil {
		t.Fatal(err)
	}
	before := countAcked(w.snapshot())
	waitUntil(t, "writes with a node down", func() bool { return countAcked(w.snapshot()) >= before+300 })
	wiped.start()
	c.waitCaughtUp(wiped, e2eWait)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	st, err := wiped.status(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s wiped, rejoined and caught up (applied %d, last snapshot %d)", wiped.id, st.AppliedIndex, st.LastSnapshotIndex)
	if soak() {
		time.Sleep(20 * time.Second)
	}

	acks := w.halt()
	l1 := listL1(t, admin)
	n := checkExactlyOnce(t, admin, acks, l1)
	t.Logf("%d writes acknowledged, %d outcomes unknown, %d requests on L1", n, len(acks)-n, len(l1))
	checkWatchers(t, ws, l1, 1)
	checkNodesAgree(t, c, len(l1))
	measure(t, t0, reconnected, acks, l1, ws)
}

// TestClusterRollingRestartE2E: each of three nodes in turn stops
// (SIGTERM: a leader hands over first) and starts again on its data dir
// while writers and agents keep going; nothing is lost or repeated.
func TestClusterRollingRestartE2E(t *testing.T) {
	c := startProcCluster(t, 3)
	leader := c.waitHealthy(e2eWait)
	admin := e2eDial(t, c.addrs(leader), "admin", "", e2eAdminToken)
	agents := []string{"a1", "a2", "a3"}
	tokens, fbToken := e2eSetup(t, admin, agents)
	var ws []*watcher
	for i, a := range agents {
		ws = append(ws, watch(a, e2eDial(t, c.addrs(c.nodes[i]), "agent", a, tokens[a])))
	}
	w := startWriters(t, c, fbToken, 4, 2*time.Millisecond)
	rounds := 1
	if soak() {
		rounds = 3
	}
	for round := range rounds {
		// Followers first, the leader last: one handoff per round.
		order := slices.Clone(c.nodes)
		l := c.waitHealthy(e2eWait)
		slices.SortStableFunc(order, func(a, b *procNode) int {
			switch {
			case a == l:
				return 1
			case b == l:
				return -1
			}
			return 0
		})
		for _, n := range order {
			before := countAcked(w.snapshot())
			waitUntil(t, "writes before the restart", func() bool { return countAcked(w.snapshot()) >= before+200 })
			n.stop()
			t.Logf("round %d: stopped %s", round+1, n.id)
			n.start()
			c.waitCaughtUp(n, e2eWait)
			c.waitHealthy(e2eWait)
			t.Logf("round %d: %s back and caught up", round+1, n.id)
		}
	}
	before := countAcked(w.snapshot())
	waitUntil(t, "writes after the restarts", func() bool { return countAcked(w.snapshot()) >= before+200 })
	acks := w.halt()
	l1 := listL1(t, admin)
	n := checkExactlyOnce(t, admin, acks, l1)
	t.Logf("%d writes acknowledged, %d outcomes unknown, %d requests on L1", n, len(acks)-n, len(l1))
	checkWatchers(t, ws, l1, -1)
	checkNodesAgree(t, c, len(l1))
}

// TestClusterFailoverTimingE2E measures leader failover over several runs
// and logs the medians. It runs only with SWITCHBOARD_FAILOVER_RUNS=N:
//
//	SWITCHBOARD_FAILOVER_RUNS=5 go test -run TestClusterFailoverTimingE2E -v ./cmd/switchboard
//
// SWITCHBOARD_FAILOVER_FLAGS adds serve flags, e.g. "--heartbeat-timeout
// 500ms".
func TestClusterFailoverTimingE2E(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("SWITCHBOARD_FAILOVER_RUNS"))
	if runs <= 0 {
		t.Skip("set SWITCHBOARD_FAILOVER_RUNS=N to measure failover N times")
	}
	flags := strings.Fields(os.Getenv("SWITCHBOARD_FAILOVER_FLAGS"))
	var stamps, acksT, moved, agents []time.Duration
	for i := range runs {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
			c := startProcCluster(t, 3, flags...)
			admin, ws, w, _, t0, reconnected := killScenario(t, c)
			acks := w.halt()
			l1 := listL1(t, admin)
			m := measure(t, t0, reconnected, acks, l1, ws)
			stamps, acksT = append(stamps, m.firstStamp), append(acksT, m.firstAck)
			moved, agents = append(moved, m.reconnected), append(agents, m.agentsAlive)
		})
	}
	if len(stamps) == 0 {
		return
	}
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2].Round(time.Millisecond)
	}
	worst := func(ds []time.Duration) time.Duration { return slices.Max(ds).Round(time.Millisecond) }
	t.Logf("failover over %d runs (median), serve flags %q: first command stamped by the new leader %v, first acknowledged %v; all agents reconnected %v, received the new leader's first events %v",
		len(stamps), flags, med(stamps), med(acksT), med(moved), med(agents))
	t.Logf("failover over %d runs (worst): first command stamped by the new leader %v, first acknowledged %v; all agents reconnected %v, received the new leader's first events %v",
		len(stamps), worst(stamps), worst(acksT), worst(moved), worst(agents))
	t.Logf("  stamped: %v\n  acknowledged: %v\n  reconnected: %v\n  resumed: %v", stamps, acksT, moved, agents)
}

// checkNodesAgree reads L1 with a linearizable read on every node.
func checkNodesAgree(t *testing.T, c *procCluster, want int) {
	t.Helper()
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		cl := e2eDial(t, []string{n.client}, "admin", "", e2eAdminToken)
		if got := len(listL1(t, cl)); got != want {
			t.Errorf("%s holds %d requests on L1, want %d", n.id, got, want)
		}
		cl.Close()
	}
}

func countAcked(acks []ack) int {
	n := 0
	for _, a := range acks {
		if a.err == nil {
			n++
		}
	}
	return n
}

// waitUntil polls cond until it holds, failing the test after e2eWait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, e2eWait, cond, "%s", what)
}

// ctlRun runs `switchboard ctl` against addrs and returns its output.
func ctlRun(t *testing.T, addrs []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(e2eBinary(t), append([]string{"ctl", "--addr", strings.Join(addrs, ","), "--token", e2eAdminToken}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestClusterCtlBackupRestoreE2E: the ctl cluster verbs against real
// processes, then a backup with `ctl snapshot save` restored into a new
// cluster with `serve --bootstrap --restore`, where the old agent token
// still logs in and a second node joins.
func TestClusterCtlBackupRestoreE2E(t *testing.T) {
	c := startProcCluster(t, 3)
	leader := c.waitHealthy(e2eWait)
	all := c.addrs(leader)
	admin := e2eDial(t, all, "admin", "", e2eAdminToken)
	tokens, _ := e2eSetup(t, admin, []string{"a1"})

	// Every member registers its client address once it is in.
	var out string
	waitUntil(t, "every member in cluster status", func() bool {
		out = ctlRun(t, all, "cluster", "status")
		for _, n := range c.nodes {
			if !strings.Contains(out, n.id) || !strings.Contains(out, n.client) || strings.Contains(out, "unreachable") {
				return false
			}
		}
		return true
	})
	if !strings.Contains(out, "leader "+leader.id) {
		t.Fatalf("cluster status does not name the leader %s:\n%s", leader.id, out)
	}
	var target *procNode
	for _, n := range c.nodes {
		if n != leader {
			target = n
		}
	}
	out = ctlRun(t, all, "cluster", "transfer-leadership", target.id)
	if !strings.Contains(out, "to "+target.id) {
		t.Fatalf("transfer-leadership: %s", out)
	}
	if l := c.waitHealthy(e2eWait); l != target {
		t.Fatalf("leader %s after the transfer, want %s", l.id, target.id)
	}
	out = ctlRun(t, all, "snapshot", "take")
	if !strings.Contains(out, "snapshot") {
		t.Fatalf("snapshot take: %s", out)
	}
	backup := filepath.Join(t.TempDir(), "backup.snap")
	out = ctlRun(t, all, "snapshot", "save", backup)
	if !strings.Contains(out, "saved snapshot") {
		t.Fatalf("snapshot save: %s", out)
	}
	// Remove a follower; the other two carry on.
	var gone *procNode
	for _, n := range c.nodes {
		if n != target && gone == nil {
			gone = n
		}
	}
	ctlRun(t, all, "cluster", "remove", gone.id)
	gone.stop()
	if out := ctlRun(t, c.addrs(target), "cluster", "status"); strings.Contains(out, gone.id) || !strings.Contains(out, "2 members") {
		t.Fatalf("after removing %s:\n%s", gone.id, out)
	}
	ctlRun(t, c.addrs(target), "create", "list", "after-backup")

	// A new cluster from the backup: one node bootstraps from it, one joins.
	root := t.TempDir()
	n1 := newProcNode(t, "r1", root, nil)
	n1.args = []string{"--bootstrap", "--restore", backup}
	n2 := newProcNode(t, "r2", root, nil)
	n2.args = []string{"--join", n1.client}
	r := &procCluster{t: t, nodes: []*procNode{n1, n2}}
	t.Cleanup(func() {
		for _, n := range r.nodes {
			n.kill()
		}
		if t.Failed() {
			for _, n := range r.nodes {
				n.dumpLog(40)
			}
		}
	})
	n1.start()
	r.waitHealthy(e2eWait)
	n2.start()
	r.waitCaughtUp(n2, e2eWait)
	out = ctlRun(t, []string{n2.client}, "get", "lists")
	if !strings.Contains(out, "L1") || strings.Contains(out, "after-backup") {
		t.Fatalf("lists of the restored cluster:\n%s", out)
	}
	if out := ctlRun(t, []string{n2.client}, "cluster", "status"); !strings.Contains(out, "2 members") || strings.Contains(out, "node1") {
		t.Fatalf("restored cluster status:\n%s", out)
	}
	a := e2eDial(t, []string{n2.client}, "agent", "a1", tokens["a1"])
	var v api.StreamView
	e2eCall(t, a, api.QueryView, nil, &v)
	if len(v.Lists) != 1 || v.Lists[0].List != "L1" {
		t.Fatalf("a1's view in the restored cluster: %+v", v)
	}
}
