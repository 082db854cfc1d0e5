package transport

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"

	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// The hand-written codec (codec.go, codec_decode.go) is held to msgpack's
// reflection codec, which defined the wire format until it was written:
// the encoder must write the same bytes, the decoder give the same frame or
// the same error for every input.

func ptr[T any](v T) *T { return &v }

func mustMarshal(t testing.TB, v any) msgpack.RawMessage {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// frameTable has a frame of every type, with the fields each uses, and
// values at the edges of every msgpack encoding.
func frameTable(t testing.TB) map[string]*Frame {
	args := mustMarshal(t, map[string]any{"request": "R1", "agent": ""})
	return map[string]*Frame{
		"zero":          {},
		"hello":         {T: TypeHello, V: ProtocolVersion, Role: "agent", User: "a1", Token: "tk", Client: "c1"},
		"hello since 0": {T: TypeHello, V: 1, Role: "connector", User: "fb", Token: "tk", Since: ptr(uint64(0))},
		"hello since":   {T: TypeHello, V: 1, Role: "admin", Token: strings.Repeat("t", 64), Since: ptr(uint64(0x1100003))},
		"welcome":       {T: TypeWelcome, V: 1, Node: "n1", Role: "agent", User: "a1", Client: "c1", MaxFrame: DefaultMaxFrame, Seq: 1 << 40},
		"welcome ping":  {T: TypeWelcome, V: 1, Node: "n1", Role: "admin", User: "admin", Client: "c1", MaxFrame: DefaultMaxFrame, PingMs: 5000},
		"hello marker":  {T: TypeHello, V: 1, Role: "agent", User: "a1", Token: "tk", Client: "c1", Since: ptr(uint64(7)), Marker: true},
		"welcome marker": {T: TypeWelcome, V: 1, Node: "n1", Role: "agent", User: "a1", Client: "c1", MaxFrame: DefaultMaxFrame, PingMs: 5000,
			Marker: true},
		"caught_up":      {T: TypeCaughtUp, Mode: api.CaughtUpReplay, Seq: api.SeqOf(17, 3)},
		"caught_up sync": {T: TypeCaughtUp, Mode: api.CaughtUpSync, Seq: api.SeqOf(1<<40, 1<<api.SeqShift-1)},
		"caught_up at 0": {T: TypeCaughtUp, Mode: api.CaughtUpNone},
		"req":            {T: TypeRequest, ID: 2, Op: "join", Args: args, Seq: 5},
		"req linear":     {T: TypeRequest, ID: math.MaxUint64, Op: "lists", Linearizable: true},
		"req no args":    {T: TypeRequest, ID: 300, Op: "status"},
		"res ok":         {T: TypeResponse, ID: 77, OK: true, Index: 1 << 33, Data: mustMarshal(t, api.CustomerMessageResult{Request: "R1", Created: true})},
		"res ok empty":   {T: TypeResponse, ID: 127, OK: true},
		"res err":        {T: TypeResponse, ID: 128, Index: 255, Err: &ErrorBody{Code: api.CodeNotFound, Name: "not_found", Msg: "no such request"}},
		"res not leader": {T: TypeResponse, ID: 256, Err: &ErrorBody{Code: api.CodeNotLeader, Name: "not_leader", Msg: strings.Repeat("m", 300),
			Leader: "10.0.0.1:7400", RetryMs: 65536}},
		"ev":       {T: TypeEvent, Seq: api.SeqOf(17, 3), Kind: string(api.EvRequestCreated), Data: mustMarshal(t, map[string]any{"id": "R1"})},
		"ping":     {T: TypePing, ID: 7},
		"ping 0":   {T: TypePing},
		"pong":     {T: TypePong, ID: 65535},
		"bye":      {T: TypeBye, Err: &ErrorBody{Code: api.CodeSlowConsumer, Name: "slow_consumer", Msg: "", RetryMs: -1}},
		"negative": {T: "x", V: -33, MaxFrame: math.MinInt64},
		"long":     {T: strings.Repeat("t", 70_000), Op: strings.Repeat("o", 31), User: strings.Repeat("u", 32), Client: strings.Repeat("c", 255), Kind: strings.Repeat("k", 256)},
	}
}

func checkEncodeSame(t *testing.T, f *Frame) {
	t.Helper()
	want, err := appendFrameReflect([]byte("pre"), f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendFrame([]byte("pre"), f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendFrame(%+v)\n got  % x\n want % x", f, got, want)
	}
	if byValue, _ := AppendFrame([]byte("pre"), *f); !bytes.Equal(byValue, want) {
		t.Fatalf("AppendFrame of a Frame value\n got  % x\n want % x", byValue, want)
	}
	var back Frame
	if f.T != "" {
		if err := DecodeFrame(got[7:], &back); err != nil {
			t.Fatalf("DecodeFrame of AppendFrame's output: %v", err)
		}
		if !reflect.DeepEqual(&back, f) {
			t.Fatalf("round trip\n got  %+v\n want %+v", back, *f)
		}
	}
}

func TestAppendFrameSameBytes(t *testing.T) {
	for name, f := range frameTable(t) {
		t.Run(name, func(t *testing.T) { checkEncodeSame(t, f) })
	}
}

// TestAppendFrameProtocolExamples: the bytes of PROTOCOL.md §12.
func TestAppendFrameProtocolExamples(t *testing.T) {
	hex := func(s string) []byte {
		var b []byte
		for _, w := range strings.Fields(s) {
			var x byte
			fmt.Sscanf(w, "%02x", &x)
			b = append(b, x)
		}
		return b
	}
	cases := []struct {
		f    *Frame
		want string
	}{
		{&Frame{T: TypePing, ID: 7}, "00 00 00 0c 82 a1 74 a4 70 69 6e 67 a2 69 64 07"},
		{&Frame{T: TypeHello, V: 1, Role: "agent", User: "a1", Token: "tk", Client: "c1"},
			"00 00 00 32 86 a1 74 a5 68 65 6c 6c 6f a1 76 01 a4 72 6f 6c 65 a5 61 67 65 6e 74 a4 75 73 65 72 " +
				"a2 61 31 a5 74 6f 6b 65 6e a2 74 6b a6 63 6c 69 65 6e 74 a2 63 31"},
		{&Frame{T: TypeRequest, ID: 2, Op: "join", Args: []byte{0x82, 0xa7, 'r', 'e', 'q', 'u', 'e', 's', 't', 0xa2, 'R', '1', 0xa5, 'a', 'g', 'e', 'n', 't', 0xa0}, Seq: 5},
			"00 00 00 30 85 a1 74 a3 72 65 71 a2 69 64 02 a2 6f 70 a4 6a 6f 69 6e a4 61 72 67 73 82 a7 72 65 " +
				"71 75 65 73 74 a2 52 31 a5 61 67 65 6e 74 a0 a3 73 65 71 05"},
		{&Frame{T: TypeHello, V: 1, Role: "agent", User: "a1", Token: "tk", Client: "c1", Marker: true},
			"00 00 00 3a 87 a1 74 a5 68 65 6c 6c 6f a1 76 01 a4 72 6f 6c 65 a5 61 67 65 6e 74 a4 75 73 65 72 " +
				"a2 61 31 a5 74 6f 6b 65 6e a2 74 6b a6 63 6c 69 65 6e 74 a2 63 31 a6 6d 61 72 6b 65 72 c3"},
		{&Frame{T: TypeCaughtUp, Seq: 0x1100003, Mode: api.CaughtUpReplay},
			"00 00 00 22 83 a1 74 a9 63 61 75 67 68 74 5f 75 70 a3 73 65 71 ce 01 10 00 03 a4 6d 6f 64 65 a6 " +
				"72 65 70 6c 61 79"},
	}
	for _, c := range cases {
		got, err := EncodeFrame(c.f)
		if err != nil || !bytes.Equal(got, hex(c.want)) {
			t.Errorf("EncodeFrame(%+v) = % x, %v\nwant % x", c.f, got, err, hex(c.want))
		}
	}
}

// genString draws strings around the msgpack str length boundaries.
func genString(t *rapid.T, label string) string {
	n := rapid.SampledFrom([]int{0, 0, 1, 2, 5, 31, 32, 255, 256, 65535, 65536}).Draw(t, label+"_len")
	return strings.Repeat(rapid.SampledFrom([]string{"a", "é", "-"}).Draw(t, label+"_ch"), n)[:n]
}

var intEdges = []int64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
	-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64}

func genInt(t *rapid.T, label string) int64 {
	if rapid.Bool().Draw(t, label+"_edge") {
		return rapid.SampledFrom(intEdges).Draw(t, label)
	}
	return rapid.Int64().Draw(t, label)
}

func genUint(t *rapid.T, label string) uint64 {
	if rapid.Bool().Draw(t, label+"_edge") {
		return uint64(rapid.SampledFrom(intEdges).Draw(t, label))
	}
	return rapid.Uint64().Draw(t, label)
}

// genValue draws a msgpack-encodable value for args and data.
func genValue(t *rapid.T, label string, depth int) any {
	switch k := rapid.IntRange(0, 7).Draw(t, label); {
	case k == 0:
		return nil
	case k == 1:
		return genInt(t, label+"i")
	case k == 2:
		return genString(t, label+"s")
	case k == 3:
		return rapid.Bool().Draw(t, label+"b")
	case k == 4:
		return []byte(genString(t, label+"bin"))
	case k == 5:
		return rapid.Float64().Draw(t, label+"f")
	case depth > 2:
		return "leaf"
	case k == 6:
		n := rapid.IntRange(0, 3).Draw(t, label+"n")
		a := make([]any, n)
		for i := range a {
			a[i] = genValue(t, fmt.Sprintf("%s.%d", label, i), depth+1)
		}
		return a
	default: // one key: the bytes stay deterministic
		m := map[string]any{}
		if rapid.Bool().Draw(t, label+"e") {
			m[genString(t, label+"k")] = genValue(t, label+"v", depth+1)
		}
		return m
	}
}

func genRaw(t *rapid.T, label string) msgpack.RawMessage {
	if rapid.IntRange(0, 2).Draw(t, label+"_absent") == 0 {
		return nil
	}
	b, err := msgpack.Marshal(genValue(t, label, 0))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func genFrame(t *rapid.T) *Frame {
	opt := func(label string) bool { return rapid.Bool().Draw(t, label+"?") }
	f := &Frame{T: rapid.SampledFrom([]string{TypeHello, TypeWelcome, TypeRequest, TypeResponse, TypeEvent, TypePing, TypePong, TypeBye, TypeCaughtUp, "", "other"}).Draw(t, "t")}
	if opt("v") {
		f.V = int(genInt(t, "v"))
	}
	if opt("role") {
		f.Role = rapid.SampledFrom([]string{"agent", "admin", "connector", "node", "x"}).Draw(t, "role")
	}
	if opt("user") {
		f.User = genString(t, "user")
	}
	if opt("token") {
		f.Token = genString(t, "token")
	}
	if opt("client") {
		f.Client = genString(t, "client")
	}
	if opt("since") {
		f.Since = ptr(genUint(t, "since"))
	}
	if opt("node") {
		f.Node = genString(t, "node")
	}
	if opt("max_frame") {
		f.MaxFrame = int(genInt(t, "max_frame"))
	}
	if opt("ping_ms") {
		f.PingMs = int(genInt(t, "ping_ms"))
	}
	f.Marker = opt("marker")
	if opt("id") {
		f.ID = genUint(t, "id")
	}
	if opt("op") {
		f.Op = rapid.SampledFrom([]string{"join", "customer_message", "status", "forward", ""}).Draw(t, "op")
	}
	f.Args = genRaw(t, "args")
	f.OK = opt("ok")
	f.Data = genRaw(t, "data")
	if opt("index") {
		f.Index = genUint(t, "index")
	}
	if opt("err") {
		f.Err = &ErrorBody{Code: api.Code(genUint(t, "code")), Name: genString(t, "name"), Msg: genString(t, "msg")}
		if opt("leader") {
			f.Err.Leader = genString(t, "leader")
		}
		if opt("retry") {
			f.Err.RetryMs = int(genInt(t, "retry"))
		}
	}
	if opt("seq") {
		f.Seq = genUint(t, "seq")
	}
	f.Linearizable = opt("linearizable")
	if opt("kind") {
		f.Kind = genString(t, "kind")
	}
	if opt("mode") {
		f.Mode = rapid.SampledFrom([]string{api.CaughtUpReplay, api.CaughtUpNone, api.CaughtUpSync, "other", strings.Repeat("m", 40)}).Draw(t, "mode")
	}
	return f
}

func TestAppendFrameSameBytesRapid(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := genFrame(rt)
		want, err := appendFrameReflect(nil, f)
		if err != nil {
			rt.Fatal(err)
		}
		got, err := AppendFrame(nil, f)
		if err != nil || !bytes.Equal(got, want) {
			rt.Fatalf("AppendFrame(%+v) = % x, %v\nwant % x", f, got, err, want)
		}
		checkDecodeSame(rt, got[4:])
	})
}

// TestAppendFrameOtherValues: values other than a Frame still go through
// msgpack's encoder.
func TestAppendFrameOtherValues(t *testing.T) {
	for _, v := range []any{(*Frame)(nil), map[string]any{"t": "x"}, eventFrame{T: TypeEvent, Seq: 3, Kind: "k"}, 5} {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		want := buf.Bytes()
		got, err := AppendFrame(nil, v)
		if err != nil || !bytes.Equal(got[4:], want) {
			t.Errorf("AppendFrame(%#v) = % x, %v, want % x", v, got, err, want)
		}
	}
}

// encodeEventReflect is EncodeEvent as it was: eventFrame through msgpack.
func encodeEventReflect(ev fsm.Event) ([]byte, error) {
	return appendFrameReflect(nil, eventFrame{T: TypeEvent, Seq: ev.Seq, Kind: string(ev.Kind), Data: ev.Data})
}

func TestEncodeEventSameBytes(t *testing.T) {
	summary := api.RequestSummary{ID: "R1", Channel: "webchat", List: "support", Customer: api.Customer{ID: "c-42", Name: "Ada"},
		State: api.StateUnread, Participants: []string{"a1"}, CreatedAt: 1e18, UpdatedAt: -5, Preview: strings.Repeat("p", 40)}
	data := []any{nil, summary, &summary, msgpack.RawMessage(nil), msgpack.RawMessage{0x81, 0xa1, 'a', 0x01}, []byte{1, 2},
		"str", 42, map[string]int{"x": 1}, []string{"a", "b"}, api.Customer{ID: "c"}}
	for i, d := range data {
		for _, seq := range []uint64{0, 1, api.SeqOf(123456, 7), math.MaxUint64} {
			ev := fsm.Event{Seq: seq, Kind: api.EvRequestCreated, To: []string{"agent:a1"}, Data: d}
			if i == 0 {
				ev.Kind = ""
			}
			want, err := encodeEventReflect(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncodeEvent(ev.Seq, ev.Kind, ev.Data)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("EncodeEvent(%+v) = % x, %v\nwant % x", ev, got, err, want)
			}
		}
	}
	// An unencodable value fails as it did.
	ev := fsm.Event{Kind: "k", Data: make(chan int)}
	if _, err := EncodeEvent(ev.Seq, ev.Kind, ev.Data); err == nil {
		t.Error("EncodeEvent of a channel succeeded")
	}
}

func TestEncodeEventSameBytesRapid(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ev := fsm.Event{Seq: genUint(rt, "seq"), Kind: api.EventKind(genString(rt, "kind")), Data: genValue(rt, "data", 0)}
		if rapid.Bool().Draw(rt, "raw") {
			ev.Data = genRaw(rt, "raw")
		}
		want, err := encodeEventReflect(ev)
		if err != nil {
			rt.Fatal(err)
		}
		got, err := EncodeEvent(ev.Seq, ev.Kind, ev.Data)
		if err != nil || !bytes.Equal(got, want) {
			rt.Fatalf("EncodeEvent(%+v) = % x, %v\nwant % x", ev, got, err, want)
		}
	})
}

// checkDecodeSame fails unless DecodeFrame and the reflection decoder agree
// on payload: the same frame, or the same error. It reports whether the
// hand-written decoder took the payload.
func checkDecodeSame(t interface{ Fatalf(string, ...any) }, payload []byte) bool {
	var got, want Frame
	errGot := DecodeFrame(payload, &got)
	errWant := decodeFrameReflect(payload, &want)
	if (errGot == nil) != (errWant == nil) || (errGot != nil && errGot.Error() != errWant.Error()) {
		t.Fatalf("DecodeFrame(% x): error %v, reflection decoder %v", payload, errGot, errWant)
	}
	if errWant == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeFrame(% x)\n got  %+v\n want %+v", payload, got, want)
	}
	if errWant == nil && len(got.Args) > 0 && len(payload) > 0 {
		// The raw values are copies: the payload buffer is reused.
		saved := payload[0]
		payload[0] ^= 0xff
		same := bytes.Equal(got.Args, want.Args)
		payload[0] = saved
		if !same {
			t.Fatalf("DecodeFrame's args alias the payload")
		}
	}
	var fast Frame
	return checkMsgpack(payload) == nil && decodeFrameFast(payload, &fast)
}

// oddPayloads are inputs the hand-written decoder must leave to the
// reflection decoder, or handle exactly as it does.
func oddPayloads() map[string][]byte {
	m := func(kv ...[]byte) []byte {
		b := []byte{0x80 | byte(len(kv)/2)}
		for _, x := range kv {
			b = append(b, x...)
		}
		return b
	}
	s := func(x string) []byte { return msgp.AppendStr(nil, x) }
	return map[string][]byte{
		"empty map":             {0x80},
		"nil":                   {0xc0},
		"array frame":           {0x91, 0xa3, 'r', 'e', 'q'},
		"array frame all":       append([]byte{0xdc, 0, 19}, bytes.Repeat([]byte{0xc0}, 19)...),
		"string":                s("req"),
		"t nil":                 m(s("t"), []byte{0xc0}),
		"t bin":                 m(s("t"), []byte{0xc4, 3, 'r', 'e', 'q'}),
		"t int":                 m(s("t"), []byte{0x01}),
		"t empty":               m(s("t"), s("")),
		"t twice":               m(s("t"), s("req"), s("t"), s("ping")),
		"t then empty":          m(s("t"), s("req"), s("t"), s("")),
		"bin key":               m([]byte{0xc4, 1, 't'}, s("req")),
		"int key":               m([]byte{0x01}, s("req"), s("t"), s("req")),
		"nil key":               m([]byte{0xc0}, s("x"), s("t"), s("req")),
		"unknown keys":          m(s("t"), s("req"), s("zz"), []byte{0x92, 0x01, 0xc0}, s("T"), s("ping"), s("ID"), []byte{0x05}),
		"unknown ext":           m(s("t"), s("req"), s("x"), []byte{0xd6, 0xff, 0, 0, 0, 1}),
		"id negative":           m(s("t"), s("req"), s("id"), []byte{0xff}),
		"id int8":               m(s("t"), s("req"), s("id"), []byte{0xd0, 0x80}),
		"id int64":              m(s("t"), s("req"), s("id"), []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}),
		"id float":              m(s("t"), s("req"), s("id"), []byte{0xcb, 0x40, 0, 0, 0, 0, 0, 0, 0}),
		"id string":             m(s("t"), s("req"), s("id"), s("1")),
		"id nil":                m(s("t"), s("req"), s("id"), []byte{0xc0}),
		"id bool":               m(s("t"), s("req"), s("id"), []byte{0xc3}),
		"v uint64":              m(s("t"), s("hello"), s("v"), []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		"max_frame int16":       m(s("t"), s("welcome"), s("max_frame"), []byte{0xd1, 0x80, 0x00}),
		"ping_ms uint32":        m(s("t"), s("welcome"), s("ping_ms"), []byte{0xce, 0x00, 0x01, 0x00, 0x00}),
		"ping_ms str":           m(s("t"), s("welcome"), s("ping_ms"), s("5000")),
		"since twice":           m(s("t"), s("hello"), s("since"), []byte{0x05}, s("since"), []byte{0x06}),
		"since nil":             m(s("t"), s("hello"), s("since"), []byte{0xc0}),
		"since negative":        m(s("t"), s("hello"), s("since"), []byte{0xd2, 0xff, 0xff, 0xff, 0xfe}),
		"ok int":                m(s("t"), s("res"), s("ok"), []byte{0x01}),
		"ok nil":                m(s("t"), s("res"), s("ok"), []byte{0xc0}),
		"linearizable false":    m(s("t"), s("req"), s("linearizable"), []byte{0xc2}),
		"args nil":              m(s("t"), s("req"), s("args"), []byte{0xc0}),
		"args str":              m(s("t"), s("req"), s("args"), s("x")),
		"args nested":           m(s("t"), s("req"), s("args"), []byte{0x81, 0xa1, 'a', 0x92, 0x80, 0x90}),
		"args twice":            m(s("t"), s("req"), s("args"), []byte{0x01}, s("args"), []byte{0x02}),
		"data ext":              m(s("t"), s("ev"), s("data"), []byte{0xc7, 0x02, 0x05, 0xaa, 0xbb}),
		"err":                   m(s("t"), s("res"), s("err"), m(s("code"), []byte{0x05}, s("name"), s("not_found"), s("msg"), s(""))),
		"err nil":               m(s("t"), s("bye"), s("err"), []byte{0xc0}),
		"err not map":           m(s("t"), s("bye"), s("err"), []byte{0x05}),
		"role bin":              m(s("t"), s("hello"), s("role"), []byte{0xc4, 1, 'x'}),
		"op str8":               m(s("t"), s("req"), s("op"), []byte{0xd9, 4, 'j', 'o', 'i', 'n'}),
		"op str16":              m(s("t"), s("req"), s("op"), []byte{0xda, 0, 4, 'j', 'o', 'i', 'n'}),
		"op str32":              m(s("t"), s("req"), s("op"), []byte{0xdb, 0, 0, 0, 4, 'j', 'o', 'i', 'n'}),
		"map16":                 {0xde, 0, 1, 0xa1, 't', 0xa3, 'r', 'e', 'q'},
		"map32":                 {0xdf, 0, 0, 0, 1, 0xa1, 't', 0xa3, 'r', 'e', 'q'},
		"trailing bytes":        append(m(s("t"), s("req")), 0xc1, 0xff),
		"trailing value":        append(m(s("t"), s("req")), m(s("t"), s("ping"))...),
		"truncated":             m(s("t"), s("req"), s("id")),
		"declares too much":     {0x83, 0xa1, 't', 0xa3, 'r', 'e', 'q'},
		"kind float32":          m(s("t"), s("ev"), s("kind"), []byte{0xca, 0, 0, 0, 0}),
		"seq fixext":            m(s("t"), s("ev"), s("seq"), []byte{0xd4, 1, 1}),
		"time ext in t":         m(s("t"), []byte{0xd6, 0xff, 0, 0, 0, 1}),
		"node array":            m(s("t"), s("welcome"), s("node"), []byte{0x91, 0xa1, 'n'}),
		"user empty then value": m(s("t"), s("hello"), s("user"), s(""), s("user"), s("u")),
		"marker nil":            m(s("t"), s("hello"), s("marker"), []byte{0xc0}),
		"marker int":            m(s("t"), s("hello"), s("marker"), []byte{0x01}),
		"mode bin":              m(s("t"), s("caught_up"), s("mode"), []byte{0xc4, 1, 'x'}),
		"mode nil":              m(s("t"), s("caught_up"), s("mode"), []byte{0xc0}),
	}
}

func TestDecodeFrameSameAsReflect(t *testing.T) {
	fast := 0
	for name, f := range frameTable(t) {
		enc, err := AppendFrame(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			if checkDecodeSame(t, enc[4:]) {
				fast++
			}
		})
	}
	for name, p := range oddPayloads() {
		t.Run(name, func(t *testing.T) { checkDecodeSame(t, p) })
	}
	for _, s := range fuzzSeeds(t) {
		for len(s) >= 4 {
			n := min(int(uint32(s[0])<<24|uint32(s[1])<<16|uint32(s[2])<<8|uint32(s[3])), len(s)-4)
			checkDecodeSame(t, s[4:4+n])
			s = s[4+n:]
		}
	}
	// The hand-written decoder takes the usual frames (all but err ones).
	if fast < len(frameTable(t))-3 {
		t.Errorf("the hand-written decoder took %d of %d frames", fast, len(frameTable(t)))
	}
}

// TestDecodeFrameSameAsReflectRapid: encoded frames, then the same bytes
// cut, with a byte changed, or with an unknown or duplicated key spliced in.
func TestDecodeFrameSameAsReflectRapid(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := genFrame(rt)
		enc, err := appendFrameReflect(nil, f)
		if err != nil {
			rt.Fatal(err)
		}
		p := enc[4:]
		checkDecodeSame(rt, bytes.Clone(p))
		switch rapid.IntRange(0, 3).Draw(rt, "mutation") {
		case 0:
			p = p[:rapid.IntRange(0, len(p)).Draw(rt, "cut")]
		case 1:
			i := rapid.IntRange(0, len(p)-1).Draw(rt, "at")
			p[i] = rapid.Byte().Draw(rt, "byte")
		case 2: // one more pair at the end
			extra, _ := msgpack.Marshal(genValue(rt, "extra", 0))
			key := rapid.SampledFrom([]string{"t", "id", "op", "args", "since", "ok", "zz", "data", "err", "v", "marker", "mode"}).Draw(rt, "key")
			if p[0] >= 0x80 && p[0] < 0x8f {
				p[0]++
				p = append(msgp.AppendStr(p, key), extra...)
			}
		case 3: // random bytes
			p = rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(rt, "bytes")
		}
		checkDecodeSame(rt, p)
	})
}

// FuzzDecodeFrameDifferential: the hand-written decoder agrees with the
// reflection decoder on every input, and the hand-written encoder writes
// what the reflection encoder writes for every frame that decodes.
func FuzzDecodeFrameDifferential(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if len(s) > 4 {
			f.Add(s[4:])
		}
	}
	for _, fr := range frameTable(f) {
		enc, _ := AppendFrame(nil, fr)
		f.Add(enc[4:])
	}
	for _, p := range oddPayloads() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecodeSame(t, payload)
		var fr Frame
		if DecodeFrame(payload, &fr) != nil {
			return
		}
		want, err := appendFrameReflect(nil, &fr)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := AppendFrame(nil, &fr); !bytes.Equal(got, want) {
			t.Fatalf("AppendFrame(%+v)\n got  % x\n want % x", fr, got, want)
		}
	})
}

// The hot paths stay allocation-free, or nearly: a response frame is
// appended to a reused buffer without allocating, a request decodes with
// one allocation (its args, copied out of the reused payload buffer), and
// an event is encoded into the one buffer it returns.
func TestFrameCodecAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under coverage and the race detector")
	}
	res := &Frame{T: TypeResponse, ID: 77, OK: true, Index: 123456, Data: mustMarshal(t, api.CustomerMessageResult{Request: "R1"})}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf, _ = AppendFrame(buf[:0], res) }); n != 0 {
		t.Errorf("AppendFrame of a response: %v allocations, want 0", n)
	}
	req, _ := EncodeFrame(&Frame{T: TypeRequest, ID: 77, Op: "customer_message", Seq: 9,
		Args: mustMarshal(t, api.CustomerMessageArgs{Channel: "webchat", CustomerID: "c-42", Text: "hi"})})
	var f Frame
	if n := testing.AllocsPerRun(100, func() { _ = DecodeFrame(req[4:], &f) }); n > 1 {
		t.Errorf("DecodeFrame of a request: %v allocations, want 1", n)
	}
	ev := fsm.Event{Seq: 1 << 40, Kind: api.EvRequestCreated, Data: api.RequestSummary{ID: "R1", Channel: "webchat", List: "support",
		Customer: api.Customer{ID: "c-42"}, Participants: []string{"a1"}, Preview: "hello"}}
	if n := testing.AllocsPerRun(100, func() { _, _ = EncodeEvent(ev.Seq, ev.Kind, ev.Data) }); n > 1 {
		t.Errorf("EncodeEvent of a request summary: %v allocations, want 1 (the frame)", n)
	}
}
