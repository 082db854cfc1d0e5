package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/switchboard/switchboard/node"

	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/transport"
)

const testAdminToken = "test-admin-token"

// testNode is a real node (Raft on BoltDB in a temp dir, real TCP) that can
// be stopped and started again on the same data dir and ports, which the
// test holds bound throughout (testutil.Port).
type testNode struct {
	t          *testing.T
	dir        string
	clientAddr string
	client     *testutil.Port
	raft       *testutil.Port
	grace      time.Duration
	srv        *node.Server
}

// newNodePorts returns a test node with ports of its own, not started.
func newNodePorts(t *testing.T) *testNode {
	n := &testNode{t: t, dir: filepath.Join(t.TempDir(), "data"), client: testutil.NewPort(t), raft: testutil.NewPort(t)}
	n.clientAddr = n.client.Addr()
	return n
}

func newTestNode(t *testing.T) *testNode {
	n := newNodePorts(t)
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *testNode) start() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := node.Start(ctx, node.Config{
		Raft:           cluster.Config{NodeID: "node1", DataDir: n.dir, Bootstrap: true},
		ClientListener: n.client.Listener(),
		RaftListener:   n.raft.Listener(),
		AdminToken:     testAdminToken,
		ClusterToken:   "walkthrough-cluster-token",
		LogoutGrace:    n.grace,
	})
	if err != nil {
		n.t.Fatalf("start node: %v", err)
	}
	n.srv = srv
}

func (n *testNode) stop() {
	if n.srv != nil {
		if err := n.srv.Close(); err != nil {
			n.t.Errorf("stop node: %v", err)
		}
		n.srv = nil
	}
}

func (n *testNode) dial(t *testing.T, role, user, token string, reconnect bool) *transport.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, transport.ClientConfig{
		Addrs: []string{n.clientAddr}, Role: role, User: user, Token: token,
		Reconnect: reconnect, RequestTimeout: 10 * time.Second, DialTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial %s %s: %v", role, user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func call(t *testing.T, c *transport.Client, op string, args, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Call(ctx, op, args, out); err != nil {
		t.Fatalf("%s %+v: %v", op, args, err)
	}
}

func callCode(t *testing.T, c *transport.Client, op string, args any) api.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := c.Call(ctx, op, args, nil)
	var eb *transport.ErrorBody
	if err != nil && !errors.As(err, &eb) {
		t.Fatalf("%s: untyped error %v", op, err)
	}
	return api.CodeOf(asFSMError(err))
}

func asFSMError(err error) error {
	var eb *transport.ErrorBody
	if errors.As(err, &eb) {
		return &api.Error{Code: eb.Code, Msg: eb.Msg}
	}
	return err
}

// recorder collects one agent's events as "kind request/list state" lines.
type recorder struct {
	mu   sync.Mutex
	got  []transport.Event
	seen map[uint64]bool
	dups int
	back int
}

func record(c *transport.Client) *recorder {
	r := &recorder{seen: map[uint64]bool{}}
	go func() {
		var last uint64
		for ev := range c.Events() {
			r.mu.Lock()
			if r.seen[ev.Seq] {
				r.dups++
			}
			if ev.Seq <= last {
				r.back++
			}
			last = ev.Seq
			r.seen[ev.Seq] = true
			r.got = append(r.got, ev)
			r.mu.Unlock()
		}
	}()
	return r
}

// lines returns the recorded events after the first n, rendered.
func (r *recorder) lines(from int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.got[min(from, len(r.got)):] {
		out = append(out, render(ev))
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func render(ev transport.Event) string {
	switch ev.Kind {
	case api.EvRequestCreated, api.EvRequestUpdated, api.EvRequestRemoved:
		var s api.RequestSummary
		_ = ev.Decode(&s)
		return fmt.Sprintf("%s %s %s %v", ev.Kind, s.ID, s.State, s.Participants)
	case api.EvConversationJoined, api.EvConversationLeft:
		var p api.ParticipantChange
		_ = ev.Decode(&p)
		return fmt.Sprintf("%s %s %s %s", ev.Kind, p.Request, p.Agent, p.State)
	case api.EvConversationMessage:
		var m api.ConversationMessage
		_ = ev.Decode(&m)
		return fmt.Sprintf("%s %s %s", ev.Kind, m.Request, m.Message.Text)
	case api.EvConversationClosed:
		var c api.ConversationClosed
		_ = ev.Decode(&c)
		return fmt.Sprintf("%s %s", ev.Kind, c.Request)
	case api.EvListSubscribed:
		var l api.ListSnapshot
		_ = ev.Decode(&l)
		return fmt.Sprintf("%s %s %d", ev.Kind, l.List, len(l.Requests))
	case api.EvSync:
		var v api.StreamView
		_ = ev.Decode(&v)
		return fmt.Sprintf("%s lists=%d conversations=%d", ev.Kind, len(v.Lists), len(v.Conversations))
	}
	return string(ev.Kind)
}

// waitLines waits until r has recorded want after position from, and fails
// if anything else arrives.
func waitLines(t *testing.T, name string, r *recorder, from int, want ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := r.lines(from)
		if len(got) >= len(want) {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s received\n  %q\nwant\n  %q", name, got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s received only\n  %q\nwant\n  %q", name, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFacebookWalkthroughEndToEnd runs the product spec's pull-mode story
// against a real node over TCP: who is told what, in which order, across a
// restart of the node.
func TestFacebookWalkthroughEndToEnd(t *testing.T) {
	n := newTestNode(t)
	admin := n.dial(t, "admin", "", testAdminToken, true)
	call(t, admin, "create_mrd", api.CreateMRDArgs{ID: "social", Name: "Social media"}, nil)
	call(t, admin, "create_channel_type", api.CreateChannelTypeArgs{ID: "facebook", MRD: "social"}, nil)
	call(t, admin, "create_list", api.CreateListArgs{ID: "L1"}, nil)
	call(t, admin, "create_list", api.CreateListArgs{ID: "L2"}, nil)
	call(t, admin, "create_channel", api.CreateChannelArgs{ID: "C2", Type: "facebook", Mode: api.ModePull, List: "L1"}, nil)
	tokens := map[string]string{}
	for _, id := range []string{"alice", "bob", "carol"} {
		var cred node.Credential
		call(t, admin, "create_agent", api.CreateAgentArgs{ID: id}, &cred)
		if cred.Token == "" || cred.ID != id {
			t.Fatalf("create_agent %s returned %+v", id, cred)
		}
		tokens[id] = cred.Token
	}
	var fbCred node.Credential
	call(t, admin, "create_connector", api.CreateConnectorArgs{ID: "fb", Channels: []string{"C2"}}, &fbCred)

	agents := map[string]*transport.Client{}
	recs := map[string]*recorder{}
	for _, id := range []string{"alice", "bob", "carol"} {
		agents[id] = n.dial(t, "agent", id, tokens[id], true)
		recs[id] = record(agents[id])
		waitLines(t, id, recs[id], 0, "sync lists=0 conversations=0")
	}
	call(t, agents["alice"], "subscribe", api.SubscribeArgs{List: "L1"}, nil)
	call(t, agents["bob"], "subscribe", api.SubscribeArgs{List: "L1"}, nil)
	call(t, agents["carol"], "subscribe", api.SubscribeArgs{List: "L2"}, nil)
	waitLines(t, "alice", recs["alice"], 1, "list.subscribed L1 0")
	waitLines(t, "bob", recs["bob"], 1, "list.subscribed L1 0")
	waitLines(t, "carol", recs["carol"], 1, "list.subscribed L2 0")
	// An agent may not subscribe another agent.
	if code := callCode(t, agents["carol"], "subscribe", api.SubscribeArgs{Agent: "alice", List: "L2"}); code != api.CodeForbidden {
		t.Fatalf("carol subscribing alice: code %v, want forbidden", code)
	}

	// John Williams comments on the Facebook page: R1 lands on L1.
	fb := n.dial(t, "connector", "fb", fbCred.Token, true)
	var cm api.CustomerMessageResult
	call(t, fb, "customer_message", api.CustomerMessageArgs{Channel: "C2", CustomerID: "john", CustomerName: "John Williams", Text: "Where is my order?"}, &cm)
	if !cm.Created || cm.State != api.StateUnread {
		t.Fatalf("customer_message: %+v, want a new UNREAD request", cm)
	}
	r1 := cm.Request
	waitLines(t, "alice", recs["alice"], 2, "request.created "+r1+" UNREAD []")
	waitLines(t, "bob", recs["bob"], 2, "request.created "+r1+" UNREAD []")

	// Alice and Bob join at the same moment: both get in.
	var wg sync.WaitGroup
	joinErr := make(chan error, 2)
	for _, id := range []string{"alice", "bob"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			var jr api.JoinResult
			if err := agents[id].Call(ctx, "join", api.RequestArgs{Request: r1}, &jr); err != nil {
				joinErr <- fmt.Errorf("%s join: %w", id, err)
				return
			}
			if len(jr.Transcript) != 1 || jr.Transcript[0].Text != "Where is my order?" {
				joinErr <- fmt.Errorf("%s join transcript %+v", id, jr.Transcript)
			}
		}()
	}
	wg.Wait()
	close(joinErr)
	for err := range joinErr {
		t.Fatal(err)
	}
	var view api.ConversationView
	call(t, admin, api.QueryRequest, api.QueryArgs{Request: r1}, &view)
	if view.Request.State != api.StateActive || fmt.Sprint(view.Request.Participants) != "[alice bob]" {
		t.Fatalf("after both joins: %+v", view.Request)
	}
	// Both subscribers see the list go ACTIVE with the first joiner, then
	// with both; the first joiner also hears the second join.
	waitUntil(t, "both agents see both joins", func() bool { return recs["alice"].count() >= 6 && recs["bob"].count() >= 6 })
	first, second := "alice", "bob"
	if recs["bob"].lines(3)[0] == "conversation.joined "+r1+" bob ACTIVE" {
		first, second = "bob", "alice"
	}
	waitLines(t, first, recs[first], 3,
		"conversation.joined "+r1+" "+first+" ACTIVE",
		"request.updated "+r1+" ACTIVE ["+first+"]",
		"conversation.joined "+r1+" "+second+" ACTIVE",
		"request.updated "+r1+" ACTIVE [alice bob]")
	waitLines(t, second, recs[second], 3,
		"request.updated "+r1+" ACTIVE ["+first+"]",
		"conversation.joined "+r1+" "+second+" ACTIVE",
		"request.updated "+r1+" ACTIVE [alice bob]")
	aliceAt, bobAt := recs["alice"].count(), recs["bob"].count()

	call(t, agents["alice"], "send", api.SendArgs{Request: r1, Text: "Hi John, checking."}, nil)
	call(t, agents["alice"], "leave", api.RequestArgs{Request: r1}, nil)
	call(t, agents["bob"], "leave", api.RequestArgs{Request: r1}, nil)
	call(t, admin, api.QueryRequest, api.QueryArgs{Request: r1}, &view)
	if view.Request.State != api.StateInactive {
		t.Fatalf("after everyone left: %s, want INACTIVE", view.Request.State)
	}
	waitLines(t, "bob", recs["bob"], bobAt,
		"conversation.message "+r1+" Hi John, checking.",
		"conversation.left "+r1+" alice ACTIVE",
		"request.updated "+r1+" ACTIVE [bob]",
		"conversation.left "+r1+" bob INACTIVE",
		"request.updated "+r1+" INACTIVE []")
	// Alice had left: she sees the list change, not Bob's leave.
	waitLines(t, "alice", recs["alice"], aliceAt,
		"conversation.message "+r1+" Hi John, checking.",
		"conversation.left "+r1+" alice ACTIVE",
		"request.updated "+r1+" ACTIVE [bob]",
		"request.updated "+r1+" INACTIVE []")
	aliceAt, bobAt = recs["alice"].count(), recs["bob"].count()

	// The customer asks for a new agent: nothing new is published on L1.
	var ra api.RequestAgentResult
	call(t, fb, "request_agent", api.RequestAgentArgs{Channel: "C2", CustomerID: "john"}, &ra)
	if ra.Announced || ra.State != api.StateInactive || ra.Request != r1 {
		t.Fatalf("request_agent: %+v", ra)
	}
	// A marker: the next thing subscribers see must be this, not a re-announcement.
	call(t, fb, "customer_message", api.CustomerMessageArgs{Channel: "C2", CustomerID: "mary", Text: "hello"}, &cm)
	marker := cm.Request
	waitLines(t, "alice", recs["alice"], aliceAt, "request.created "+marker+" UNREAD []")
	waitLines(t, "bob", recs["bob"], bobAt, "request.created "+marker+" UNREAD []")
	aliceAt, bobAt = aliceAt+1, bobAt+1

	// Restart the node: state survives, agents resume where they were.
	n.stop()
	n.start()
	call(t, n.dial(t, "admin", "", testAdminToken, false), api.QueryRequest, api.QueryArgs{Request: r1}, &view)
	if view.Request.State != api.StateInactive || len(view.Transcript) != 2 {
		t.Fatalf("after restart: %+v, %d messages", view.Request, len(view.Transcript))
	}

	// Closing removes R1 from the list; only L1's subscribers hear of it.
	call(t, fb, "close", api.RequestArgs{Request: r1}, nil)
	waitLines(t, "alice", recs["alice"], aliceAt, "request.removed "+r1+" CLOSED []")
	waitLines(t, "bob", recs["bob"], bobAt, "request.removed "+r1+" CLOSED []")
	var l1 api.ListSnapshot
	call(t, admin, api.QueryList, api.QueryArgs{List: "L1"}, &l1)
	if len(l1.Requests) != 1 || l1.Requests[0].ID != marker {
		t.Fatalf("L1 after close: %+v", l1.Requests)
	}
	if code := callCode(t, agents["alice"], "join", api.RequestArgs{Request: r1}); code != api.CodeClosed {
		t.Fatalf("join of a closed request: %v, want closed", code)
	}

	// John writes again: a new request.
	call(t, fb, "customer_message", api.CustomerMessageArgs{Channel: "C2", CustomerID: "john", Text: "Me again"}, &cm)
	if !cm.Created || cm.Request == r1 {
		t.Fatalf("message after close: %+v, want a new request", cm)
	}
	waitLines(t, "alice", recs["alice"], aliceAt+1, "request.created "+cm.Request+" UNREAD []")

	// Carol, subscribed elsewhere, heard nothing about L1 at all.
	if got := recs["carol"].lines(0); fmt.Sprint(got) != fmt.Sprint([]string{"sync lists=0 conversations=0", "list.subscribed L2 0"}) {
		t.Fatalf("carol received %q", got)
	}
	for id, r := range recs {
		if r.dups != 0 || r.back != 0 {
			t.Errorf("%s: %d duplicate and %d out-of-order events", id, r.dups, r.back)
		}
	}
}
