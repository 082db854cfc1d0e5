package node

import (
	"errors"
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
