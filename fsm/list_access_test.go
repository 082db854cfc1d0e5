package fsm_test

import (
	"slices"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// restrictL1 makes L1 restricted with A1 granted: A2, subscribed but not
// granted, is dropped.
func restrictL1(tb testing.TB, s *State) {
	tb.Helper()
	mustApply(tb, s, cmd(OpGrantList, admin, &api.ListGrantArgs{List: "L1", Agent: "A1"}))
	mustApply(tb, s, cmd(OpSetListAccess, admin, &api.ListAccessArgs{List: "L1", Access: api.ListRestricted}))
}

func TestListAccessOps(t *testing.T) {
	runCases(t, []applyCase{
		{name: "create restricted", c: cmd(OpCreateList, admin, &api.CreateListArgs{ID: "L3", Access: api.ListRestricted}),
			check: func(t *testing.T, s *State, _ Result, evs []Event) {
				if l := s.Lists["L3"]; l.Access != api.ListRestricted || len(evs) != 0 {
					t.Fatalf("L3 access %q, %d events", l.Access, len(evs))
				}
			}},
		{name: "create open is stored as the default", c: cmd(OpCreateList, admin, &api.CreateListArgs{ID: "L3", Access: api.ListOpen}),
			check: func(t *testing.T, s *State, _ Result, _ []Event) {
				if l := s.Lists["L3"]; l.Access != "" {
					t.Fatalf("L3 access stored as %q, want the zero value", l.Access)
				}
			}},
		{name: "create with a bad access", c: cmd(OpCreateList, admin, &api.CreateListArgs{ID: "L3", Access: "secret"}), code: api.CodeBadRequest},

		{name: "grant", c: cmd(OpGrantList, admin, &api.ListGrantArgs{List: "L1", Agent: "A3"}),
			check: func(t *testing.T, s *State, res Result, evs []Event) {
				if l := s.Lists["L1"]; !slices.Equal(l.Granted, []string{"A3"}) || res.Data != nil || len(evs) != 0 {
					t.Fatalf("granted %v, data %v, %d events", l.Granted, res.Data, len(evs))
				}
			}},
		{name: "grant twice", prep: grant("L1", "A3"), c: cmd(OpGrantList, admin, &api.ListGrantArgs{List: "L1", Agent: "A3"}), code: api.CodeAlreadyExists},
		{name: "grant of an unknown list", c: cmd(OpGrantList, admin, &api.ListGrantArgs{List: "L9", Agent: "A3"}), code: api.CodeNotFound},
		{name: "grant to an unknown agent", c: cmd(OpGrantList, admin, &api.ListGrantArgs{List: "L1", Agent: "A9"}), code: api.CodeNotFound},
		{name: "grant without an agent", c: cmd(OpGrantList, admin, &api.ListGrantArgs{List: "L1"}), code: api.CodeBadRequest},
		{name: "grant by an agent", c: cmd(OpGrantList, a1, &api.ListGrantArgs{List: "L1", Agent: "A1"}), code: api.CodeForbidden},

		{name: "revoke on an open list keeps the subscription", prep: grant("L1", "A1"), c: cmd(OpRevokeList, admin, &api.ListGrantArgs{List: "L1", Agent: "A1"}),
			check: func(t *testing.T, s *State, _ Result, evs []Event) {
				if l := s.Lists["L1"]; len(l.Granted) != 0 || !slices.Contains(l.Subscribers, A("A1")) || len(evs) != 0 {
					t.Fatalf("granted %v, subscribers %v, %d events", l.Granted, l.Subscribers, len(evs))
				}
			}},
		{name: "revoke on a restricted list unsubscribes", prep: restrictL1, c: cmd(OpRevokeList, admin, &api.ListGrantArgs{List: "L1", Agent: "A1"}),
			check: func(t *testing.T, s *State, _ Result, evs []Event) {
				assertEvents(t, evs, ev(api.EvListUnsubscribed, api.ListRef{List: "L1"}, A("A1")))
				if l := s.Lists["L1"]; len(l.Subscribers) != 0 || len(l.Granted) != 0 || slices.Contains(s.Agents["A1"].Lists, "L1") {
					t.Fatalf("subscribers %v, granted %v, A1 lists %v", l.Subscribers, l.Granted, s.Agents["A1"].Lists)
				}
			}},
		{name: "revoke of no grant", c: cmd(OpRevokeList, admin, &api.ListGrantArgs{List: "L1", Agent: "A1"}), code: api.CodeNotFound},
		{name: "revoke by an agent", prep: grant("L1", "A1"), c: cmd(OpRevokeList, a1, &api.ListGrantArgs{List: "L1", Agent: "A1"}), code: api.CodeForbidden},

		{name: "restrict unsubscribes the ungranted", prep: grant("L1", "A1"), c: cmd(OpSetListAccess, admin, &api.ListAccessArgs{List: "L1", Access: api.ListRestricted}),
			check: func(t *testing.T, s *State, _ Result, evs []Event) {
				assertEvents(t, evs, ev(api.EvListUnsubscribed, api.ListRef{List: "L1"}, A("A2")))
				if l := s.Lists["L1"]; !slices.Equal(l.Subscribers, []string{A("A1")}) || slices.Contains(s.Agents["A2"].Lists, "L1") {
					t.Fatalf("subscribers %v, A2 lists %v", l.Subscribers, s.Agents["A2"].Lists)
				}
			}},
		{name: "restrict with nobody granted unsubscribes everyone in one event", c: cmd(OpSetListAccess, admin, &api.ListAccessArgs{List: "L1", Access: api.ListRestricted}),
			check: func(t *testing.T, s *State, _ Result, evs []Event) {
				assertEvents(t, evs, ev(api.EvListUnsubscribed, api.ListRef{List: "L1"}, A("A1"), A("A2")))
				if l := s.Lists["L1"]; len(l.Subscribers) != 0 {
					t.Fatalf("subscribers %v", l.Subscribers)
				}
			}},
		{name: "restricting again changes nothing", prep: restrictL1, c: cmd(OpSetListAccess, admin, &api.ListAccessArgs{List: "L1", Access: api.ListRestricted}),
			check: func(t *testing.T, s *State, _ Result, evs []Event) {
				if len(evs) != 0 || !slices.Equal(s.Lists["L1"].Subscribers, []string{A("A1")}) {
					t.Fatalf("%d events, subscribers %v", len(evs), s.Lists["L1"].Subscribers)
				}
			}},
		{name: "open again", prep: restrictL1, c: cmd(OpSetListAccess, admin, &api.ListAccessArgs{List: "L1", Access: api.ListOpen}),
			check: func(t *testing.T, s *State, _ Result, evs []Event) {
				if l := s.Lists["L1"]; l.Access != "" || len(evs) != 0 || !slices.Equal(l.Granted, []string{"A1"}) {
					t.Fatalf("access %q, %d events, granted %v", l.Access, len(evs), l.Granted)
				}
				mustApply(t, s, cmd(OpSubscribe, a2, &api.SubscribeArgs{List: "L1"}))
			}},
		{name: "set access without a mode", c: cmd(OpSetListAccess, admin, &api.ListAccessArgs{List: "L1"}), code: api.CodeBadRequest},
		{name: "set a bad access", c: cmd(OpSetListAccess, admin, &api.ListAccessArgs{List: "L1", Access: "closed"}), code: api.CodeBadRequest},
		{name: "set access of an unknown list", c: cmd(OpSetListAccess, admin, &api.ListAccessArgs{List: "L9", Access: api.ListOpen}), code: api.CodeNotFound},
		{name: "set access by an agent", c: cmd(OpSetListAccess, a1, &api.ListAccessArgs{List: "L1", Access: api.ListOpen}), code: api.CodeForbidden},

		{name: "subscribe to a restricted list without a grant", prep: restrictL1, c: cmd(OpSubscribe, a2, &api.SubscribeArgs{List: "L1"}), code: api.CodeForbidden},
		{name: "an admin cannot subscribe an ungranted agent either", prep: restrictL1, c: cmd(OpSubscribe, admin, &api.SubscribeArgs{Agent: "A2", List: "L1"}), code: api.CodeForbidden},
		{name: "subscribe to a restricted list with a grant", prep: func(tb testing.TB, s *State) {
			restrictL1(tb, s)
			grant("L1", "A2")(tb, s)
		}, c: cmd(OpSubscribe, a2, &api.SubscribeArgs{List: "L1"}),
			check: func(t *testing.T, s *State, _ Result, evs []Event) {
				if len(evs) != 1 || evs[0].Kind != api.EvListSubscribed || !slices.Contains(s.Lists["L1"].Subscribers, A("A2")) {
					t.Fatalf("events %s, subscribers %v", kinds(evs), s.Lists["L1"].Subscribers)
				}
			}},

		{name: "deleting an agent drops its grants", prep: grant("L1", "A3"), c: cmd(OpDeleteAgent, admin, &api.IDArgs{ID: "A3"}),
			check: func(t *testing.T, s *State, _ Result, _ []Event) {
				if g := s.Lists["L1"].Granted; len(g) != 0 {
					t.Fatalf("L1 granted %v after A3 was deleted", g)
				}
			}},
	})
}

func grant(list, agent string) func(tb testing.TB, s *State) {
	return func(tb testing.TB, s *State) {
		tb.Helper()
		mustApply(tb, s, cmd(OpGrantList, admin, &api.ListGrantArgs{List: list, Agent: agent}))
	}
}

// What an ungranted agent may read of a restricted list: nothing, even
// through a request id it learnt before the list was restricted. A
// conversation it is in stays readable (it was let in).
func TestRestrictedListReads(t *testing.T) {
	s := walkthrough(t)
	r1 := customerMessage(t, s, "u1", "hello")
	r2 := customerMessage(t, s, "u2", "hi")
	mustApply(t, s, cmd(OpJoin, a2, &api.RequestArgs{Request: r2}))
	restrictL1(t, s)

	if _, err := s.Query(a2, api.QueryList, mustMsgpack(t, api.QueryArgs{List: "L1"})); api.CodeOf(err) != api.CodeNotSubscribed {
		t.Errorf("get_list by ungranted A2: %v, want not_subscribed", err)
	}
	if _, err := s.Query(a2, api.QueryRequest, mustMsgpack(t, api.QueryArgs{Request: r1})); api.CodeOf(err) != api.CodeForbidden {
		t.Errorf("get_request of %s by ungranted A2: %v, want forbidden", r1, err)
	}
	if _, err := s.Query(a2, api.QueryRequest, mustMsgpack(t, api.QueryArgs{Request: r2})); err != nil {
		t.Errorf("get_request of %s by A2, a participant: %v", r2, err)
	}
	if _, err := s.Query(a1, api.QueryList, mustMsgpack(t, api.QueryArgs{List: "L1"})); err != nil {
		t.Errorf("get_list by granted A1: %v", err)
	}
	assertRejected(t, s, cmd(OpJoin, a2, &api.RequestArgs{Request: r1}), api.CodeNotSubscribed)
	assertRejected(t, s, cmd(OpClose, a2, &api.RequestArgs{Request: r1}), api.CodeNotParticipant)

	v, err := s.Query(admin, api.QueryLists, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range v.([]api.ListInfo) {
		want := api.ListInfo{Access: api.ListOpen, Granted: []string{}}
		if l.ID == "L1" {
			want = api.ListInfo{Access: api.ListRestricted, Granted: []string{"A1"}}
		}
		if l.Access != want.Access || !slices.Equal(l.Granted, want.Granted) || l.Granted == nil {
			t.Errorf("get_lists %s: access %q granted %#v, want %q %#v", l.ID, l.Access, l.Granted, want.Access, want.Granted)
		}
	}
}

// A transfer or an invitation into a restricted list's conversation needs
// the receiver to hold a grant.
func TestRestrictedListInviteNeedsGrant(t *testing.T) {
	s := walkthrough(t)
	r := customerMessage(t, s, "u1", "hello")
	mustApply(t, s, cmd(OpJoin, a1, &api.RequestArgs{Request: r}))
	restrictL1(t, s)
	mustApply(t, s, cmd(OpLogin, a3, &api.AgentArgs{}))
	mustApply(t, s, cmd(OpSetAgentState, a3, &api.SetAgentStateArgs{MRD: "social", State: api.AgentReady}))
	assertRejected(t, s, cmd(OpInvite, a1, &api.TransferArgs{Request: r, ToAgent: "A3"}), api.CodeForbidden)
	assertRejected(t, s, cmd(OpTransfer, a1, &api.TransferArgs{Request: r, ToAgent: "A3"}), api.CodeForbidden)
	grant("L1", "A3")(t, s)
	mustApply(t, s, cmd(OpInvite, a1, &api.TransferArgs{Request: r, ToAgent: "A3"}))
}

// Below level 3 the ops and the access argument are refused, and nothing
// about lists changes.
func TestListAccessGatedByLevel(t *testing.T) {
	s := level1World(t)
	mustApply(t, s, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: Level2}))
	for _, c := range []*Command{
		cmd(OpGrantList, admin, &api.ListGrantArgs{List: "L1", Agent: "A3"}),
		cmd(OpRevokeList, admin, &api.ListGrantArgs{List: "L1", Agent: "A3"}),
		cmd(OpSetListAccess, admin, &api.ListAccessArgs{List: "L1", Access: api.ListRestricted}),
		cmd(OpCreateList, admin, &api.CreateListArgs{ID: "L3", Access: api.ListRestricted}),
	} {
		assertRejected(t, s, c, api.CodeFeatureNotEnabled)
	}
	mustApply(t, s, cmd(OpCreateList, admin, &api.CreateListArgs{ID: "L3"}))
	mustApply(t, s, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: Level3}))
	mustApply(t, s, cmd(OpSetListAccess, admin, &api.ListAccessArgs{List: "L3", Access: api.ListRestricted}))
}

// A restricted list with grants survives a snapshot.
func TestListAccessSnapshotRoundTrip(t *testing.T) {
	s := walkthrough(t)
	restrictL1(t, s)
	grant("L2", "A3")(t, s)
	got := restore(t, marshal(t, s))
	for _, id := range []string{"L1", "L2"} {
		if a, b := got.Lists[id], s.Lists[id]; a.Access != b.Access || !slices.Equal(a.Granted, b.Granted) {
			t.Errorf("%s after restore: %q %v, want %q %v", id, a.Access, a.Granted, b.Access, b.Granted)
		}
	}
	if got, want := marshal(t, got), RefMarshal(t, s); string(got) != string(want) {
		t.Error("the restored state encodes differently from the reflection encoding of the original")
	}
}
