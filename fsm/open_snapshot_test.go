package fsm

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// The snapshot form of State.Open is the flat map it was before it was
// kept by channel (open_index.go). These tests hold OpenRequests to that
// map: the same look-ups, and the same bytes.

// flatEncoding is the open map's encoding as it was written when State.Open
// was a map[string]string (appendStringMap of snapshot version 1's hand
// encoder): entries in sortedEntries' order.
func flatEncoding(m map[string]string) []byte {
	if m == nil {
		return []byte{0xc0}
	}
	b := msgp.AppendMapLen(nil, len(m))
	for _, e := range sortedEntries(m) {
		b = msgp.AppendStr(msgp.AppendStr(b, e.k), e.v)
	}
	return b
}

// reflectEncoding is the flat map as the reflection encoder and
// appendCanonical write it (what snapshot version 1 was defined as).
func reflectEncoding(t *testing.T, m map[string]string) []byte {
	t.Helper()
	raw, err := msgpack.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := appendCanonical(nil, raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// awkwardOpen is open requests whose keys sort awkwardly: channels that
// are prefixes of one another ("C1", "C10", "C1x") with customers making
// keys of one length across them, an empty channel and customer, bytes
// either side of the NUL separator (0x01, 0xff) in ids, a customer with a
// NUL in it, a channel given with a NUL in it (its key splits at the first
// NUL), key lengths either side of msgpack's str header sizes (31/32,
// 255/256), and loose keys (no NUL) of the lengths of other keys, one of
// them equal to a channel's id.
func awkwardOpen() (*OpenRequests, map[string]string) {
	o := &OpenRequests{byChannel: map[string]map[string]string{}}
	want := map[string]string{}
	n := 0
	set := func(ch, cust string) {
		n++
		rid := fmt.Sprintf("R%d", n)
		c, u := slot(ch, cust)
		o.put(c, u, rid)
		want[openKey(ch, cust)] = rid
	}
	for _, ch := range []string{"C1", "C10", "C1x", "C", "", "C\x01", "C\xff", "\x01", "\xff"} {
		for _, cust := range []string{"u1", "u10", "u2", "", "u\x01", "u\xff", "u\x00v", strings.Repeat("w", 28), strings.Repeat("w", 29), strings.Repeat("w", 252), strings.Repeat("w", 253)} {
			set(ch, cust)
		}
	}
	set("a\x00b", "c") // the flat key "a\x00b\x00c": channel "a", customer "b\x00c"
	for _, k := range []string{"C1x", "C10u1", "no channel", "C1\x01u1", "\xff", strings.Repeat("z", 31), strings.Repeat("z", 32)} {
		n++
		rid := fmt.Sprintf("L%d", n)
		o.putKey(k, rid)
		want[k] = rid
	}
	return o, want
}

// TestOpenRequestsEncodeAsTheFlatMap: appendOpen writes the bytes of the
// flat map (as the old hand encoder and the reflection encoder wrote
// it), for awkward keys and for random ones over a small alphabet of
// bytes around the separator.
func TestOpenRequestsEncodeAsTheFlatMap(t *testing.T) {
	check := func(name string, o *OpenRequests, want map[string]string) {
		t.Helper()
		if got := o.flat(); !maps.Equal(got, want) {
			t.Fatalf("%s: holds %q, want %q", name, got, want)
		}
		got := appendOpen(nil, o)
		if old := flatEncoding(want); !bytes.Equal(got, old) {
			t.Fatalf("%s: encodes as\n %q\nthe flat map as\n %q", name, got, old)
		}
		if ref := reflectEncoding(t, want); !bytes.Equal(got, ref) {
			t.Fatalf("%s: differs from the reflection encoding", name)
		}
	}
	o, want := awkwardOpen()
	check("awkward", o, want)
	check("zero", &OpenRequests{}, nil)
	check("empty", &NewState().Open, map[string]string{})

	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	alphabet := []byte{0, 1, '0', '1', 'a', 0xff}
	word := func(max int) string {
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for round := range 300 {
		o := &OpenRequests{byChannel: map[string]map[string]string{}}
		want := map[string]string{}
		for range 1 + rng.IntN(40) {
			k, rid := word(6), word(3)
			o.putKey(k, rid)
			want[k] = rid
		}
		checkOpenIndex(t, &State{Open: *o})
		check(fmt.Sprintf("round %d", round), o, want)
	}
}

// TestOpenRequestsLookLikeTheFlatMap: through random sets and deletes,
// with channel and customer ids that hold NUL bytes and so name the same
// flat key in more than one way, OpenRequests holds and answers what the
// flat map would.
func TestOpenRequestsLookLikeTheFlatMap(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	word := func() string {
		b := make([]byte, rng.IntN(4))
		for i := range b {
			b[i] = "\x00ab"[rng.IntN(3)]
		}
		return string(b)
	}
	s := NewState()
	flat := map[string]string{}
	for i := range 20000 {
		ch, cust := word(), word()
		key := openKey(ch, cust)
		switch rng.IntN(3) {
		case 0:
			rid := fmt.Sprint(i)
			s.setOpen(ch, cust, rid)
			flat[key] = rid
		case 1:
			s.deleteOpen(ch, cust)
			delete(flat, key)
		}
		got, ok := s.Open.Get(ch, cust)
		want, wantOK := flat[key]
		if got != want || ok != wantOK {
			t.Fatalf("step %d: Get(%q, %q) = %q, %v; the flat map has %q, %v", i, ch, cust, got, ok, want, wantOK)
		}
		if i%500 == 0 {
			checkOpenIndex(t, s)
			if !maps.Equal(s.Open.flat(), flat) {
				t.Fatalf("step %d: holds %q, the flat map %q", i, s.Open.flat(), flat)
			}
		}
	}
}

// TestOpenSnapshotBytesUnchanged: a snapshot whose open map has awkward
// keys, loose ones among them, decodes by the fast path (sequential and
// parallel) and by the reflection decoder to one state, which encodes
// back to the snapshot's bytes; and those bytes are the state's with the
// open map written the old way.
func TestOpenSnapshotBytesUnchanged(t *testing.T) {
	s := manyOpen(200, 9) // requests and lists, a loose key among the open ones
	_, want := awkwardOpen()
	for k, rid := range want {
		s.Open.putKey(k, rid)
	}
	data := marshalState(t, s)
	// The same state with the open map encoded the old way: every other
	// value is the hand encoder's, so only the "open" value can differ.
	flat := s.Open.flat()
	openAt := bytes.Index(data, msgp.AppendStr(nil, "open"))
	if openAt < 0 {
		t.Fatal("no open key in the snapshot")
	}
	from := openAt + len("open") + 1
	enc := flatEncoding(flat)
	if !bytes.Equal(data[from:from+len(enc)], enc) {
		t.Fatal("the snapshot's open map is not the flat map's encoding")
	}
	if !bytes.Equal(data, refMarshal(t, s)) {
		t.Fatal("the snapshot differs from the reflection encoding")
	}
	sameDecodings(t, "awkward open", data, true)
	back := readState(t, data)
	checkOpenIndex(t, back)
	if !maps.Equal(back.Open.flat(), flat) {
		t.Fatal("the restored open requests differ")
	}
	if !bytes.Equal(marshalState(t, back), data) {
		t.Fatal("the restored state encodes differently")
	}
	// The legacy key without NUL byte is kept, and no view lists it.
	if rid, ok := back.Open.loose["no channel"]; !ok || rid != want["no channel"] {
		t.Fatalf("loose key: %q, %v", rid, ok)
	}
	// A state restored from a nil open map holds an empty one (it encodes
	// as {}), as the map it replaced did.
	st := readState(t, marshalState(t, &State{}))
	if st.Open.byChannel == nil {
		t.Fatal("nil open requests after ReadState")
	}
}

// BenchmarkAppendOpen: the open map's encoding from OpenRequests, against
// the flat map's it replaced (sortedEntries of every key), for 100,000
// open requests on 10 channels.
func BenchmarkAppendOpen(b *testing.B) {
	o := &OpenRequests{byChannel: map[string]map[string]string{}}
	flat := map[string]string{}
	for i := range 100_000 {
		ch, cust, rid := fmt.Sprintf("ch-%d", i%10), fmt.Sprintf("customer-%d", i), fmt.Sprintf("R%d", i+1)
		o.put(ch, cust, rid)
		flat[openKey(ch, cust)] = rid
	}
	b.Run("by channel", func(b *testing.B) {
		for b.Loop() {
			appendOpen(nil, o)
		}
	})
	b.Run("flat map", func(b *testing.B) {
		for b.Loop() {
			flatEncoding(flat)
		}
	})
}
