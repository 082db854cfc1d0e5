package actors

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

func summary(id string, st api.RequestState, created, updated int64, parts ...string) api.RequestSummary {
	return api.RequestSummary{ID: id, List: "L1", State: st, CreatedAt: created, UpdatedAt: updated, Participants: parts}
}

func TestListViewAndConversationFollowEvents(t *testing.T) {
	f := &fakeFSM{}
	h := newTestHub(t, f, 0)
	subs := []string{keyA, keyB}
	pub := func(index uint64, evs ...fsm.Event) {
		for i := range evs {
			evs[i].Seq = api.SeqOf(index, i)
		}
		h.Publish(index, evs)
	}
	wantList := func(open int, oldest int64) {
		t.Helper()
		gotOpen, gotOldest, err := h.ListView("L1")
		if err != nil || gotOpen != open || gotOldest != oldest {
			t.Fatalf("ListView = %d, %d, %v; want %d, %d", gotOpen, gotOldest, err, open, oldest)
		}
	}
	wantConv := func(id string, parts []string, last int64) {
		t.Helper()
		gotParts, gotLast, err := h.Conversation(id)
		if err != nil || !slices.Equal(gotParts, parts) || gotLast != last {
			t.Fatalf("Conversation(%s) = %v, %d, %v; want %v, %d", id, gotParts, gotLast, err, parts, last)
		}
	}

	if _, _, err := h.ListView("L1"); !errors.Is(err, ErrNoView) {
		t.Fatalf("ListView before any event: %v, want ErrNoView", err)
	}
	pub(1, fsm.Event{Kind: api.EvRequestCreated, To: subs, Data: summary("R1", api.StateUnread, 100, 100)})
	pub(2, fsm.Event{Kind: api.EvRequestCreated, To: subs, Data: summary("R2", api.StateUnread, 200, 200)})
	wantList(2, 100)

	// a joins R1: R1 turns ACTIVE, R2 is now the oldest unread.
	pub(3,
		fsm.Event{Kind: api.EvConversationJoined, To: []string{keyA, "connector:c"},
			Data: api.ParticipantChange{Request: "R1", Agent: "a", State: api.StateActive, Participants: []string{"a"}}},
		fsm.Event{Kind: api.EvRequestUpdated, To: subs, Data: summary("R1", api.StateActive, 100, 150, "a")})
	wantList(2, 200)
	wantConv("R1", []string{"a"}, 150)

	// A message is activity; pointers to payloads are understood too.
	pub(4, fsm.Event{Kind: api.EvConversationMessage, To: []string{keyA, "connector:c"},
		Data: &api.ConversationMessage{Request: "R1", Message: api.Message{Text: "hi", At: 300}}})
	wantConv("R1", []string{"a"}, 300)

	// A conversation first seen through a message learns its
	// participants from the recipients.
	pub(5, fsm.Event{Kind: api.EvConversationMessage, To: []string{keyB, keyA},
		Data: api.ConversationMessage{Request: "R9", Message: api.Message{At: 310}}})
	wantConv("R9", []string{"a", "b"}, 310)

	// R1 closes: it leaves the list and its actor stops.
	pub(6,
		fsm.Event{Kind: api.EvConversationClosed, To: []string{keyA}, Data: api.ConversationClosed{Request: "R1"}},
		fsm.Event{Kind: api.EvRequestRemoved, To: subs, Data: summary("R1", api.StateClosed, 100, 400)})
	wantList(1, 200)
	if _, _, err := h.Conversation("R1"); !errors.Is(err, ErrNoView) {
		t.Fatalf("Conversation of a closed request: %v, want ErrNoView", err)
	}
	waitFor(t, 5*time.Second, func() bool { return h.engine.Registry.GetPID("conversation", "R1#1") == nil },
		says("the closed conversation's actor to stop"))

	// list.subscribed carries the whole list: it replaces the view.
	pub(7, fsm.Event{Kind: api.EvListSubscribed, To: []string{keyC}, Data: api.ListSnapshot{List: "L1", Requests: []api.RequestSummary{
		summary("R2", api.StateUnread, 200, 200), summary("R3", api.StateInactive, 50, 60),
	}}})
	wantList(2, 200)

	// A reset clears the views: they come back from later events and syncs.
	h.Reset(20)
	wantList(0, 0)
	if _, _, err := h.Conversation("R9"); !errors.Is(err, ErrNoView) {
		t.Fatalf("Conversation after Reset: %v, want ErrNoView", err)
	}
	if _, _, err := h.Conversation("R404"); !errors.Is(err, ErrNoView) {
		t.Fatalf("unknown conversation: %v, want ErrNoView", err)
	}
}

// TestListSeededBySync: a sync's list snapshots seed the list actors, so
// a node that restored a snapshot knows its lists once an agent attaches;
// an older snapshot never overwrites a newer view.
func TestListSeededBySync(t *testing.T) {
	var view api.StreamView
	index := uint64(30)
	h, err := NewHub(Config{
		Encode: testEncode,
		View: func(key string) (api.StreamView, uint64, bool) {
			return view, index, true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	h.Reset(30)
	settle(t, h)
	view = api.StreamView{Agent: "a", Lists: []api.ListSnapshot{{List: "L1", Requests: []api.RequestSummary{
		summary("R1", api.StateUnread, 100, 100), summary("R2", api.StateActive, 90, 120, "b"),
	}}}}
	o := &outbox{}
	h.Attach(keyA, 0, false, o)
	waitFrames(t, o, 1)
	waitFor(t, 5*time.Second, func() bool {
		n, oldest, err := h.ListView("L1")
		return err == nil && n == 2 && oldest == 100
	}, says("the sync to seed L1"))

	// A later event applies on top; a stale seed is ignored.
	h.Publish(31, []fsm.Event{{Seq: api.SeqOf(31, 0), Kind: api.EvRequestRemoved, To: []string{keyA}, Data: summary("R1", api.StateClosed, 100, 130)}})
	settle(t, h)
	h.seedLists(syncSeq(30), view.Lists)
	if n, oldest, err := h.ListView("L1"); err != nil || n != 1 || oldest != 0 {
		t.Fatalf("ListView = %d, %d, %v; want 1, 0", n, oldest, err)
	}
}

// A snapshot that is a first page (views are paged) does not say the
// requests it leaves out are gone: the list's view keeps them.
func TestListSeededByAFirstPage(t *testing.T) {
	h, err := NewHub(Config{
		Encode: testEncode,
		View:   func(string) (api.StreamView, uint64, bool) { return api.StreamView{}, 30, true },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	h.Reset(30)
	settle(t, h)
	full := []api.ListSnapshot{{List: "L1", Total: 2, Requests: []api.RequestSummary{
		summary("R1", api.StateUnread, 100, 100), summary("R2", api.StateUnread, 90, 120),
	}}}
	h.seedLists(syncSeq(30), full)
	settle(t, h)
	page := []api.ListSnapshot{{List: "L1", Total: 2, More: true, Requests: []api.RequestSummary{
		summary("R2", api.StateActive, 90, 130, "b"),
	}}}
	h.seedLists(syncSeq(31), page)
	settle(t, h)
	if n, oldest, err := h.ListView("L1"); err != nil || n != 2 || oldest != 100 {
		t.Fatalf("ListView after a first page = %d, %d, %v; want 2, 100", n, oldest, err)
	}
	h.seedLists(syncSeq(32), []api.ListSnapshot{{List: "L1", Total: 1, Requests: page[0].Requests}})
	settle(t, h)
	if n, oldest, err := h.ListView("L1"); err != nil || n != 1 || oldest != 0 {
		t.Fatalf("ListView after a whole list = %d, %d, %v; want 1, 0", n, oldest, err)
	}
}
