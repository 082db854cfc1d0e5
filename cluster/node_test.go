package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// TestBootstrapProposeAndReject runs with the default timeouts, so it also
// checks that they elect a lone node on this machine.
func TestBootstrapProposeAndReject(t *testing.T) {
	f := NewFSM(nil, testLogger(t))
	n := openLeader(t, Config{
		NodeID:    "n1",
		RaftAddr:  "127.0.0.1:0",
		DataDir:   t.TempDir(),
		Bootstrap: true,
		Logger:    testLogger(t),
	}, f)

	if id, addr := n.Leader(); id != "n1" || addr != n.Addr() || addr == "" {
		t.Fatalf("Leader() = %q, %q; want n1, %q", id, addr, n.Addr())
	}
	st := n.Status()
	if st.ID != "n1" || st.State != raft.Leader.String() || st.Term == 0 || st.LeaderID != "n1" || st.RaftAddr != n.Addr() {
		t.Fatalf("Status() = %+v", st)
	}
	want := []Member{{ID: "n1", Address: n.Addr(), Suffrage: "Voter", Leader: true}}
	if fmt.Sprint(st.Members) != fmt.Sprint(want) {
		t.Fatalf("Members = %+v, want %+v", st.Members, want)
	}

	cmd := createMRD("social")
	before := time.Now().UnixNano()
	resp := propose(t, n, cmd)
	mustOK(t, resp)
	if cmd.Time < before {
		t.Fatalf("Time = %d, want stamped at or after %d", cmd.Time, before)
	}
	if c, ok := resp.Results[0].Data.(api.Created); !ok || c.ID != "social" {
		t.Fatalf("Data = %#v, want Created{social}", resp.Results[0].Data)
	}
	if n.FSM().Applied() < resp.Index {
		t.Fatalf("Applied %d < entry index %d after Propose returned", n.FSM().Applied(), resp.Index)
	}
	f.Read(func(s *fsm.State, _ uint64) {
		if s.MRDs["social"] == nil {
			t.Errorf("MRD social not in state")
		}
		if s.Now != cmd.Time {
			t.Errorf("state Now = %d, want the command's time %d", s.Now, cmd.Time)
		}
	})

	// A business failure is a result, not a Go error.
	dup := propose(t, n, createMRD("social"))
	if got := dup.Results[0].Err; got == nil || got.Code != api.CodeAlreadyExists {
		t.Fatalf("duplicate create: Err = %v, want %v", got, api.CodeAlreadyExists)
	}
	if dup.Index <= resp.Index {
		t.Fatalf("duplicate entry index %d, want > %d", dup.Index, resp.Index)
	}

	// A time set by the caller is kept.
	stamped := createMRD("chat")
	stamped.Time = cmd.Time + 1
	mustOK(t, propose(t, n, stamped))
	if stamped.Time != cmd.Time+1 {
		t.Fatalf("caller's Time overwritten: %d", stamped.Time)
	}
}

func TestProposeGroupCommit(t *testing.T) {
	f := NewFSM(nil, testLogger(t))
	n := openLeader(t, testConfig(t, t.TempDir()), f)

	const count = 300
	cmds := make([]*fsm.Command, count)
	for i := range cmds {
		cmds[i] = createMRD(fmt.Sprintf("m%03d", i))
	}
	cmds[150] = createMRD("m000") // duplicate of the first, in the same entry
	resp := propose(t, n, cmds...)
	for i, r := range resp.Results {
		switch {
		case i == 150 && (r.Err == nil || r.Err.Code != api.CodeAlreadyExists):
			t.Errorf("result %d: Err = %v, want already_exists", i, r.Err)
		case i != 150 && r.Err != nil:
			t.Errorf("result %d: %v", i, r.Err)
		}
	}
	f.Read(func(s *fsm.State, _ uint64) {
		if len(s.MRDs) != count-1 {
			t.Errorf("%d MRDs, want %d", len(s.MRDs), count-1)
		}
	})
}

func TestProposeConcurrent(t *testing.T) {
	f := NewFSM(nil, testLogger(t))
	n := openLeader(t, testConfig(t, t.TempDir()), f)

	const workers, each = 8, 25
	errs := make(chan error, workers*each)
	indexes := make(chan uint64, workers*each)
	for w := range workers {
		go func() {
			for i := range each {
				ctx, cancel := context.WithTimeout(context.Background(), applyWait)
				resp, err := n.Propose(ctx, createMRD(fmt.Sprintf("w%d-%d", w, i)))
				cancel()
				switch {
				case err != nil:
					errs <- err
				case resp.Results[0].Err != nil:
					errs <- resp.Results[0].Err
				default:
					errs <- nil
					indexes <- resp.Index
				}
			}
		}()
	}
	seen := map[uint64]bool{}
	for range workers * each {
		if err := <-errs; err != nil {
			t.Fatalf("Propose: %v", err)
		}
		idx := <-indexes
		if seen[idx] {
			t.Fatalf("two proposals answered with entry %d", idx)
		}
		seen[idx] = true
	}
	f.Read(func(s *fsm.State, _ uint64) {
		if len(s.MRDs) != workers*each {
			t.Errorf("%d MRDs, want %d", len(s.MRDs), workers*each)
		}
	})
}

// someCommands returns a mix of admin commands, some idempotent
// (ClientID/Seq), whose ids start with prefix.
func someCommands(prefix string) []*fsm.Command {
	mrd := prefix + "-social"
	cmds := []*fsm.Command{
		createMRD(mrd),
		admin(fsm.OpCreateChannelType, &api.CreateChannelTypeArgs{ID: prefix + "-facebook", MRD: mrd}),
		admin(fsm.OpCreateList, &api.CreateListArgs{ID: prefix + "-vip", Name: "VIP"}),
		createMRD(mrd), // rejected: its result is remembered in the session
	}
	for i, c := range cmds {
		c.ClientID = "ctl-" + prefix
		c.Seq = uint64(i + 1)
	}
	return cmds
}

func TestRestartRecoversState(t *testing.T) {
	dir := t.TempDir()

	// First life: a few entries, no snapshot.
	f1 := NewFSM(nil, testLogger(t))
	n1 := openLeader(t, testConfig(t, dir), f1)
	for _, c := range someCommands("a") {
		propose(t, n1, c)
	}
	propose(t, n1, someCommands("b")...) // one multi-command entry
	want1, index1 := stateOf(t, f1)
	addr := n1.Addr()
	if err := n1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Second life: log replay only.
	sink2 := &recordingSink{}
	f2 := NewFSM(sink2, testLogger(t))
	cfg := testConfig(t, dir)
	cfg.RaftAddr = addr
	n2 := openLeader(t, cfg, f2)
	waitFor(t, applyWait, func() bool { return f2.Applied() >= index1 })
	got, index2 := stateOf(t, f2)
	if !bytes.Equal(got, want1) {
		t.Fatalf("state after restart differs from before (%d vs %d bytes)", len(got), len(want1))
	}
	if index2 < index1 {
		t.Fatalf("index went back: %d < %d", index2, index1)
	}
	if r := sink2.Resets(); len(r) != 0 {
		t.Fatalf("snapshot restored with no snapshot taken: %v", r)
	}
	// Recovered for real: old ids are taken, new commands apply.
	if e := propose(t, n2, createMRD("a-social")).Results[0].Err; e == nil || e.Code != api.CodeAlreadyExists {
		t.Fatalf("re-create after restart: Err = %v, want already_exists", e)
	}
	mustOK(t, propose(t, n2, createMRD("after-restart")))

	// A user snapshot, then more entries after it.
	if err := n2.Snapshot(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	snapIndex := n2.Status().LastSnapshotIndex
	if snapIndex == 0 {
		t.Fatalf("LastSnapshotIndex 0 after Snapshot")
	}
	for _, c := range someCommands("c") {
		propose(t, n2, c)
	}
	want2, index2 := stateOf(t, f2)
	if err := n2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Third life: snapshot restore plus replay of the entries after it.
	sink3 := &recordingSink{}
	f3 := NewFSM(sink3, testLogger(t))
	n3 := openLeader(t, cfg, f3)
	waitFor(t, applyWait, func() bool { return f3.Applied() >= index2 })
	if got, _ := stateOf(t, f3); !bytes.Equal(got, want2) {
		t.Fatalf("state after snapshot+replay restart differs from before (%d vs %d bytes)", len(got), len(want2))
	}
	if r := sink3.Resets(); len(r) != 1 || r[0] != snapIndex {
		t.Fatalf("sink resets %v, want one at the snapshot index %d", r, snapIndex)
	}
	if st := n3.Status(); st.LastSnapshotIndex != snapIndex {
		t.Fatalf("LastSnapshotIndex %d after restart, want %d", st.LastSnapshotIndex, snapIndex)
	}
	mustOK(t, propose(t, n3, createMRD("after-snapshot")))
	if e := propose(t, n3, createMRD("c-social")).Results[0].Err; e == nil || e.Code != api.CodeAlreadyExists {
		t.Fatalf("re-create after snapshot restart: Err = %v, want already_exists", e)
	}
}

func TestClosedNode(t *testing.T) {
	f := NewFSM(nil, testLogger(t))
	n, err := New(testConfig(t, t.TempDir()), f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyWait)
	defer cancel()

	// Not open yet.
	if _, err := n.Propose(ctx, createMRD("x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Propose before Open: %v, want unavailable", err)
	}
	if st := n.Status(); st.State != "NotOpen" {
		t.Fatalf("State before Open = %q", st.State)
	}
	if err := n.Open(); err != nil {
		t.Fatal(err)
	}
	if err := n.Open(); err == nil {
		t.Fatal("second Open succeeded")
	}
	if err := n.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	_, err = n.Propose(ctx, createMRD("x"))
	if api.CodeOf(err) != api.CodeUnavailable || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Propose after Close: %v, want unavailable", err)
	}
	if err := n.Snapshot(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Snapshot after Close: %v", err)
	}
	if err := n.WaitForLeader(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("WaitForLeader after Close: %v", err)
	}
	if err := n.Open(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open after Close: %v", err)
	}
	if n.IsLeader() {
		t.Fatal("closed node says it leads")
	}
	if st := n.Status(); st.State != raft.Shutdown.String() {
		t.Fatalf("State after Close = %q", st.State)
	}
}

func TestProposeAfterRaftShutdown(t *testing.T) {
	f := NewFSM(nil, testLogger(t))
	n := openLeader(t, testConfig(t, t.TempDir()), f)
	// Raft stopped underneath the node (as on removal from the cluster).
	if err := n.Raft().Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	_, err := n.Propose(context.Background(), createMRD("x"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, raft.ErrRaftShutdown) {
		t.Fatalf("Propose on shut-down raft: %v", err)
	}
}

func TestProposeContextDone(t *testing.T) {
	f := NewFSM(nil, testLogger(t))
	n := openLeader(t, testConfig(t, t.TempDir()), f)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		cause error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"expired", expired, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, err := n.Propose(tc.ctx, createMRD("never"))
			if took := time.Since(start); took > time.Second {
				t.Errorf("Propose took %v with a done context", took)
			}
			if resp != nil || api.CodeOf(err) != api.CodeTimeout || !errors.Is(err, ErrTimeout) || !errors.Is(err, tc.cause) {
				t.Fatalf("Propose = %v, %v; want a timeout wrapping %v", resp, err, tc.cause)
			}
		})
	}
	f.Read(func(s *fsm.State, _ uint64) {
		if s.MRDs["never"] != nil {
			t.Error("a command proposed with a done context was applied")
		}
	})
}

func TestNoLeaderWithoutBootstrap(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap = false
	n := openNode(t, cfg, NewFSM(nil, testLogger(t)))

	ctx, cancel := context.WithTimeout(context.Background(), 3*cfg.HeartbeatTimeout)
	defer cancel()
	err := n.WaitForLeader(ctx)
	if !errors.Is(err, ErrNoLeader) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForLeader: %v, want no leader", err)
	}

	_, err = n.Propose(context.Background(), createMRD("x"))
	if api.CodeOf(err) != api.CodeNoLeader || !errors.Is(err, ErrNoLeader) || !errors.Is(err, raft.ErrNotLeader) {
		t.Fatalf("Propose: %v, want no_leader", err)
	}
	if id, addr := LeaderHint(err); id != "" || addr != "" {
		t.Fatalf("LeaderHint = %q, %q with no leader", id, addr)
	}
	st := n.Status()
	if st.State != raft.Follower.String() || st.LeaderID != "" || len(st.Members) != 0 {
		t.Fatalf("Status = %+v", st)
	}
}

func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	openNode(t, testConfig(t, dir), NewFSM(nil, testLogger(t)))

	cfg := testConfig(t, dir)
	cfg.StoreOpenTimeout = 200 * time.Millisecond
	n2, err := New(cfg, NewFSM(nil, testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = n2.Open()
	if err == nil {
		_ = n2.Close()
		t.Fatal("second node opened a data dir in use")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Open took %v to fail", took)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the data dir", err)
	}
}
