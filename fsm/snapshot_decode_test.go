package fsm

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"

	"github.com/vmihailenco/msgpack/v5"
)

// reflectDecode is the reference: msgpack's reflection decoder, as
// ReadState decodes a snapshot outside the fast path (with the open
// index built from the decoded map).
func reflectDecode(t *testing.T, data []byte) *State {
	t.Helper()
	st, err := readStateReflect(data)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The fast path's two ways: the open map and the lists decoded on the calling
// goroutine, and on a second one.
var fastWays = map[string]fastOptions{
	"sequential": {parallel: math.MaxInt},
	"parallel":   {parallel: 0},
}

// fastDecode is the fast path, which must take the snapshot, as ReadState
// finishes it.
func fastDecode(t *testing.T, data []byte, opt fastOptions) *State {
	t.Helper()
	st, err := readStateFast(data, opt)
	if err != nil {
		t.Fatalf("the fast path refused a snapshot Marshal wrote: %v", err)
	}
	st.fillNil()
	return st
}

// sameDecodings checks that every way of the fast path decodes a
// snapshot (data: Marshal's bytes) to the reflection decoder's state,
// index included, and that it encodes back to the same bytes (with
// exact unset, to those of the reflection decoder's: a state with nil
// maps comes back with empty ones).
func sameDecodings(t *testing.T, name string, data []byte, exact bool) {
	t.Helper()
	want := reflectDecode(t, data[1:]) // without the version byte
	again := marshalState(t, want)
	for way, opt := range fastWays {
		got := fastDecode(t, data[1:], opt)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s, %s: the fast decoder's state differs from the reflection decoder's", name, way)
		}
		if !bytes.Equal(marshalState(t, got), again) {
			t.Fatalf("%s, %s: the two decodings encode differently", name, way)
		}
	}
	if exact && !bytes.Equal(again, data) {
		t.Fatalf("%s: the decoded state does not encode to the snapshot", name)
	}
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
	states = append(states, NewState(), &State{}) // 8 and 9: nil maps
	w := ptWorld(t)
	ptReady(t, w, "chat", "X", "Y")
	for _, c := range []string{"a", "b", "c", "d", "e"} {
		req, _ := ptArrive(t, w, "WS", c, 0)
		if c == "a" {
			ptAccept(t, w, ptOfferee(w, req), req)
		}
	}
	ptTick(t, w, 5000)
	states = append(states, w, manyOpen(3000, 7))
	for i, s := range states {
		sameDecodings(t, fmt.Sprintf("state %d", i), marshalState(t, s), i != 9)
	}
}

// manyOpen is a state of n open requests over channels of the given
// number (and n/4 lists, 50 agents), in the shapes the decoder treats
// apart:
// customers' and agents' messages, names equal to the customer's and
// not, more distinct names than a decoder interns (one list per 4
// requests), open keys without a channel, an open key whose request is
// not in the map.
func manyOpen(n, channels int) *State {
	s := NewState()
	for i := range n {
		id := "R" + strconv.Itoa(i+1)
		ch := "C" + strconv.Itoa(i%channels)
		cust := "cust-" + strconv.Itoa(i)
		agent := "A" + strconv.Itoa(i%50)
		r := &Request{
			ID: id, Channel: ch, MRD: "chat", List: "L" + strconv.Itoa(i/4), Customer: api.Customer{ID: cust, Name: "Customer " + strconv.Itoa(i)},
			State: api.StateUnread, CreatedAt: int64(i), UpdatedAt: int64(i + 1),
			Transcript: []api.Message{{From: api.Principal{Role: api.RoleConnector, ID: cust}, Name: "Customer " + strconv.Itoa(i), Text: "hello " + id, At: int64(i)}},
		}
		switch i % 5 {
		case 1:
			r.Participants = []string{agent}
			r.Transcript = append(r.Transcript, api.Message{From: api.Principal{Role: api.RoleAgent, ID: agent}, Name: "Agent", Text: "hi", At: int64(i + 2)})
		case 2:
			r.Transcript[0].Name = "someone else"
			r.Offer = &Offer{ID: "O" + id, Kind: api.OfferKind("route"), Agent: agent, CreatedAt: 5, ExpiresAt: 6}
			r.Declined = []string{"A1", agent}
		case 3:
			r.Transcript = nil
		}
		s.Requests[id] = r
		s.setOpen(ch, cust, id)
		l := s.Lists[r.List]
		if l == nil {
			l = &List{ID: r.List, Name: "List " + r.List, Subscribers: []string{"agent:" + agent}}
			s.Lists[r.List] = l
		}
		l.Requests = append(l.Requests, id)
	}
	s.Lists["L0"].Access, s.Lists["L0"].Granted, s.Lists["L0"].SLAMs = api.ListAccess("restricted"), []string{"A1"}, 60000
	s.Open.putKey("no channel", "R1")
	s.Open.putKey("C0\x00gone", "R0")
	return s
}

// ReadState at sizes where it decodes the open map and the lists on
// goroutines of their own gives the reflection decoder's state, which
// encodes to the snapshot's bytes.
func TestReadStateParallelMatchesReflection(t *testing.T) {
	s := manyOpen(15000, 7)
	data := marshalState(t, s)
	// Both values are big enough for goroutines of their own.
	for _, v := range []any{s.Open, s.Lists} {
		if b, err := msgpack.Marshal(v); err != nil || len(b) < restoreOptions().parallel {
			t.Fatalf("%T: %d bytes (%v), too small for a goroutine of its own", v, len(b), err)
		}
	}
	got := readState(t, data)
	want := reflectDecode(t, data[1:])
	want.indexSessions()
	if !reflect.DeepEqual(got, want) {
		t.Fatal("ReadState's state differs from the reflection decoder's")
	}
	if !bytes.Equal(marshalState(t, got), data) {
		t.Fatal("the restored state does not encode to the snapshot")
	}
}

// A malformed snapshot is an error, never a panic or a state: cut short
// anywhere, or with a byte changed. The fast path runs without a
// goroutine here, so that a panic in it would fail the test rather than
// be recovered.
func TestReadStateMalformed(t *testing.T) {
	data := marshalState(t, manyOpen(40, 3))
	seq := fastOptions{parallel: math.MaxInt}
	for cut := 1; cut < len(data); cut += 1 + cut/100 {
		if _, err := readStateFast(data[1:cut], seq); err == nil {
			t.Fatalf("cut at %d: the fast path took it", cut)
		}
		if _, err := ReadState(bufio.NewReader(bytes.NewReader(data[:cut]))); err == nil {
			t.Fatalf("cut at %d: ReadState took it", cut)
		}
	}
	r := rand.New(rand.NewSource(1))
	for range 1000 {
		bad := slices.Clone(data)
		bad[1+r.Intn(len(bad)-1)] = byte(r.Intn(256))
		checkFastAgainstReflection(t, bad[1:])
	}
}

// checkFastAgainstReflection holds the fast path to the reflection
// decoder on any input: if it takes the input, the reflection decoder
// takes it too and decodes the same state.
func checkFastAgainstReflection(t *testing.T, data []byte) {
	t.Helper()
	{
		got, err := readStateFast(data, fastOptions{parallel: math.MaxInt})
		if err != nil {
			return
		}
		got.fillNil()
		want, err := readStateReflect(data)
		if err != nil {
			t.Fatalf("the fast path took a snapshot the reflection decoder refuses (%v)", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatal("the fast path decodes a snapshot differently from the reflection decoder")
		}
	}
}

// FuzzReadState: the fast path never panics, and what it takes it decodes
// as the reflection decoder does; ReadState errs or succeeds, never
// panics.
func FuzzReadState(f *testing.F) {
	for _, s := range []*State{NewState(), manyOpen(12, 3), filledState(1)} {
		b, err := s.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 {
			checkFastAgainstReflection(t, data[1:])
		}
		ReadState(bufio.NewReader(bytes.NewReader(data)))
	})
}

// Shapes the fast path does not know go to the reflection decoder: an
// unknown request field, a requests map twice, a wrong type, a
// request's or a list's fields out of Marshal's order or twice (msgpack
// merges a struct read twice: the fast path would not).
func TestFastSnapshotDecodeRefusesOtherShapes(t *testing.T) {
	req := func(fields map[string]any) []byte {
		b, err := msgpack.Marshal(map[string]any{"requests": map[string]any{"R1": fields}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, data := range map[string][]byte{
		"unknown field":    req(map[string]any{"id": "R1", "color": "red"}),
		"wrong type":       req(map[string]any{"id": 7}),
		"role too big":     req(map[string]any{"transcript": []any{map[string]any{"from": map[string]any{"role": 300}}}}),
		"out of order":     inOrderMap(t, "requests", inOrderMap(t, "R1", inOrderMap(t, "mrd", "chat", "id", "R1"))),
		"field twice":      inOrderMap(t, "requests", inOrderMap(t, "R1", inOrderMap(t, "offer", inOrderMap(t, "id", "O1"), "offer", inOrderMap(t, "agent", "A1")))),
		"list field twice": inOrderMap(t, "lists", inOrderMap(t, "L1", inOrderMap(t, "requests", []string{"R1"}, "requests", []string{"R2"}))),
		"open key twice":   inOrderMap(t, "open", inOrderMap(t, "C1\x00a", "R1", "C1\x00a", "R2")),
	} {
		if _, err := readStateFast(data, restoreOptions()); err == nil {
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
	if _, err := readStateFast(twice, restoreOptions()); err == nil {
		t.Error("requests twice: the fast path took it")
	}
}

// inOrderMap is a msgpack map of the key, value pairs kv, in that order.
func inOrderMap(t *testing.T, kv ...any) msgpack.RawMessage {
	t.Helper()
	b := msgp.AppendMapLen(nil, len(kv)/2)
	for _, v := range kv {
		e, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, e...)
	}
	return b
}

func marshalState(t *testing.T, s *State) []byte {
	t.Helper()
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
