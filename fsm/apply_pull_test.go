package fsm_test

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// Preparation steps for the pull-mode tables. The first customer message of
// a fresh walkthrough state opens R1, the next R2, and so on.

// openR1 opens R1 for customer u1 (UNREAD).
func openR1(tb testing.TB, s *State) { customerMessage(tb, s, "u1", "Hi") }

// activeR1 opens R1 and lets A1 join (ACTIVE).
func activeR1(tb testing.TB, s *State) {
	openR1(tb, s)
	mustApply(tb, s, cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"}))
}

// bothInR1: A1 and A2 are in R1.
func bothInR1(tb testing.TB, s *State) {
	activeR1(tb, s)
	mustApply(tb, s, cmd(OpJoin, a2, &api.RequestArgs{Request: "R1"}))
}

// inactiveR1: A1 joined R1 and left (INACTIVE).
func inactiveR1(tb testing.TB, s *State) {
	activeR1(tb, s)
	mustApply(tb, s, cmd(OpLeave, a1, &api.RequestArgs{Request: "R1"}))
}

// closedR1: R1 was opened, joined by A1 and closed by A1.
func closedR1(tb testing.TB, s *State) {
	activeR1(tb, s)
	mustApply(tb, s, cmd(OpClose, a1, &api.RequestArgs{Request: "R1"}))
}

func steps(fs ...func(testing.TB, *State)) func(testing.TB, *State) {
	return func(tb testing.TB, s *State) {
		for _, f := range fs {
			f(tb, s)
		}
	}
}

func wantState(t *testing.T, s *State, id string, want api.RequestState, parts ...string) {
	t.Helper()
	r := s.Requests[id]
	if r == nil {
		t.Fatalf("request %s does not exist", id)
	}
	if r.State != want {
		t.Errorf("%s state %s, want %s", id, r.State, want)
	}
	if len(parts) == 0 {
		parts = nil
	}
	got := r.Participants
	if len(got) == 0 {
		got = nil
	}
	if !reflect.DeepEqual(got, parts) {
		t.Errorf("%s participants %v, want %v", id, r.Participants, parts)
	}
}

func TestSubscribe(t *testing.T) {
	sub := func(by api.Principal, agent, list string) *Command {
		return cmd(OpSubscribe, by, &api.SubscribeArgs{Agent: agent, List: list})
	}
	cases := []applyCase{
		{name: "agent subscribes itself", c: sub(a3, "", "L1"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			snap := api.ListSnapshot{List: "L1", Name: "Facebook", Requests: []api.RequestSummary{}}
			if !reflect.DeepEqual(res.Data, snap) {
				t.Errorf("result %+v, want %+v", res.Data, snap)
			}
			assertEvents(t, evs, ev(api.EvListSubscribed, snap, A("A3")))
			if got, want := s.Lists["L1"].Subscribers, []string{A("A1"), A("A2"), A("A3")}; !reflect.DeepEqual(got, want) {
				t.Errorf("L1 subscribers %v, want %v", got, want)
			}
			if got, want := s.Agents["A3"].Lists, []string{"L1", "L2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("A3 lists %v, want %v", got, want)
			}
		}},
		{name: "agent naming itself", c: sub(a3, "A3", "L1"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			assertEvents(t, evs, ev(api.EvListSubscribed, res.Data, A("A3")))
		}},
		{name: "admin subscribes an agent", c: sub(admin, "A3", "L1"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			assertEvents(t, evs, ev(api.EvListSubscribed, res.Data, A("A3")))
			if !slices.Contains(s.Agents["A3"].Lists, "L1") {
				t.Error("A3 not subscribed")
			}
		}},
		{name: "snapshot lists open requests oldest first", prep: func(tb testing.TB, s *State) {
			customerMessage(tb, s, "u1", "first")
			customerMessage(tb, s, "u2", "second")
		}, c: sub(a3, "", "L1"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			snap := res.Data.(api.ListSnapshot)
			if len(snap.Requests) != 2 || snap.Requests[0].ID != "R1" || snap.Requests[1].ID != "R2" {
				t.Errorf("snapshot requests %+v", snap.Requests)
			}
		}},
		{name: "agent for another agent", c: sub(a3, "A1", "L2"), code: api.CodeForbidden},
		{name: "admin without agent", c: sub(admin, "", "L1"), code: api.CodeBadRequest},
		{name: "admin naming unknown agent", c: sub(admin, "A9", "L1"), code: api.CodeNotFound},
		{name: "agent that does not exist", c: sub(api.Principal{Role: api.RoleAgent, ID: "A9"}, "", "L1"), code: api.CodeNotFound},
		{name: "unknown list", c: sub(a1, "", "L9"), code: api.CodeNotFound},
		{name: "already subscribed", c: sub(a1, "", "L1"), code: api.CodeAlreadyExists},
		{name: "forbidden for connector", c: sub(fb, "A3", "L1"), code: api.CodeForbidden},
	}
	runCases(t, cases)
}

func TestUnsubscribe(t *testing.T) {
	unsub := func(by api.Principal, agent, list string) *Command {
		return cmd(OpUnsubscribe, by, &api.SubscribeArgs{Agent: agent, List: list})
	}
	cases := []applyCase{
		{name: "agent unsubscribes itself", c: unsub(a1, "", "L1"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if res.Data != nil {
				t.Errorf("result %+v", res.Data)
			}
			assertEvents(t, evs, ev(api.EvListUnsubscribed, api.ListRef{List: "L1"}, A("A1")))
			if got, want := s.Lists["L1"].Subscribers, []string{A("A2")}; !reflect.DeepEqual(got, want) {
				t.Errorf("L1 subscribers %v, want %v", got, want)
			}
			if len(s.Agents["A1"].Lists) != 0 {
				t.Errorf("A1 lists %v", s.Agents["A1"].Lists)
			}
		}},
		{name: "admin unsubscribes an agent", c: unsub(admin, "A3", "L2"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			assertEvents(t, evs, ev(api.EvListUnsubscribed, api.ListRef{List: "L2"}, A("A3")))
			if len(s.Lists["L2"].Subscribers) != 0 {
				t.Errorf("L2 subscribers %v", s.Lists["L2"].Subscribers)
			}
		}},
		{name: "a later request is not announced to it", c: unsub(a1, "", "L1"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			_, evs = mustApply(t, s, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "hi"}))
			if len(evs) != 1 || !reflect.DeepEqual(evs[0].To, []string{A("A2")}) {
				t.Errorf("events %s, want request.created to A2 only", kinds(evs))
			}
		}},
		{name: "not subscribed", c: unsub(a3, "", "L1"), code: api.CodeNotSubscribed},
		{name: "unknown list", c: unsub(a1, "", "L9"), code: api.CodeNotFound},
		{name: "agent for another agent", c: unsub(a1, "A2", "L1"), code: api.CodeForbidden},
		{name: "admin without agent", c: unsub(admin, "", "L1"), code: api.CodeBadRequest},
		{name: "forbidden for connector", c: unsub(fb, "A1", "L1"), code: api.CodeForbidden},
	}
	runCases(t, cases)
}

func TestCustomerMessage(t *testing.T) {
	msg := func(by api.Principal, channel, customer, text string) *Command {
		return cmd(OpCustomerMessage, by, &api.CustomerMessageArgs{Channel: channel, CustomerID: customer, CustomerName: "Ursula", Text: text})
	}
	cases := []applyCase{
		{name: "opens an UNREAD request on the list", c: at(t0+5, msg(fb, "C2", "u1", "Hi")), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if want := (api.CustomerMessageResult{Request: "R1", Created: true, State: api.StateUnread}); res.Data != want {
				t.Errorf("result %+v, want %+v", res.Data, want)
			}
			want := &Request{
				ID: "R1", Channel: "C2", MRD: "social", List: "L1",
				Customer: api.Customer{ID: "u1", Name: "Ursula"}, State: api.StateUnread,
				CreatedAt: t0 + 5, UpdatedAt: t0 + 5, Unread: 1,
				Transcript: []api.Message{{From: api.Principal{Role: api.RoleConnector, ID: "u1"}, Name: "Ursula", Text: "Hi", At: t0 + 5}},
			}
			if got := s.Requests["R1"]; !reflect.DeepEqual(got, want) {
				t.Errorf("request\n got  %+v\n want %+v", got, want)
			}
			if got := s.Lists["L1"].Requests; !reflect.DeepEqual(got, []string{"R1"}) {
				t.Errorf("L1 requests %v", got)
			}
			if rid, _ := s.Open.Get("C2", "u1"); rid != "R1" {
				t.Errorf("open request of C2/u1: %q", rid)
			}
			if len(evs) != 1 || evs[0].Kind != api.EvRequestCreated {
				t.Fatalf("events %s", kinds(evs))
			}
		}},
		{name: "admin may speak for any channel", c: msg(admin, "C2", "u1", "Hi"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if !res.Data.(api.CustomerMessageResult).Created {
				t.Error("no request created")
			}
		}},
		{name: "appends to the open request", prep: activeR1, c: msg(fb, "C2", "u1", "again"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if want := (api.CustomerMessageResult{Request: "R1", State: api.StateActive}); res.Data != want {
				t.Errorf("result %+v, want %+v", res.Data, want)
			}
			if n := len(s.Requests["R1"].Transcript); n != 2 {
				t.Errorf("transcript has %d messages, want 2", n)
			}
			if len(s.Requests) != 1 {
				t.Errorf("%d requests, want 1", len(s.Requests))
			}
		}},
		{name: "another customer opens another request", prep: openR1, c: msg(fb, "C2", "u2", "me too"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if got := res.Data.(api.CustomerMessageResult); got.Request != "R2" || !got.Created {
				t.Errorf("result %+v", got)
			}
			if got := s.Lists["L1"].Requests; !reflect.DeepEqual(got, []string{"R1", "R2"}) {
				t.Errorf("L1 requests %v", got)
			}
		}},
		{name: "after close opens a new request", prep: closedR1, c: msg(fb, "C2", "u1", "back"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if want := (api.CustomerMessageResult{Request: "R2", Created: true, State: api.StateUnread}); res.Data != want {
				t.Errorf("result %+v, want %+v", res.Data, want)
			}
			wantState(t, s, "R1", api.StateClosed, "A1")
			wantState(t, s, "R2", api.StateUnread)
		}},
		{name: "longest text", c: msg(fb, "C2", "u1", strings.Repeat("é", api.MaxTextBytes/2)), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if got := s.Requests["R1"].Transcript[0].Text; len(got) != api.MaxTextBytes {
				t.Errorf("text of %d bytes", len(got))
			}
		}},
		{name: "unknown channel", c: msg(fb, "C9", "u1", "Hi"), code: api.CodeNotFound},
		{name: "connector not allowed on the channel", c: msg(web, "C2", "u1", "Hi"), code: api.CodeForbidden},
		{name: "connector that does not exist", c: msg(api.Principal{Role: api.RoleConnector, ID: "ghost"}, "C2", "u1", "Hi"), code: api.CodeForbidden},
		{name: "empty text", c: msg(fb, "C2", "u1", ""), code: api.CodeBadRequest},
		{name: "oversized text", c: msg(fb, "C2", "u1", strings.Repeat("x", api.MaxTextBytes+1)), code: api.CodeBadRequest},
		{name: "invalid UTF-8 text", c: msg(fb, "C2", "u1", "caf\xe9"), code: api.CodeBadRequest},
		{name: "oversized text to an open request", prep: openR1, c: msg(fb, "C2", "u1", strings.Repeat("x", api.MaxTextBytes+1)), code: api.CodeBadRequest},
		{name: "invalid UTF-8 customer name", c: cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", CustomerName: "\xff", Text: "Hi"}), code: api.CodeBadRequest},
		{name: "oversized customer name", c: cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", CustomerName: strings.Repeat("n", api.MaxIDBytes+1), Text: "Hi"}), code: api.CodeBadRequest},
		{name: "forbidden for agent", c: msg(a1, "C2", "u1", "Hi"), code: api.CodeForbidden},
	}
	cases = append(cases, badIDCases("customer id", func(id string) *Command { return msg(fb, "C2", id, "Hi") })...)
	runCases(t, cases)
}

func TestRequestAgent(t *testing.T) {
	byID := func(by api.Principal, id string) *Command {
		return cmd(OpRequestAgent, by, &api.RequestAgentArgs{Request: id})
	}
	byCustomer := func(by api.Principal, channel, customer string) *Command {
		return cmd(OpRequestAgent, by, &api.RequestAgentArgs{Channel: channel, CustomerID: customer})
	}
	noticed := func(st api.RequestState) func(t *testing.T, s *State, res Result, evs []Event) {
		return func(t *testing.T, s *State, res Result, evs []Event) {
			if want := (api.RequestAgentResult{Request: "R1", State: st}); res.Data != want {
				t.Errorf("result %+v, want %+v", res.Data, want)
			}
			if len(evs) != 0 {
				t.Errorf("asking for an agent published %s", kinds(evs))
			}
			r := s.Requests["R1"]
			if r.State != st || r.AgentRequestedAt != t0+9 || r.UpdatedAt != t0+9 {
				t.Errorf("request state %s, agent requested at %d, updated %d", r.State, r.AgentRequestedAt, r.UpdatedAt)
			}
		}
	}
	cases := []applyCase{
		{name: "UNREAD: recorded, nothing published", prep: openR1, c: at(t0+9, byID(fb, "R1")), check: noticed(api.StateUnread)},
		{name: "INACTIVE: recorded, nothing published", prep: inactiveR1, c: at(t0+9, byID(fb, "R1")), check: noticed(api.StateInactive)},
		{name: "by channel and customer", prep: inactiveR1, c: at(t0+9, byCustomer(fb, "C2", "u1")), check: noticed(api.StateInactive)},
		{name: "admin by id", prep: openR1, c: at(t0+9, byID(admin, "R1")), check: noticed(api.StateUnread)},
		{name: "ACTIVE: nothing changes", prep: activeR1, c: at(t0+9, byID(fb, "R1")), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if want := (api.RequestAgentResult{Request: "R1", State: api.StateActive}); res.Data != want {
				t.Errorf("result %+v, want %+v", res.Data, want)
			}
			if len(evs) != 0 {
				t.Errorf("events %s", kinds(evs))
			}
			if r := s.Requests["R1"]; r.AgentRequestedAt != 0 || r.UpdatedAt != t0 {
				t.Errorf("request touched: agent requested at %d, updated %d", r.AgentRequestedAt, r.UpdatedAt)
			}
		}},
		{name: "a join clears the request for an agent", prep: func(tb testing.TB, s *State) {
			inactiveR1(tb, s)
			mustApply(tb, s, at(t0+9, byID(fb, "R1")))
		}, c: cmd(OpJoin, a2, &api.RequestArgs{Request: "R1"}), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if got := s.Requests["R1"].AgentRequestedAt; got != 0 {
				t.Errorf("agent requested at %d after a join", got)
			}
		}},
		{name: "unknown request", c: byID(fb, "R9"), code: api.CodeNotFound},
		{name: "closed request", prep: closedR1, c: byID(fb, "R1"), code: api.CodeClosed},
		{name: "request on a channel the connector may not use", prep: openR1, c: byID(web, "R1"), code: api.CodeForbidden},
		{name: "customer with no open request", prep: closedR1, c: byCustomer(fb, "C2", "u1"), code: api.CodeNotFound},
		{name: "unknown channel", c: byCustomer(fb, "C9", "u1"), code: api.CodeNotFound},
		{name: "channel the connector may not use", prep: openR1, c: byCustomer(web, "C2", "u1"), code: api.CodeForbidden},
		{name: "forbidden for agent", prep: openR1, c: byID(a1, "R1"), code: api.CodeForbidden},
	}
	runCases(t, cases)
}

func TestJoin(t *testing.T) {
	join := func(by api.Principal, req, agent string) *Command {
		return cmd(OpJoin, by, &api.RequestArgs{Request: req, Agent: agent})
	}
	joined := func(agent string, st api.RequestState, parts ...string) func(t *testing.T, s *State, res Result, evs []Event) {
		return func(t *testing.T, s *State, res Result, evs []Event) {
			t.Helper()
			wantState(t, s, "R1", st, parts...)
			jr := res.Data.(api.JoinResult)
			if jr.Request.ID != "R1" || jr.Request.State != st || !reflect.DeepEqual(jr.Request.Participants, parts) {
				t.Errorf("join result %+v", jr.Request)
			}
			if !reflect.DeepEqual(jr.Transcript, s.Requests["R1"].Transcript) {
				t.Errorf("join transcript %+v", jr.Transcript)
			}
			if !slices.Contains(s.Agents[agent].Conversations, "R1") {
				t.Errorf("%s conversations %v", agent, s.Agents[agent].Conversations)
			}
			if len(evs) != 2 || evs[0].Kind != api.EvConversationJoined || evs[1].Kind != api.EvRequestUpdated {
				t.Errorf("events %s", kinds(evs))
			}
		}
	}
	cases := []applyCase{
		{name: "UNREAD becomes ACTIVE", prep: openR1, c: join(a1, "R1", ""), check: joined("A1", api.StateActive, "A1")},
		{name: "second agent joins ACTIVE", prep: activeR1, c: join(a2, "R1", ""), check: joined("A2", api.StateActive, "A1", "A2")},
		{name: "INACTIVE becomes ACTIVE", prep: inactiveR1, c: join(a2, "R1", ""), check: joined("A2", api.StateActive, "A2")},
		{name: "agent naming itself", prep: openR1, c: join(a2, "R1", "A2"), check: joined("A2", api.StateActive, "A2")},
		{name: "admin joins an agent", prep: openR1, c: join(admin, "R1", "A2"), check: joined("A2", api.StateActive, "A2")},
		{name: "at max minus one", prep: func(tb testing.TB, s *State) {
			customerMessage(tb, s, "u0", "first") // R1
			mustApply(tb, s, join(a1, "R1", ""))
			customerMessage(tb, s, "u1", "second") // R2
		}, c: join(a1, "R2", ""), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if got := s.Agents["A1"].Conversations; !reflect.DeepEqual(got, []string{"R1", "R2"}) {
				t.Errorf("A1 conversations %v", got)
			}
		}},
		{name: "over capacity", prep: func(tb testing.TB, s *State) {
			for _, u := range []string{"u1", "u2", "u3"} {
				customerMessage(tb, s, u, "hi")
			}
			mustApply(tb, s, join(a1, "R1", ""))
			mustApply(tb, s, join(a1, "R2", ""))
		}, c: join(a1, "R3", ""), code: api.CodeOverCapacity},
		{name: "capacity freed by leaving", prep: func(tb testing.TB, s *State) {
			for _, u := range []string{"u1", "u2", "u3"} {
				customerMessage(tb, s, u, "hi")
			}
			mustApply(tb, s, join(a1, "R1", ""))
			mustApply(tb, s, join(a1, "R2", ""))
			mustApply(tb, s, cmd(OpLeave, a1, &api.RequestArgs{Request: "R1"}))
		}, c: join(a1, "R3", ""), check: func(t *testing.T, s *State, res Result, evs []Event) {
			wantState(t, s, "R3", api.StateActive, "A1")
		}},
		{name: "capacity freed by closing", prep: func(tb testing.TB, s *State) {
			for _, u := range []string{"u1", "u2", "u3"} {
				customerMessage(tb, s, u, "hi")
			}
			mustApply(tb, s, join(a1, "R1", ""))
			mustApply(tb, s, join(a1, "R2", ""))
			mustApply(tb, s, cmd(OpClose, a1, &api.RequestArgs{Request: "R1"}))
		}, c: join(a1, "R3", ""), check: func(t *testing.T, s *State, res Result, evs []Event) {
			wantState(t, s, "R3", api.StateActive, "A1")
		}},
		{name: "already participant", prep: activeR1, c: join(a1, "R1", ""), code: api.CodeAlreadyParticipant},
		{name: "not subscribed to the list", prep: openR1, c: join(a3, "R1", ""), code: api.CodeNotSubscribed},
		{name: "admin joining an unsubscribed agent", prep: openR1, c: join(admin, "R1", "A3"), code: api.CodeNotSubscribed},
		{name: "unknown request", c: join(a1, "R9", ""), code: api.CodeNotFound},
		{name: "no request", c: join(a1, "", ""), code: api.CodeBadRequest},
		{name: "closed request", prep: closedR1, c: join(a2, "R1", ""), code: api.CodeClosed},
		{name: "agent for another agent", prep: openR1, c: join(a1, "R1", "A2"), code: api.CodeForbidden},
		{name: "admin naming unknown agent", prep: openR1, c: join(admin, "R1", "A9"), code: api.CodeNotFound},
		{name: "admin without agent", prep: openR1, c: join(admin, "R1", ""), code: api.CodeBadRequest},
		{name: "forbidden for connector", prep: openR1, c: join(fb, "R1", "A1"), code: api.CodeForbidden},
	}
	runCases(t, cases)
}

func TestLeave(t *testing.T) {
	leave := func(by api.Principal, req, agent string) *Command {
		return cmd(OpLeave, by, &api.RequestArgs{Request: req, Agent: agent})
	}
	cases := []applyCase{
		{name: "one of two leaves: stays ACTIVE", prep: bothInR1, c: leave(a1, "R1", ""), check: func(t *testing.T, s *State, res Result, evs []Event) {
			wantState(t, s, "R1", api.StateActive, "A2")
			if len(s.Agents["A1"].Conversations) != 0 {
				t.Errorf("A1 conversations %v", s.Agents["A1"].Conversations)
			}
			if res.Data != nil || len(evs) != 2 {
				t.Errorf("result %+v events %s", res.Data, kinds(evs))
			}
		}},
		{name: "last leaves: INACTIVE, still listed", prep: activeR1, c: leave(a1, "R1", ""), check: func(t *testing.T, s *State, res Result, evs []Event) {
			wantState(t, s, "R1", api.StateInactive)
			if got := s.Lists["L1"].Requests; !reflect.DeepEqual(got, []string{"R1"}) {
				t.Errorf("L1 requests %v", got)
			}
			if rid, _ := s.Open.Get("C2", "u1"); rid != "R1" {
				t.Error("R1 no longer open for its customer")
			}
		}},
		{name: "admin removes an agent", prep: bothInR1, c: leave(admin, "R1", "A2"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			wantState(t, s, "R1", api.StateActive, "A1")
		}},
		{name: "not participant", prep: activeR1, c: leave(a2, "R1", ""), code: api.CodeNotParticipant},
		{name: "not participant of UNREAD", prep: openR1, c: leave(a1, "R1", ""), code: api.CodeNotParticipant},
		{name: "left already", prep: inactiveR1, c: leave(a1, "R1", ""), code: api.CodeNotParticipant},
		{name: "closed request", prep: closedR1, c: leave(a1, "R1", ""), code: api.CodeClosed},
		{name: "unknown request", c: leave(a1, "R9", ""), code: api.CodeNotFound},
		{name: "agent for another agent", prep: bothInR1, c: leave(a1, "R1", "A2"), code: api.CodeForbidden},
		{name: "forbidden for connector", prep: activeR1, c: leave(fb, "R1", "A1"), code: api.CodeForbidden},
	}
	runCases(t, cases)
}

func TestClose(t *testing.T) {
	closeBy := func(by api.Principal, req string) *Command { return cmd(OpClose, by, &api.RequestArgs{Request: req}) }
	closed := func(t *testing.T, s *State, res Result, evs []Event) {
		t.Helper()
		r := s.Requests["R1"]
		if r.State != api.StateClosed {
			t.Errorf("state %s", r.State)
		}
		if len(s.Lists["L1"].Requests) != 0 {
			t.Errorf("L1 requests %v", s.Lists["L1"].Requests)
		}
		if _, open := s.Open.Get("C2", "u1"); open {
			t.Error("customer still has an open request")
		}
		for _, id := range []string{"A1", "A2"} {
			if slices.Contains(s.Agents[id].Conversations, "R1") {
				t.Errorf("%s still in R1", id)
			}
		}
		if got := s.ClosedOrder; !reflect.DeepEqual(got, []string{"R1"}) {
			t.Errorf("closed order %v", got)
		}
		if res.Data != nil {
			t.Errorf("result %+v", res.Data)
		}
		if len(evs) == 0 || evs[len(evs)-1].Kind != api.EvRequestRemoved {
			t.Errorf("events %s", kinds(evs))
		}
	}
	cases := []applyCase{
		{name: "by a participant", prep: bothInR1, c: closeBy(a1, "R1"), check: closed},
		{name: "by the channel's connector", prep: bothInR1, c: closeBy(fb, "R1"), check: closed},
		{name: "by admin", prep: activeR1, c: closeBy(admin, "R1"), check: closed},
		{name: "UNREAD by the connector", prep: openR1, c: closeBy(fb, "R1"), check: closed},
		{name: "INACTIVE by the connector", prep: inactiveR1, c: closeBy(fb, "R1"), check: closed},
		{name: "agent not participant", prep: activeR1, c: closeBy(a2, "R1"), code: api.CodeNotParticipant},
		{name: "agent on UNREAD, not subscribed to its list", prep: openR1, c: closeBy(a3, "R1"), code: api.CodeNotParticipant},
		{name: "subscribed agent on UNREAD, from the list", prep: openR1, c: closeBy(a1, "R1"), check: closed},
		{name: "connector not on the channel", prep: activeR1, c: closeBy(web, "R1"), code: api.CodeForbidden},
		{name: "already closed", prep: closedR1, c: closeBy(admin, "R1"), code: api.CodeClosed},
		{name: "unknown request", c: closeBy(admin, "R9"), code: api.CodeNotFound},
		{name: "no request", c: closeBy(admin, ""), code: api.CodeBadRequest},
	}
	runCases(t, cases)
}

func TestSend(t *testing.T) {
	send := func(by api.Principal, req, agent, text string) *Command {
		return cmd(OpSend, by, &api.SendArgs{Request: req, Agent: agent, Text: text})
	}
	cases := []applyCase{
		{name: "participant sends", prep: activeR1, c: at(t0+7, send(a1, "R1", "", "Hello")), check: func(t *testing.T, s *State, res Result, evs []Event) {
			r := s.Requests["R1"]
			want := api.Message{From: a1, Name: "Ann", Text: "Hello", At: t0 + 7}
			if got := r.Transcript[len(r.Transcript)-1]; got != want {
				t.Errorf("last message %+v, want %+v", got, want)
			}
			if r.UpdatedAt != t0+7 || r.State != api.StateActive {
				t.Errorf("updated %d state %s", r.UpdatedAt, r.State)
			}
			assertEvents(t, evs, ev(api.EvConversationMessage, api.ConversationMessage{Request: "R1", Message: want}, A("A1"), C("fb")))
		}},
		{name: "admin sends as an agent", prep: activeR1, c: send(admin, "R1", "A1", "Hello"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if got := s.Requests["R1"].Transcript[1].From; got != a1 {
				t.Errorf("message from %+v", got)
			}
		}},
		{name: "not participant", prep: activeR1, c: send(a2, "R1", "", "Hello"), code: api.CodeNotParticipant},
		{name: "closed request", prep: closedR1, c: send(a1, "R1", "", "Hello"), code: api.CodeClosed},
		{name: "unknown request", c: send(a1, "R9", "", "Hello"), code: api.CodeNotFound},
		{name: "empty text", prep: activeR1, c: send(a1, "R1", "", ""), code: api.CodeBadRequest},
		{name: "oversized text", prep: activeR1, c: send(a1, "R1", "", strings.Repeat("x", api.MaxTextBytes+1)), code: api.CodeBadRequest},
		{name: "invalid UTF-8 text", prep: activeR1, c: send(a1, "R1", "", "\xc0\xaf"), code: api.CodeBadRequest},
		{name: "agent for another agent", prep: bothInR1, c: send(a1, "R1", "A2", "Hello"), code: api.CodeForbidden},
		{name: "forbidden for connector", prep: activeR1, c: send(fb, "R1", "A1", "Hello"), code: api.CodeForbidden},
	}
	runCases(t, cases)
}

// A request keeps only its most recent messages, within both bounds.
func TestTranscriptBounds(t *testing.T) {
	s := walkthrough(t)
	activeR1(t, s)
	for i := range 3 * api.MaxTranscriptMessages {
		mustApply(t, s, cmd(OpSend, a1, &api.SendArgs{Request: "R1", Text: strings.Repeat("x", i+1)}))
	}
	tr := s.Requests["R1"].Transcript
	if len(tr) != api.MaxTranscriptMessages {
		t.Fatalf("transcript holds %d messages, want %d", len(tr), api.MaxTranscriptMessages)
	}
	if got := len(tr[len(tr)-1].Text); got != 3*api.MaxTranscriptMessages {
		t.Errorf("last message has %d bytes, want the newest", got)
	}
	big := strings.Repeat("y", api.MaxTextBytes)
	for range 3 {
		mustApply(t, s, cmd(OpSend, a1, &api.SendArgs{Request: "R1", Text: big}))
	}
	tr = s.Requests["R1"].Transcript
	size := 0
	for _, m := range tr {
		size += len(m.Text)
	}
	if size > api.MaxTranscriptBytes {
		t.Errorf("transcript holds %d bytes, limit %d", size, api.MaxTranscriptBytes)
	}
	if len(tr) != 2 || tr[1].Text != big {
		t.Errorf("transcript keeps %d messages, want the 2 newest", len(tr))
	}
	// The list preview is the first customer message still kept; the
	// customer's was dropped, so there is none.
	if p := s.Summary(s.Requests["R1"]).Preview; p != "" {
		t.Errorf("preview %q", p)
	}
}

// Closed requests stay queryable until MaxClosedKept newer ones closed.
func TestClosedRequestsAreRetired(t *testing.T) {
	s := walkthrough(t)
	for i := range MaxClosedKept + 2 {
		r := customerMessage(t, s, "u1", "hi")
		mustApply(t, s, cmd(OpClose, fb, &api.RequestArgs{Request: r}))
		if i == 0 && r != "R1" {
			t.Fatalf("first request is %s", r)
		}
	}
	if len(s.ClosedOrder) != MaxClosedKept || len(s.Requests) != MaxClosedKept {
		t.Fatalf("%d closed kept, %d requests; want %d", len(s.ClosedOrder), len(s.Requests), MaxClosedKept)
	}
	for _, gone := range []string{"R1", "R2"} {
		if s.Requests[gone] != nil {
			t.Errorf("%s still kept", gone)
		}
		assertRejected(t, s, cmd(OpJoin, a1, &api.RequestArgs{Request: gone}), api.CodeNotFound)
	}
	if s.ClosedOrder[0] != "R3" || s.Requests["R3"] == nil {
		t.Errorf("oldest kept is %s", s.ClosedOrder[0])
	}
	assertRejected(t, s, cmd(OpJoin, a1, &api.RequestArgs{Request: "R3"}), api.CodeClosed)
}

// The clock is leader time: it only moves forward, and every command moves
// it, rejected or not (that is all a rejected command changes).
func TestClockIsLeaderTime(t *testing.T) {
	s := walkthrough(t)
	before := marshal(t, s)
	res, _ := s.Apply(at(t0+100, cmd(OpJoin, a1, &api.RequestArgs{Request: "R9"})))
	if api.CodeOf(res.Err) != api.CodeNotFound {
		t.Fatalf("join of unknown request: %v", res.Err)
	}
	if s.Now != t0+100 {
		t.Errorf("now %d, want %d", s.Now, t0+100)
	}
	s.Now = t0
	if !reflect.DeepEqual(before, marshal(t, s)) {
		t.Error("a rejected command changed more than the clock")
	}
	s.Now = t0 + 100
	r := customerMessage(t, s, "u1", "hi") // no time: stamped with Now
	mustApply(t, s, at(t0+50, cmd(OpJoin, a1, &api.RequestArgs{Request: r})))
	if s.Now != t0+100 {
		t.Errorf("clock went back to %d", s.Now)
	}
	if got := s.Requests[r]; got.CreatedAt != t0+100 || got.UpdatedAt != t0+100 {
		t.Errorf("created %d updated %d, want the clock %d", got.CreatedAt, got.UpdatedAt, t0+100)
	}
}

// A push channel's requests never reach a list. This version either refuses
// them with CodeWrongState (no push routing) or queues them (push routing):
// in neither case is a list or its subscribers touched.
func TestCustomerMessageOnPushChannelNeverListed(t *testing.T) {
	s := walkthrough(t)
	mustApply(t, s, cmd(OpSubscribe, a1, &api.SubscribeArgs{List: "L2"}))
	lists := map[string][]string{}
	for id, l := range s.Lists {
		lists[id] = slices.Clone(l.Requests)
	}
	before := marshal(t, s)
	res, evs := s.Apply(cmd(OpCustomerMessage, web, &api.CustomerMessageArgs{Channel: "W1", CustomerID: "u1", Text: "Hi"}))
	if res.Err != nil {
		if res.Err.Code != api.CodeWrongState || len(evs) != 0 || !bytes.Equal(before, marshal(t, s)) {
			t.Fatalf("refused with %v, %d events; want wrong_state and no change", res.Err, len(evs))
		}
		return
	}
	r := s.Requests[res.Data.(api.CustomerMessageResult).Request]
	if r == nil || r.List != "" || r.Queue != "Q1" || r.Channel != "W1" {
		t.Fatalf("push request %+v", r)
	}
	for id, l := range s.Lists {
		if !slices.Equal(l.Requests, lists[id]) {
			t.Errorf("list %s changed: %v", id, l.Requests)
		}
	}
	for _, e := range evs {
		if e.Kind == api.EvRequestCreated || e.Kind == api.EvRequestUpdated {
			t.Errorf("list event %s to %v", e.Kind, e.To)
		}
	}
}
