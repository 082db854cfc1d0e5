package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/node"

	"github.com/switchboard/switchboard/transport"
)

// Push mode end to end: a real node (Raft on BoltDB, the actors with their
// offer timers and logout grace, TCP) and agents connected through the Go
// client, as in walkthrough_test.go (whose helpers these reuse). Names
// carry a push prefix to stay apart from the other test files'.

// pushNode starts a single node like newTestNode, with the logout grace
// given (negative: off).
func pushNode(t *testing.T, grace time.Duration) *testNode {
	t.Helper()
	n := newNodePorts(t)
	n.grace = grace
	n.start()
	t.Cleanup(n.stop)
	return n
}

// pushWorld is a chat MRD with push queues, agents (max 3 chats) who are
// members of every queue, and their recorded sessions.
type pushWorld struct {
	t      *testing.T
	n      *testNode
	admin  *transport.Client
	tokens map[string]string
	agents map[string]*transport.Client
	recs   map[string]*recorder
	at     map[string]int // events of each agent already checked
}

// pushQueue is a queue and the push channel W<queue> feeding it.
type pushQueue struct {
	id       string
	priority int
	timeout  time.Duration
}

func newPushWorld(t *testing.T, n *testNode, queues []pushQueue, agents ...string) *pushWorld {
	t.Helper()
	w := &pushWorld{t: t, n: n, admin: n.dial(t, "admin", "", testAdminToken, true),
		tokens: map[string]string{}, agents: map[string]*transport.Client{}, recs: map[string]*recorder{}, at: map[string]int{}}
	call(t, w.admin, "create_mrd", api.CreateMRDArgs{ID: "chat"}, nil)
	call(t, w.admin, "create_channel_type", api.CreateChannelTypeArgs{ID: "webchat", MRD: "chat"}, nil)
	for _, q := range queues {
		call(t, w.admin, "create_queue", api.CreateQueueArgs{ID: q.id, MRD: "chat", Priority: q.priority, OfferTimeoutMs: q.timeout.Milliseconds()}, nil)
		call(t, w.admin, "create_channel", api.CreateChannelArgs{ID: "W" + q.id, Type: "webchat", Mode: api.ModePush, Queue: q.id}, nil)
	}
	for _, id := range agents {
		var cred node.Credential
		call(t, w.admin, "create_agent", api.CreateAgentArgs{ID: id, Max: map[string]int{"chat": 3}}, &cred)
		w.tokens[id] = cred.Token
		for _, q := range queues {
			pushDo(t, w.admin.AddQueueMember(pushCtx(t), id, q.id))
		}
		w.connect(id)
	}
	return w
}

// connect opens a session for agent id and records its events from its
// sync on.
func (w *pushWorld) connect(id string) {
	w.t.Helper()
	w.agents[id] = w.n.dial(w.t, "agent", id, w.tokens[id], false)
	w.recs[id] = record(w.agents[id])
	w.at[id] = 0
	w.expect(id, "sync")
}

// ready logs agent id in and makes it READY in chat, checking the events.
func (w *pushWorld) ready(id string, then ...string) {
	w.t.Helper()
	c := w.agents[id]
	_, err := c.Login(pushCtx(w.t), "")
	pushDo(w.t, err)
	_, err = c.SetAgentState(pushCtx(w.t), api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady})
	pushDo(w.t, err)
	w.expect(id, append([]string{"agent.state * NOT_READY", "agent.state chat READY"}, then...)...)
}

// arrive brings a customer's first message in on queue q's channel and
// returns the request opened.
func (w *pushWorld) arrive(q, customer string) string {
	w.t.Helper()
	var res api.CustomerMessageResult
	call(w.t, w.admin, "customer_message", api.CustomerMessageArgs{Channel: "W" + q, CustomerID: customer, Text: "hello from " + customer}, &res)
	if !res.Created {
		w.t.Fatalf("customer %s: %+v, want a new request", customer, res)
	}
	return res.Request
}

// expect waits until agent id has received exactly want after the events
// already checked, and fails if anything else arrives.
func (w *pushWorld) expect(id string, want ...string) {
	w.t.Helper()
	r := w.recs[id]
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := pushLines(r, w.at[id])
		if len(got) >= len(want) {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				w.t.Fatalf("%s received\n  %q\nwant\n  %q", id, got, want)
			}
			w.at[id] += len(want)
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s received only\n  %q\nwant\n  %q", id, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quiet checks that agent id received nothing after what was checked.
func (w *pushWorld) quiet(id string) {
	w.t.Helper()
	if got := pushLines(w.recs[id], w.at[id]); len(got) > 0 {
		w.t.Fatalf("%s received %q, want nothing", id, got)
	}
}

// queue returns queue q's waiting requests and offers as "R1 R2" and
// "R3>alice".
func (w *pushWorld) queue(q string) (waiting, offers string) {
	w.t.Helper()
	v, err := w.admin.Queue(pushCtx(w.t), q)
	pushDo(w.t, err)
	var ws, os []string
	for _, r := range v.Waiting {
		ws = append(ws, r.Request.ID)
	}
	for _, o := range v.Offers {
		os = append(os, o.Request.ID+">"+o.Agent)
	}
	return strings.Join(ws, " "), strings.Join(os, " ")
}

// state returns agent id's chat state as "READY" or "NOT_READY reason".
func (w *pushWorld) state(id string) string {
	w.t.Helper()
	all, err := w.admin.AgentStates(pushCtx(w.t))
	pushDo(w.t, err)
	for _, a := range all {
		if a.Agent != id {
			continue
		}
		for _, m := range a.MRDs {
			if m.MRD == "chat" {
				return strings.TrimSpace(string(m.State) + " " + m.Reason)
			}
		}
	}
	w.t.Fatalf("no chat state for %s", id)
	return ""
}

func (w *pushWorld) accept(id, request string) {
	w.t.Helper()
	jr, err := w.agents[id].AcceptOffer(pushCtx(w.t), api.OfferArgs{Request: request})
	pushDo(w.t, err)
	if jr.Request.ID != request || jr.Request.State != api.StateActive {
		w.t.Fatalf("%s accept %s: %+v", id, request, jr.Request)
	}
}

func pushCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pushDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pushLines renders the recorded events after the first from.
func pushLines(r *recorder, from int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.got[min(from, len(r.got)):] {
		out = append(out, pushRender(ev))
	}
	return out
}

// pushRender renders an event as "kind request details".
func pushRender(ev transport.Event) string {
	switch ev.Kind {
	case api.EvSync:
		return "sync"
	case api.EvOfferCreated:
		var o api.OfferInfo
		_ = ev.Decode(&o)
		return fmt.Sprintf("%s %s %s", ev.Kind, o.Request.ID, o.Kind)
	case api.EvOfferWithdrawn:
		var o api.OfferWithdrawn
		_ = ev.Decode(&o)
		return fmt.Sprintf("%s %s %s", ev.Kind, o.Offer.Request.ID, o.Reason)
	case api.EvAgentState:
		var a api.AgentStateChange
		_ = ev.Decode(&a)
		mrd := a.MRD
		if mrd == "" {
			mrd = "*"
		}
		return strings.TrimSpace(fmt.Sprintf("%s %s %s %s", ev.Kind, mrd, a.State, a.Reason))
	case api.EvAgentMode:
		var m api.AgentModeChange
		_ = ev.Decode(&m)
		return fmt.Sprintf("%s %s", ev.Kind, m.Mode)
	}
	return render(ev)
}

// holds checks cond stays true for d: how an absence is asserted.
func pushHolds(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
	}
}

// TestPushAutoModeMaxThreeEndToEnd is the product's first push example: an
// agent in auto mode with a max of 3 accepts a chat and is offered the
// next at once, then a third, and no fourth until one ends.
func TestPushAutoModeMaxThreeEndToEnd(t *testing.T) {
	w := newPushWorld(t, pushNode(t, -1), []pushQueue{{id: "Q", timeout: time.Hour}}, "alice")
	var rs []string
	for i := range 4 {
		rs = append(rs, w.arrive("Q", fmt.Sprint("cust", i)))
	}
	w.quiet("alice") // logged out: offered nothing
	w.ready("alice", "offer.created "+rs[0]+" route")
	w.accept("alice", rs[0])
	w.expect("alice", "conversation.joined "+rs[0]+" alice ACTIVE", "offer.created "+rs[1]+" route")
	w.accept("alice", rs[1])
	w.expect("alice", "conversation.joined "+rs[1]+" alice ACTIVE", "offer.created "+rs[2]+" route")
	w.accept("alice", rs[2])
	w.expect("alice", "conversation.joined "+rs[2]+" alice ACTIVE")
	if waiting, offers := w.queue("Q"); waiting != rs[3] || offers != "" {
		t.Fatalf("at her max: waiting %q, offers %q; want %s waiting", waiting, offers, rs[3])
	}
	// The next thing alice hears is the close that frees a place, and only
	// then the fourth offer.
	call(t, w.admin, "close", api.RequestArgs{Request: rs[0]}, nil)
	w.expect("alice", "conversation.closed "+rs[0], "offer.created "+rs[3]+" route")
	w.quiet("alice")
}

// TestPullChatModeRequestChatEndToEnd is the second example: in pull chat
// mode, max 3, one chat open, nothing is offered until Request Chat, which
// yields exactly one request; a Request Chat with nothing waiting is
// served by the next arrival.
func TestPullChatModeRequestChatEndToEnd(t *testing.T) {
	w := newPushWorld(t, pushNode(t, -1), []pushQueue{{id: "Q", timeout: time.Hour}}, "alice")
	_, err := w.agents["alice"].SetAgentMode(pushCtx(t), "", api.AgentModePull)
	pushDo(t, err)
	w.expect("alice", "agent.mode pull")
	w.ready("alice")
	r1 := w.arrive("Q", "cust1")
	rc, err := w.agents["alice"].RequestChat(pushCtx(t), "")
	pushDo(t, err)
	if rc.Offer == nil || rc.Offer.Request.ID != r1 {
		t.Fatalf("request_chat: %+v, want an offer of %s", rc, r1)
	}
	w.expect("alice", "offer.created "+r1+" route")
	w.accept("alice", r1)
	w.expect("alice", "conversation.joined "+r1+" alice ACTIVE")

	// One chat open, three requests waiting: nothing is offered...
	var rs []string
	for i := 2; i <= 4; i++ {
		rs = append(rs, w.arrive("Q", fmt.Sprint("cust", i)))
	}
	call(t, w.admin, "send", api.SendArgs{Request: r1, Agent: "alice", Text: "marker"}, nil)
	w.expect("alice", "conversation.message "+r1+" marker")
	if waiting, _ := w.queue("Q"); waiting != strings.Join(rs, " ") {
		t.Fatalf("waiting %q, want %v", waiting, rs)
	}
	// ...until Request Chat, which yields exactly one.
	rc, err = w.agents["alice"].RequestChat(pushCtx(t), "")
	pushDo(t, err)
	if rc.Offer == nil || rc.Offer.Request.ID != rs[0] || rc.Pending {
		t.Fatalf("request_chat: %+v, want an offer of %s", rc, rs[0])
	}
	w.expect("alice", "offer.created "+rs[0]+" route")
	w.accept("alice", rs[0])
	w.expect("alice", "conversation.joined "+rs[0]+" alice ACTIVE")
	call(t, w.admin, "send", api.SendArgs{Request: r1, Agent: "alice", Text: "marker 2"}, nil)
	w.expect("alice", "conversation.message "+r1+" marker 2")
	if waiting, offers := w.queue("Q"); waiting != strings.Join(rs[1:], " ") || offers != "" {
		t.Fatalf("waiting %q offers %q, want %v waiting", waiting, offers, rs[1:])
	}

	// Request Chat with nothing waiting stays pending for the next arrival.
	call(t, w.admin, "close", api.RequestArgs{Request: rs[1]}, nil)
	call(t, w.admin, "close", api.RequestArgs{Request: rs[2]}, nil)
	rc, err = w.agents["alice"].RequestChat(pushCtx(t), "")
	pushDo(t, err)
	if !rc.Pending || rc.Offer != nil {
		t.Fatalf("request_chat with nothing waiting: %+v, want pending", rc)
	}
	r5 := w.arrive("Q", "cust5")
	w.expect("alice", "offer.created "+r5+" route")
	w.quiet("alice")
}

// TestPushOfferTimeoutEndToEnd: an offer nobody answers is withdrawn by the
// leader's real offer timer; the request goes to another agent, and each
// agent who let it lapse is NOT_READY (ring_no_answer) and told so.
func TestPushOfferTimeoutEndToEnd(t *testing.T) {
	const timeout = 400 * time.Millisecond
	w := newPushWorld(t, pushNode(t, -1), []pushQueue{{id: "Q", timeout: timeout}}, "alice", "bob", "carol")
	w.ready("alice")
	w.ready("bob")
	start := time.Now()
	r1 := w.arrive("Q", "cust1")
	// Equal load and never assigned: the smallest id first.
	w.expect("alice", "offer.created "+r1+" route",
		"offer.withdrawn "+r1+" timeout", "agent.state chat NOT_READY ring_no_answer")
	if lapsed := time.Since(start); lapsed < timeout {
		t.Fatalf("withdrawn after %v, before the %v timeout", lapsed, timeout)
	}
	w.expect("bob", "offer.created "+r1+" route",
		"offer.withdrawn "+r1+" timeout", "agent.state chat NOT_READY ring_no_answer")
	// Nobody READY is left: the request waits, and the next agent to be
	// READY gets it (and lets it lapse too).
	if waiting, offers := w.queue("Q"); waiting != r1 || offers != "" {
		t.Fatalf("waiting %q offers %q, want %s waiting", waiting, offers, r1)
	}
	w.ready("carol", "offer.created "+r1+" route",
		"offer.withdrawn "+r1+" timeout", "agent.state chat NOT_READY ring_no_answer")
	for _, id := range []string{"alice", "bob", "carol"} {
		if st := w.state(id); st != "NOT_READY ring_no_answer" {
			t.Fatalf("%s is %s", id, st)
		}
		w.quiet(id)
	}
	if waiting, offers := w.queue("Q"); waiting != r1 || offers != "" {
		t.Fatalf("waiting %q offers %q, want %s waiting", waiting, offers, r1)
	}
}

// TestPushRejectGoesToNextAgentEndToEnd: a rejected offer goes to the next
// agent in the fairness order; once every agent declined, the first is
// asked again.
func TestPushRejectGoesToNextAgentEndToEnd(t *testing.T) {
	w := newPushWorld(t, pushNode(t, -1), []pushQueue{{id: "Q", timeout: time.Hour}}, "alice", "bob", "carol")
	for _, id := range []string{"alice", "bob", "carol"} {
		w.ready(id)
	}
	r1 := w.arrive("Q", "cust1")
	for _, id := range []string{"alice", "bob", "carol"} {
		w.expect(id, "offer.created "+r1+" route")
		pushDo(t, w.agents[id].RejectOffer(pushCtx(t), api.OfferArgs{Request: r1}))
		w.expect(id, "offer.withdrawn "+r1+" rejected")
	}
	// All declined: the last resort is the one assigned longest ago.
	w.expect("alice", "offer.created "+r1+" route")
	w.accept("alice", r1)
	w.expect("alice", "conversation.joined "+r1+" alice ACTIVE")
	w.quiet("bob")
	w.quiet("carol")
	for _, id := range []string{"alice", "bob", "carol"} {
		if st := w.state(id); st != "READY" {
			t.Fatalf("%s is %s after rejecting, want READY", id, st)
		}
	}
}

// TestPushLogoutReroutesPendingOfferEndToEnd: an agent logging out with a
// pending offer returns it, and it goes to another agent at once.
func TestPushLogoutReroutesPendingOfferEndToEnd(t *testing.T) {
	w := newPushWorld(t, pushNode(t, -1), []pushQueue{{id: "Q", timeout: time.Hour}}, "alice", "bob")
	w.ready("alice")
	w.ready("bob")
	r1 := w.arrive("Q", "cust1")
	w.expect("alice", "offer.created "+r1+" route")
	st, err := w.agents["alice"].Logout(pushCtx(t), "")
	pushDo(t, err)
	if st.LoggedIn {
		t.Fatalf("logout: %+v", st)
	}
	w.expect("alice", "offer.withdrawn "+r1+" logged_out", "agent.state * LOGGED_OUT")
	w.expect("bob", "offer.created "+r1+" route")
	if _, offers := w.queue("Q"); offers != r1+">bob" {
		t.Fatalf("offers %q, want %s>bob", offers, r1)
	}
}

// TestPushLogoutGraceEndToEnd: an agent whose only session closes and does
// not come back within the grace is logged out by the node, and its
// pending offer goes to another agent; one that reconnects in time stays.
func TestPushLogoutGraceEndToEnd(t *testing.T) {
	const grace = 500 * time.Millisecond
	w := newPushWorld(t, pushNode(t, grace), []pushQueue{{id: "Q", timeout: time.Hour}}, "alice", "bob")
	w.ready("alice")
	w.ready("bob")
	loggedIn := func(id string) bool { return w.state(id) != string(api.AgentLoggedOut) }

	// Bob drops and reconnects at once: still logged in past the grace.
	w.agents["bob"].Close()
	w.connect("bob")
	pushHolds(t, 3*grace, "bob logged in", func() bool { return loggedIn("bob") })

	r1 := w.arrive("Q", "cust1")
	w.expect("alice", "offer.created "+r1+" route")
	w.agents["alice"].Close()
	w.expect("bob", "offer.created "+r1+" route")
	if loggedIn("alice") {
		t.Fatal("alice still logged in after her offer moved")
	}
	w.connect("alice") // her sync says where she stands
	v, err := w.agents["alice"].View(pushCtx(t))
	pushDo(t, err)
	if v.Push == nil || v.Push.Status.LoggedIn || len(v.Push.Offers) != 0 {
		t.Fatalf("alice's view after the grace: %+v", v.Push)
	}
}

// TestPullPoliciesEndToEnd: two queues of different priorities. Under
// strict_priority Request Chat takes the higher-priority queue's request
// though the other queue's is older; under first_due it takes the oldest.
func TestPullPoliciesEndToEnd(t *testing.T) {
	w := newPushWorld(t, pushNode(t, -1), []pushQueue{{id: "QLOW", priority: 1, timeout: time.Hour}, {id: "QHIGH", priority: 5, timeout: time.Hour}}, "alice")
	_, err := w.agents["alice"].SetAgentMode(pushCtx(t), "", api.AgentModePull)
	pushDo(t, err)
	w.expect("alice", "agent.mode pull")
	w.ready("alice")
	low1 := w.arrive("QLOW", "old")
	high1 := w.arrive("QHIGH", "vip")
	pull := func(want string) {
		t.Helper()
		rc, err := w.agents["alice"].RequestChat(pushCtx(t), "")
		pushDo(t, err)
		if rc.Offer == nil || rc.Offer.Request.ID != want {
			t.Fatalf("request_chat: %+v, want an offer of %s", rc, want)
		}
		w.expect("alice", "offer.created "+want+" route")
		w.accept("alice", want)
		w.expect("alice", "conversation.joined "+want+" alice ACTIVE")
	}

	// strict_priority is the default.
	pull(high1)
	high2 := w.arrive("QHIGH", "vip2")
	pushDo(t, w.admin.SetPullPolicy(pushCtx(t), api.PolicyFirstDue))
	pull(low1) // the oldest, though QHIGH has a request
	if waiting, _ := w.queue("QHIGH"); waiting != high2 {
		t.Fatalf("QHIGH waiting %q, want %s", waiting, high2)
	}

	// Back to strict priority: QHIGH first again.
	low2 := w.arrive("QLOW", "old2")
	pushDo(t, w.admin.SetPullPolicy(pushCtx(t), api.PolicyStrictPriority))
	pull(high2)
	if waiting, _ := w.queue("QLOW"); waiting != low2 {
		t.Fatalf("QLOW waiting %q, want %s", waiting, low2)
	}
	w.quiet("alice")
}
