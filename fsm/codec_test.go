package fsm_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/msgp"
)

// sampleArgs has filled-in arguments for every op this test knows.
var sampleArgs = map[Op]any{
	OpCreateMRD:         &api.CreateMRDArgs{ID: "social", Name: "Social"},
	OpCreateChannelType: &api.CreateChannelTypeArgs{ID: "facebook", MRD: "social"},
	OpCreateList:        &api.CreateListArgs{ID: "L1", Name: "Facebook ünï", Access: api.ListRestricted},
	OpCreateQueue:       &api.CreateQueueArgs{ID: "Q1", Name: "Web", MRD: "chat", Priority: -3, OfferTimeoutMs: math.MaxInt64},
	OpCreateChannel:     &api.CreateChannelArgs{ID: "C2", Type: "facebook", Mode: api.ModePull, List: "L1", Queue: "Q"},
	OpCreateAgent:       &api.CreateAgentArgs{ID: "A1", Name: "Ann", Max: map[string]int{"social": 2, "chat": 1 << 40}, TokenHash: []byte{0, 1, 255}},
	OpCreateConnector:   &api.CreateConnectorArgs{ID: "fb", Name: "FB", Channels: []string{"C2", "W1"}, TokenHash: []byte("hash")},
	OpDeleteList:        &api.IDArgs{ID: "L1"},
	OpDeleteAgent:       &api.IDArgs{ID: "A1"},
	OpNoop:              &api.NoopArgs{Pad: bytes.Repeat([]byte{7}, 300)},
	OpSubscribe:         &api.SubscribeArgs{Agent: "A1", List: "L1"},
	OpUnsubscribe:       &api.SubscribeArgs{Agent: "A2", List: "L2"},
	OpCustomerMessage:   &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", CustomerName: "Ursula", Text: strings.Repeat("ü", 100)},
	OpRequestAgent:      &api.RequestAgentArgs{Request: "R1", Channel: "C2", CustomerID: "u1"},
	OpJoin:              &api.RequestArgs{Request: "R1", Agent: "A1"},
	OpLeave:             &api.RequestArgs{Request: "R2", Agent: "A2"},
	OpClose:             &api.RequestArgs{Request: "R3"},
	OpSend:              &api.SendArgs{Request: "R1", Agent: "A1", Text: "hello"},
	OpGrantList:         &api.ListGrantArgs{List: "L1", Agent: "A1"},
	OpRevokeList:        &api.ListGrantArgs{List: "L2", Agent: "A2"},
	OpSetListAccess:     &api.ListAccessArgs{List: "L1", Access: api.ListRestricted},
}

// argsFor returns sample args for op, or zero args for an op added since.
func argsFor(info *OpInfo) any {
	if a, ok := sampleArgs[info.Op]; ok {
		return a
	}
	return info.NewArgs()
}

func TestCodecRoundTripEveryOp(t *testing.T) {
	var all []*Command
	for i, info := range Commands.Ops() {
		c := &Command{Op: info.Op, By: api.Principal{Role: api.Role(i % 5), ID: "who-" + info.Name}, ClientID: "client",
			Seq: uint64(i) << 40, Time: -int64(i) * 1e9, Args: argsFor(info)}
		all = append(all, c)
		t.Run(info.Name, func(t *testing.T) {
			data, err := EncodeEntry(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeEntry(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], c) {
				t.Errorf("round trip:\n got  %+v\n want %+v", got[0], c)
			}
		})
	}
	// All of them in one entry, in order.
	data, err := EncodeEntry(all...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, all) {
		t.Error("batch round trip differs")
	}
}

func TestCodecEmptyEntry(t *testing.T) {
	data, err := EncodeEntry()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEntry(data)
	if err != nil || len(got) != 0 {
		t.Errorf("empty entry decoded to %v, %v", got, err)
	}
}

func TestDecodeTruncatedEntry(t *testing.T) {
	var cmds []*Command
	for _, info := range Commands.Ops() {
		cmds = append(cmds, keyed("c", 9, at(t0, cmd(info.Op, admin, argsFor(info)))))
	}
	data, err := EncodeEntry(cmds...)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		got, err := DecodeEntry(data[:n])
		if !errors.Is(err, ErrUndecodable) {
			t.Fatalf("prefix of %d/%d bytes: %d commands, error %v; want ErrUndecodable", n, len(data), len(got), err)
		}
	}
}

func TestDecodeGarbage(t *testing.T) {
	valid, err := EncodeEntry(cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"}))
	if err != nil {
		t.Fatal(err)
	}
	enc := func(vs ...any) []byte {
		var b bytes.Buffer
		b.WriteByte(EntryCommands)
		e := msgpack.NewEncoder(&b)
		for _, v := range vs {
			if err := e.Encode(v); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	cases := map[string][]byte{
		"empty":                    nil,
		"kind 0":                   {0, 0x90},
		"unknown kind":             {2, 0x90},
		"kind only":                {EntryCommands},
		"not an array":             enc("hello"),
		"array length beyond data": {EntryCommands, 0xdd, 0x7f, 0xff, 0xff, 0xff},
		"negative-looking length":  {EntryCommands, 0xdd, 0xff, 0xff, 0xff, 0xff},
		"command not an array":     enc([]any{"x"}),
		"command of 6 fields":      enc([]any{[]any{24, 2, "A1", "", 0, 0}}),
		"command of 8 fields":      enc([]any{[]any{24, 2, "A1", "", 0, 0, map[string]any{}, 1}}),
		"op is a string":           enc([]any{[]any{"join", 2, "A1", "", 0, 0, map[string]any{}}}),
		"id is a number":           enc([]any{[]any{24, 2, 5, "", 0, 0, map[string]any{}}}),
		"seq is a string":          enc([]any{[]any{24, 2, "A1", "", "1", 0, map[string]any{}}}),
		"args of wrong shape":      enc([]any{[]any{24, 2, "A1", "", 0, 0, "args"}}),
		"args field of wrong type": enc([]any{[]any{24, 2, "A1", "", 0, 0, map[string]any{"request": 5}}}),
		"max with non-int value":   enc([]any{[]any{int(OpCreateAgent), 1, "admin", "", 0, 0, map[string]any{"max": map[string]any{"x": "y"}}}}),
		"unknown op, args cut":     {EntryCommands, 0x91, 0x97, 99, 1, 0xa0, 0xa0, 0, 0, 0xda},
		"reserved code 0xc1":       {EntryCommands, 0x91, 0xc1},
		"valid then cut":           valid[:len(valid)-1],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeEntry(data)
			if !errors.Is(err, ErrUndecodable) {
				t.Errorf("decoded %d commands, error %v; want ErrUndecodable", len(got), err)
			}
		})
	}
	// Random bytes never panic, and every failure is ErrUndecodable.
	r := rand.New(rand.NewSource(1))
	for range 20000 {
		b := make([]byte, r.Intn(64))
		r.Read(b)
		if len(b) > 0 && r.Intn(2) == 0 {
			b[0] = EntryCommands
		}
		if _, err := DecodeEntry(b); err != nil && !errors.Is(err, ErrUndecodable) {
			t.Fatalf("%x: error %v does not wrap ErrUndecodable", b, err)
		}
	}
}

// An entry kind with the ignorable flag bit, from a newer version, is
// skipped: no commands, no error.
func TestDecodeIgnorableKind(t *testing.T) {
	for _, kind := range []byte{0x80, 0x81, 0xff} {
		got, err := DecodeEntry([]byte{kind, 0x91, 0x01})
		if err != nil || len(got) != 0 {
			t.Errorf("kind %#x: %d commands, %v", kind, len(got), err)
		}
	}
}

// A command whose op this version does not know decodes (its arguments
// skipped), and Apply answers CodeUnknownOp, also through the FSM.
func TestUnknownOpEntry(t *testing.T) {
	newer := &Command{Op: 200, By: admin, ClientID: "c", Seq: 4, Time: t0, Args: map[string]any{"future": []any{1, "x", map[string]any{"y": true}}}}
	known := cmd(OpNoop, admin, &api.NoopArgs{})
	data, err := EncodeEntry(newer, known)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Op != 200 || got[0].Args != nil || got[0].Seq != 4 || got[1].Op != OpNoop {
		t.Fatalf("decoded %+v", got)
	}
	s := walkthrough(t)
	assertRejected(t, s, &Command{Op: got[0].Op, By: got[0].By, Args: got[0].Args}, api.CodeUnknownOp)

	// Applied as the Raft adapter applies an entry: every command, in order.
	st := NewState()
	var results []Result
	for _, c := range got {
		res, _ := st.Apply(c)
		results = append(results, res)
	}
	if len(results) != 2 || api.CodeOf(results[0].Err) != api.CodeUnknownOp || results[1].Err != nil {
		t.Errorf("state answered %+v", results)
	}
}

// The fuzz target: DecodeEntry never panics, fails only with ErrUndecodable,
// decodes (or fails) exactly as msgpack's reflection decoder does
// (checkDecodeSame), and whatever decodes re-encodes to the same commands
// and applies (to a state holding the walkthrough) without panic,
// identically on two states.
func FuzzDecodeEntry(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	base := walkthrough(f)
	for _, r := range []string{"u1", "u2"} {
		customerMessage(f, base, r, "hi")
	}
	mustApply(f, base, cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"}))
	baseBytes := marshal(f, base)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeSame(t, data)
		cmds, err := DecodeEntry(data)
		if err != nil {
			if !errors.Is(err, ErrUndecodable) {
				t.Fatalf("error %v does not wrap ErrUndecodable", err)
			}
			return
		}
		again, err := EncodeEntry(cmds...)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := DecodeEntry(again)
		if err != nil {
			t.Fatalf("decode of re-encoded entry: %v", err)
		}
		if len(back) != len(cmds) {
			t.Fatalf("re-encoded entry has %d commands, want %d", len(back), len(cmds))
		}
		for i := range cmds {
			if cmds[i].Args == nil { // unknown op: arguments are dropped
				back[i].Args = nil
			}
			if !reflect.DeepEqual(back[i], cmds[i]) {
				t.Fatalf("command %d changed on re-encoding:\n %+v\n %+v", i, cmds[i], back[i])
			}
		}
		s1 := restore(t, baseBytes)
		s2 := restore(t, baseBytes)
		for i, c := range cmds {
			r1, e1 := s1.Apply(c)
			r2, e2 := s2.Apply(back[i])
			if !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(e1, e2) {
				t.Fatalf("command %d: replicas answered differently", i)
			}
		}
		if !bytes.Equal(marshal(t, s1), marshal(t, s2)) {
			t.Fatal("replicas diverged")
		}
	})
}

// fuzzSeeds are valid entries of every op (alone and batched) plus a few
// broken ones; testdata/fuzz/FuzzDecodeEntry holds the same and more.
func fuzzSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	var all []*Command
	for i, info := range Commands.Ops() {
		by := admin
		switch {
		case info.Allowed(api.RoleConnector) && !info.Allowed(api.RoleAgent):
			by = fb
		case info.Allowed(api.RoleAgent):
			by = a1
		}
		c := keyed("c", uint64(i+1), at(t0+int64(i), cmd(info.Op, by, argsFor(info))))
		all = append(all, c)
		data, err := EncodeEntry(c)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data)
	}
	data, err := EncodeEntry(all...)
	if err != nil {
		tb.Fatal(err)
	}
	out = append(out, data, data[:len(data)/2], []byte{EntryCommands}, []byte{0x81, 0xc1})
	return out
}

// Arguments msgpack cannot encode fail the encoding, not the node later.
func TestEncodeEntryError(t *testing.T) {
	if _, err := EncodeEntry(cmd(OpNoop, admin, make(chan int))); err == nil {
		t.Error("encoded a channel")
	}
}

var updateEntryGolden = flag.Bool("update-entry-golden", false, "rewrite testdata/entry_v1.bin with the current encoder")

// goldenCommands are the commands of testdata/entry_v1.bin, a log entry
// written by the reflection-based EncodeEntry before the hand-written one
// replaced it. Entries already in Raft logs and snapshots must decode the
// same forever, and the encoder must keep writing these bytes (followers
// and older nodes read them). Maps have one key each so that the bytes are
// deterministic.
func goldenCommands() []*Command {
	sys := api.Principal{Role: api.RoleSystem, ID: "n1"}
	ag := api.Principal{Role: api.RoleAgent, ID: "A1"}
	fb := api.Principal{Role: api.RoleConnector, ID: "fb"}
	admin := api.Principal{Role: api.RoleAdmin, ID: "admin"}
	c := func(op Op, by api.Principal, seq uint64, args any) *Command {
		return &Command{Op: op, By: by, ClientID: "0123456789abcdef", Seq: seq, Time: 1_700_000_000_123_456_789, Args: args}
	}
	return []*Command{
		c(OpCreateMRD, admin, 1, &api.CreateMRDArgs{ID: "social", Name: "Social"}),
		c(OpCreateQueue, admin, 2, &api.CreateQueueArgs{ID: "Q1", Name: "Web", MRD: "chat", Priority: -3, OfferTimeoutMs: 1 << 40}),
		c(OpCreateChannel, admin, 3, &api.CreateChannelArgs{ID: "C2", Type: "facebook", Mode: api.ModePush, Queue: "Q1"}),
		c(OpCreateAgent, admin, 4, &api.CreateAgentArgs{ID: "A1", Name: "Ann", Max: map[string]int{"chat": 3}, TokenHash: []byte{0, 1, 255}}),
		c(OpCreateAgent, admin, 5, &api.CreateAgentArgs{ID: "A2"}),
		c(OpCreateConnector, admin, 6, &api.CreateConnectorArgs{ID: "fb", Channels: []string{"C2", "W1"}, TokenHash: []byte("hash")}),
		c(OpNoop, sys, 0, &api.NoopArgs{}),
		c(OpNoop, sys, 0, &api.NoopArgs{Pad: bytes.Repeat([]byte{7}, 300)}),
		c(OpCustomerMessage, fb, 7, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", CustomerName: "Ursula", Text: strings.Repeat("ü", 100)}),
		c(OpCustomerMessage, fb, 8, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u2", Text: "hi", Priority: 5}),
		c(OpCustomerMessage, fb, 9, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u3", Text: "hi", Priority: -200}),
		c(OpJoin, ag, 1<<63, &api.RequestArgs{Request: "R1", Agent: "A1"}),
		c(OpSend, ag, 11, &api.SendArgs{Request: "R1", Text: strings.Repeat("x", 4096)}),
		c(OpSetAgentState, ag, 12, &api.SetAgentStateArgs{Agent: "A1", MRD: "chat", State: api.AgentNotReady, Reason: "lunch"}),
		c(OpAcceptOffer, ag, 13, &api.OfferArgs{Request: "R2", OfferID: "O1"}),
		c(OpOfferTimeout, sys, 0, &api.OfferArgs{Request: "R2", OfferID: "O1"}),
		c(OpTransfer, ag, 14, &api.TransferArgs{Request: "R2", Agent: "A1", ToAgent: "A2"}),
		c(OpRegisterNode, sys, 0, &RegisterNodeArgs{Node: NodeInfo{ID: "n1", RaftAddr: "10.0.0.1:7401", ClientAddr: "10.0.0.1:7400"}}),
		c(OpClose, api.Principal{}, 0, &api.RequestArgs{}),
	}
}

const entryGolden = "testdata/entry_v1.bin"

// TestEntryGolden: the committed entry decodes to the same commands, and
// EncodeEntry still writes it byte for byte.
func TestEntryGolden(t *testing.T) {
	cmds := goldenCommands()
	if *updateEntryGolden {
		data, err := EncodeEntry(cmds...)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(entryGolden, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(entryGolden)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEntry(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cmds) {
		for i := range cmds {
			if i >= len(got) || !reflect.DeepEqual(got[i], cmds[i]) {
				t.Fatalf("command %d of %s decodes as %+v, want %+v", i, entryGolden, got[min(i, len(got)-1)], cmds[i])
			}
		}
		t.Fatalf("%s decodes to %d commands, want %d", entryGolden, len(got), len(cmds))
	}
	data, err := EncodeEntry(cmds...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, golden) {
		t.Fatalf("EncodeEntry no longer writes %s:\n got  % x\n want % x", entryGolden, data, golden)
	}
}

// encodeEntryReflect is EncodeEntry as it was, through msgpack's
// reflection encoder: the reference the hand-written one is held to.
func encodeEntryReflect(cmds ...*Command) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(EntryCommands)
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.EncodeArrayLen(len(cmds)); err != nil {
		return nil, err
	}
	for _, c := range cmds {
		for _, err := range []error{enc.EncodeArrayLen(7), enc.EncodeUint8(uint8(c.Op)), enc.EncodeUint8(uint8(c.By.Role)),
			enc.EncodeString(c.By.ID), enc.EncodeString(c.ClientID), enc.EncodeUint64(c.Seq), enc.EncodeInt64(c.Time), enc.Encode(c.Args)} {
			if err != nil {
				return nil, err
			}
		}
	}
	return buf.Bytes(), nil
}

func checkEntrySame(t interface {
	Helper()
	Fatalf(string, ...any)
}, cmds ...*Command) {
	t.Helper()
	want, errWant := encodeEntryReflect(cmds...)
	got, errGot := EncodeEntry(cmds...)
	if (errGot == nil) != (errWant == nil) {
		t.Fatalf("EncodeEntry: error %v, reflection encoder %v", errGot, errWant)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodeEntry(%+v)\n got  % x\n want % x", cmds[0], got, want)
	}
}

// Argument types the hand-written encoder must leave to msgpack, or encode
// exactly as msgpack does.
type (
	argsCustom  struct{ A string }
	argsMarshal struct {
		A string `msgpack:"a"`
	}
	argsEmbedded struct {
		api.RequestArgs
		X int `msgpack:"x"`
	}
	argsOdd struct {
		NoTag     string
		Skipped   string `msgpack:"-"`
		unexp     string
		AsString  int             `msgpack:"as_str,omitempty"`
		F         float64         `msgpack:"f,omitempty"`
		P         *int            `msgpack:"p,omitempty"`
		M         map[string]int  `msgpack:"m,omitempty"`
		Node      NodeInfo        `msgpack:"node,omitempty"`
		Custom    argsCustom      `msgpack:"custom"`
		U8        uint8           `msgpack:"u8"`
		I8        int8            `msgpack:"i8,omitempty"`
		Bytes     []byte          `msgpack:"bytes"`
		Strs      []string        `msgpack:"strs,omitempty"`
		Mode      api.RoutingMode `msgpack:"mode,omitempty"`
		Arr       [2]byte         `msgpack:"arr,omitempty"`
		Interface any             `msgpack:"any"`
	}
	argsPlain struct {
		S  string  `msgpack:"s"`
		I  int     `msgpack:"i,omitempty"`
		U  uint64  `msgpack:"u"`
		B  bool    `msgpack:"b,omitempty"`
		Bs []byte  `msgpack:"bs,omitempty"`
		F  float32 `msgpack:"f"`
		P  *string `msgpack:"p"`
		X  string  `msgpack:"x,omitempty"`
		u  int
	}
)

func (a argsCustom) EncodeMsgpack(enc *msgpack.Encoder) error {
	return enc.EncodeString("custom:" + a.A)
}
func (a *argsMarshal) MarshalMsgpack() ([]byte, error) { return []byte{0xa1, 'm'}, nil }

func TestEncodeEntrySameBytes(t *testing.T) {
	one := 1
	s := "p"
	odd := &argsOdd{NoTag: "n", Skipped: "s", unexp: "u", AsString: 3, F: 0.5, P: &one, M: map[string]int{"k": 1},
		Node: NodeInfo{ID: "n1"}, Custom: argsCustom{A: "c"}, U8: 200, I8: -100, Bytes: []byte{}, Strs: []string{"a"},
		Mode: api.ModePull, Arr: [2]byte{1, 2}, Interface: map[string]any{"x": []any{1, "y"}}}
	cases := map[string]any{
		"nil":          nil,
		"nil pointer":  (*api.RequestArgs)(nil),
		"struct value": api.RequestArgs{Request: "R1"},
		"map":          map[string]string{"request": "R1"},
		"string":       "x",
		"custom":       &argsCustom{A: "x"},
		"marshaler":    &argsMarshal{A: "x"},
		"embedded":     &argsEmbedded{RequestArgs: api.RequestArgs{Request: "R1"}, X: 2},
		"odd":          odd,
		"odd zero":     &argsOdd{},
		"plain":        &argsPlain{S: "s", I: -1, U: 1 << 63, B: true, Bs: []byte{1}, F: 1.5, P: &s, X: "x", u: 9},
		"plain zero":   &argsPlain{},
		"bytes 256":    &api.NoopArgs{Pad: make([]byte, 256)},
		"bytes 65536":  &api.NoopArgs{Pad: make([]byte, 65536)},
		"bytes empty":  &api.NoopArgs{Pad: []byte{}},
		"priority":     &api.CustomerMessageArgs{Channel: "C", Priority: math.MinInt64},
		"unencodable": &struct {
			C chan int `msgpack:"c"`
		}{C: make(chan int)},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			checkEntrySame(t, &Command{Op: OpNoop, By: api.Principal{Role: api.RoleAdmin, ID: "x"}, Args: args})
		})
	}
	// Every registered op, with zero and with sample arguments.
	for _, info := range Commands.Ops() {
		checkEntrySame(t, &Command{Op: info.Op, Args: info.NewArgs()})
		args := argsFor(info)
		if a, ok := args.(*api.CreateAgentArgs); ok && len(a.Max) > 1 {
			continue // map order: compared by value in TestCodecRoundTripEveryOp
		}
		checkEntrySame(t, &Command{Op: info.Op, By: api.Principal{Role: api.RoleAgent, ID: "a"}, ClientID: "c", Seq: 1, Time: -1, Args: args})
	}
}

// fillValue sets v (settable) to random contents; maps get at most one key
// so that encodings are deterministic.
func fillValue(t *rapid.T, v reflect.Value, label string) {
	switch v.Kind() {
	case reflect.String:
		n := rapid.SampledFrom([]int{0, 0, 1, 31, 32, 255, 256, 65536}).Draw(t, label+"_len")
		v.SetString(strings.Repeat(rapid.SampledFrom([]string{"a", "ü"}).Draw(t, label+"_ch"), n)[:n])
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := rapid.Int64().Draw(t, label)
		if rapid.Bool().Draw(t, label+"_small") {
			n = rapid.Int64Range(-300, 300).Draw(t, label+"_s")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(rapid.Uint64().Draw(t, label))
	case reflect.Bool:
		v.SetBool(rapid.Bool().Draw(t, label))
	case reflect.Slice:
		switch rapid.IntRange(0, 2).Draw(t, label+"_n") {
		case 0:
			v.SetZero()
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			n := rapid.IntRange(1, 300).Draw(t, label+"_len")
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range min(n, 3) {
				fillValue(t, v.Index(i), fmt.Sprintf("%s[%d]", label, i))
			}
		}
	case reflect.Map:
		if rapid.Bool().Draw(t, label+"_nil") {
			v.SetZero()
			return
		}
		v.Set(reflect.MakeMap(v.Type()))
		if rapid.Bool().Draw(t, label+"_one") {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fillValue(t, k, label+"_k")
			fillValue(t, e, label+"_v")
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(t, v.Field(i), label+"."+v.Type().Field(i).Name)
			}
		}
	}
}

// TestEncodeEntrySameBytesRapid: random arguments of every registered op,
// several commands to an entry.
func TestEncodeEntrySameBytesRapid(t *testing.T) {
	ops := Commands.Ops()
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(rt, "n")
		cmds := make([]*Command, n)
		for i := range cmds {
			info := rapid.SampledFrom(ops).Draw(rt, "op")
			args := info.NewArgs()
			fillValue(rt, reflect.ValueOf(args).Elem(), "args")
			cmds[i] = &Command{Op: info.Op, By: api.Principal{Role: api.Role(rapid.Uint8().Draw(rt, "role")), ID: rapid.String().Draw(rt, "id")},
				ClientID: rapid.String().Draw(rt, "client"), Seq: rapid.Uint64().Draw(rt, "seq"), Time: rapid.Int64().Draw(rt, "time"), Args: args}
		}
		checkEntrySame(rt, cmds...) // same bytes: followers decode the same commands
	})
}

func mustEncode(t interface{ Fatalf(string, ...any) }, cmds ...*Command) []byte {
	b, err := EncodeEntry(cmds...)
	if err != nil {
		t.Fatalf("EncodeEntry: %v", err)
	}
	return b
}

// TestEncodeEntryAllocations: one allocation per entry (the returned
// slice), however many commands, once the buffers are warm.
func TestEncodeEntryAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under coverage and the race detector")
	}
	cmds := goldenCommands()[8:12] // customer messages with and without priority, a join
	for range 256 / len(cmds) {
		cmds = append(cmds, cmds[:4]...)
	}
	if n := testing.AllocsPerRun(50, func() { mustEncode(t, cmds...) }); n > 1 {
		t.Errorf("EncodeEntry of %d commands: %v allocations, want 1", len(cmds), n)
	}
}

// TestAppendMsgpackSameBytes: AppendMsgpack writes what msgpack's encoder
// (compact ints) writes, for every payload type of the package, by value
// and by pointer, randomly filled, and for the odd test types.
func TestAppendMsgpackSameBytes(t *testing.T) {
	types := []reflect.Type{}
	for _, v := range []any{api.RequestSummary{}, api.ListSnapshot{}, api.ListRef{}, api.ParticipantChange{}, api.ConversationMessage{},
		api.ConversationClosed{}, api.OfferInfo{}, api.OfferWithdrawn{}, api.AgentStateChange{}, api.AgentModeChange{}, api.RequestQueued{},
		api.Customer{}, api.Message{}, api.ConversationView{}, api.StreamView{}, api.ListInfo{}, api.AgentInfo{}, api.ConnectorInfo{}, api.QueueView{},
		api.QueuedRequest{}, api.AgentPushView{}, api.Created{}, NodeInfo{}, RegisterNodeResult{}, api.CustomerMessageResult{},
		api.RequestAgentResult{}, api.JoinResult{}, api.AgentStatus{}, api.AgentMRDStatus{}, api.RequestChatResult{}, Offer{}, AgentMRDState{},
		argsOdd{}, argsPlain{}, argsEmbedded{}, argsCustom{}, argsMarshal{}} {
		types = append(types, reflect.TypeOf(v))
	}
	for _, info := range Commands.Ops() {
		types = append(types, info.Args)
	}
	reference := func(v any) ([]byte, error) {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		err := enc.Encode(v)
		return buf.Bytes(), err
	}
	rapid.Check(t, func(rt *rapid.T) {
		typ := rapid.SampledFrom(types).Draw(rt, "type")
		pv := reflect.New(typ)
		fillValue(rt, pv.Elem(), "v")
		v := pv.Interface()
		if rapid.Bool().Draw(rt, "by value") {
			v = pv.Elem().Interface()
		}
		want, errWant := reference(v)
		got, errGot := msgp.AppendValue([]byte("pre"), v)
		if (errGot == nil) != (errWant == nil) || (errWant == nil && !bytes.Equal(got[3:], want)) || string(got[:3]) != "pre" {
			rt.Fatalf("msgp.AppendValue(%#v) = % x, %v\nwant % x, %v", v, got, errGot, want, errWant)
		}
	})
}
