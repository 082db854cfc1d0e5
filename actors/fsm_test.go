package actors

import (
	"bytes"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/fsm"
)

// node is a real cluster.FSM feeding a Hub, as the node glue wires them.
type node struct {
	t     *testing.T
	fsm   *cluster.FSM
	hub   *Hub
	index uint64
}

func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{t: t, fsm: cluster.NewFSM(nil, slog.New(slog.DiscardHandler))}
	h, err := NewHub(Config{
		Encode: testEncode,
		View: func(key string) (v api.StreamView, index uint64, ok bool) {
			n.fsm.Read(func(s *fsm.State, _ uint64) {
				v, ok = s.View(key)
				index = s.Index
			})
			return v, index, ok
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	n.hub = h
	n.fsm.SetSink(h)
	return n
}

// apply commits one command as the next log entry and fails on a
// business error.
func (n *node) apply(role api.Role, by string, op fsm.Op, args any) any {
	n.t.Helper()
	n.index++
	data, err := fsm.EncodeEntry(&fsm.Command{Op: op, By: api.Principal{Role: role, ID: by}, Time: int64(n.index) * 1000, Args: args})
	if err != nil {
		n.t.Fatal(err)
	}
	resp := n.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: n.index, Data: data}).(*cluster.ApplyResponse)
	if resp.Err != nil || resp.Results[0].Err != nil {
		n.t.Fatalf("op %d: %v %v", op, resp.Err, resp.Results[0].Err)
	}
	return resp.Results[0].Data
}

func (n *node) setup() {
	admin := api.RoleAdmin
	n.apply(admin, "root", fsm.OpCreateMRD, &api.CreateMRDArgs{ID: "chat", Name: "Chat"})
	n.apply(admin, "root", fsm.OpCreateChannelType, &api.CreateChannelTypeArgs{ID: "web", MRD: "chat"})
	n.apply(admin, "root", fsm.OpCreateList, &api.CreateListArgs{ID: "L1", Name: "Sales"})
	n.apply(admin, "root", fsm.OpCreateChannel, &api.CreateChannelArgs{ID: "site", Type: "web", Mode: api.ModePull, List: "L1"})
	n.apply(admin, "root", fsm.OpCreateAgent, &api.CreateAgentArgs{ID: "alice", Name: "Alice", TokenHash: []byte{1}})
	n.apply(admin, "root", fsm.OpCreateAgent, &api.CreateAgentArgs{ID: "bob", Name: "Bob", TokenHash: []byte{1}})
	n.apply(admin, "root", fsm.OpCreateConnector, &api.CreateConnectorArgs{ID: "web1", Channels: []string{"site"}, TokenHash: []byte{1}})
	n.apply(api.RoleAgent, "alice", fsm.OpSubscribe, &api.SubscribeArgs{List: "L1"})
	n.apply(api.RoleAgent, "bob", fsm.OpSubscribe, &api.SubscribeArgs{List: "L1"})
}

func kinds(fs []frame) []api.EventKind {
	out := make([]api.EventKind, len(fs))
	for i, f := range fs {
		out[i] = f.kind
	}
	return out
}

// TestWithRealFSM drives the hub from a real cluster.FSM: a request lands on a
// list, an agent joins, talks and closes it, while a second agent only
// watches the list.
func TestWithRealFSM(t *testing.T) {
	n := newNode(t)
	n.setup()
	alice, bob := &outbox{}, &outbox{}
	n.hub.Attach(api.AgentKey("alice"), 0, false, alice)
	n.hub.Attach(api.AgentKey("bob"), 0, false, bob)
	waitFrames(t, alice, 1)
	waitFrames(t, bob, 1)

	res := n.apply(api.RoleConnector, "web1", fsm.OpCustomerMessage, &api.CustomerMessageArgs{Channel: "site", CustomerID: "cust", Text: "hello"})
	req := res.(api.CustomerMessageResult).Request
	created := int64(n.index) * 1000
	if open, oldest, err := n.hub.ListView("L1"); err != nil || open != 1 || oldest != created {
		t.Fatalf("ListView = %d, %d, %v; want 1, %d", open, oldest, err, created)
	}
	n.apply(api.RoleAgent, "alice", fsm.OpJoin, &api.RequestArgs{Request: req})
	n.apply(api.RoleAgent, "alice", fsm.OpSend, &api.SendArgs{Request: req, Text: "how can I help?"})
	sent := int64(n.index) * 1000
	if parts, last, err := n.hub.Conversation(req); err != nil || !slices.Equal(parts, []string{"alice"}) || last != sent {
		t.Fatalf("Conversation = %v, %d, %v; want [alice], %d", parts, last, err, sent)
	}
	if open, oldest, err := n.hub.ListView("L1"); err != nil || open != 1 || oldest != 0 {
		t.Fatalf("ListView after join = %d, %d, %v; want 1 open, none unread", open, oldest, err)
	}
	n.apply(api.RoleAgent, "alice", fsm.OpClose, &api.RequestArgs{Request: req})
	if open, _, err := n.hub.ListView("L1"); err != nil || open != 0 {
		t.Fatalf("ListView after close = %d, %v; want 0", open, err)
	}

	wantAlice := []api.EventKind{api.EvSync, api.EvRequestCreated, api.EvConversationJoined, api.EvRequestUpdated,
		api.EvConversationMessage, api.EvConversationClosed, api.EvRequestRemoved}
	wantBob := []api.EventKind{api.EvSync, api.EvRequestCreated, api.EvRequestUpdated, api.EvRequestRemoved}
	if got := kinds(waitFrames(t, alice, len(wantAlice))); !slices.Equal(got, wantAlice) {
		t.Fatalf("alice got %v, want %v", got, wantAlice)
	}
	if got := kinds(waitFrames(t, bob, len(wantBob))); !slices.Equal(got, wantBob) {
		t.Fatalf("bob got %v, want %v", got, wantBob)
	}
}

// TestRestoreResyncsAndSeedsLists installs a snapshot on a second node: the
// attached session gets a sync at the snapshot's index, and the sync
// seeds the list view the node had never seen events for.
func TestRestoreResyncsAndSeedsLists(t *testing.T) {
	src := newNode(t)
	src.setup()
	src.apply(api.RoleConnector, "web1", fsm.OpCustomerMessage, &api.CustomerMessageArgs{Channel: "site", CustomerID: "cust", Text: "hello"})
	created := int64(src.index) * 1000
	var snap []byte
	src.fsm.Read(func(s *fsm.State, _ uint64) {
		var err error
		if snap, err = s.Marshal(); err != nil {
			t.Fatal(err)
		}
	})

	dst := newNode(t)
	dst.setup() // same first entries: its own history
	alice := &outbox{}
	dst.hub.Attach(api.AgentKey("alice"), 0, false, alice)
	waitFrames(t, alice, 1)
	if err := dst.fsm.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	got := waitFrames(t, alice, 2)
	if got[1] != (frame{syncSeq(src.index), api.EvSync}) {
		t.Fatalf("after restore: got %v, want a sync at %d", got, src.index)
	}
	waitFor(t, 5*time.Second, func() bool {
		open, oldest, err := dst.hub.ListView("L1")
		return err == nil && open == 1 && oldest == created
	}, says("the restored list view"))
}
