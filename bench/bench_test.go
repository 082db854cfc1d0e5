package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestShortPullRunIsCorrect runs a few seconds of every available scenario
// on a real single-node cluster (Raft, BoltDB with fsync, TCP) and fails on
// any command error or any missed, duplicated or out-of-order notification.
// It asserts correctness only: speed is not asserted.
func TestShortPullRunIsCorrect(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Embedded = 1
	cfg.DataDir = t.TempDir()
	cfg.Scenarios = []string{ScenarioRaw, ScenarioPull, ScenarioMixed, ScenarioPush, ScenarioMemory}
	cfg.Connectors = []int{4}
	cfg.GroupCommit = []bool{false, true}
	cfg.Duration = 2 * time.Second
	cfg.Warmup = 200 * time.Millisecond
	cfg.Lists, cfg.Agents, cfg.Subs = 3, 12, 2
	cfg.LeaveRatio = 0.3
	cfg.OpenRequests = 500
	if testing.Short() {
		cfg.Scenarios = []string{ScenarioPull}
		cfg.GroupCommit = []bool{true}
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg, &progress)
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Log(table.String())
	if rep.Failed() {
		t.Fatal("the run had errors or notification faults (see the table)")
	}
	for _, c := range rep.Cases {
		if c.Commands == 0 {
			t.Errorf("%s: no command committed", c.Case)
		}
		if c.Scenario == ScenarioRaw {
			continue
		}
		if c.Correctness.Expected == 0 || c.RequestsOpened == 0 {
			t.Errorf("%s: nothing was checked: %d list events owed, %d requests", c.Case, c.Correctness.Expected, c.RequestsOpened)
		}
		if c.Scenario == ScenarioPush && c.Correctness.Expected != c.RequestsOpened {
			t.Errorf("push: %d requests owed an offer, %d opened", c.Correctness.Expected, c.RequestsOpened)
		}
		if c.Scenario != ScenarioMemory && (c.Notifications == 0 || c.NotifLatency.Count == 0) {
			t.Errorf("%s: no notification measured", c.Case)
		}
		if c.Scenario == ScenarioMemory && (c.Memory == nil || c.Memory.SnapshotBytes == 0 || c.RequestsOpened < int64(cfg.OpenRequests)) {
			t.Errorf("memory: %+v, %d requests", c.Memory, c.RequestsOpened)
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), "Token") || !json.Valid(js.Bytes()) {
		t.Fatal("the JSON report is invalid or carries the token")
	}
}

// TestShortPullRunOnThreeNodesIsCorrect is the same check on a three-node
// cluster: agents and connectors are spread over the nodes, so commands are
// forwarded to the leader and every node's event stream is checked.
func TestShortPullRunOnThreeNodesIsCorrect(t *testing.T) {
	if testing.Short() {
		t.Skip("three nodes: not in -short")
	}
	cfg := DefaultConfig()
	cfg.Embedded = 3
	cfg.DataDir = t.TempDir()
	cfg.Scenarios = []string{ScenarioPull}
	cfg.Connectors = []int{6}
	cfg.Duration = 2 * time.Second
	cfg.Warmup = 200 * time.Millisecond
	cfg.Lists, cfg.Agents, cfg.Subs = 3, 12, 2
	cfg.LeaveRatio = 0.3
	// Two supervisors of everything, on different nodes: each must read
	// every list event of every list once (a miss is a fault).
	cfg.Supervisors = 2
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := Run(ctx, cfg, &progress)
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Log(table.String())
	c := rep.Cases[0]
	if rep.Failed() || c.Commands == 0 || c.Correctness.Expected == 0 || c.Nodes != 3 {
		t.Fatalf("3 nodes: failed %v, %d commands, %d list events owed", rep.Failed(), c.Commands, c.Correctness.Expected)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"no target":     func(c *Config) { c.Embedded = 0 },
		"8 nodes":       func(c *Config) { c.Embedded = 8 },
		"addr no token": func(c *Config) { c.Embedded, c.Addrs = 0, []string{"x:1"} },
		"gc off remote": func(c *Config) { c.Embedded, c.Addrs, c.Token, c.GroupCommit = 0, []string{"x:1"}, "t", []bool{false} },
		"memory remote": func(c *Config) {
			c.Embedded, c.Addrs, c.Token, c.Scenarios = 0, []string{"x:1"}, "t", []string{ScenarioMemory}
		},
		"unknown scenario": func(c *Config) { c.Scenarios = []string{"nope"} },
		"zero connectors":  func(c *Config) { c.Connectors = []int{0} },
		"handle > 1":       func(c *Config) { c.Handle = 2 },
		"supervisors < 0":  func(c *Config) { c.Supervisors = -1 },
	} {
		cfg := DefaultConfig()
		mut(&cfg)
		if _, err := Run(context.Background(), cfg, &bytes.Buffer{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAgentStreamCountsDuplicatesAndReordering(t *testing.T) {
	a := &agentConn{}
	for _, seq := range []uint64{10, 11, 11, 15, 12, 16} {
		a.onEvent(&eventHead{seq: seq, kind: []byte("request.created"), req: 1})
	}
	if a.dups.Load() != 1 || a.outOfOrder.Load() != 1 || a.events.Load() != 6 {
		t.Fatalf("dups %d out of order %d events %d, want 1 1 6", a.dups.Load(), a.outOfOrder.Load(), a.events.Load())
	}
}
