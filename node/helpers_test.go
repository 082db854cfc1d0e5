package node

import (
	"bufio"
	"bytes"
	"log/slog"
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

// testLogger returns a logger writing to t.Log at debug level.
func testLogger(t testing.TB) *slog.Logger { return testutil.Logger(t) }

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
