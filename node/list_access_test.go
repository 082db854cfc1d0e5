package node

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// Over the wire, on a restricted list: an agent without a grant cannot
// subscribe itself nor read the list; a granted one can; restricting a
// list an agent is subscribed to without a grant unsubscribes it, and it
// is told on its stream.
func TestUngrantedAgentCannotSubscribeToRestrictedList(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, _ := haSetup(t, admin, "a1", "a2")
	haCall(t, admin, api.OpCreateList, api.CreateListArgs{ID: "vip", Access: api.ListRestricted}, nil)
	haCall(t, admin, api.OpGrantList, api.ListGrantArgs{List: "vip", Agent: "a1"}, nil)

	a1 := haDial(t, []string{n.client}, "agent", "a1", tokens["a1"], false)
	a2 := haDial(t, []string{n.client}, "agent", "a2", tokens["a2"], false)
	if ev := haNextEvent(t, a2); ev.Kind != api.EvSync {
		t.Fatalf("a2's first event: %s, want sync", ev.Kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := a2.Subscribe(ctx, "", "vip"); haCode(err) != api.CodeForbidden {
		t.Fatalf("ungranted a2 subscribing to restricted vip: %v, want forbidden", err)
	}
	if _, err := a2.List(ctx, "vip"); haCode(err) != api.CodeNotSubscribed {
		t.Fatalf("ungranted a2 reading vip: %v, want not_subscribed", err)
	}
	if _, err := a1.Subscribe(ctx, "", "vip"); err != nil {
		t.Fatalf("granted a1 subscribing to vip: %v", err)
	}

	// Restricting L1, where a2 has no grant, drops a2 and tells it.
	if err := admin.SetListAccess(ctx, "L1", api.ListRestricted); err != nil {
		t.Fatal(err)
	}
	ev := haNextEvent(t, a2)
	if ev.Kind != api.EvListUnsubscribed {
		t.Fatalf("a2's event after L1 was restricted: %s, want %s", ev.Kind, api.EvListUnsubscribed)
	}
	var v api.StreamView
	haCall(t, a2, api.QueryView, nil, &v)
	if len(v.Lists) != 0 {
		t.Fatalf("a2 still sees lists %+v", v.Lists)
	}
	var lists []api.ListInfo
	haCall(t, admin, api.QueryLists, nil, &lists)
	for _, l := range lists {
		if l.ID == "vip" && (l.Access != api.ListRestricted || len(l.Granted) != 1 || len(l.Subscribers) != 1) {
			t.Fatalf("get_lists vip: %+v", l)
		}
	}
}
