package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

func TestCheckForwardedEntryRefusesInflatedLengths(t *testing.T) {
	good, err := fsm.EncodeEntry(&fsm.Command{Op: fsm.OpCreateMRD, By: api.Principal{Role: api.RoleAdmin}, Args: &api.CreateMRDArgs{ID: "social"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkForwardedEntry(good); err != nil {
		t.Fatalf("a real entry was refused: %v", err)
	}
	bad := map[string][]byte{
		"empty":            {fsm.EntryCommands},
		"array of 4G":      {fsm.EntryCommands, 0xdd, 0xff, 0xff, 0xff, 0xff},
		"string of 4G":     {fsm.EntryCommands, 0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'},
		"nesting too deep": append([]byte{fsm.EntryCommands}, repeat(0x91, 200)...),
	}
	for name, entry := range bad {
		if err := checkForwardedEntry(entry); api.CodeOf(err) != api.CodeBadRequest {
			t.Errorf("%s: got %v, want bad_request", name, err)
		}
	}
}

func repeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// A forwarded command's time is the leader's, not the sender's: a node (or
// anyone holding the cluster secret) cannot make the replicated clock jump
// by forwarding an entry stamped in the future.
func TestForwardedTimeIsRestampedByTheLeader(t *testing.T) {
	n := openLeader(t, testConfig(t, t.TempDir()), NewFSM(nil, nil))
	s := NewService(n, ServiceConfig{ClusterToken: "x"})
	t.Cleanup(s.Close)
	future := time.Now().Add(100 * 365 * 24 * time.Hour).UnixNano()
	entry, err := fsm.EncodeEntry(&fsm.Command{Op: fsm.OpCreateMRD, By: api.Principal{Role: api.RoleAdmin, ID: "admin"},
		Time: future, Args: &api.CreateMRDArgs{ID: "social"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := msgpack.Marshal(forwardArgs{Entry: entry})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyWait)
	defer cancel()
	if _, err := s.handleForward(ctx, raw); err != nil {
		t.Fatalf("forward: %v", err)
	}
	var now int64
	n.FSM().Read(func(st *fsm.State, _ uint64) { now = st.Now })
	if limit := time.Now().Add(time.Minute).UnixNano(); now > limit || now == 0 {
		t.Fatalf("replicated clock at %v after a forwarded entry stamped %v: want the leader's time",
			time.Unix(0, now), time.Unix(0, future))
	}
}
