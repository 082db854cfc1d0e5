package fsm_test

import (
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// The customer writes again to an UNREAD request, and to an INACTIVE one:
// the list's subscribers get a request.updated with the unread count and
// the latest message (never a second request.created); request_agent on
// the INACTIVE request still publishes nothing; joining clears the count.
func TestCustomerWritesAgainUpdatesTheList(t *testing.T) {
	s := walkthrough(t)
	r := customerMessage(t, s, "u1", "Where is my order?")
	_, evs := mustApply(t, s, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "Hello?"}))
	assertKinds(t, evs, "request.updated→agent:A1,agent:A2")
	sum := evs[0].Data.(api.RequestSummary)
	if sum.State != api.StateUnread || sum.Unread != 2 || sum.Latest != "Hello?" || sum.Preview != "Where is my order?" {
		t.Fatalf("summary after a second message: %+v", sum)
	}

	mustApply(t, s, cmd(OpJoin, a1, &api.RequestArgs{Request: r}))
	if got := s.Requests[r].Unread; got != 0 {
		t.Fatalf("unread %d after a join, want 0", got)
	}
	_, evs = mustApply(t, s, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "thanks"}))
	assertKinds(t, evs, "conversation.message→agent:A1") // ACTIVE: the participants, not the list

	mustApply(t, s, cmd(OpLeave, a1, &api.RequestArgs{Request: r}))
	_, evs = mustApply(t, s, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "one more thing"}))
	assertKinds(t, evs, "request.updated→agent:A1,agent:A2")
	if sum := evs[0].Data.(api.RequestSummary); sum.State != api.StateInactive || sum.Unread != 1 || sum.Latest != "one more thing" {
		t.Fatalf("summary of the INACTIVE request: %+v", sum)
	}
	// The seed's rule stands: asking for a new agent adds nothing.
	_, evs = mustApply(t, s, cmd(OpRequestAgent, fb, &api.RequestAgentArgs{Request: r}))
	assertKinds(t, evs)
}

// At level 1 the customer's new message on an UNREAD request tells
// nobody, as before levels.
func TestCustomerWritesAgainLevel1(t *testing.T) {
	s := level1World(t)
	customerMessage(t, s, "u1", "Where is my order?")
	_, evs := mustApply(t, s, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "Hello?"}))
	assertKinds(t, evs)
	if got := s.Requests["R1"].Unread; got != 0 {
		t.Fatalf("level 1 counted %d unread", got)
	}
}

// A subscribed agent closes an UNREAD or INACTIVE request from the list
// without joining; an agent not subscribed to the list, or a request
// someone is in, still needs the agent to be a participant.
func TestCloseFromTheList(t *testing.T) {
	s := walkthrough(t)
	r1 := customerMessage(t, s, "u1", "spam")
	assertRejected(t, s, cmd(OpClose, a3, &api.RequestArgs{Request: r1}), api.CodeNotParticipant) // A3 is on L2 only
	_, evs := mustApply(t, s, cmd(OpClose, a2, &api.RequestArgs{Request: r1}))
	assertKinds(t, evs, "conversation.closed→connector:fb", "request.removed→agent:A1,agent:A2")
	if s.Requests[r1].State != api.StateClosed {
		t.Fatalf("%s is %s", r1, s.Requests[r1].State)
	}

	r2 := customerMessage(t, s, "u2", "question")
	mustApply(t, s, cmd(OpJoin, a1, &api.RequestArgs{Request: r2}))
	assertRejected(t, s, cmd(OpClose, a2, &api.RequestArgs{Request: r2}), api.CodeNotParticipant) // ACTIVE: A1's
	mustApply(t, s, cmd(OpLeave, a1, &api.RequestArgs{Request: r2}))
	mustApply(t, s, cmd(OpClose, a2, &api.RequestArgs{Request: r2})) // INACTIVE: from the list

	s1 := level1World(t)
	r := customerMessage(t, s1, "u1", "spam")
	assertRejected(t, s1, cmd(OpClose, a2, &api.RequestArgs{Request: r}), api.CodeNotParticipant)
}

func assertKinds(t *testing.T, evs []Event, want ...string) {
	t.Helper()
	var got []string
	for _, e := range evs {
		k := string(e.Kind) + "→"
		for i, to := range e.To {
			if i > 0 {
				k += ","
			}
			k += to
		}
		got = append(got, k)
	}
	if len(got) != len(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("events %q, want %q", got, want)
		}
	}
}
