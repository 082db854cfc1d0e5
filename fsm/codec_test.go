package fsm_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"

	. "github.com/switchboard/switchboard/fsm"
)

// sampleArgs has filled-in arguments for every op this test knows.
var sampleArgs = map[Op]any{
	OpCreateMRD:         &CreateMRDArgs{ID: "social", Name: "Social"},
	OpCreateChannelType: &CreateChannelTypeArgs{ID: "facebook", MRD: "social"},
	OpCreateList:        &CreateListArgs{ID: "L1", Name: "Facebook ünï"},
	OpCreateQueue:       &CreateQueueArgs{ID: "Q1", Name: "Web", MRD: "chat", Priority: -3, OfferTimeoutMs: math.MaxInt64},
	OpCreateChannel:     &CreateChannelArgs{ID: "C2", Type: "facebook", Mode: ModePull, List: "L1", Queue: "Q"},
	OpCreateAgent:       &CreateAgentArgs{ID: "A1", Name: "Ann", Max: map[string]int{"social": 2, "chat": 1 << 40}, TokenHash: []byte{0, 1, 255}},
	OpCreateConnector:   &CreateConnectorArgs{ID: "fb", Name: "FB", Channels: []string{"C2", "W1"}, TokenHash: []byte("hash")},
	OpDeleteList:        &IDArgs{ID: "L1"},
	OpDeleteAgent:       &IDArgs{ID: "A1"},
	OpNoop:              &NoopArgs{Pad: bytes.Repeat([]byte{7}, 300)},
	OpSubscribe:         &SubscribeArgs{Agent: "A1", List: "L1"},
	OpUnsubscribe:       &SubscribeArgs{Agent: "A2", List: "L2"},
	OpCustomerMessage:   &CustomerMessageArgs{Channel: "C2", CustomerID: "u1", CustomerName: "Ursula", Text: strings.Repeat("ü", 100)},
	OpRequestAgent:      &RequestAgentArgs{Request: "R1", Channel: "C2", CustomerID: "u1"},
	OpJoin:              &RequestArgs{Request: "R1", Agent: "A1"},
	OpLeave:             &RequestArgs{Request: "R2", Agent: "A2"},
	OpClose:             &RequestArgs{Request: "R3"},
	OpSend:              &SendArgs{Request: "R1", Agent: "A1", Text: "hello"},
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
		c := &Command{Op: info.Op, By: Principal{Role: Role(i % 5), ID: "who-" + info.Name}, ClientID: "client",
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
	valid, err := EncodeEntry(cmd(OpJoin, a1, &RequestArgs{Request: "R1"}))
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
	known := cmd(OpNoop, admin, &NoopArgs{})
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
	assertRejected(t, s, &Command{Op: got[0].Op, By: got[0].By, Args: got[0].Args}, CodeUnknownOp)

	f := NewFSM(nil, nil)
	resp := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(*ApplyResponse)
	if resp.Err != nil || len(resp.Results) != 2 || CodeOf(resp.Results[0].Err) != CodeUnknownOp || resp.Results[1].Err != nil {
		t.Errorf("FSM answered %+v", resp)
	}
}

// The fuzz target: DecodeEntry never panics, fails only with ErrUndecodable,
// and whatever decodes re-encodes to the same commands and applies (to a
// state holding the walkthrough) without panic, identically on two states.
func FuzzDecodeEntry(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	base := walkthrough(f)
	for _, r := range []string{"u1", "u2"} {
		customerMessage(f, base, r, "hi")
	}
	mustApply(f, base, cmd(OpJoin, a1, &RequestArgs{Request: "R1"}))
	baseBytes := marshal(f, base)
	f.Fuzz(func(t *testing.T, data []byte) {
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
		case info.Allowed(RoleConnector) && !info.Allowed(RoleAgent):
			by = fb
		case info.Allowed(RoleAgent):
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
