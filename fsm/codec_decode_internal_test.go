package fsm

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// Types that exercise the decoding plans beyond the registered arguments:
// small integers (truncated as msgpack truncates), booleans, nested and
// repeated structs, and fields or types msgpack decodes with methods.
type (
	decSmall struct {
		I8   int8       `msgpack:"i8"`
		I16  int16      `msgpack:"i16,omitempty"`
		I32  int32      `msgpack:"i32"`
		U8   uint8      `msgpack:"u8"`
		U16  uint16     `msgpack:"u16"`
		U32  uint32     `msgpack:"u32"`
		U    uint       `msgpack:"u"`
		B    bool       `msgpack:"b"`
		Mode api.Role   `msgpack:"mode"`
		Node NodeInfo   `msgpack:"node"`
		Ns   []NodeInfo `msgpack:"ns"`
		skip int
	}
	decTagged struct {
		Node  NodeInfo   `msgpack:"node"`
		Nodes []NodeInfo `msgpack:"nodes"`
		Text  decText    `msgpack:"text"`
		F     float64    `msgpack:"f"`
		P     *string    `msgpack:"p"`
		M     map[string]string
	}
	decTagged2 struct {
		Node  NodeInfo   `msgpack:"node"`
		Nodes []NodeInfo `msgpack:"nodes"`
		Text  decText    `msgpack:"text"`
		F     float64    `msgpack:"f"`
		P     *string    `msgpack:"p"`
		M     []string   `msgpack:"m"`
		S     decStr     `msgpack:"s"`
	}
	decText   string
	decStr    string
	decCustom struct {
		A string `msgpack:"a"`
	}
)

func (t *decText) UnmarshalText(b []byte) error { *t = decText("text:" + string(b)); return nil }
func (c *decCustom) DecodeMsgpack(d *msgpack.Decoder) error {
	s, err := d.DecodeString()
	c.A = "custom:" + s
	return err
}

// msgpackSnippets are values of every msgpack family, edge values of each.
var msgpackSnippets = [][]byte{
	{0xc0}, {0xc2}, {0xc3}, {0x00}, {0x7f}, {0xe0}, {0xff},
	{0xcc, 0xff}, {0xd0, 0x80}, {0xcd, 0xff, 0xff}, {0xd1, 0x80, 0x00}, {0xce, 0xff, 0xff, 0xff, 0xff},
	{0xd2, 0x80, 0, 0, 0}, {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0},
	{0xcf, 0, 0, 0, 1, 0, 0, 0, 1}, {0xca, 0x3f, 0xc0, 0, 0}, {0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0},
	{0xa0}, {0xa2, 'h', 'i'}, {0xd9, 3, 'a', 'b', 'c'}, {0xda, 0, 1, 'x'}, {0xdb, 0, 0, 0, 1, 'y'},
	{0xc4, 0}, {0xc4, 2, 1, 2}, {0xc5, 0, 1, 9}, {0xc6, 0, 0, 0, 0},
	{0x90}, {0x92, 0xa1, 'a', 0xa1, 'b'}, {0x92, 0xa1, 'a', 0x01}, {0x91, 0xc0}, {0xdc, 0, 1, 0xa0}, {0x91, 0x80},
	{0x80}, {0x81, 0xa2, 'i', 'd', 0xa2, 'n', '1'}, {0x82, 0xa2, 'i', 'd', 0xa1, 'x', 0xa2, 'i', 'd', 0xa1, 'y'},
	{0x81, 0xa2, 'i', 'd', 0x05}, {0x81, 0xa1, 'z', 0x91, 0x91, 0x90}, {0x93, 0xa1, 'a', 0xa1, 'b', 0xa1, 'c'},
	{0x81, 0xa1, 'k', 0xa1, 'v'}, {0xd4, 1, 2}, {0xc7, 1, 5, 0}, {0xde, 0, 0},
}

// randomArgs is a msgpack map for type t: its keys, others, duplicates;
// values of every family; sometimes not a map at all.
func randomArgs(rt *rapid.T, t reflect.Type) []byte {
	var keys []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("msgpack"), ",")
		if name == "" {
			name = t.Field(i).Name
		}
		keys = append(keys, name)
	}
	keys = append(keys, "zz", "")
	if rapid.IntRange(0, 15).Draw(rt, "not a map") == 0 {
		return rapid.SampledFrom(msgpackSnippets).Draw(rt, "value")
	}
	n := rapid.IntRange(0, 6).Draw(rt, "n")
	b := msgp.AppendMapLen(nil, n)
	for range n {
		if rapid.IntRange(0, 20).Draw(rt, "key not a str") == 0 {
			b = append(b, rapid.SampledFrom(msgpackSnippets).Draw(rt, "key")...)
		} else {
			b = msgp.AppendStr(b, rapid.SampledFrom(keys).Draw(rt, "key"))
		}
		b = append(b, rapid.SampledFrom(msgpackSnippets).Draw(rt, "value")...)
	}
	return b
}

// TestDecodeArgsPlannedSameAsReflection: for the registered argument types
// and the test types, random maps decode (or fail) through the plans as
// msgpack.Unmarshal decodes them, and whole entries as the reflection
// decoder does.
func TestDecodeArgsPlannedSameAsReflection(t *testing.T) {
	types := []reflect.Type{reflect.TypeFor[decSmall](), reflect.TypeFor[decTagged](), reflect.TypeFor[decTagged2](), reflect.TypeFor[decCustom]()}
	for _, info := range Commands.Ops() {
		types = append(types, info.Args)
	}
	if p := argDecPlanFor(reflect.TypeFor[decSmall]()); p == nil || p.fields[9].kind != msgp.KindStruct {
		t.Fatalf("decSmall has no plan (%+v): the test does not test the plans", p)
	}
	if argDecPlanFor(reflect.TypeFor[decCustom]()) != nil {
		t.Fatal("decCustom, which decodes itself, has a plan")
	}
	rapid.Check(t, func(rt *rapid.T) {
		typ := rapid.SampledFrom(types).Draw(rt, "type")
		raw := randomArgs(rt, typ)
		info := &OpInfo{Name: "test", Args: typ, dec: argDecPlanFor(typ)}
		got, errGot := decodeArgsValue(raw, info, info.NewArgs())
		want := info.NewArgs()
		errWant := msgpack.Unmarshal(raw, want)
		if (errGot == nil) != (errWant == nil) || (errWant == nil && !reflect.DeepEqual(got, want)) {
			rt.Fatalf("%s % x:\n planned %#v, %v\n msgpack %#v, %v", typ, raw, got, errGot, want, errWant)
		}
		// In an entry, through the entry decoder (as a registered op's
		// arguments when the type is one).
		for _, ri := range Commands.Ops() {
			if ri.Args != typ {
				continue
			}
			data := append([]byte{EntryCommands, 0x91, 0x97, 0xcc, byte(ri.Op), 0x01, 0xa0, 0xa0, 0x00, 0x00}, raw...)
			cmds, err := DecodeEntry(data)
			if (err == nil) != (errWant == nil) || (err == nil && !reflect.DeepEqual(cmds[0].Args, want)) {
				rt.Fatalf("entry % x: %v, %v; msgpack %#v, %v", data, cmds, err, want, errWant)
			}
			break
		}
	})
}

// TestArgDecPlanFields: the plan holds msgpack's fields under msgpack's
// names, and leaves to msgpack what it must.
func TestArgDecPlanFields(t *testing.T) {
	p := argDecPlanFor(reflect.TypeFor[decTagged2]())
	if p == nil {
		t.Fatal("no plan")
	}
	var b bytes.Buffer
	for _, f := range p.fields {
		b.WriteString(f.name)
		b.WriteByte(byte('0' + f.kind))
		b.WriteByte(' ')
	}
	// node: a struct; nodes: a slice of structs, text: a TextUnmarshaler,
	// f, p: msgpack's; m: []string; s: a string. (No field of type any:
	// msgpack panics on a duplicate key of one holding a value.)
	if got, want := b.String(), "node7 nodes0 text0 f0 p0 m6 s1 "; got != want {
		t.Errorf("plan %q, want %q", got, want)
	}
	if argDecPlanFor(reflect.TypeFor[decTagged]()) != nil {
		t.Error("a type with an untagged field has a plan")
	}
}
