package cluster

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testutil"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// Waits are sized for a slow, loaded two-core CI machine under -race.
const (
	leaderWait = 30 * time.Second
	applyWait  = 30 * time.Second
)

// testLogger returns a logger writing to t.Log at debug level.
func testLogger(t testing.TB) *slog.Logger { return testutil.Logger(t) }

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, cond, "condition not met")
}

// testConfig is a single-node config on an ephemeral loopback port with
// short timeouts: a lone voter cannot lose leadership, so fast is safe.
func testConfig(t testing.TB, dir string) Config {
	return Config{
		NodeID:           "n1",
		RaftAddr:         "127.0.0.1:0",
		DataDir:          dir,
		Bootstrap:        true,
		HeartbeatTimeout: 200 * time.Millisecond,
		Logger:           testLogger(t),
	}
}

// openNode opens a node over f and closes it when the test ends.
func openNode(t testing.TB, cfg Config, f *FSM) *Node {
	t.Helper()
	n, err := New(cfg, f)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := n.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

// openLeader opens a node and waits until it leads.
func openLeader(t testing.TB, cfg Config, f *FSM) *Node {
	t.Helper()
	n := openNode(t, cfg, f)
	ctx, cancel := context.WithTimeout(context.Background(), leaderWait)
	defer cancel()
	if err := n.WaitForLeader(ctx); err != nil {
		t.Fatalf("WaitForLeader: %v", err)
	}
	waitFor(t, leaderWait, n.IsLeader)
	return n
}

// admin returns an admin command.
func admin(op fsm.Op, args any) *fsm.Command {
	return &fsm.Command{Op: op, By: api.Principal{Role: api.RoleAdmin, ID: "admin"}, Args: args}
}

// createMRD returns an admin command creating MRD id.
func createMRD(id string) *fsm.Command {
	return admin(fsm.OpCreateMRD, &api.CreateMRDArgs{ID: id})
}

// propose proposes cmds and fails the test on a commit error.
func propose(t testing.TB, n *Node, cmds ...*fsm.Command) *ApplyResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), applyWait)
	defer cancel()
	resp, err := n.Propose(ctx, cmds...)
	if err != nil {
		t.Fatalf("Propose: %v", err)
	}
	if len(resp.Results) != len(cmds) {
		t.Fatalf("Propose: %d results for %d commands", len(resp.Results), len(cmds))
	}
	return resp
}

// mustOK fails the test unless every result succeeded.
func mustOK(t testing.TB, resp *ApplyResponse) {
	t.Helper()
	for i, r := range resp.Results {
		if r.Err != nil {
			t.Fatalf("result %d of entry %d: %v", i, resp.Index, r.Err)
		}
	}
}

// stateOf returns the FSM's state encoded by State.Marshal with Index
// zeroed, and that Index. Index is left out of the bytes because Raft
// appends its own entries (a no-op at each election) that advance it
// without changing the domain state. The bytes go through one decode so
// that result values compare in the same (decoded) form on both sides.
func stateOf(t testing.TB, f *FSM) ([]byte, uint64) {
	t.Helper()
	var (
		raw []byte
		err error
	)
	f.Read(func(s *fsm.State, _ uint64) { raw, err = s.Marshal() })
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	st, err := fsm.ReadState(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("ReadState: %v", err)
	}
	index := st.Index
	st.Index = 0
	out, err := st.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return out, index
}

// recordingSink counts the FSM's Publish and Reset calls.
type recordingSink struct {
	mu        sync.Mutex
	published int
	resets    []uint64
}

func (s *recordingSink) Publish(uint64, []fsm.Event) {
	s.mu.Lock()
	s.published++
	s.mu.Unlock()
}

func (s *recordingSink) Reset(index uint64) {
	s.mu.Lock()
	s.resets = append(s.resets, index)
	s.mu.Unlock()
}

func (s *recordingSink) Resets() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.resets...)
}
