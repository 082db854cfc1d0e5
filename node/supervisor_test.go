package node

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// A supervisor logs in over TCP with the token create_supervisor showed,
// gets a sync carrying its board, hears a request arrive on a list nobody
// else watches, closes it (the agents in it hear the close), and its
// session ends once it is deleted.
func TestSupervisorSessionOverTCP(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, fbToken := haSetup(t, admin, "a1")
	var cred Credential
	haCall(t, admin, api.OpCreateSupervisor, api.CreateSupervisorArgs{ID: "sam", Name: "Sam"}, &cred)
	if cred.Token == "" || cred.ID != "sam" {
		t.Fatalf("create_supervisor answered %+v, want the id and a token", cred)
	}
	if _, err := transport.Dial(t.Context(), transport.ClientConfig{Addrs: []string{n.client}, Role: "supervisor", User: "sam", Token: "wrong"}); !errors.Is(err, &api.Error{Code: api.CodeUnauthenticated}) {
		t.Fatalf("supervisor with a wrong token: %v, want unauthenticated", err)
	}
	sup := haDial(t, []string{n.client}, "supervisor", "sam", cred.Token, false)
	sync := haNextEvent(t, sup)
	var view api.StreamView
	if err := sync.Decode(&view); err != nil || sync.Kind != api.EvSync || view.Board == nil || view.Supervisor != "sam" {
		t.Fatalf("first event %s %+v (%v), want a sync with sam's board", sync.Kind, view, err)
	}

	agent := haDial(t, []string{n.client}, "agent", "a1", tokens["a1"], false)
	haCall(t, agent, api.OpUnsubscribe, api.SubscribeArgs{List: "L1"}, nil)
	fb := haDial(t, []string{n.client}, "connector", "fb", fbToken, false)
	var cm api.CustomerMessageResult
	haCall(t, fb, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: "john", Text: "hello"}, &cm)
	ev := nextOfKind(t, sup, api.EvRequestCreated)
	var sum api.RequestSummary
	if err := ev.Decode(&sum); err != nil || sum.ID != cm.Request {
		t.Fatalf("request.created %+v (%v), want %s", sum, err, cm.Request)
	}

	haCall(t, agent, api.OpSubscribe, api.SubscribeArgs{List: "L1"}, nil)
	haCall(t, agent, api.OpJoin, api.RequestArgs{Request: cm.Request}, nil)
	haCall(t, sup, api.OpClose, api.RequestArgs{Request: cm.Request}, nil)
	closed := nextOfKind(t, agent, api.EvConversationClosed)
	var cc api.ConversationClosed
	if err := closed.Decode(&cc); err != nil || cc.By != (api.Principal{Role: api.RoleSupervisor, ID: "sam"}) {
		t.Fatalf("the agent heard conversation.closed %+v (%v), want by supervisor sam", cc, err)
	}
	var board api.Board
	haCall(t, sup, api.QueryBoard, nil, &board)
	if len(board.Requests) != 0 {
		t.Fatalf("board after the close lists %d requests", len(board.Requests))
	}
	// Admin-only reads stay admin-only.
	if err := sup.Call(t.Context(), api.QueryAgents, nil, nil); haCode(err) != api.CodeForbidden {
		t.Fatalf("supervisor get_agents: %v, want forbidden", err)
	}

	haCall(t, admin, api.OpDeleteSupervisor, api.IDArgs{ID: "sam"}, nil)
	select {
	case <-sup.Done():
	case <-time.After(applyWait):
		t.Fatal("the deleted supervisor's session is still open")
	}
	if !errors.Is(sup.Err(), &api.Error{Code: api.CodeUnauthenticated}) {
		t.Fatalf("deleted supervisor's session ended with %v, want unauthenticated", sup.Err())
	}
}

// nextOfKind skips events until one of kind arrives.
func nextOfKind(t *testing.T, c *transport.Client, kind api.EventKind) transport.Event {
	t.Helper()
	for {
		if ev := haNextEvent(t, c); ev.Kind == kind {
			return ev
		}
	}
}

// A supervisor deleted and created again under the same id is another
// principal: resuming from a cursor of the old one's stream gets a sync,
// not a replay of the events the old one was sent (customer messages its
// scope may no longer cover).
func TestRecreatedSupervisorDoesNotReplayTheOldStream(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	_, fbToken := haSetup(t, admin, "a1")
	var old Credential
	haCall(t, admin, api.OpCreateSupervisor, api.CreateSupervisorArgs{ID: "sam"}, &old)
	sup := haDial(t, []string{n.client}, "supervisor", "sam", old.Token, false)
	if ev := haNextEvent(t, sup); ev.Kind != api.EvSync {
		t.Fatalf("first event %s, want sync", ev.Kind)
	}
	fb := haDial(t, []string{n.client}, "connector", "fb", fbToken, false)
	haCall(t, fb, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: "john", Text: "my card number is..."}, nil)
	created := nextOfKind(t, sup, api.EvRequestCreated)
	sup.Close()

	haCall(t, admin, api.OpDeleteSupervisor, api.IDArgs{ID: "sam"}, nil)
	var again Credential
	haCall(t, admin, api.OpCreateSupervisor, api.CreateSupervisorArgs{ID: "sam", Queues: []string{}}, &again)
	resume := func(token string, since uint64) transport.Event {
		t.Helper()
		c, err := transport.Dial(t.Context(), transport.ClientConfig{Addrs: []string{n.client}, Role: "supervisor", User: "sam",
			Token: token, Resume: true, Since: since})
		if err != nil {
			t.Fatalf("dial the new sam: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return haNextEvent(t, c)
	}
	if ev := resume(again.Token, created.Seq-1); ev.Kind != api.EvSync {
		t.Fatalf("the new sam resuming before the old sam's request.created got %s (seq %d), want a sync", ev.Kind, ev.Seq)
	}
	// A cursor of the new principal's own stream resumes as usual.
	c := haDial(t, []string{n.client}, "supervisor", "sam", again.Token, false)
	sync := haNextEvent(t, c)
	haCall(t, fb, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: "mary", Text: "hello"}, nil)
	mine := nextOfKind(t, c, api.EvRequestCreated)
	c.Close()
	if ev := resume(again.Token, sync.Seq); ev.Kind != api.EvRequestCreated || ev.Seq != mine.Seq {
		t.Fatalf("the new sam resuming from its own sync got %s (seq %d), want the replay of request.created %d", ev.Kind, ev.Seq, mine.Seq)
	}
}

// A supervisor moves a request only into a queue of its scope: a
// supervisor of queues QS and QX may move a request of QS to QX, not to
// QV (same MRD, another queue) nor to QE (another MRD: refused
// forbidden, not bad_request, so that the refusal tells nothing of QE's
// MRD), and the request stays where it was. The check is made on the
// node the supervisor is connected to, a follower here: a queue created
// through the leader a moment before is judged as the leader would
// (refused forbidden to the queue supervisor, never not_found; let
// through for a supervisor of its MRD), whether or not the follower has
// applied its creation yet.
func TestSupervisorMovesOnlyIntoItsQueues(t *testing.T) {
	c := startHACluster(t, 3, nil)
	l := c.leader()
	f := c.followers()[0]
	admin := haDial(t, []string{l.client}, "admin", "", haAdminToken, false)
	for _, op := range []struct {
		op   string
		args any
	}{
		{api.OpCreateMRD, api.CreateMRDArgs{ID: "chat"}},
		{api.OpCreateMRD, api.CreateMRDArgs{ID: "email"}},
		{api.OpCreateChannelType, api.CreateChannelTypeArgs{ID: "webchat", MRD: "chat"}},
		{api.OpCreateQueue, api.CreateQueueArgs{ID: "QS", MRD: "chat"}},
		{api.OpCreateQueue, api.CreateQueueArgs{ID: "QX", MRD: "chat"}},
		{api.OpCreateQueue, api.CreateQueueArgs{ID: "QV", MRD: "chat"}},
		{api.OpCreateQueue, api.CreateQueueArgs{ID: "QE", MRD: "email"}},
		{api.OpCreateChannel, api.CreateChannelArgs{ID: "WS", Type: "webchat", Mode: api.ModePush, Queue: "QS"}},
	} {
		haCall(t, admin, op.op, op.args, nil)
	}
	var cx, qs, chat Credential
	haCall(t, admin, api.OpCreateConnector, api.CreateConnectorArgs{ID: "cx", Channels: []string{"WS"}}, &cx)
	haCall(t, admin, api.OpCreateSupervisor, api.CreateSupervisorArgs{ID: "qs", Queues: []string{"QS", "QX"}}, &qs)
	haCall(t, admin, api.OpCreateSupervisor, api.CreateSupervisorArgs{ID: "chat", MRDs: []string{"chat"}}, &chat)
	conn := haDial(t, []string{l.client}, "connector", "cx", cx.Token, false)
	arrive := func(customer string) string {
		t.Helper()
		var r api.CustomerMessageResult
		haCall(t, conn, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "WS", CustomerID: customer, Text: "hello"}, &r)
		return r.Request
	}
	queueOf := func(req string) string {
		t.Helper()
		var v api.ConversationView
		haCall(t, admin, api.QueryRequest, api.QueryArgs{Request: req}, &v)
		return v.Request.Queue
	}
	r1, r2 := arrive("c1"), arrive("c2") // nobody to route to: both wait in QS
	onF := func(user, token string) *transport.Client {
		return haDial(t, []string{f.client}, "supervisor", user, token, false)
	}
	supQS, supChat := onF("qs", qs.Token), onF("chat", chat.Token)
	move := func(sup *transport.Client, req, queue string) error {
		return sup.TransferToQueue(t.Context(), api.TransferToQueueArgs{Request: req, Queue: queue})
	}

	for _, tc := range []struct {
		queue string
		code  api.Code
	}{
		{"QV", api.CodeForbidden},
		{"QE", api.CodeForbidden},
		{"nope", api.CodeNotFound},
	} {
		if err := move(supQS, r1, tc.queue); haCode(err) != tc.code {
			t.Fatalf("supervisor of QS and QX moving %s to %s: %v, want %s", r1, tc.queue, err, tc.code)
		}
		if q := queueOf(r1); q != "QS" {
			t.Fatalf("%s is in %s after a refused move to %s, want still QS", r1, q, tc.queue)
		}
	}

	// Queues created through the leader, the moves sent at once to the
	// follower.
	for i := range 5 {
		id := fmt.Sprintf("QN%d", i)
		haCall(t, admin, api.OpCreateQueue, api.CreateQueueArgs{ID: id, MRD: "chat"}, nil)
		if err := move(supQS, r1, id); haCode(err) != api.CodeForbidden {
			t.Fatalf("supervisor of QS and QX moving %s to the new queue %s: %v, want forbidden", r1, id, err)
		}
		if err := move(supChat, r2, id); err != nil {
			t.Fatalf("supervisor of chat moving %s to the new queue %s: %v, want success", r2, id, err)
		}
		if q := queueOf(r2); q != id {
			t.Fatalf("%s is in %s after its move to %s", r2, q, id)
		}
	}
	if q := queueOf(r1); q != "QS" {
		t.Fatalf("%s is in %s after refused moves, want still QS", r1, q)
	}

	// Within its scope, the queue supervisor moves the request as before.
	if err := move(supQS, r1, "QX"); err != nil {
		t.Fatalf("supervisor of QS and QX moving %s to QX: %v", r1, err)
	}
	if q := queueOf(r1); q != "QX" {
		t.Fatalf("%s is in %s after its move to QX", r1, q)
	}
}
