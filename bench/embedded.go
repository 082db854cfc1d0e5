package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/switchboard/switchboard/cluster"
)

// embedded is a cluster the bench runs in its own process.
type embedded struct {
	servers []*cluster.Server
	dir     string
	rmDir   bool
	token   string
}

// startEmbedded starts an n-node cluster on loopback with its data under
// parent (a new temporary directory if parent is ""), with group commit
// configured as batch. It is what `switchboard serve` runs, with the default
// Raft configuration: BoltDB log with fsync, BatchApplyCh, MaxAppendEntries
// 1024.
func startEmbedded(ctx context.Context, n int, parent string, batch cluster.BatchConfig) (*embedded, error) {
	if n != 1 {
		// cluster has no join API yet: a node can only bootstrap a
		// cluster of its own. Multi-node embedded runs come with it.
		return nil, fmt.Errorf("%w: --embedded %d: this build of cluster can only bootstrap single-node clusters (no join yet); use --embedded 1, or --addr with a running cluster", ErrConfig, n)
	}
	e := &embedded{token: rand.Text()}
	var err error
	if parent == "" {
		e.dir, err = os.MkdirTemp("", "switchboard-bench-*")
		e.rmDir = true
	} else {
		e.dir, err = os.MkdirTemp(parent, "bench-*")
		e.rmDir = true
	}
	if err != nil {
		return nil, fmt.Errorf("bench: data dir: %w", err)
	}
	for i := range n {
		raftAddr, err := freePort()
		if err != nil {
			e.close()
			return nil, err
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		srv, err := cluster.Start(sctx, cluster.ServerConfig{
			Raft: cluster.Config{
				NodeID:    fmt.Sprintf("node%d", i+1),
				RaftAddr:  raftAddr,
				DataDir:   filepath.Join(e.dir, fmt.Sprintf("node%d", i+1)),
				Bootstrap: i == 0,
			},
			ClientAddr: "127.0.0.1:0",
			AdminToken: e.token,
			Version:    "bench",
		})
		cancel()
		if err != nil {
			e.close()
			return nil, fmt.Errorf("bench: start node %d: %w", i+1, err)
		}
		srv.Service.SetBatch(batch)
		e.servers = append(e.servers, srv)
	}
	return e, nil
}

// addrs returns the nodes' client addresses.
func (e *embedded) addrs() []string {
	out := make([]string, len(e.servers))
	for i, s := range e.servers {
		out[i] = s.ClientAddr()
	}
	return out
}

// batchStats sums the nodes' group-commit counters.
func (e *embedded) batchStats() cluster.BatchStats {
	var st cluster.BatchStats
	for _, s := range e.servers {
		b := s.Service.BatchStats()
		st.Entries += b.Entries
		st.Commands += b.Commands
	}
	return st
}

// leader returns the node that leads, or nil.
func (e *embedded) leader() *cluster.Server {
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
	return errors.Join(errs...)
}

// freePort returns a loopback address with a port free right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
