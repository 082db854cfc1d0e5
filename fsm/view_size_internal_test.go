package fsm

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// encodings returns v's size under each encoder a node uses: msgpack's
// reflection encoder with compact ints (answers), without (stored
// results), and msgp.AppendValue (events and syncs).
func encodings(t *rapid.T, v any) []int {
	var sizes []int
	for _, compact := range []bool{true, false} {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(compact)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, buf.Len())
	}
	b, err := msgp.AppendValue(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return append(sizes, len(b))
}

// str draws a string of up to max bytes, sometimes multi-byte, sometimes
// exactly max long.
func str(t *rapid.T, label string, max int) string {
	n := rapid.IntRange(0, max).Draw(t, label+" length")
	if rapid.IntRange(0, 4).Draw(t, label+" longest") == 0 {
		n = max
	}
	if rapid.Bool().Draw(t, label+" multi-byte") {
		return strings.Repeat("é", n/2)
	}
	return strings.Repeat("x", n)
}

func anyInt(t *rapid.T, label string) int64 {
	return rapid.SampledFrom([]int64{0, 1, -1, 127, 128, -33, 1 << 40, math.MaxInt64, math.MinInt64}).Draw(t, label)
}

func drawSummary(t *rapid.T) api.RequestSummary {
	s := api.RequestSummary{
		ID: str(t, "id", 24), Channel: str(t, "channel", api.MaxIDBytes), List: str(t, "list", api.MaxIDBytes),
		Queue: str(t, "queue", api.MaxIDBytes), State: api.RequestState(str(t, "state", 8)),
		Customer:  api.Customer{ID: str(t, "customer", api.MaxIDBytes), Name: str(t, "name", api.MaxIDBytes)},
		CreatedAt: anyInt(t, "created"), UpdatedAt: anyInt(t, "updated"), Unread: int(anyInt(t, "unread")),
		Preview: str(t, "preview", api.MaxTextBytes), Latest: str(t, "latest", api.MaxTextBytes), SLA: api.SLAState(str(t, "sla", 9)),
		Participants: []string{},
	}
	for i := range rapid.IntRange(0, 2*api.MaxParticipants).Draw(t, "participants") {
		s.Participants = append(s.Participants, str(t, "participant", api.MaxIDBytes)+string(rune('a'+i%26)))
	}
	return s
}

func drawMessage(t *rapid.T) api.Message {
	return api.Message{From: api.Principal{Role: api.Role(rapid.IntRange(0, 255).Draw(t, "role")), ID: str(t, "from", api.MaxIDBytes)},
		Name: str(t, "name", api.MaxIDBytes), Text: str(t, "text", api.MaxTextBytes), At: anyInt(t, "at")}
}

// The size estimates that bound views are upper bounds of every encoder's
// output, whatever the strings hold: a view never encodes larger than its
// budget says.
func TestViewSizeEstimatesBoundTheEncoders(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sum := drawSummary(t)
		for _, n := range encodings(t, sum) {
			if est := summarySize(&sum); n > est {
				t.Fatalf("summary encodes to %d bytes, estimated %d", n, est)
			}
		}
		m := drawMessage(t)
		for _, n := range encodings(t, m) {
			if est := messageSize(&m); n > est {
				t.Fatalf("message encodes to %d bytes, estimated %d", n, est)
			}
		}
		v := api.ConversationView{Request: sum, Transcript: []api.Message{}, AgentRequestedAt: anyInt(t, "asked")}
		for range rapid.IntRange(0, api.MaxTranscriptMessages).Draw(t, "messages") {
			v.Transcript = append(v.Transcript, drawMessage(t))
		}
		for _, n := range encodings(t, v) {
			if est := conversationSize(&v); n > est {
				t.Fatalf("conversation encodes to %d bytes, estimated %d", n, est)
			}
		}
		w := api.QueuedRequest{Request: sum, Priority: int(anyInt(t, "priority")), QueuedAt: anyInt(t, "queued")}
		for range rapid.IntRange(0, 20).Draw(t, "declined") {
			w.Declined = append(w.Declined, str(t, "declined", api.MaxIDBytes))
		}
		for _, n := range encodings(t, w) {
			if est := queuedSize(&w); n > est {
				t.Fatalf("queued request encodes to %d bytes, estimated %d", n, est)
			}
		}
		l := &List{ID: str(t, "list id", api.MaxIDBytes), Name: str(t, "list name", api.MaxIDBytes)}
		snap := api.ListSnapshot{List: l.ID, Name: l.Name, Requests: []api.RequestSummary{}, Total: int(anyInt(t, "total")),
			More: rapid.Bool().Draw(t, "more"), Seq: uint64(anyInt(t, "seq"))}
		for _, n := range encodings(t, snap) {
			if est := listHeaderSize(l); n > est {
				t.Fatalf("list header encodes to %d bytes, estimated %d", n, est)
			}
		}
	})
}

func TestCutUTF8(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is two bytes: not cut in half
		{"héllo", 3, "hé"},
		{"日本語", 4, "日"},
		{"日本語", 0, ""},
	} {
		if got := cutUTF8(tc.s, tc.n); got != tc.want {
			t.Errorf("cutUTF8(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
