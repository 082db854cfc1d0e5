package transport_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

// TestClientRetriesLeaderChangeCodes: a write answered not_leader,
// no_leader, timeout or unavailable (the cluster between leaders), or
// rate_limited, is
// retried with the same seq, and the application sees the original
// success.
func TestClientRetriesLeaderChangeCodes(t *testing.T) {
	for _, code := range []api.Code{api.CodeNotLeader, api.CodeNoLeader, api.CodeTimeout, api.CodeUnavailable, api.CodeRateLimited} {
		t.Run(code.String(), func(t *testing.T) {
			be := newCTBackend()
			var failed atomic.Bool
			be.afterApply = func(_ context.Context, cmd *fsm.Command) error {
				if a, ok := cmd.Args.(*api.CreateListArgs); ok && a.ID == "L" && failed.CompareAndSwap(false, true) {
					return &api.Error{Code: code, Msg: "between leaders"}
				}
				return nil
			}
			cl := newCTCluster(t, 1, be)
			adm := cl.dial(t, transport.ClientConfig{Role: "admin", Token: ctAdminToken, Reconnect: true})
			if err := adm.CreateList(ctCtx(t), api.CreateListArgs{ID: "L"}); err != nil {
				t.Fatalf("create_list after a %s answer: %v, want the original success", code, err)
			}
			subs := be.submitsWhere(func(s ctSubmit) bool {
				a, ok := s.args.(*api.CreateListArgs)
				return ok && a.ID == "L"
			})
			if len(subs) != 2 || subs[0].seq == 0 || subs[0].seq != subs[1].seq {
				t.Fatalf("submits = %+v, want the same seq twice", subs)
			}
		})
	}
}
