package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
)

// row returns the table row of node id, split into columns.
func row(t *testing.T, table, id string) map[string]string {
	t.Helper()
	lines := strings.Split(table, "\n")
	var header []int // start of each column
	var names []string
	for i, l := range lines {
		if strings.HasPrefix(l, "NODE ") {
			for _, m := range regexp.MustCompile(`[A-Z]+( [A-Z]+)?`).FindAllStringIndex(l, -1) {
				header = append(header, m[0])
				names = append(names, l[m[0]:m[1]])
			}
			lines = lines[i+1:]
			break
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, id+" ") {
			cols := map[string]string{}
			for k, start := range header {
				end := len(l)
				if k+1 < len(header) {
					end = min(header[k+1], len(l))
				}
				if start < len(l) {
					cols[names[k]] = strings.TrimSpace(l[start:end])
				}
			}
			return cols
		}
	}
	t.Fatalf("no row for %s in\n%s", id, table)
	return nil
}

func num(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

// TestClusterViewFigures: the figures of the issue — COMMIT 18, APPLIED 16
// with LAG 0 — become consistent: APPLIED is what LAG is measured from.
func TestClusterViewFigures(t *testing.T) {
	cs := api.ClusterStatus{Leader: "n1", Term: 2, CommitIndex: 18, Nodes: []api.ClusterNode{
		{ID: "n1", Suffrage: "Voter", Leader: true, Reachable: true, ClientAddr: "c1", RaftAddr: "r1",
			Status: &api.NodeStatus{State: "Leader", Term: 2, CommitIndex: 18, AppliedIndex: 16, RaftAppliedIndex: 18, LastLogIndex: 18, Version: "v1", FeatureLevel: 1, MaxFeatureLevel: 2}},
		{ID: "n2", Suffrage: "Voter", Reachable: true, ClientAddr: "c2", RaftAddr: "r2",
			Status: &api.NodeStatus{State: "Follower", Term: 2, CommitIndex: 18, AppliedIndex: 14, RaftAppliedIndex: 15, LastLogIndex: 18, Version: "v1", FeatureLevel: 1, MaxFeatureLevel: 1}},
		{ID: "n3", Suffrage: "Voter", ClientAddr: "c3", RaftAddr: "r3", Error: "dial tcp c3: connect: connection refused"},
	}}
	v, err := newClusterView(cs)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	v.render(&out)
	table := out.String()
	if !strings.HasPrefix(table, "leader n1, term 2, commit index 18, 3 members, feature level 1\n") {
		t.Fatalf("header:\n%s", table)
	}
	// n2 runs an older build: it holds the cluster's level at 1.
	for id, want := range map[string]string{"n1": "2", "n2": "1", "n3": "-"} {
		if r := row(t, table, id); r["MAX LEVEL"] != want {
			t.Errorf("%s: MAX LEVEL %q, want %q\n%s", id, r["MAX LEVEL"], want, table)
		}
	}
	for _, id := range []string{"n1", "n2"} {
		r := row(t, table, id)
		if lag := num(t, r["LAG"]); lag != 18-num(t, r["APPLIED"]) {
			t.Errorf("%s: LAG %d is not commit index 18 - APPLIED %s\n%s", id, lag, r["APPLIED"], table)
		}
		if r["ERROR"] != "-" || r["VERSION"] != "v1" {
			t.Errorf("%s: VERSION %q ERROR %q", id, r["VERSION"], r["ERROR"])
		}
	}
	if r := row(t, table, "n2"); r["APPLIED"] != "15" || r["LAG"] != "3" {
		t.Errorf("n2: APPLIED %s LAG %s, want 15 and 3\n%s", r["APPLIED"], r["LAG"], table)
	}
	r := row(t, table, "n3")
	if r["STATE"] != "unreachable" || r["VERSION"] != "-" || r["ERROR"] != "dial tcp c3: connect: connection refused" {
		t.Errorf("n3: STATE %q VERSION %q ERROR %q\n%s", r["STATE"], r["VERSION"], r["ERROR"], table)
	}

	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Leader      string `json:"leader"`
		CommitIndex uint64 `json:"commit_index"`
		Nodes       []struct {
			ID      string         `json:"id"`
			Error   string         `json:"error"`
			Applied *uint64        `json:"applied"`
			Lag     *uint64        `json:"lag"`
			Status  map[string]any `json:"status"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	for _, n := range j.Nodes {
		switch {
		case n.ID == "n3":
			if n.Applied != nil || n.Lag != nil || n.Status != nil || n.Error == "" {
				t.Errorf("unreachable n3 in JSON: %s", b)
			}
		case n.Lag == nil || n.Applied == nil || *n.Lag != j.CommitIndex-*n.Applied || n.Status["raft_applied_index"] == nil:
			t.Errorf("%s in JSON: %s", n.ID, b)
		}
	}
}

// TestClusterViewLeaderDown: a cluster whose leader is gone shows the
// leader as unknown and still the highest commit index known, not 0, and
// lags measured from it.
func TestClusterViewLeaderDown(t *testing.T) {
	cs := api.ClusterStatus{Leader: "", Term: 3, CommitIndex: 0, Nodes: []api.ClusterNode{
		{ID: "n1", Suffrage: "Voter", Error: "i/o timeout"},
		{ID: "n2", Suffrage: "Voter", Reachable: true, Status: &api.NodeStatus{State: "Candidate", Term: 4, CommitIndex: 18, AppliedIndex: 18, RaftAppliedIndex: 18}},
		{ID: "n3", Suffrage: "Voter", Reachable: true, Status: &api.NodeStatus{State: "Follower", Term: 3, CommitIndex: 17, AppliedIndex: 12, RaftAppliedIndex: 16}},
	}}
	v, err := newClusterView(cs)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	v.render(&out)
	table := out.String()
	if !strings.HasPrefix(table, "leader unknown, term 4, commit index 18, 3 members") {
		t.Fatalf("header:\n%s", table)
	}
	if r := row(t, table, "n3"); r["APPLIED"] != "16" || r["LAG"] != "2" {
		t.Errorf("n3: APPLIED %s LAG %s, want 16 and 2\n%s", r["APPLIED"], r["LAG"], table)
	}
	if r := row(t, table, "n1"); r["ERROR"] != "i/o timeout" {
		t.Errorf("n1: ERROR %q\n%s", r["ERROR"], table)
	}

	// A leader known but not answering is said so.
	cs.Leader = "n1"
	cs.Nodes[0].Leader = true
	v, _ = newClusterView(cs)
	out.Reset()
	v.render(&out)
	if !strings.HasPrefix(out.String(), "leader n1 (unreachable), ") {
		t.Errorf("header with an unreachable leader:\n%s", out.String())
	}
}

// TestRenderStatus: `ctl status` shows the same APPLIED as cluster status
// and an unknown leader as unknown, not as an empty cell.
func TestRenderStatus(t *testing.T) {
	var out bytes.Buffer
	renderStatus(&out, api.NodeStatus{Node: "n2", State: "Candidate", Term: 4, CommitIndex: 18, AppliedIndex: 16, RaftAppliedIndex: 18,
		LastLogIndex: 19, ClientAddr: "c2", Version: "v1"})
	r := row(t, out.String(), "n2")
	if r["LEADER"] != "unknown" || r["APPLIED"] != "18" || r["VERSION"] != "v1" {
		t.Fatalf("row %v of\n%s", r, out.String())
	}
}
