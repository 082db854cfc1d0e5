package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
)

func TestRaftFailure(t *testing.T) {
	known := func() (raft.ServerAddress, raft.ServerID) { return "10.0.0.2:7401", "n2" }
	none := func() (raft.ServerAddress, raft.ServerID) { return "", "" }
	other := errors.New("disk on fire")
	for _, tc := range []struct {
		name     string
		cause    error
		leader   func() (raft.ServerAddress, raft.ServerID)
		code     api.Code
		sentinel error
	}{
		{"not leader, leader known", raft.ErrNotLeader, known, api.CodeNotLeader, ErrNotLeader},
		{"not leader, none known", raft.ErrNotLeader, none, api.CodeNoLeader, ErrNoLeader},
		{"leadership lost", raft.ErrLeadershipLost, known, api.CodeNotLeader, ErrNotLeader},
		{"transfer in progress", raft.ErrLeadershipTransferInProgress, none, api.CodeNoLeader, ErrNoLeader},
		{"shutdown", raft.ErrRaftShutdown, known, api.CodeUnavailable, ErrUnavailable},
		{"aborted by restore", raft.ErrAbortedByRestore, known, api.CodeUnavailable, ErrUnavailable},
		{"enqueue timeout", raft.ErrEnqueueTimeout, known, api.CodeTimeout, ErrTimeout},
		{"deadline", context.DeadlineExceeded, known, api.CodeTimeout, ErrTimeout},
		{"other", other, known, api.CodeInternal, &api.Error{Code: api.CodeInternal}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := raftFailure("propose", tc.cause, tc.leader)
			if got := api.CodeOf(err); got != tc.code {
				t.Fatalf("code %v, want %v (%v)", got, tc.code, err)
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(%v, sentinel %v) = false", err, tc.sentinel)
			}
			if !errors.Is(err, tc.cause) {
				t.Errorf("errors.Is(%v, cause) = false", err)
			}
			var fe *api.Error
			if !errors.As(err, &fe) || fe.Code != tc.code {
				t.Errorf("errors.As *api.Error = %v", fe)
			}
			id, addr := LeaderHint(err)
			if tc.code == api.CodeNotLeader {
				if id != "n2" || addr != "10.0.0.2:7401" {
					t.Errorf("LeaderHint = %q, %q", id, addr)
				}
				if !strings.Contains(fe.Msg, "10.0.0.2:7401") {
					t.Errorf("not-leader message %q lacks the leader address", fe.Msg)
				}
			} else if addr != "" {
				t.Errorf("LeaderHint addr = %q", addr)
			}
		})
	}
}

func TestSentinelsAreDistinct(t *testing.T) {
	all := []error{ErrNotLeader, ErrNoLeader, ErrUnavailable, ErrTimeout}
	for i, a := range all {
		for j, b := range all {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
	}
}
