package fsm

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// refMarshal is the snapshot encoding as the reflection encoder defines
// it (the code Marshal had up to snapshot version 1's hand encoder):
// msgpack.Marshal, then every map re-ordered by appendCanonical.
func refMarshal(tb testing.TB, s *State) []byte {
	tb.Helper()
	raw, err := msgpack.Marshal(s)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := appendCanonical([]byte{snapshotVersion}, raw)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func readState(tb testing.TB, data []byte) *State {
	tb.Helper()
	s, err := ReadState(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		tb.Fatalf("ReadState: %v", err)
	}
	return s
}

// filler sets every exported field of a value, at any depth, to a non-zero
// value: strings of lengths around msgpack's header boundaries, integers
// of every encoded width and sign, maps of several keys (so their order
// matters), byte slices past 255 bytes.
type filler struct {
	n int
	r *rand.Rand
}

var (
	fillInts    = []int64{1, -1, 127, 128, -32, -33, 255, 256, -128, -129, 65535, 65536, -32768, -32769, 1 << 32, -(1 << 40), math.MaxInt64, math.MinInt64}
	fillStrLens = []int{1, 2, 5, 31, 32, 40, 255, 256, 600}
)

func (f *filler) str() string {
	f.n++
	id := fmt.Sprint(f.n)
	l := fillStrLens[f.r.Intn(len(fillStrLens))]
	if l <= len(id) {
		return id
	}
	return id + strings.Repeat("x", l-len(id))
}

func (f *filler) fill(v reflect.Value) {
	f.n++
	if v.Type() == reflect.TypeFor[OpenRequests]() {
		// No exported fields: entries as its snapshot form holds them,
		// on two channels, one with a NUL in the customer part, and a
		// loose key (no NUL).
		o := v.Addr().Interface().(*OpenRequests)
		chans := []string{f.str(), f.str()}
		for range 3 + f.r.Intn(3) {
			o.putKey(chans[f.r.Intn(2)]+"\x00"+f.str(), f.str())
		}
		o.putKey(chans[0]+"\x00"+f.str()+"\x00"+f.str(), f.str())
		o.putKey(f.str(), f.str())
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(f.str())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		for {
			x := fillInts[f.r.Intn(len(fillInts))]
			if !v.OverflowInt(x) {
				v.SetInt(x)
				return
			}
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		for {
			x := uint64(fillInts[f.r.Intn(len(fillInts))])
			if !v.OverflowUint(x) {
				v.SetUint(x)
				return
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(bytes.Repeat([]byte{byte(f.n)}, 1+f.r.Intn(400)))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2+f.r.Intn(2), 3)
		for i := range s.Len() {
			f.fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 3 + f.r.Intn(3) {
			k := reflect.New(v.Type().Key()).Elem()
			f.fill(k)
			e := reflect.New(v.Type().Elem()).Elem()
			f.fill(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem())
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				f.fill(v.Field(i))
			}
		}
	case reflect.Interface:
		// Result.Data: what msgpack decodes a result struct into.
		v.Set(reflect.ValueOf(map[string]any{f.str(): f.str(), f.str(): f.str()}))
	default:
		panic(fmt.Sprintf("filler: unhandled kind %s", v.Kind()))
	}
}

// zeroFields lists the exported fields left at their zero value, at any
// depth (inside maps, slices and pointers too).
func zeroFields(v reflect.Value, path string, out *[]string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			zeroFields(v.Elem(), path, out)
		}
	case reflect.Slice:
		for i := range v.Len() {
			zeroFields(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			zeroFields(it.Value(), fmt.Sprintf("%s[%v]", path, it.Key()), out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			p := path + "." + sf.Name
			if v.Field(i).IsZero() {
				*out = append(*out, p)
				continue
			}
			zeroFields(v.Field(i), p, out)
		}
	}
}

func filledState(seed int64) *State {
	s := &State{}
	f := &filler{r: rand.New(rand.NewSource(seed))}
	f.fill(reflect.ValueOf(s).Elem())
	// One string and one byte slice past 64 KiB (str32, bin32).
	for _, r := range s.Requests {
		r.Transcript[0].Text = strings.Repeat("y", 70000)
		break
	}
	for _, a := range s.Agents {
		a.TokenHash = bytes.Repeat([]byte{7}, 70000)
		break
	}
	return s
}

// The hand encoder writes, for a state with every field of every struct
// filled in, exactly the bytes of the reflection encoder plus canonical
// ordering; the bytes decode (ReadState, and plain msgpack) to a state
// deep-equal to the original. A field added to any struct of the state is
// filled in here by reflection: if snapshot_encode.go does not write it,
// this test fails.
func TestSnapshotEncoderCoversEveryField(t *testing.T) {
	for seed := range int64(8) {
		s := filledState(seed)
		var zero []string
		zeroFields(reflect.ValueOf(s).Elem(), "State", &zero)
		if len(zero) > 0 {
			t.Fatalf("seed %d: fields left zero by the filler: %v", seed, zero)
		}
		got, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if want := refMarshal(t, s); !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			t.Fatalf("seed %d: hand encoding differs from the reflection encoding at byte %d of %d/%d:\n got  %q\n want %q",
				seed, i, len(got), len(want), got[max(0, i-40):min(len(got), i+40)], want[max(0, i-40):min(len(want), i+40)])
		}
		back := readState(t, got)
		checkOpenIndex(t, back)
		rawResultsToValues(t, back)
		// So is the per-principal session index.
		checkSessionIndex(t, back)
		back.principals = nil
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("seed %d: Marshal → ReadState is not the identity", seed)
		}
		raw, err := msgpack.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		plain := NewState()
		if err := msgpack.Unmarshal(raw, plain); err != nil {
			t.Fatal(err)
		}
		plain.principals = nil
		rawResultsToValues(t, plain)
		if !reflect.DeepEqual(back, plain) {
			t.Fatalf("seed %d: the hand encoding decodes differently from msgpack.Marshal's", seed)
		}
	}
}

// rawResultsToValues decodes the idempotency results of a restored state,
// which keep their data as the raw msgpack it was written as
// (Result.DecodeMsgpack), into generic values, as the filler made them.
func rawResultsToValues(t *testing.T, st *State) {
	t.Helper()
	for _, sess := range st.Sessions {
		for seq, r := range sess.Results {
			raw, ok := r.Data.(msgpack.RawMessage)
			if !ok {
				if r.Data != nil {
					t.Fatalf("restored result data of type %T, want msgpack.RawMessage", r.Data)
				}
				continue
			}
			var v any
			if err := msgpack.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			r.Data = v
			sess.Results[seq] = r
		}
	}
}

// Empty and nil maps, slices and pointers: the reflection encoder writes
// nil for nil and an empty container for an empty one; so must the hand
// encoder.
func TestSnapshotEncoderEmptyValues(t *testing.T) {
	states := []*State{
		{},
		NewState(),
		{ClosedOrder: []string{}, Nodes: map[string]*NodeInfo{}, Requests: map[string]*Request{"R1": nil},
			Sessions:   map[string]*ClientSession{"s": {}, "t": {Results: map[uint64]Result{1: {}, 2: {Err: &api.Error{}}}}},
			Agents:     map[string]*Agent{"a": {TokenHash: []byte{}, Max: map[string]int{}, Lists: []string{}}, "b": {}},
			Connectors: map[string]*Connector{"c": {Channels: []string{}}, "d": {}}},
	}
	for i, s := range states {
		if got, want := marshalOrFail(t, s), refMarshal(t, s); !bytes.Equal(got, want) {
			t.Errorf("state %d: got %q, want %q", i, got, want)
		}
	}
}

func marshalOrFail(tb testing.TB, s *State) []byte {
	tb.Helper()
	b, err := s.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Snapshots written by the reflection encoder (the code before the hand
// encoder, at commit 3757292: testdata/snapshot_v1_*.bin, one from the
// determinism test's random commands, one from push routing with offers,
// agent states, nodes and a pull policy) restore, and encode back to the
// same bytes.
func TestSnapshotV1Testdata(t *testing.T) {
	files, err := filepath.Glob("testdata/snapshot_v1_*.bin")
	if err != nil || len(files) < 2 {
		t.Fatalf("testdata: %v %v", files, err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := readState(t, data)
		if len(s.Requests) == 0 || len(s.Sessions) == 0 {
			t.Fatalf("%s: restored an empty state", name)
		}
		if s.Level != 0 || s.ActiveLevel() != Level1 {
			t.Errorf("%s: written before feature levels, restored at level %d (active %d), want active %d", name, s.Level, s.ActiveLevel(), Level1)
		}
		if got := marshalOrFail(t, s); !bytes.Equal(got, data) {
			t.Errorf("%s: re-encoding the restored state gives different bytes", name)
		}
	}
}

// A corrupt snapshot is an error: never a panic, never an allocation out
// of proportion to its size.
func TestReadStateCorrupt(t *testing.T) {
	good, err := os.ReadFile("testdata/snapshot_v1_push.bin")
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"trailing bytes":  append(append([]byte{}, good...), 0xc0),
		"cut":             good[:len(good)/2],
		"array32 of 4G":   {1, 0x81, 0xa8, 'r', 'e', 'q', 'u', 'e', 's', 't', 's', 0x81, 0xa2, 'R', '1', 0x81, 0xaa, 't', 'r', 'a', 'n', 's', 'c', 'r', 'i', 'p', 't', 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0},
		"array16 of nils": append([]byte{1, 0x81, 0xac, 'c', 'l', 'o', 's', 'e', 'd', '_', 'o', 'r', 'd', 'e', 'r', 0xdc, 0xff, 0xff}, bytes.Repeat([]byte{0xc0}, 100)...),
		"map32 of 4G":     {1, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0},
		"str32 of 4G":     {1, 0x81, 0xa4, 'm', 'r', 'd', 's', 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'},
		"deep":            append([]byte{1}, bytes.Repeat([]byte{0x91}, 10000)...),
		"unused code":     {1, 0xc1},
		"wrong type":      {1, 0x81, 0xa8, 'r', 'e', 'q', 'u', 'e', 's', 't', 's', 0x92, 0x01, 0x02},
	}
	var ms runtime.MemStats
	for name, data := range bad {
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		if _, err := ReadState(bufio.NewReader(bytes.NewReader(data))); err == nil {
			t.Errorf("%s: no error", name)
		}
		runtime.ReadMemStats(&ms)
		if grew := ms.TotalAlloc - before; grew > 1<<20+uint64(64*len(data)) {
			t.Errorf("%s: %d-byte snapshot made ReadState allocate %d bytes", name, len(data), grew)
		}
	}
	// Every truncation and many random corruptions of a real snapshot:
	// errors or states, no panics, bounded allocation.
	r := rand.New(rand.NewSource(1))
	for n := range len(good) {
		_, _ = ReadState(bufio.NewReader(bytes.NewReader(good[:n])))
	}
	for range 3000 {
		data := append([]byte{}, good...)
		for range 1 + r.Intn(4) {
			data[1+r.Intn(len(data)-1)] = byte(r.Intn(256))
		}
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		_, _ = ReadState(bufio.NewReader(bytes.NewReader(data)))
		runtime.ReadMemStats(&ms)
		if grew := ms.TotalAlloc - before; grew > 64<<20 {
			t.Fatalf("a corrupt %d-byte snapshot made ReadState allocate %d bytes", len(data), grew)
		}
	}
}

func TestCheckMsgpack(t *testing.T) {
	ok := [][]byte{{0xc0}, {0x90}, {0x92, 0x01, 0xa1, 'x'}, {0x81, 0xa1, 'k', 0xdc, 0x00, 0x01, 0xc3}, {0xd4, 0x01, 0x02}}
	for _, b := range ok {
		if n, err := msgp.Check(b, 4); err != nil || n != len(b) {
			t.Errorf("%x: %d, %v; want %d", b, n, err, len(b))
		}
		// A value followed by more bytes is checked alone.
		if n, err := msgp.Check(append(slices.Clip(b), 0xc1, 0xff), 4); err != nil || n != len(b) {
			t.Errorf("%x with trailing bytes: %d, %v; want %d", b, n, err, len(b))
		}
	}
	bad := [][]byte{nil, {0x92, 0x01}, {0x91, 0x91, 0x91, 0x91, 0x91, 0xc0}, {0xa2, 'x'}, {0xdd, 0, 0, 0, 2, 0xc0}, {0xc1}, {0xd9}}
	for _, b := range bad {
		if _, err := msgp.Check(b, 4); err == nil {
			t.Errorf("%x: no error", b)
		}
	}
}
