package fsm

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"

	"github.com/vmihailenco/msgpack/v5"
)

// Log entry format (the data of one Raft log entry):
//
//	byte 0     entry kind: EntryCommands
//	bytes 1..  msgpack array of commands, each a msgpack array
//	           [op uint8, role uint8, by_id string, client_id string,
//	            seq uint64, time int64, args map]
//
// One entry may carry many commands (group commit); each gets its own result.
const (
	EntryCommands byte = 1
	// entryIgnorable is a flag bit: an older node that does not know an
	// entry kind with this bit set skips the entry instead of failing.
	entryIgnorable byte = 0x80
)

// ErrUndecodable means a log entry could not be decoded at all.
var ErrUndecodable = errors.New("fsm: undecodable log entry")

// EncodeEntry encodes commands as one log entry. The bytes are written by
// hand (codec_append.go): they are exactly those msgpack's reflection
// encoder wrote (testdata/entry_v1.bin and the tests hold them to it), without
// its per-command allocations.
func EncodeEntry(cmds ...*Command) ([]byte, error) {
	sb := entryScratches.Get().(*entryScratch)
	b := append(sb.b[:0], EntryCommands)
	b = msgp.AppendArrayLen(b, len(cmds))
	var err error
	for _, c := range cmds {
		if b, err = entryAppendCommand(b, c); err != nil {
			break
		}
	}
	var out []byte
	if err == nil {
		out = append(make([]byte, 0, len(b)), b...)
	}
	if cap(b) <= maxEntryScratch {
		sb.b = b
		entryScratches.Put(sb)
	}
	return out, err
}

// entryAppendCommand appends c as the array [op uint8, role uint8, by_id,
// client_id, seq uint64, time int64, args], each in the fixed width the
// format has always used.
func entryAppendCommand(b []byte, c *Command) ([]byte, error) {
	b = append(b, 0x97, 0xcc, byte(c.Op), 0xcc, byte(c.By.Role))
	b = msgp.AppendStr(b, c.By.ID)
	b = msgp.AppendStr(b, c.ClientID)
	b = binary.BigEndian.AppendUint64(append(b, 0xcf), c.Seq)
	b = binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(c.Time))
	return entryAppendArgs(b, c.Args)
}

// DecodeEntry decodes a log entry. Commands whose op this version does not
// know decode with a nil Args and Op set, so Apply answers CodeUnknownOp.
//
// The decoder is hand-written (codec_decode.go) and decodes every entry, or
// fails on it, exactly as msgpack's reflection decoder did, with one
// exception: an entry nested deeper than maxEntryDepth (32) is refused.
// No version ever wrote one (arguments nest 2 levels at most).
func DecodeEntry(data []byte) ([]*Command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrUndecodable)
	}
	switch data[0] {
	case EntryCommands:
	default:
		if data[0]&entryIgnorable != 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: kind %d", ErrUndecodable, data[0])
	}
	// Every declared length fits in the entry and nesting is bounded, so
	// that neither decoder below allocates more than the entry's length
	// justifies (msgpack trusts declared lengths).
	// Bytes after the value are allowed: msgpack's decoder never read them.
	if _, err := CheckMsgpack(data[1:], maxEntryDepth); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	cmds, fallback, err := decodeEntryFast(data[1:])
	if !fallback {
		return cmds, err
	}
	return decodeEntryReflect(data[1:])
}

// decodeEntryReflect decodes the commands array b with msgpack's reflection
// decoder: the decoder of entries whose envelope decodeEntryFast leaves to
// it, and the reference the fast decoder is held to.
func decodeEntryReflect(b []byte) ([]*Command, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	if n < 0 || n > len(b)+1 {
		return nil, fmt.Errorf("%w: %d commands", ErrUndecodable, n)
	}
	cmds := make([]*Command, 0, n)
	for i := 0; i < n; i++ {
		c, err := decodeCommand(dec)
		if err != nil {
			return nil, fmt.Errorf("%w: command %d: %v", ErrUndecodable, i, err)
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

func decodeCommand(dec *msgpack.Decoder) (*Command, error) {
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
}

// entryScratch is a reusable encoding buffer; EncodeEntry returns an exact-size
// copy of what it wrote there.
type entryScratch struct{ b []byte }

// maxEntryScratch bounds the buffers kept for reuse.
const maxEntryScratch = 1 << 20

var entryScratches = sync.Pool{New: func() any { return &entryScratch{b: make([]byte, 0, 4096)} }}

// Arguments (and, through AppendMsgpack, event payloads) are encoded as
// msgpack's reflection encoder encodes a struct (a map of the fields in
// declaration order, omitempty fields left out when empty), from a plan
// computed once per type: msgpack itself builds the list of non-empty fields
// anew, on the heap, for every value of a type with an omitempty field.
// Strings, integers, booleans, byte and string slices, and structs (and
// slices of structs) the plan describes are written here; any other field
// goes through msgpack's encoder. A type the plan cannot describe exactly
// (custom encoders, embedded or oddly tagged fields...) is encoded by
// msgpack whole. (Types registered with msgpack.RegisterExt are not
// detected: none is, in this module.)

// argKind is how a field is written.
type argKind uint8

const (
	argOther argKind = iota // msgpack's encoder
	argString
	argInt
	argUint
	argBool
	argBytes
	argStrings     // []string
	argStruct      // a struct with a plan (sub)
	argStructSlice // a slice of structs with a plan (sub)
)

type argField struct {
	key       string // the field's name as a msgpack str
	index     int
	kind      argKind
	omitEmpty bool
	sub       *argPlan
}

// argPlan is nil for a type msgpack must encode itself.
type argPlan struct{ fields []argField }

// argPlans maps a struct type to its *argPlan (nil if none).
var argPlans sync.Map

var (
	argCustomEncoderType   = reflect.TypeFor[msgpack.CustomEncoder]()
	argMarshalerType       = reflect.TypeFor[msgpack.Marshaler]()
	argBinaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
	argTextMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	argIsZeroerType        = reflect.TypeFor[interface{ IsZero() bool }]()
)

// argCustomEncoded reports whether msgpack encodes t (or an addressable t)
// with a method of its own.
func argCustomEncoded(t reflect.Type) bool {
	for _, x := range [...]reflect.Type{t, reflect.PointerTo(t)} {
		if x.Implements(argCustomEncoderType) || x.Implements(argMarshalerType) ||
			x.Implements(argBinaryMarshalerType) || x.Implements(argTextMarshalerType) {
			return true
		}
	}
	return false
}

// argPlanFor returns the plan of struct type st, or nil.
func argPlanFor(st reflect.Type) *argPlan {
	if p, ok := argPlans.Load(st); ok {
		return p.(*argPlan)
	}
	p := makeArgPlan(st, 0)
	argPlans.Store(st, p)
	return p
}

func makeArgPlan(st reflect.Type, depth int) *argPlan {
	if st.Kind() != reflect.Struct || argCustomEncoded(st) || depth > 8 {
		return nil
	}
	p := &argPlan{}
	for i := range st.NumField() {
		sf := st.Field(i)
		if sf.Anonymous || sf.Name == "_msgpack" {
			return nil
		}
		if !sf.IsExported() {
			continue // msgpack skips them too
		}
		tag, ok := sf.Tag.Lookup("msgpack")
		if !ok {
			return nil
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" || (opts != "" && opts != "omitempty") {
			return nil
		}
		f := argField{key: string(msgp.AppendStr(nil, name)), index: i, omitEmpty: opts == "omitempty"}
		t := sf.Type
		if !argCustomEncoded(t) {
			switch t.Kind() {
			case reflect.String:
				f.kind = argString
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				f.kind = argInt
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				f.kind = argUint
			case reflect.Bool:
				f.kind = argBool
			case reflect.Slice:
				switch e := t.Elem(); {
				case e == reflect.TypeFor[byte]():
					f.kind = argBytes
				case e == reflect.TypeFor[string]():
					f.kind = argStrings
				case e.Kind() == reflect.Struct && !argCustomEncoded(e):
					if f.sub = makeArgPlan(e, depth+1); f.sub != nil {
						f.kind = argStructSlice
					}
				}
			case reflect.Struct:
				if !f.omitEmpty {
					if f.sub = makeArgPlan(t, depth+1); f.sub != nil {
						f.kind = argStruct
					}
				}
			}
		}
		if f.omitEmpty {
			// Emptiness as msgpack decides it, for the kinds it decides
			// simply.
			if t.Implements(argIsZeroerType) {
				return nil
			}
			switch t.Kind() {
			case reflect.Map, reflect.Slice, reflect.Array, reflect.Pointer, reflect.Float32, reflect.Float64:
			default:
				if f.kind == argOther {
					return nil
				}
			}
		}
		p.fields = append(p.fields, f)
	}
	return p
}

// argEmpty is msgpack's omitempty test for the kinds a plan admits.
func argEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String, reflect.Map, reflect.Slice, reflect.Array:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// AppendMsgpack appends v encoded exactly as msgpack's reflection encoder
// with UseCompactInts writes it, without the allocations it makes for
// structs with omitempty fields. Log entries (command arguments) and event
// payloads are written with it.
func AppendMsgpack(b []byte, v any) ([]byte, error) {
	if v == nil {
		return append(b, 0xc0), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() || rv.Type().Elem().Kind() != reflect.Struct {
			break
		}
		if p := argPlanFor(rv.Type().Elem()); p != nil {
			return appendPlanned(b, p, rv.Elem())
		}
	case reflect.Struct:
		if p := argPlanFor(rv.Type()); p != nil {
			return appendPlanned(b, p, rv)
		}
	}
	return entryAppendEncoded(b, rv)
}

// entryAppendArgs appends a command's arguments.
func entryAppendArgs(b []byte, args any) ([]byte, error) { return AppendMsgpack(b, args) }

// appendPlanned appends struct sv by its plan p.
func appendPlanned(b []byte, p *argPlan, sv reflect.Value) ([]byte, error) {
	n := 0
	for i := range p.fields {
		if !p.fields[i].omitEmpty || !argEmpty(sv.Field(p.fields[i].index)) {
			n++
		}
	}
	b = msgp.AppendMapLen(b, n)
	for i := range p.fields {
		f := &p.fields[i]
		fv := sv.Field(f.index)
		if f.omitEmpty && argEmpty(fv) {
			continue
		}
		b = append(b, f.key...)
		switch f.kind {
		case argString:
			b = msgp.AppendStr(b, fv.String())
		case argInt:
			b = msgp.AppendInt(b, fv.Int())
		case argUint:
			b = msgp.AppendUint(b, fv.Uint())
		case argBool:
			if fv.Bool() {
				b = append(b, 0xc3)
			} else {
				b = append(b, 0xc2)
			}
		case argBytes:
			if fv.IsNil() {
				b = append(b, 0xc0)
				break
			}
			bs := fv.Bytes()
			switch n := len(bs); {
			case n < 256:
				b = append(b, 0xc4, byte(n))
			case n <= math.MaxUint16:
				b = append(b, 0xc5, byte(n>>8), byte(n))
			default:
				b = append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
			}
			b = append(b, bs...)
		case argStrings:
			if fv.IsNil() {
				b = append(b, 0xc0)
				break
			}
			b = msgp.AppendArrayLen(b, fv.Len())
			for j := range fv.Len() {
				b = msgp.AppendStr(b, fv.Index(j).String())
			}
		case argStruct:
			var err error
			if b, err = appendPlanned(b, f.sub, fv); err != nil {
				return b, err
			}
		case argStructSlice:
			if fv.IsNil() {
				b = append(b, 0xc0)
				break
			}
			b = msgp.AppendArrayLen(b, fv.Len())
			for j := range fv.Len() {
				var err error
				if b, err = appendPlanned(b, f.sub, fv.Index(j)); err != nil {
					return b, err
				}
			}
		default:
			var err error
			if b, err = entryAppendEncoded(b, fv); err != nil {
				return b, err
			}
		}
	}
	return b, nil
}

// entryWriter lets a msgpack encoder append to a byte slice.
type entryWriter struct{ b []byte }

func (w *entryWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *entryWriter) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }

type entryValueEncoder struct {
	w   entryWriter
	enc *msgpack.Encoder
}

var entryValueEncoders = sync.Pool{New: func() any {
	ve := &entryValueEncoder{enc: msgpack.NewEncoder(nil)}
	ve.enc.Reset(&ve.w)
	ve.enc.UseCompactInts(true)
	return ve
}}

// entryAppendEncoded appends v encoded by msgpack's encoder (compact ints).
func entryAppendEncoded(b []byte, v reflect.Value) ([]byte, error) {
	ve := entryValueEncoders.Get().(*entryValueEncoder)
	ve.w.b = b
	err := ve.enc.EncodeValue(v)
	b = ve.w.b
	ve.w.b = nil
	entryValueEncoders.Put(ve)
	return b, err
}
