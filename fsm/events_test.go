package fsm_test

import (
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// TestWalkthroughEvents follows the product's Facebook walkthrough and checks
// exactly who is told what, in which order, with which payload: three
// agents, A1 and A2 subscribed to L1 (A3 to L2 only), on pull channel C2.
func TestWalkthroughEvents(t *testing.T) {
	s := walkthrough(t)
	cust := api.Customer{ID: "u1", Name: "Ursula"}
	hi := api.Message{From: api.Principal{Role: api.RoleConnector, ID: "u1"}, Name: "Ursula", Text: "Hi", At: t0 + 1}
	summary := func(id string, st api.RequestState, updated int64, parts ...string) api.RequestSummary {
		if parts == nil {
			parts = []string{}
		}
		sum := api.RequestSummary{ID: id, Channel: "C2", List: "L1", Customer: cust, State: st,
			Participants: parts, CreatedAt: t0 + 1, UpdatedAt: updated, Preview: "Hi"}
		if st == api.StateUnread {
			sum.Unread, sum.Latest = 1, "Hi" // nobody has joined: the opening message is unread
		}
		return sum
	}
	step := func(c *Command) (Result, []Event) {
		t.Helper()
		return mustApply(t, s, c)
	}

	// A customer message opens R1 (UNREAD): only L1's subscribers hear of it.
	res, evs := step(at(t0+1, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", CustomerName: "Ursula", Text: "Hi"})))
	if want := (api.CustomerMessageResult{Request: "R1", Created: true, State: api.StateUnread}); res.Data != want {
		t.Fatalf("result %+v", res.Data)
	}
	assertEvents(t, evs, ev(api.EvRequestCreated, summary("R1", api.StateUnread, t0+1), A("A1"), A("A2")))

	// Asking for an agent while UNREAD publishes nothing.
	_, evs = step(at(t0+2, cmd(OpRequestAgent, fb, &api.RequestAgentArgs{Request: "R1"})))
	assertEvents(t, evs)

	// A1 joins: the conversation (A1 and the channel's connector) hears the
	// join, then the list hears the state change.
	res, evs = step(at(t0+3, cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"})))
	assertEvents(t, evs,
		ev(api.EvConversationJoined, api.ParticipantChange{Request: "R1", Agent: "A1", State: api.StateActive, Participants: []string{"A1"}}, A("A1"), C("fb")),
		ev(api.EvRequestUpdated, summary("R1", api.StateActive, t0+3, "A1"), A("A1"), A("A2")),
	)
	if jr := res.Data.(api.JoinResult); len(jr.Transcript) != 1 || jr.Transcript[0] != hi {
		t.Errorf("join transcript %+v", jr.Transcript)
	}

	// A2 joins too: both agents and the connector hear it.
	_, evs = step(at(t0+4, cmd(OpJoin, a2, &api.RequestArgs{Request: "R1"})))
	assertEvents(t, evs,
		ev(api.EvConversationJoined, api.ParticipantChange{Request: "R1", Agent: "A2", State: api.StateActive, Participants: []string{"A1", "A2"}}, A("A1"), A("A2"), C("fb")),
		ev(api.EvRequestUpdated, summary("R1", api.StateActive, t0+4, "A1", "A2"), A("A1"), A("A2")),
	)

	// The customer writes: the joined agents hear it (the connector sent it).
	more := api.Message{From: api.Principal{Role: api.RoleConnector, ID: "u1"}, Name: "Ursula", Text: "Still there?", At: t0 + 5}
	res, evs = step(at(t0+5, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", CustomerName: "Ursula", Text: "Still there?"})))
	if want := (api.CustomerMessageResult{Request: "R1", State: api.StateActive}); res.Data != want {
		t.Errorf("result %+v", res.Data)
	}
	assertEvents(t, evs, ev(api.EvConversationMessage, api.ConversationMessage{Request: "R1", Message: more}, A("A1"), A("A2")))

	// A1 replies: agents and the connector (which delivers it) hear it.
	reply := api.Message{From: a1, Name: "Ann", Text: "Yes!", At: t0 + 6}
	_, evs = step(at(t0+6, cmd(OpSend, a1, &api.SendArgs{Request: "R1", Text: "Yes!"})))
	assertEvents(t, evs, ev(api.EvConversationMessage, api.ConversationMessage{Request: "R1", Message: reply}, A("A1"), A("A2"), C("fb")))

	// A1 leaves: it hears its own leave with the others; still ACTIVE.
	_, evs = step(at(t0+7, cmd(OpLeave, a1, &api.RequestArgs{Request: "R1"})))
	assertEvents(t, evs,
		ev(api.EvConversationLeft, api.ParticipantChange{Request: "R1", Agent: "A1", State: api.StateActive, Participants: []string{"A2"}}, A("A1"), A("A2"), C("fb")),
		ev(api.EvRequestUpdated, summary("R1", api.StateActive, t0+7, "A2"), A("A1"), A("A2")),
	)

	// A2 leaves: nobody is left, R1 is INACTIVE and stays on the list.
	_, evs = step(at(t0+8, cmd(OpLeave, a2, &api.RequestArgs{Request: "R1"})))
	assertEvents(t, evs,
		ev(api.EvConversationLeft, api.ParticipantChange{Request: "R1", Agent: "A2", State: api.StateInactive, Participants: []string{}}, A("A2"), C("fb")),
		ev(api.EvRequestUpdated, summary("R1", api.StateInactive, t0+8), A("A1"), A("A2")),
	)

	// The customer asks for a new agent while INACTIVE: no notification.
	res, evs = step(at(t0+9, cmd(OpRequestAgent, fb, &api.RequestAgentArgs{Channel: "C2", CustomerID: "u1"})))
	assertEvents(t, evs)
	if want := (api.RequestAgentResult{Request: "R1", State: api.StateInactive}); res.Data != want {
		t.Errorf("result %+v", res.Data)
	}

	// A1 comes back and closes: the conversation hears it closed, then the
	// list hears it removed.
	step(at(t0+10, cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"})))
	_, evs = step(at(t0+11, cmd(OpClose, a1, &api.RequestArgs{Request: "R1"})))
	assertEvents(t, evs,
		ev(api.EvConversationClosed, api.ConversationClosed{Request: "R1", By: a1}, A("A1"), C("fb")),
		ev(api.EvRequestRemoved, summary("R1", api.StateClosed, t0+11, "A1"), A("A1"), A("A2")),
	)

	// The customer writes again: a new request, announced like the first.
	res, evs = step(at(t0+12, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", CustomerName: "Ursula", Text: "Hello again"})))
	if want := (api.CustomerMessageResult{Request: "R2", Created: true, State: api.StateUnread}); res.Data != want {
		t.Fatalf("result %+v", res.Data)
	}
	r2 := api.RequestSummary{ID: "R2", Channel: "C2", List: "L1", Customer: cust, State: api.StateUnread,
		Participants: []string{}, CreatedAt: t0 + 12, UpdatedAt: t0 + 12, Preview: "Hello again", Unread: 1, Latest: "Hello again"}
	assertEvents(t, evs, ev(api.EvRequestCreated, r2, A("A1"), A("A2")))

	// A3 subscribes late: it first gets the list as it is (R2 only, R1 was
	// removed), then live changes.
	res, evs = step(at(t0+13, cmd(OpSubscribe, a3, &api.SubscribeArgs{List: "L1"})))
	snap := api.ListSnapshot{List: "L1", Name: "Facebook", Requests: []api.RequestSummary{r2}, Total: 1}
	assertEvents(t, evs, ev(api.EvListSubscribed, snap, A("A3")))
	if !reflect.DeepEqual(res.Data, snap) {
		t.Errorf("subscribe result %+v, want the snapshot", res.Data)
	}

	_, evs = step(at(t0+14, cmd(OpJoin, a3, &api.RequestArgs{Request: "R2"})))
	r2.State, r2.Participants, r2.UpdatedAt = api.StateActive, []string{"A3"}, t0+14
	r2.Unread, r2.Latest = 0, "" // an agent is in: nothing is unread
	assertEvents(t, evs,
		ev(api.EvConversationJoined, api.ParticipantChange{Request: "R2", Agent: "A3", State: api.StateActive, Participants: []string{"A3"}}, A("A3"), C("fb")),
		ev(api.EvRequestUpdated, r2, A("A1"), A("A2"), A("A3")),
	)
}

// Closing a request nobody is in tells only the channel's connectors and
// the list; a connector that closes hears its own close.
func TestCloseInactiveEvents(t *testing.T) {
	s := walkthrough(t)
	inactiveR1(t, s)
	_, evs := mustApply(t, s, cmd(OpClose, fb, &api.RequestArgs{Request: "R1"}))
	if len(evs) != 2 {
		t.Fatalf("events %s", kinds(evs))
	}
	assertEvents(t, evs[:1], ev(api.EvConversationClosed, api.ConversationClosed{Request: "R1", By: fb}, C("fb")))
	if evs[1].Kind != api.EvRequestRemoved || evs[1].Data.(api.RequestSummary).State != api.StateClosed {
		t.Errorf("second event %+v", evs[1])
	}
}

// An event with nobody to tell is not emitted: a request on a list nobody
// subscribes to is created silently.
func TestEventsWithoutRecipientsAreDropped(t *testing.T) {
	s := walkthrough(t)
	mustApply(t, s, cmd(OpUnsubscribe, a1, &api.SubscribeArgs{List: "L1"}))
	mustApply(t, s, cmd(OpUnsubscribe, a2, &api.SubscribeArgs{List: "L1"}))
	_, evs := mustApply(t, s, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "anyone?"}))
	assertEvents(t, evs)
}

// Events share state slices; later changes must not rewrite an event
// already emitted.
func TestEventsAreNotRewrittenByLaterCommands(t *testing.T) {
	s := walkthrough(t)
	openR1(t, s)
	_, joinEvs := mustApply(t, s, cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"}))
	mustApply(t, s, cmd(OpSubscribe, a3, &api.SubscribeArgs{List: "L1"}))
	mustApply(t, s, cmd(OpJoin, a2, &api.RequestArgs{Request: "R1"}))
	mustApply(t, s, cmd(OpLeave, a1, &api.RequestArgs{Request: "R1"}))
	assertEvents(t, joinEvs,
		ev(api.EvConversationJoined, api.ParticipantChange{Request: "R1", Agent: "A1", State: api.StateActive, Participants: []string{"A1"}}, A("A1"), C("fb")),
		ev(api.EvRequestUpdated, api.RequestSummary{ID: "R1", Channel: "C2", List: "L1", Customer: api.Customer{ID: "u1", Name: "Cust u1"},
			State: api.StateActive, Participants: []string{"A1"}, CreatedAt: t0, UpdatedAt: t0, Preview: "Hi"}, A("A1"), A("A2")),
	)
}

func TestSeqOf(t *testing.T) {
	if got := api.SeqOf(7, 3); api.IndexOf(got) != 7 || got&(1<<api.SeqShift-1) != 3 {
		t.Errorf("SeqOf(7,3) = %d", got)
	}
	if api.SeqOf(7, 0) <= api.SeqOf(6, 1<<api.SeqShift-1) {
		t.Error("sequence numbers of a later entry are not larger")
	}
}
