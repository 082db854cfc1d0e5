package bench

import (
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

func TestParseEventReadsWhatTheNodeEncodes(t *testing.T) {
	sum := api.RequestSummary{ID: "R123456", Channel: "ch1", List: "l7", State: api.StateUnread, Participants: []string{}}
	for _, ev := range []fsm.Event{
		{Seq: api.SeqOf(99, 3), Kind: api.EvRequestCreated, Data: sum},
		{Seq: api.SeqOf(1<<40, 0), Kind: api.EvRequestRemoved, Data: sum},
		{Seq: 5, Kind: api.EvConversationJoined, Data: api.ParticipantChange{Request: "R1", Agent: "a"}},
	} {
		frame, err := transport.EncodeEvent(ev.Seq, ev.Kind, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseEvent(frame[4:])
		if !ok {
			t.Fatalf("%s: not parsed", ev.Kind)
		}
		if got.seq != ev.Seq || string(got.kind) != string(ev.Kind) {
			t.Fatalf("%s: seq %d kind %q, want %d", ev.Kind, got.seq, got.kind, ev.Seq)
		}
		if isListEvent(got.kind) && (got.req != 123456 || string(got.list) != "l7") {
			t.Fatalf("%s: request %d list %q, want 123456 l7", ev.Kind, got.req, got.list)
		}
		if r, l := requestOf(mustMarshal(t, ev.Data)); isListEvent(got.kind) && (r != 123456 || string(l) != "l7") {
			t.Fatalf("slow path: %d %q", r, l)
		}
	}
	res, _ := transport.EncodeFrame(&transport.Frame{T: transport.TypeResponse, ID: 1, OK: true})
	if _, ok := parseEvent(res[4:]); ok {
		t.Fatal("a res frame parsed as an event")
	}
	for _, junk := range [][]byte{nil, {0x81}, {0x84, 0xa1, 't', 0xa2, 'e'}, {0xc1}} {
		if _, ok := parseEvent(junk); ok {
			t.Fatalf("%x parsed as an event", junk)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := transport.EncodeFrame(v)
	if err != nil {
		t.Fatal(err)
	}
	return b[4:]
}
