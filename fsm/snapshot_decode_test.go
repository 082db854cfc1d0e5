package fsm

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// reflectDecode is the reference: msgpack's reflection decoder, as
// ReadState decodes a snapshot outside the fast path.
func reflectDecode(t *testing.T, data []byte) *State {
	t.Helper()
	st := NewState()
	if err := msgpack.NewDecoder(bytes.NewReader(data)).Decode(st); err != nil {
		t.Fatal(err)
	}
	return st
}

// fastDecode is the fast path, which must take the snapshot.
func fastDecode(t *testing.T, data []byte) *State {
	t.Helper()
	st, err := readStateFast(data)
	if err != nil {
		t.Fatalf("the fast path refused a snapshot Marshal wrote: %v", err)
	}
	return st
}

// The fast path decodes what Marshal writes exactly as the reflection
// decoder does: on states with every field of every struct set (filled
// by reflection, so a field added to Request and forgotten by the fast
// decoder makes it refuse, and this test fail), and on the push world
// with requests in every state, offers, transcripts and supervisors.
func TestFastSnapshotDecodeMatchesReflection(t *testing.T) {
	var states []*State
	for seed := range int64(8) {
		states = append(states, filledState(seed))
	}
	states = append(states, NewState(), &State{})
	w := ptWorld(t)
	ptReady(t, w, "chat", "X", "Y")
	for _, c := range []string{"a", "b", "c", "d", "e"} {
		req, _ := ptArrive(t, w, "WS", c, 0)
		if c == "a" {
			ptAccept(t, w, ptOfferee(w, req), req)
		}
	}
	ptTick(t, w, 5000)
	states = append(states, w)
	for i, s := range states {
		data := marshalState(t, s)[1:] // without the version byte
		want, got := reflectDecode(t, data), fastDecode(t, data)
		// The derived indexes are rebuilt by ReadState either way.
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("state %d: the fast decoder's state differs from the reflection decoder's", i)
		}
		if !bytes.Equal(marshalState(t, got), marshalState(t, want)) {
			t.Fatalf("state %d: the two decodings encode differently", i)
		}
	}
}

// Shapes the fast path does not know go to the reflection decoder: an
// unknown request field, a requests map twice, a wrong type.
func TestFastSnapshotDecodeRefusesOtherShapes(t *testing.T) {
	req := func(fields map[string]any) []byte {
		b, err := msgpack.Marshal(map[string]any{"requests": map[string]any{"R1": fields}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, data := range map[string][]byte{
		"unknown field": req(map[string]any{"id": "R1", "color": "red"}),
		"wrong type":    req(map[string]any{"id": 7}),
		"role too big":  req(map[string]any{"transcript": []any{map[string]any{"from": map[string]any{"role": 300}}}}),
	} {
		if _, err := readStateFast(data); err == nil {
			t.Errorf("%s: the fast path took it", name)
		}
	}
	// A state map with the requests key twice (msgpack would merge them).
	twice := []byte{0x82}
	for range 2 {
		k, _ := msgpack.Marshal("requests")
		v, _ := msgpack.Marshal(map[string]any{})
		twice = append(append(twice, k...), v...)
	}
	if _, err := readStateFast(twice); err == nil {
		t.Error("requests twice: the fast path took it")
	}
}

func marshalState(t *testing.T, s *State) []byte {
	t.Helper()
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
