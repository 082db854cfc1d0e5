package fsm_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/msgp"
)

// decodeEntryReference is DecodeEntry as it was before the hand-written
// decoder, through msgpack's reflection decoder: the reference the new one
// is held to. (A copy, not the fallback codec.go keeps, so that a change
// there cannot hide.)
func decodeEntryReference(data []byte) ([]*Command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrUndecodable)
	}
	switch data[0] {
	case EntryCommands:
	default:
		if data[0]&0x80 != 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: kind %d", ErrUndecodable, data[0])
	}
	dec := msgpack.NewDecoder(bytes.NewReader(data[1:]))
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	if n < 0 || n > len(data) {
		return nil, fmt.Errorf("%w: %d commands", ErrUndecodable, n)
	}
	cmds := make([]*Command, 0, n)
	for i := 0; i < n; i++ {
		c, err := func() (*Command, error) {
			n, err := dec.DecodeArrayLen()
			if err != nil {
				return nil, err
			}
			if n != 7 {
				return nil, fmt.Errorf("command has %d fields, want 7", n)
			}
			c := &Command{}
			op, err := dec.DecodeUint8()
			if err != nil {
				return nil, err
			}
			c.Op = Op(op)
			role, err := dec.DecodeUint8()
			if err != nil {
				return nil, err
			}
			c.By.Role = api.Role(role)
			if c.By.ID, err = dec.DecodeString(); err != nil {
				return nil, err
			}
			if c.ClientID, err = dec.DecodeString(); err != nil {
				return nil, err
			}
			if c.Seq, err = dec.DecodeUint64(); err != nil {
				return nil, err
			}
			if c.Time, err = dec.DecodeInt64(); err != nil {
				return nil, err
			}
			info := Commands.Lookup(c.Op)
			if info == nil {
				return c, dec.Skip()
			}
			c.Args = info.NewArgs()
			if err := dec.Decode(c.Args); err != nil {
				return nil, err
			}
			return c, nil
		}()
		if err != nil {
			return nil, fmt.Errorf("%w: command %d: %v", ErrUndecodable, i, err)
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// nestedDeeper reports whether the first value of b (after the kind byte)
// nests more than limit containers deep: the one kind of entry DecodeEntry
// refuses that the reflection decoder accepted (see maxEntryDepth).
func nestedDeeper(b []byte, limit int) bool {
	if len(b) < 2 {
		return false
	}
	depth := 0
	for _, c := range b[1:] {
		// A crude but sufficient test for the inputs that reach it: a run
		// of single-element containers.
		if c == 0x91 || c == 0x81 || (c >= 0x90 && c <= 0x9f) {
			depth++
			if depth > limit {
				return true
			}
		}
	}
	return false
}

type fatalfer interface {
	Helper()
	Fatalf(string, ...any)
}

// checkDecodeSame: DecodeEntry gives what the reflection decoder gives:
// both fail (with ErrUndecodable), or both decode deep-equal commands.
func checkDecodeSame(t fatalfer, data []byte) []*Command {
	t.Helper()
	got, errGot := DecodeEntry(data)
	want, errWant := decodeEntryReference(data)
	if errGot != nil && !errors.Is(errGot, ErrUndecodable) {
		t.Fatalf("% x: error %v does not wrap ErrUndecodable", data, errGot)
	}
	switch {
	case errGot == nil && errWant != nil:
		t.Fatalf("% x: decoded %d commands, the reflection decoder fails: %v", data, len(got), errWant)
	case errGot != nil && errWant == nil:
		if strings.Contains(errGot.Error(), "nested deeper") && nestedDeeper(data, 32) {
			return nil // the depth guard: documented
		}
		t.Fatalf("% x: fails (%v), the reflection decoder decodes %d commands", data, errGot, len(want))
	case errGot == nil:
		if !reflect.DeepEqual(got, want) {
			for i := range want {
				if i < len(got) && !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("% x: command %d decodes as\n %#v\nthe reflection decoder:\n %#v", data, i, got[i], want[i])
				}
			}
			t.Fatalf("% x: decodes as %#v, the reflection decoder %#v", data, got, want)
		}
	}
	return got
}

// randomCommand is a command of a random registered op (or an unknown
// one), with random arguments.
func randomCommand(rt *rapid.T, ops []*OpInfo) *Command {
	c := &Command{By: api.Principal{Role: api.Role(rapid.Uint8().Draw(rt, "role")), ID: rapid.SampledFrom([]string{"", "A1", "fb", strings.Repeat("é", 40)}).Draw(rt, "id")},
		ClientID: rapid.SampledFrom([]string{"", "0123456789abcdef", "c"}).Draw(rt, "client"), Seq: rapid.Uint64().Draw(rt, "seq"), Time: rapid.Int64().Draw(rt, "time")}
	if rapid.IntRange(0, 20).Draw(rt, "unknown") == 0 {
		c.Op = Op(rapid.IntRange(200, 255).Draw(rt, "op"))
		c.Args = map[string]any{"x": []any{1, "y", map[string]any{"z": nil}}}
		return c
	}
	info := rapid.SampledFrom(ops).Draw(rt, "op")
	c.Op = info.Op
	c.Args = info.NewArgs()
	fillValue(rt, reflect.ValueOf(c.Args).Elem(), "args")
	return c
}

// mutate changes data at random: a byte set, a byte cut, a byte inserted.
func mutate(rt *rapid.T, data []byte) []byte {
	out := append([]byte(nil), data...)
	for range rapid.IntRange(0, 3).Draw(rt, "mutations") {
		if len(out) < 2 {
			break
		}
		at := rapid.IntRange(1, len(out)-1).Draw(rt, "at")
		b := rapid.SampledFrom([]byte{0x00, 0x01, 0x7f, 0x80, 0x90, 0x91, 0xa0, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xca, 0xcc, 0xcd, 0xd0, 0xd3, 0xd9, 0xdc, 0xdd, 0xde, 0xe0, 0xff}).Draw(rt, "byte")
		switch rapid.IntRange(0, 2).Draw(rt, "how") {
		case 0:
			out[at] = b
		case 1:
			out = append(out[:at], out[at+1:]...)
		default:
			out = append(out[:at], append([]byte{b}, out[at:]...)...)
		}
	}
	return out
}

// TestDecodeEntrySameAsReflection: random entries of every op, as written
// and mutated, decode as msgpack's reflection decoder decodes them.
func TestDecodeEntrySameAsReflection(t *testing.T) {
	ops := Commands.Ops()
	rapid.Check(t, func(rt *rapid.T) {
		cmds := make([]*Command, rapid.IntRange(0, 12).Draw(rt, "n"))
		for i := range cmds {
			cmds[i] = randomCommand(rt, ops)
		}
		data, err := EncodeEntry(cmds...)
		if err != nil {
			rt.Fatalf("encode: %v", err)
		}
		if got := checkDecodeSame(rt, data); len(got) != len(cmds) {
			rt.Fatalf("%d commands decode as %d", len(cmds), len(got))
		}
		checkDecodeSame(rt, mutate(rt, data))
	})
}

// entryOf writes an entry of commands given as msgpack values (the
// reflection encoder, not EncodeEntry, so that anything can be written).
func entryOf(t testing.TB, cmds ...[]any) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteByte(EntryCommands)
	if err := msgpack.NewEncoder(&b).Encode(cmds); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rawMsgpack is msgpack bytes written as they are.
type rawMsgpack []byte

func (r rawMsgpack) MarshalMsgpack() ([]byte, error) { return r, nil }

// TestDecodeEntryOddInputs: values of other msgpack families than the
// encoder writes, nil, unknown and duplicate keys, overflowing integers...
// decode (or fail) as the reflection decoder decides.
func TestDecodeEntryOddInputs(t *testing.T) {
	cm, ag, node, conn := int(OpCustomerMessage), int(OpCreateAgent), int(OpRegisterNode), int(OpCreateConnector)
	env := func(op int, args any) []any { return []any{op, 1, "fb", "c", 1, 2, args} }
	m := func(kv ...any) rawMsgpack { // a map with keys in this order, duplicates allowed
		var b bytes.Buffer
		e := msgpack.NewEncoder(&b)
		_ = e.EncodeMapLen(len(kv) / 2)
		for _, v := range kv {
			if err := e.Encode(v); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	cases := map[string][]byte{
		"unknown keys skipped":        entryOf(t, env(cm, m("zz", []any{1, map[string]any{"a": []byte{1}}}, "text", "hi", "yy", nil))),
		"unknown key of ext":          entryOf(t, env(cm, m("zz", rawMsgpack{0xd4, 1, 2}, "text", "hi"))),
		"nil for a string":            entryOf(t, env(cm, m("text", nil))),
		"bin for a string":            entryOf(t, env(cm, m("text", []byte("hi")))),
		"int for a string":            entryOf(t, env(cm, m("text", 5))),
		"string for an int":           entryOf(t, env(cm, m("priority", "5"))),
		"float for an int":            entryOf(t, env(cm, m("priority", 1.5))),
		"nil for an int":              entryOf(t, env(cm, m("priority", nil))),
		"uint64 into an int":          entryOf(t, env(cm, m("priority", uint64(math.MaxUint64)))),
		"int8 into an int":            entryOf(t, env(cm, m("priority", rawMsgpack{0xd0, 0x80}))),
		"uint8 with a high bit":       entryOf(t, env(cm, m("priority", rawMsgpack{0xcc, 0xff}))),
		"duplicate keys":              entryOf(t, env(cm, m("text", "a", "text", "b"))),
		"duplicate bytes, then nil":   entryOf(t, env(ag, m("token_hash", []byte{1}, "token_hash", nil))),
		"duplicate maps":              entryOf(t, env(ag, m("max", map[string]int{"a": 1}, "max", map[string]int{"b": 2}))),
		"nil args":                    entryOf(t, env(cm, nil)),
		"empty args":                  entryOf(t, env(cm, map[string]any{})),
		"args as array":               entryOf(t, env(cm, []any{"C", "u", "U", "t", 1})),
		"args as short array":         entryOf(t, env(cm, []any{"C"})),
		"args as empty array":         entryOf(t, env(cm, []any{})),
		"args a string":               entryOf(t, env(cm, "x")),
		"key an int":                  entryOf(t, env(cm, map[int]string{1: "x"})),
		"key a bin":                   entryOf(t, env(cm, m([]byte("text"), "x"))),
		"key nil":                     entryOf(t, env(cm, m(nil, "x"))),
		"bytes nil":                   entryOf(t, env(ag, m("token_hash", nil))),
		"bytes empty":                 entryOf(t, env(ag, m("token_hash", []byte{}))),
		"bytes from a str":            entryOf(t, env(ag, m("token_hash", "abc"))),
		"bytes from an int":           entryOf(t, env(ag, m("token_hash", 1))),
		"max nil":                     entryOf(t, env(ag, m("max", nil))),
		"max of wrong values":         entryOf(t, env(ag, m("max", map[string]any{"x": "y"}))),
		"max of big ints":             entryOf(t, env(ag, m("max", map[string]uint64{"x": math.MaxUint64}))),
		"strings nil":                 entryOf(t, env(conn, m("channels", nil))),
		"strings empty":               entryOf(t, env(conn, m("channels", []string{}))),
		"strings with a nil":          entryOf(t, env(conn, m("channels", []any{"a", nil}))),
		"strings with a bin":          entryOf(t, env(conn, m("channels", []any{"a", []byte("b")}))),
		"strings with an int":         entryOf(t, env(conn, m("channels", []any{"a", 1}))),
		"strings a map":               entryOf(t, env(conn, m("channels", map[string]any{}))),
		"node with unknown keys":      entryOf(t, env(node, m("node", m("zz", 1, "id", "n1")))),
		"node nil":                    entryOf(t, env(node, m("node", nil))),
		"node as array":               entryOf(t, env(node, m("node", []any{"n1", "r", "c"}))),
		"node twice":                  entryOf(t, env(node, m("node", m("id", "n1"), "node", m("raft_addr", "r")))),
		"node of wrong type":          entryOf(t, env(node, m("node", m("id", 5)))),
		"op as uint16":                entryOf(t, []any{uint16(256 + cm), 1, "fb", "c", 1, 2, m("text", "x")}),
		"op negative":                 entryOf(t, []any{-1, 1, "fb", "c", 1, 2, nil}),
		"op nil":                      entryOf(t, []any{nil, 1, "fb", "c", 1, 2, nil}),
		"role as int64":               entryOf(t, []any{cm, int64(-255), "fb", "c", 1, 2, nil}),
		"id nil":                      entryOf(t, []any{cm, 1, nil, "c", 1, 2, m()}),
		"id a bin":                    entryOf(t, []any{cm, 1, []byte("fb"), "c", 1, 2, m()}),
		"client nil":                  entryOf(t, []any{cm, 1, "fb", nil, 1, 2, m()}),
		"seq negative":                entryOf(t, []any{cm, 1, "fb", "c", -5, 2, m()}),
		"seq nil":                     entryOf(t, []any{cm, 1, "fb", "c", nil, 2, m()}),
		"seq a float":                 entryOf(t, []any{cm, 1, "fb", "c", 1.0, 2, m()}),
		"time huge":                   entryOf(t, []any{cm, 1, "fb", "c", 1, uint64(math.MaxUint64), m()}),
		"time nil":                    entryOf(t, []any{cm, 1, "fb", "c", 1, nil, m()}),
		"command nil":                 append([]byte{EntryCommands, 0x91}, 0xc0),
		"entry nil":                   {EntryCommands, 0xc0},
		"entry a map":                 {EntryCommands, 0x80},
		"trailing bytes":              append(entryOf(t, env(cm, m("text", "x"))), 0xc1, 0xff),
		"unknown op, deep args":       entryOf(t, []any{250, 1, "", "", 0, 0, nest(30)}),
		"unknown op, too deep args":   entryOf(t, []any{250, 1, "", "", 0, 0, nest(40)}),
		"known op, deep unknown keys": entryOf(t, env(cm, m("zz", nest(28), "text", "x"))),
		"long strings":                entryOf(t, env(cm, m("text", strings.Repeat("x", 70000), "channel", strings.Repeat("y", 64), "customer_id", strings.Repeat("z", 65)))),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { checkDecodeSame(t, data) })
	}
	// The odd ones mixed with ordinary commands in one entry.
	var all [][]byte
	for _, data := range cases {
		all = append(all, data)
	}
	for i := range all {
		a, b := all[i], all[(i+1)%len(all)]
		if a[1] == 0x91 && b[1] == 0x91 {
			checkDecodeSame(t, append([]byte{EntryCommands, 0x92}, append(append([]byte(nil), a[2:]...), b[2:]...)...))
		}
	}
}

// nest is n arrays, one in another.
func nest(n int) any {
	var v any = 1
	for range n {
		v = []any{v}
	}
	return v
}

// TestDecodeEntryDepthGuard: an entry nested deeper than the guard allows
// is refused; just below, it decodes.
func TestDecodeEntryDepthGuard(t *testing.T) {
	// The entry and the command are 2 levels.
	if _, err := DecodeEntry(entryOf(t, []any{250, 1, "", "", 0, 0, nest(30)})); err != nil {
		t.Errorf("32 levels: %v", err)
	}
	if _, err := DecodeEntry(entryOf(t, []any{250, 1, "", "", 0, 0, nest(31)})); !errors.Is(err, ErrUndecodable) {
		t.Errorf("33 levels: %v, want ErrUndecodable", err)
	}
}

// TestDecodeEntryHostileLengths: declared lengths beyond the entry fail
// before anything is allocated for them.
func TestDecodeEntryHostileLengths(t *testing.T) {
	cm := byte(OpCustomerMessage)
	head := []byte{EntryCommands, 0x91, 0x97, 0xcc, cm, 0xcc, 1, 0xa0, 0xa0, 0, 0}
	cases := map[string][]byte{
		"commands":       {EntryCommands, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x90},
		"args map":       append(head, 0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 'x', 0),
		"string":         append(head, 0x81, 0xa4, 't', 'e', 'x', 't', 0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'),
		"strings":        append([]byte{EntryCommands, 0x91, 0x97, 0xcc, byte(OpCreateConnector), 0xcc, 1, 0xa0, 0xa0, 0, 0, 0x81, 0xa8}, append([]byte("channels"), 0xdd, 0x7f, 0xff, 0xff, 0xff, 0xa0)...),
		"bytes":          append([]byte{EntryCommands, 0x91, 0x97, 0xcc, byte(OpNoop), 0xcc, 1, 0xa0, 0xa0, 0, 0, 0x81, 0xa3}, append([]byte("pad"), 0xc6, 0x7f, 0xff, 0xff, 0xff, 0)...),
		"unknown op map": {EntryCommands, 0x91, 0x97, 0xcc, 250, 0xcc, 1, 0xa0, 0xa0, 0, 0, 0xdf, 0x7f, 0xff, 0xff, 0xff},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := DecodeEntry(data)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrUndecodable) {
				t.Errorf("error %v, want ErrUndecodable", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Errorf("allocated %d bytes for a %d-byte entry", n, len(data))
			}
			checkDecodeSame(t, data)
		})
	}
}

// TestDecodeEntryCopiesStrings: the commands do not share memory with the
// entry, which Raft may reuse.
func TestDecodeEntryCopiesStrings(t *testing.T) {
	cmds := goldenCommands()
	data := mustEncode(t, cmds...)
	got, err := DecodeEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'Z'
	}
	if !reflect.DeepEqual(got, cmds) {
		t.Fatal("decoded commands changed with the entry's bytes")
	}
}

// TestDecodeEntryAllocations: a few allocations per entry and one per
// command, not one per field.
func TestDecodeEntryAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under coverage and the race detector")
	}
	var cmds []*Command
	for i := range 256 {
		cmds = append(cmds, keyed("0123456789abcdef", uint64(i+1), cmd(OpCustomerMessage, fb,
			&api.CustomerMessageArgs{Channel: "C2", CustomerID: fmt.Sprint("c", i), CustomerName: "Customer", Text: "Hello, I need help with my order", Priority: i % 3})))
		if i%4 == 0 {
			cmds = append(cmds, cmd(OpJoin, a1, &api.RequestArgs{Request: fmt.Sprint("R", i)}))
		}
	}
	data := mustEncode(t, cmds...)
	// The []*Command, the []Command, the arenas, one slice of arguments for
	// each of the two ops, and one chunk of short strings per command (so a
	// string the state keeps pins only its own command's bytes). Strings
	// longer than 64 bytes (none here) are allocated each on its own.
	if n := testing.AllocsPerRun(20, func() { _, _ = DecodeEntry(data) }); n > 8+float64(len(cmds)) {
		t.Errorf("DecodeEntry of %d commands (%d bytes): %v allocations", len(cmds), len(data), n)
	}
	raw, err := msgp.AppendValue(nil, cmds[0].Args)
	if err != nil {
		t.Fatal(err)
	}
	// The arguments and one string arena.
	if n := testing.AllocsPerRun(50, func() { _, _, _ = Commands.DecodeArgs("customer_message", raw) }); n > 2 {
		t.Errorf("DecodeArgs: %v allocations, want 2", n)
	}
}

// TestDecodeArgsSameAsReflection: Commands.DecodeArgs decodes (or fails
// on) random and mutated arguments of every op as msgpack.Unmarshal does.
func TestDecodeArgsSameAsReflection(t *testing.T) {
	ops := Commands.Ops()
	rapid.Check(t, func(rt *rapid.T) {
		info := rapid.SampledFrom(ops).Draw(rt, "op")
		args := info.NewArgs()
		fillValue(rt, reflect.ValueOf(args).Elem(), "args")
		raw, err := msgp.AppendValue(nil, args)
		if err != nil {
			rt.Fatal(err)
		}
		if rapid.Bool().Draw(rt, "mutate") {
			raw = mutate(rt, append([]byte{0}, raw...))[1:]
		}
		checkArgsSame(rt, info, raw)
	})
}

func checkArgsSame(t fatalfer, info *OpInfo, raw []byte) {
	t.Helper()
	_, got, ferr := Commands.DecodeArgs(info.Name, raw)
	want := info.NewArgs()
	var err error
	if len(raw) > 0 {
		err = msgpack.Unmarshal(raw, want)
	}
	switch {
	case (ferr == nil) != (err == nil):
		t.Fatalf("%s % x: DecodeArgs error %v, msgpack %v", info.Name, raw, ferr, err)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("%s % x: DecodeArgs gives %#v, msgpack %#v", info.Name, raw, got, want)
	}
}

// FuzzDecodeArgs: DecodeArgs against msgpack.Unmarshal on any bytes.
func FuzzDecodeArgs(f *testing.F) {
	ops := Commands.Ops()
	for _, info := range ops {
		raw, err := msgp.AppendValue(nil, argsFor(info))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(info.Op), raw)
	}
	f.Fuzz(func(t *testing.T, op uint8, raw []byte) {
		if info := Commands.Lookup(Op(op)); info != nil {
			checkArgsSame(t, info, raw)
		}
	})
}
