package node

import (
	"bufio"
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/testutil"
)

// Waits are sized for a slow, loaded two-core CI machine under -race.
const (
	leaderWait = 30 * time.Second
	applyWait  = 30 * time.Second
)

// testLogWriter sends log lines to t.Log, and drops them once the test has
// finished (Raft goroutines may log while the node closes).
type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// testLogger returns a logger writing to t.Log at debug level.
func testLogger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	// Registered before any node's Close, so it runs after them.
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, cond, "condition not met")
}

// stateOf returns the FSM's state encoded by State.Marshal with Index
// zeroed, and that Index. Index is left out of the bytes because Raft
// appends its own entries (a no-op at each election) that advance it
// without changing the domain state. The bytes go through one decode so
// that result values compare in the same (decoded) form on both sides.
func stateOf(t testing.TB, f *cluster.FSM) ([]byte, uint64) {
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
