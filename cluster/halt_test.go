package cluster_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/cluster"
	. "github.com/switchboard/switchboard/fsm"
)

var leaderSys = api.Principal{Role: api.RoleSystem, ID: "node:n1"}

// applyHalting applies data as entry index in the background and checks
// that the FSM halts on it: Halted closes, the state does not move, the
// apply goroutine stays blocked until Close and then answers ErrHalted.
func applyHalting(t *testing.T, f *FSM, index uint64, data []byte, why string) {
	t.Helper()
	before, beforeIdx := fsmState(t, f)
	done := make(chan any, 1)
	go func() { done <- f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}) }()
	select {
	case <-f.Halted():
	case <-time.After(10 * time.Second):
		t.Fatal("the FSM did not halt")
	}
	if err := f.HaltErr(); err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "upgrade this node") {
		t.Fatalf("halt reason %v; want it to say %q and to upgrade this node", err, why)
	}
	select {
	case r := <-done:
		t.Fatalf("a halted apply returned %v before Close", r)
	case <-time.After(50 * time.Millisecond):
	}
	after, afterIdx := fsmState(t, f)
	if !bytes.Equal(after, before) || afterIdx != beforeIdx || f.Applied() >= index {
		t.Fatalf("the halting entry moved the state (index %d → %d, applied %d)", beforeIdx, afterIdx, f.Applied())
	}
	f.Close()
	select {
	case r := <-done:
		if resp, ok := r.(*ApplyResponse); !ok || !errors.Is(resp.Err, ErrHalted) {
			t.Fatalf("after Close the halted apply returned %+v, want ErrHalted", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release the halted apply")
	}
}

func encode(t *testing.T, cmds ...*Command) []byte {
	t.Helper()
	data, err := EncodeEntry(cmds...)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// An op this build does not know comes from a newer build: the node stops
// instead of answering unknown_op while its peers apply it.
func TestFSMHaltsOnUnknownOp(t *testing.T) {
	f, _ := newWalkthroughFSM(t)
	applyHalting(t, f, 2, encode(t, cmd(Op(250), admin, &api.IDArgs{ID: "x"})), "unknown to this build")
}

// A node acting as a level-1 build stops at the entry that raises the
// cluster past its level, and at an op of a higher level.
func TestFSMHaltsAboveItsLevel(t *testing.T) {
	f, _ := newWalkthroughFSM(t)
	f.SetMaxLevel(Level1)
	applyHalting(t, f, 2, encode(t, cmd(OpSetFeatureLevel, leaderSys, &api.FeatureLevelArgs{Level: Level2})), "raises its feature level to 2")

	g, _ := newWalkthroughFSM(t)
	g.SetMaxLevel(Level1)
	applyHalting(t, g, 2, encode(t, cmd(OpDeleteConnector, admin, &api.IDArgs{ID: "fb"})), "feature level 2")
}

// An entry of a kind this build does not know halts it, unless the kind is
// flagged ignorable, which every build skips alike.
func TestFSMNewerEntryKinds(t *testing.T) {
	f, _ := newWalkthroughFSM(t)
	before, _ := fsmState(t, f)
	resp := f.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: []byte{0x85, 1, 2, 3}}).(*ApplyResponse)
	if resp.Err != nil || len(resp.Results) != 0 {
		t.Fatalf("ignorable entry: %+v", resp)
	}
	if after, idx := fsmState(t, f); !bytes.Equal(after, withIndex(t, before, 2)) || idx != 2 {
		t.Fatal("an ignorable entry changed more than the index")
	}
	applyHalting(t, f, 3, []byte{0x05, 1, 2, 3}, "newer kind")
}

// A snapshot at a feature level above the node's is refused, and halts it.
func TestFSMRestoreAboveItsLevel(t *testing.T) {
	f, _ := newWalkthroughFSM(t)
	applyEntry(t, f, 2, cmd(OpSetFeatureLevel, leaderSys, &api.FeatureLevelArgs{Level: Level2}))
	var snap []byte
	f.Read(func(s *State, _ uint64) { snap = marshal(t, s) })

	g := NewFSM(nil, nil)
	g.SetMaxLevel(Level1)
	err := g.Restore(io.NopCloser(bytes.NewReader(snap)))
	if err == nil || !strings.Contains(err.Error(), "upgrade this node") {
		t.Fatalf("restore of a level-2 snapshot by a level-1 node: %v", err)
	}
	select {
	case <-g.Halted():
	default:
		t.Fatal("the refused restore did not halt the node")
	}
	h := NewFSM(nil, nil)
	if err := h.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatalf("restore at this build's level: %v", err)
	}
}
