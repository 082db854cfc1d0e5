package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestCtlClusterStatusFiguresE2E: `ctl cluster status` against real
// processes. Healthy, every LAG is the header's commit index minus the
// row's APPLIED. With the leader and another node killed, the survivor
// shows the leader as unknown, a commit index that is not 0, and each dead
// node's error in the ERROR column, not under VERSION.
func TestCtlClusterStatusFiguresE2E(t *testing.T) {
	c := startProcCluster(t, 3)
	leader := c.waitHealthy(e2eWait)
	all := c.addrs(leader)
	var cs clusterJSON
	waitUntil(t, "every member reachable in cluster status", func() bool {
		cs = clusterStatusJSON(t, all)
		for _, n := range cs.Nodes {
			if !n.Reachable {
				return false
			}
		}
		return len(cs.Nodes) == 3
	})
	if cs.Leader != leader.id || cs.CommitIndex == 0 {
		t.Fatalf("healthy cluster status: %+v", cs)
	}
	for _, n := range cs.Nodes {
		if n.Applied == nil || n.Lag == nil || *n.Lag != cs.CommitIndex-*n.Applied || n.Error != "" {
			t.Errorf("%s: applied %v lag %v error %q with commit index %d", n.ID, n.Applied, n.Lag, n.Error, cs.CommitIndex)
		}
	}
	out := ctlRun(t, all, "cluster", "status")
	if !strings.Contains(out, "MAX LEVEL  ERROR") {
		t.Fatalf("no ERROR column:\n%s", out)
	}
	commit := headerCommit(t, out)
	for _, n := range c.nodes {
		r := row(t, out, n.id)
		if num(t, r["LAG"]) != commit-num(t, r["APPLIED"]) || r["ERROR"] != "-" {
			t.Errorf("%s: LAG is not commit index %d - APPLIED, or an error: %v\n%s", n.id, commit, r, out)
		}
	}

	// Kill the leader and one follower: the survivor has no leader.
	var survivor *procNode
	for _, n := range c.nodes {
		if n == leader || survivor != nil {
			n.kill()
			continue
		}
		survivor = n
	}
	waitUntil(t, "the survivor reports no leader", func() bool {
		out = ctlRun(t, []string{survivor.client}, "cluster", "status")
		return strings.HasPrefix(out, "leader unknown, ")
	})
	if headerCommit(t, out) == 0 {
		t.Errorf("commit index 0 with the leader down:\n%s", out)
	}
	t.Logf("cluster status on the survivor:\n%s", out)
	for _, n := range c.nodes {
		r := row(t, out, n.id)
		if n == survivor {
			if r["ERROR"] != "-" || r["STATE"] == "unreachable" {
				t.Errorf("survivor %s: %v\n%s", n.id, r, out)
			}
			continue
		}
		if r["STATE"] != "unreachable" || r["VERSION"] != "-" || r["ERROR"] == "" || r["ERROR"] == "-" {
			t.Errorf("dead %s: %v\n%s", n.id, r, out)
		}
	}
}

// clusterJSON is the part of `ctl cluster status -o json` the tests read.
type clusterJSON struct {
	Leader      string `json:"leader"`
	CommitIndex uint64 `json:"commit_index"`
	Nodes       []struct {
		ID        string  `json:"id"`
		Reachable bool    `json:"reachable"`
		Error     string  `json:"error"`
		Applied   *uint64 `json:"applied"`
		Lag       *uint64 `json:"lag"`
	} `json:"nodes"`
}

func clusterStatusJSON(t *testing.T, addrs []string) clusterJSON {
	t.Helper()
	out := ctlRun(t, addrs, "cluster", "status", "-o", "json")
	var cs clusterJSON
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		t.Fatalf("cluster status -o json: %v\n%s", err, out)
	}
	return cs
}

// headerCommit reads the commit index from cluster status's header line.
func headerCommit(t *testing.T, out string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`commit index (\d+),`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no commit index in the header:\n%s", out)
	}
	return num(t, m[1])
}
