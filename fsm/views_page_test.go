package fsm_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// openRequests opens n requests on L1 (channel C2), each with text, and
// returns their ids, oldest first.
func openRequests(tb testing.TB, s *State, n int, text string) []string {
	tb.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = customerMessage(tb, s, fmt.Sprintf("c%d", i), text)
	}
	return ids
}

func mustQuery[T any](t *testing.T, s *State, p api.Principal, op string, args any) T {
	t.Helper()
	v, err := query(t, s, p, op, args)
	if err != nil {
		t.Fatalf("%s %+v by %s: %v", op, args, p.ID, err)
	}
	out, ok := v.(T)
	if !ok {
		t.Fatalf("%s answered %T", op, v)
	}
	return out
}

func summaryIDs(rs []api.RequestSummary) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// get_list pages: the first page by default, then after the last one, each
// page at most limit, until more is false; together they are the list,
// once each and in order.
func TestListPages(t *testing.T) {
	s := walkthrough(t)
	want := openRequests(t, s, 250, "hello")
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more than 3 pages of 100 for 250 requests")
		}
		snap := mustQuery[api.ListSnapshot](t, s, a1, api.QueryList, api.QueryArgs{List: "L1", After: after})
		if snap.Total != 250 || len(snap.Requests) > api.DefaultPageSize || snap.Seq != api.SyncSeq(s.Index) {
			t.Fatalf("page after %q: total %d, %d requests, seq %d", after, snap.Total, len(snap.Requests), snap.Seq)
		}
		got = append(got, summaryIDs(snap.Requests)...)
		if !snap.More {
			break
		}
		after = snap.Requests[len(snap.Requests)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the pages hold %d requests (%v...), want the %d open, in order", len(got), got[:min(len(got), 3)], len(want))
	}
	for _, tc := range []struct {
		limit, want int
		more        bool
	}{{7, 7, true}, {api.MaxPageSize * 10, 250, false}} {
		snap := mustQuery[api.ListSnapshot](t, s, admin, api.QueryList, api.QueryArgs{List: "L1", Limit: tc.limit})
		if len(snap.Requests) != tc.want || snap.More != tc.more {
			t.Errorf("limit %d: %d requests, more %v; want %d, %v", tc.limit, len(snap.Requests), snap.More, tc.want, tc.more)
		}
	}
	if snap := mustQuery[api.ListSnapshot](t, s, admin, api.QueryList, api.QueryArgs{List: "L1", After: "R99999"}); len(snap.Requests) != 0 || snap.More {
		t.Errorf("after the last request: %d requests, more %v", len(snap.Requests), snap.More)
	}
	// A cursor whose request closed meanwhile still pages on.
	mustApply(t, s, cmd(OpClose, admin, &api.RequestArgs{Request: want[99]}))
	if snap := mustQuery[api.ListSnapshot](t, s, admin, api.QueryList, api.QueryArgs{List: "L1", After: want[99], Limit: 1}); !slices.Equal(summaryIDs(snap.Requests), want[100:101]) {
		t.Errorf("after a closed request: %v, want %v", summaryIDs(snap.Requests), want[100:101])
	}
	if _, err := query(t, s, admin, api.QueryList, api.QueryArgs{List: "L1", Limit: -1}); api.CodeOf(err) != api.CodeBadRequest {
		t.Errorf("limit -1: %v, want bad_request", err)
	}
}

// A page stops at the byte budget before the limit when its requests are
// large: below level 3 previews are whole messages.
func TestListPageBoundedInBytes(t *testing.T) {
	s := level1World(t)
	mustApply(t, s, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: Level2}))
	text := strings.Repeat("x", api.MaxTextBytes)
	openRequests(t, s, 400, text)
	snap := mustQuery[api.ListSnapshot](t, s, admin, api.QueryList, api.QueryArgs{List: "L1", Limit: api.MaxPageSize})
	if !snap.More || len(snap.Requests) == 0 || len(snap.Requests) >= 400 {
		t.Fatalf("a page of 4 KiB requests: %d of 400, more %v; want a part, more", len(snap.Requests), snap.More)
	}
	if n := len(mustMsgpack(t, snap)); n > api.MaxViewBytes+1024 {
		t.Fatalf("the page encodes to %d bytes, above the view budget of %d", n, api.MaxViewBytes)
	}
}

// From level 3 a summary's preview and latest are at most MaxPreviewBytes,
// in events and views; below, the whole message.
func TestSummaryPreviewBounded(t *testing.T) {
	long := strings.Repeat("é", api.MaxTextBytes/2) // 4 KiB, two bytes a character
	for _, level := range []uint32{Level2, Level3} {
		s := level1World(t)
		mustApply(t, s, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: level}))
		_, evs := mustApply(t, s, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: long}))
		again := "ü" + long[2:]
		_, more := mustApply(t, s, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: again}))
		created := evs[0].Data.(api.RequestSummary)
		updated := more[len(more)-1].Data.(api.RequestSummary)
		want, wantLatest := long, again
		if level >= Level3 {
			want, wantLatest = long[:api.MaxPreviewBytes], again[:api.MaxPreviewBytes]
		}
		if created.Preview != want || updated.Latest != wantLatest {
			t.Errorf("level %d: preview of %d bytes, latest of %d; want %d, %d", level, len(created.Preview), len(updated.Latest), len(want), len(wantLatest))
		}
	}
}

// From level 3 a subscribe's list view (its result and list.subscribed) is
// the first page, with the total; below it, the whole list.
func TestSubscribeListViewPaged(t *testing.T) {
	for _, level := range []uint32{Level2, Level3} {
		s := level1World(t)
		mustApply(t, s, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: level}))
		openRequests(t, s, 150, "hi")
		res, evs := mustApply(t, s, cmd(OpSubscribe, a3, &api.SubscribeArgs{List: "L1"}))
		snap := res.Data.(api.ListSnapshot)
		if ev := evs[0].Data.(api.ListSnapshot); !slices.Equal(summaryIDs(ev.Requests), summaryIDs(snap.Requests)) || ev.More != snap.More {
			t.Errorf("level %d: the event and the result differ", level)
		}
		wantN, wantTotal := 150, 0
		if level >= Level3 {
			wantN, wantTotal = api.DefaultPageSize, 150
		}
		if len(snap.Requests) != wantN || snap.Total != wantTotal || snap.More != (level >= Level3) {
			t.Errorf("level %d: subscribe's view holds %d requests, total %d, more %v; want %d, %d", level, len(snap.Requests), snap.Total, snap.More, wantN, wantTotal)
		}
	}
}

// An agent in more conversations than a sync carries, and a connector
// whose channels have more open requests, get a first page with
// more_conversations, then the rest from get_conversations.
func TestConversationPages(t *testing.T) {
	s := walkthrough(t)
	ids := openRequests(t, s, 230, "hello")
	for _, id := range ids {
		mustApply(t, s, cmd(OpJoin, a2, &api.RequestArgs{Request: id}))
	}
	for _, p := range []api.Principal{a2, fb} {
		v, ok := s.View(p.Key())
		if !ok || !v.MoreConversations || len(v.Conversations) != api.DefaultPageSize {
			t.Fatalf("%s's view: %d conversations, more %v", p.ID, len(v.Conversations), v.MoreConversations)
		}
		var got []string
		for _, c := range v.Conversations {
			got = append(got, c.Request.ID)
		}
		for v.MoreConversations || len(got) < len(ids) {
			page := mustQuery[api.ConversationPage](t, s, p, api.QueryConversations, api.QueryArgs{After: got[len(got)-1]})
			if len(page.Conversations) == 0 {
				t.Fatalf("%s: an empty page after %s", p.ID, got[len(got)-1])
			}
			for _, c := range page.Conversations {
				got = append(got, c.Request.ID)
			}
			if !page.More {
				break
			}
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("%s: the pages hold %d conversations, want the %d, in order", p.ID, len(got), len(ids))
		}
	}
	if _, err := query(t, s, admin, api.QueryConversations, nil); api.CodeOf(err) != api.CodeForbidden {
		t.Errorf("get_conversations by an admin: %v, want forbidden", err)
	}
	if page := mustQuery[api.ConversationPage](t, s, a1, api.QueryConversations, nil); len(page.Conversations) != 0 || page.More || page.Conversations == nil {
		t.Errorf("a1's conversations: %+v, want an empty page", page)
	}
}

// get_queue pages the waiting requests in queue order.
func TestQueuePages(t *testing.T) {
	s := walkthrough(t)
	var want []string
	for i := range 130 {
		res, _ := mustApply(t, s, cmd(OpCustomerMessage, web, &api.CustomerMessageArgs{Channel: "W1", CustomerID: fmt.Sprintf("w%d", i), Text: "hi", Priority: i % 3}))
		want = append(want, res.Data.(api.CustomerMessageResult).Request)
	}
	q := mustQuery[api.QueueView](t, s, admin, api.QueryQueue, api.QueryArgs{Queue: "Q1"})
	if q.WaitingTotal != 130 || len(q.Waiting) != api.DefaultPageSize || !q.More {
		t.Fatalf("first page: total %d, %d waiting, more %v", q.WaitingTotal, len(q.Waiting), q.More)
	}
	rest := mustQuery[api.QueueView](t, s, admin, api.QueryQueue, api.QueryArgs{Queue: "Q1", After: q.Waiting[len(q.Waiting)-1].Request.ID})
	if len(rest.Waiting) != 30 || rest.More {
		t.Fatalf("second page: %d waiting, more %v", len(rest.Waiting), rest.More)
	}
	var got []string
	for _, w := range append(q.Waiting, rest.Waiting...) {
		got = append(got, w.Request.ID)
	}
	if !slices.Equal(got, s.Queues["Q1"].Waiting) {
		t.Fatalf("the pages are not the queue in order")
	}
	if _, err := query(t, s, admin, api.QueryQueue, api.QueryArgs{Queue: "Q1", After: "R99999"}); api.CodeOf(err) != api.CodeNotFound {
		t.Errorf("after an unknown request: %v, want not_found", err)
	}
}

// The admin listings take after and limit; without, they list everything.
func TestAdminListingPages(t *testing.T) {
	s := walkthrough(t)
	all := mustQuery[[]api.AgentInfo](t, s, admin, api.QueryAgents, nil)
	if len(all) != 3 {
		t.Fatalf("%d agents", len(all))
	}
	page := mustQuery[[]api.AgentInfo](t, s, admin, api.QueryAgents, api.QueryArgs{After: "A1", Limit: 1})
	if len(page) != 1 || page[0].ID != "A2" {
		t.Fatalf("agents after A1, limit 1: %+v", page)
	}
	states := mustQuery[[]api.AgentStatus](t, s, admin, api.QueryAgentStates, api.QueryArgs{After: "A2"})
	if len(states) != 1 || states[0].Agent != "A3" {
		t.Fatalf("agent states after A2: %+v", states)
	}
}

// From level 3 a conversation holds at most MaxParticipants agents, an
// agent at most MaxAgentLists subscriptions and MaxAgentOffers pending
// offers: each is part of what a summary or a sync shows.
func TestViewCaps(t *testing.T) {
	t.Run("participants", func(t *testing.T) {
		for _, level := range []uint32{Level2, Level3} {
			s := level1World(t)
			mustApply(t, s, cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: level}))
			r := customerMessage(t, s, "u1", "hi")
			for i := range api.MaxParticipants + 1 {
				id := fmt.Sprintf("P%d", i)
				mustApply(t, s, cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: id, TokenHash: []byte("h")}))
				mustApply(t, s, cmd(OpSubscribe, admin, &api.SubscribeArgs{Agent: id, List: "L1"}))
				c := cmd(OpJoin, admin, &api.RequestArgs{Request: r, Agent: id})
				if i == api.MaxParticipants && level >= Level3 {
					assertRejected(t, s, c, api.CodeOverCapacity)
				} else {
					mustApply(t, s, c)
				}
			}
		}
	})
	t.Run("lists", func(t *testing.T) {
		s := walkthrough(t)
		for i := range api.MaxAgentLists {
			id := fmt.Sprintf("M%d", i)
			mustApply(t, s, cmd(OpCreateList, admin, &api.CreateListArgs{ID: id}))
			c := cmd(OpSubscribe, a3, &api.SubscribeArgs{List: id})
			if i == api.MaxAgentLists-1 { // A3 is subscribed to L2 already
				assertRejected(t, s, c, api.CodeOverCapacity)
			} else {
				mustApply(t, s, c)
			}
		}
	})
	t.Run("offers", func(t *testing.T) {
		s := walkthrough(t)
		mustApply(t, s, cmd(OpLogin, a2, &api.AgentArgs{}))
		mustApply(t, s, cmd(OpSetAgentState, a2, &api.SetAgentStateArgs{MRD: "social", State: api.AgentReady}))
		mustApply(t, s, cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: "A4", TokenHash: []byte("h")}))
		mustApply(t, s, cmd(OpSubscribe, admin, &api.SubscribeArgs{Agent: "A4", List: "L1"}))
		for i, r := range openRequests(t, s, api.MaxAgentOffers+1, "hi") {
			mustApply(t, s, cmd(OpJoin, admin, &api.RequestArgs{Request: r, Agent: "A4"}))
			c := cmd(OpInvite, admin, &api.TransferArgs{Request: r, Agent: "A4", ToAgent: "A2"})
			if i == api.MaxAgentOffers {
				assertRejected(t, s, c, api.CodeOverCapacity)
			} else {
				mustApply(t, s, c)
			}
		}
	})
}
