package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// oldBuild makes the real binary act as a build of feature level 1 (the
// test-only knob of serve): how a mixed-version cluster is run here.
const oldBuild = "SWITCHBOARD_TEST_MAX_FEATURE_LEVEL=1"

// levels returns the feature level the node's state holds and the one its
// build supports.
func (n *procNode) levels(t *testing.T) (active, max uint32, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := n.status(ctx)
	return st.FeatureLevel, st.MaxFeatureLevel, err
}

// deleteConnector tries delete_connector (a level-2 op) through addrs.
func deleteConnector(t *testing.T, addrs []string, id string) error {
	t.Helper()
	admin := e2eDial(t, addrs, "admin", "", e2eAdminToken)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return admin.Call(ctx, api.OpDeleteConnector, api.IDArgs{ID: id}, nil)
}

// TestRollingUpgradeRaisesFeatureLevelE2E: three processes of an "old"
// build (feature level 1) are upgraded one by one, followers first. While
// any node runs the old build, the cluster stays at level 1 and the
// level-2 op is refused with feature_not_enabled on every node alike; once
// the last node runs the new build, the leader raises the level and the op
// works. A node downgraded afterwards meets the raise in the log and stops
// with a fatal error instead of applying the log differently.
func TestRollingUpgradeRaisesFeatureLevelE2E(t *testing.T) {
	c := startProcClusterEnv(t, 3, []string{oldBuild})
	leader := c.waitHealthy(e2eWait)
	admin := e2eDial(t, c.addrs(leader), "admin", "", e2eAdminToken)
	e2eSetup(t, admin, []string{"a1"})
	for _, id := range []string{"x1", "x2", "x3"} {
		e2eCall(t, admin, "create_connector", api.CreateConnectorArgs{ID: id, Channels: []string{"C1"}}, nil)
	}
	for _, n := range c.nodes {
		if active, max, err := n.levels(t); err != nil || active != fsm.Level1 || max != fsm.Level1 {
			t.Fatalf("%s (old build): level %d of %d (%v), want 1 of 1", n.id, active, max, err)
		}
	}

	// Followers first, the leader last.
	order := []*procNode{}
	for _, n := range c.nodes {
		if n != leader {
			order = append(order, n)
		}
	}
	order = append(order, leader)
	for i, n := range order {
		n.stop()
		n.env = nil // the new build
		n.start()
		c.waitCaughtUp(n, e2eWait)
		c.waitHealthy(e2eWait)
		if i == len(order)-1 {
			break
		}
		// Still one old build: the level holds for longer than a pass of
		// the leader's upkeep (1 s), and the new op is refused wherever it
		// is sent.
		for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			for _, m := range c.nodes {
				if active, _, err := m.levels(t); err != nil || active != fsm.Level1 {
					t.Fatalf("after upgrading %d of 3: %s is at level %d (%v), want 1", i+1, m.id, active, err)
				}
			}
		}
		for _, m := range c.nodes {
			err := deleteConnector(t, []string{m.client}, "x1")
			if !errors.Is(err, &api.Error{Code: api.CodeFeatureNotEnabled}) {
				t.Fatalf("after upgrading %d of 3: delete_connector through %s: %v, want feature_not_enabled", i+1, m.id, err)
			}
		}
		t.Logf("upgraded %s (%d of 3): level 1 holds, delete_connector refused", n.id, i+1)
	}
	waitUntil(t, "the leader to raise the level once every node runs the new build", func() bool {
		for _, n := range c.nodes {
			if active, max, err := n.levels(t); err != nil || active != fsm.MaxLevel || max != fsm.MaxLevel {
				return false
			}
		}
		return true
	})
	if err := deleteConnector(t, c.addrs(c.nodes[0]), "x1"); err != nil {
		t.Fatalf("delete_connector at level %d: %v", fsm.MaxLevel, err)
	}
	out := ctlRun(t, c.addrs(c.nodes[0]), "cluster", "status")
	if !strings.Contains(out, fmt.Sprintf("feature level %d", fsm.MaxLevel)) {
		t.Errorf("cluster status does not show the raised level:\n%s", out)
	}

	// A downgrade: the old build cannot apply the raise, and stops.
	old := c.nodes[1]
	old.stop()
	old.env = []string{oldBuild}
	old.start()
	select {
	case <-old.exited:
	case <-time.After(e2eWait):
		t.Fatalf("%s (old build) kept running on a log raised to level 2", old.id)
	}
	old.cmd = nil
	logs, err := os.ReadFile(old.log)
	if err != nil {
		t.Fatal(err)
	}
	lastStart := string(logs[strings.LastIndex(string(logs), "=== start"):])
	if !strings.Contains(lastStart, "upgrade this node") || !strings.Contains(lastStart, "feature level") {
		t.Fatalf("%s stopped without saying it needs an upgrade:\n%s", old.id, lastStart)
	}
	t.Logf("%s (old build) stopped:\n%s", old.id, lastStart[max(0, len(lastStart)-1500):])
	// The others carry on.
	c.waitHealthy(e2eWait)
	if err := deleteConnector(t, []string{c.nodes[0].client, c.nodes[2].client}, "x2"); err != nil {
		t.Fatalf("the upgraded nodes after the downgraded one stopped: %v", err)
	}
}
