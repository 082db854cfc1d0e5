package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/transport"

	"github.com/switchboard/switchboard/cluster"
)

// embedded is a cluster the bench runs in its own process.
type embedded struct {
	servers []*node.Server
	dir     string
	rmDir   bool
	token   string
	// cluster is the embedded cluster's secret for node-to-node
	// calls and Raft streams.
	cluster string
	logFile *os.File // Config.NodeLog, open while the cluster runs
}

// startEmbedded starts an n-node cluster on loopback with its data under
// parent (a new temporary directory if parent is ""), with group commit
// configured as batch and snapshots captured as capture says. It is what `switchboard serve` runs, with the default
// Raft configuration: BoltDB log with fsync, BatchApplyCh, MaxAppendEntries
// 1024.
func startEmbedded(ctx context.Context, n int, cfg *Config, batch cluster.BatchConfig) (*embedded, error) {
	parent := cfg.DataDir
	e := &embedded{token: rand.Text(), cluster: rand.Text()}
	logger := slog.New(slog.DiscardHandler)
	if cfg.NodeLog != "" {
		f, err := os.OpenFile(cfg.NodeLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("bench: node log: %w", err)
		}
		e.logFile = f
		logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	var err error
	if parent == "" {
		e.dir, err = os.MkdirTemp("", "switchboard-bench-*")
	} else {
		e.dir, err = os.MkdirTemp(parent, "bench-*")
	}
	if err != nil {
		return nil, fmt.Errorf("bench: data dir: %w", err)
	}
	e.rmDir = true
	// Node 1 bootstraps; the others join it, as `serve --join` does.
	for i := range n {
		// Port 0 everywhere: the node binds a free port itself and
		// advertises what it bound, so no port is picked, released and
		// then lost to another process (tests run packages in parallel).
		ncfg := node.Config{
			Raft: cluster.Config{
				NodeID:    fmt.Sprintf("node%d", i+1),
				RaftAddr:  "127.0.0.1:0",
				DataDir:   filepath.Join(e.dir, fmt.Sprintf("node%d", i+1)),
				Bootstrap: i == 0,
				// SnapshotCapture: the bench's --snapshot-capture.
				SnapshotCapture: cfg.SnapshotCapture,
				RebuildCommand:  cfg.RebuildCommand,
			},
			ClientAddr:   "127.0.0.1:0",
			AdminToken:   e.token,
			ClusterToken: e.cluster,
			Batch:        batch,
			Version:      "bench",
			Logger:       logger.With("node", fmt.Sprintf("node%d", i+1)),
			// The bench's synthetic agents write far faster than a
			// person; the per-principal limits protect a production node
			// from one, not the engine's throughput under test.
			Transport: transport.ServerConfig{AgentWriteRate: transport.Unlimited, ConnectorWriteRate: transport.Unlimited},
		}
		if i > 0 {
			ncfg.Join = []string{e.servers[0].ClientAddr()}
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		srv, err := node.Start(sctx, ncfg)
		cancel()
		if err != nil {
			e.close()
			return nil, fmt.Errorf("bench: start node %d: %w", i+1, err)
		}
		e.servers = append(e.servers, srv)
	}
	if err := e.waitFormed(ctx, n); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// waitFormed waits until every node is ready and sees all n voters and a
// leader.
func (e *embedded) waitFormed(ctx context.Context, n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for _, s := range e.servers {
		select {
		case <-s.Ready():
		case <-time.After(time.Until(deadline)):
			return fmt.Errorf("bench: node %s not ready: %+v", s.Node.ID(), s.Node.Status())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		formed := true
		for _, s := range e.servers {
			st := s.Node.Status()
			if st.LeaderID == "" || len(st.Members) != n {
				formed = false
			}
		}
		if formed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: the %d nodes did not form one cluster in time: %+v", n, e.servers[0].Node.Status())
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// addrs returns the nodes' client addresses, the leader's first: the
// admin connection goes to the leader, and the connections of connectors
// and agents are spread over every node (i mod n).
func (e *embedded) addrs() []string {
	var out []string
	if l := e.leader(); l != nil {
		out = append(out, l.ClientAddr())
	}
	for _, s := range e.servers {
		if len(out) == 0 || s.ClientAddr() != out[0] {
			out = append(out, s.ClientAddr())
		}
	}
	return out
}

// batchStats sums the nodes' group-commit counters.
func (e *embedded) batchStats() cluster.BatchStats {
	var st cluster.BatchStats
	for _, s := range e.servers {
		b := s.Cluster.BatchStats()
		st.Entries += b.Entries
		st.Commands += b.Commands
	}
	return st
}

// leader returns the node that leads, or nil.
func (e *embedded) leader() *node.Server {
	for _, s := range e.servers {
		if s.Node.IsLeader() {
			return s
		}
	}
	return nil
}

func (e *embedded) close() error {
	var errs []error
	for _, s := range e.servers {
		errs = append(errs, s.Close())
	}
	if e.rmDir {
		errs = append(errs, os.RemoveAll(e.dir))
	}
	if e.logFile != nil {
		errs = append(errs, e.logFile.Close())
	}
	return errors.Join(errs...)
}
