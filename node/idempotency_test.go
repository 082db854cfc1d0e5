package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// A subscribe re-sent with its client id and seq, over TCP to a real node,
// applies once: the retry is answered with the cluster's compact record
// ({retry, index, list}, PROTOCOL.md §6), not with a second apply (which
// would fail already_exists, or subscribe again after an unsubscribe),
// and the Go client's Subscribe turns that record into the list view read
// after it.
func TestRetriedSubscribeAppliesOnce(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	_, connTok := haSetup(t, admin)
	var cred Credential
	haCall(t, admin, "create_agent", api.CreateAgentArgs{ID: "a2"}, &cred)
	conn := haDial(t, []string{n.client}, "connector", "fb", connTok, false)
	for _, u := range []string{"u1", "u2"} {
		haCall(t, conn, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: u, Text: "hello from " + u}, nil)
	}
	// Each client below says hello with the same client id and numbers
	// its writes from seq 1, as a process restarted with its client id
	// would: its first write is a retry of the first client's.
	dial := func() *transport.Client {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := transport.Dial(ctx, transport.ClientConfig{Addrs: []string{n.client}, Role: "agent", User: "a2",
			Token: cred.Token, ClientID: "a2-app", RequestTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subscribers := func() []string {
		t.Helper()
		var lists []api.ListInfo
		haCall(t, admin, api.QueryLists, nil, &lists)
		for _, l := range lists {
			if l.ID == "L1" {
				return l.Subscribers
			}
		}
		t.Fatal("no list L1")
		return nil
	}

	first := dial()
	var view api.ListSnapshot
	index := haCall(t, first, "subscribe", api.SubscribeArgs{List: "L1"}, &view) // seq 1
	if view.List != "L1" || len(view.Requests) != 2 {
		t.Fatalf("subscribe answered %+v", view)
	}

	// The Go client's Subscribe, answered from the record: the list view,
	// read from the node.
	again, err := dial().Subscribe(ctx, "", "L1") // seq 1 again
	if err != nil {
		t.Fatalf("retried Subscribe: %v (a second apply fails already_exists)", err)
	}
	if again.List != "L1" || len(again.Requests) != 2 || again.Requests[0].ID != view.Requests[0].ID {
		t.Errorf("retried Subscribe answered %+v, want the list view %+v", again, view)
	}

	// Unsubscribed since (seq 2): the retry of seq 1 still does not
	// subscribe again, and its data is the record of the first apply.
	haCall(t, first, "unsubscribe", api.SubscribeArgs{List: "L1"}, nil)
	var raw msgpack.RawMessage
	retryIndex := haCall(t, dial(), "subscribe", api.SubscribeArgs{List: "L1"}, &raw) // seq 1 again
	var (
		keys map[string]any
		rec  api.Applied
	)
	if err := msgpack.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	if err := msgpack.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if want := (api.Applied{Retry: true, Index: index, List: "L1"}); rec != want || len(keys) != 3 {
		t.Errorf("retry answered %v, want {retry: true, index: %d, list: L1}", keys, index)
	}
	if retryIndex <= index {
		t.Errorf("retry answered at index %d, not after the first apply's %d", retryIndex, index)
	}
	if subs := subscribers(); slices.Contains(subs, "a2") {
		t.Errorf("L1's subscribers %v: the retried subscribe applied again", subs)
	}
}
