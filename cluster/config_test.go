package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestNewValidates(t *testing.T) {
	f := NewFSM(nil, nil)
	good := func() Config { return Config{NodeID: "n1", DataDir: t.TempDir()} }
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no node id", func(c *Config) { c.NodeID = "" }, "NodeID"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "DataDir"},
		{"bad addr", func(c *Config) { c.RaftAddr = "nohostport" }, "RaftAddr"},
		{"wildcard without advertise", func(c *Config) { c.RaftAddr = "0.0.0.0:7401" }, "AdvertiseAddr"},
		{"advertise without port", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }, "AdvertiseAddr"},
		{"lease above heartbeat", func(c *Config) {
			c.HeartbeatTimeout, c.LeaderLeaseTimeout = time.Second, 2*time.Second
		}, "LeaderLeaseTimeout"},
		{"election below heartbeat", func(c *Config) {
			c.HeartbeatTimeout, c.ElectionTimeout = time.Second, 500*time.Millisecond
		}, "ElectionTimeout"},
		{"too many append entries", func(c *Config) { c.MaxAppendEntries = 4096 }, "MaxAppendEntries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.mutate(&cfg)
			_, err := New(cfg, f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error about %s", err, tc.want)
			}
		})
	}
	if _, err := New(good(), nil); err == nil {
		t.Fatal("New with a nil FSM succeeded")
	}
	cfg := good()
	cfg.RaftAddr, cfg.AdvertiseAddr = "0.0.0.0:7401", "10.0.0.1:7401"
	if _, err := New(cfg, f); err != nil {
		t.Fatalf("wildcard bind with advertise: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{NodeID: "n1", DataDir: "d"}.withDefaults()
	if c.RaftAddr != DefaultRaftAddr || c.HeartbeatTimeout != DefaultHeartbeatTimeout ||
		c.ElectionTimeout != DefaultHeartbeatTimeout || c.LeaderLeaseTimeout != DefaultHeartbeatTimeout ||
		c.MaxAppendEntries != 1024 || c.Logger == nil {
		t.Fatalf("defaults: %+v", c)
	}
	rc := c.raftConfig(newHCLogger(c.Logger, "raft"))
	if !rc.BatchApplyCh || rc.MaxAppendEntries != 1024 || rc.LocalID != "n1" {
		t.Fatalf("raft config: %+v", rc)
	}
	if err := raft.ValidateConfig(rc); err != nil {
		t.Fatalf("default raft config invalid: %v", err)
	}

	// A shorter heartbeat drags the dependent defaults along, so the
	// result stays valid.
	c = Config{NodeID: "n1", DataDir: "d", HeartbeatTimeout: 100 * time.Millisecond}.withDefaults()
	if c.ElectionTimeout != 100*time.Millisecond || c.LeaderLeaseTimeout != 100*time.Millisecond {
		t.Fatalf("derived timeouts: election %v, lease %v", c.ElectionTimeout, c.LeaderLeaseTimeout)
	}

	// Tune has the last word.
	c.Tune = func(rc *raft.Config) { rc.BatchApplyCh = false }
	if c.raftConfig(newHCLogger(c.Logger, "raft")).BatchApplyCh {
		t.Fatal("Tune not applied")
	}

	// An empty host binds loopback.
	c.RaftAddr = ":0"
	if bind, adv, err := c.addrs(); err != nil || bind != "127.0.0.1:0" || adv != nil {
		t.Fatalf("addrs(:0) = %q, %v, %v", bind, adv, err)
	}
}
