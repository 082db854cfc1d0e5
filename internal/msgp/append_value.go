package msgp

import (
	"encoding"
	"math"
	"reflect"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// AppendValue encodes command arguments and event payloads as
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

// FieldKind is how a field is written.
type FieldKind uint8

// Field kinds.
const (
	KindOther FieldKind = iota // msgpack's encoder
	KindString
	KindInt
	KindUint
	KindBool
	KindBytes
	KindStrings     // []string
	KindStruct      // a struct with a plan (sub)
	KindStructSlice // a slice of structs with a plan (sub)
)

// FieldPlan is how one struct field is written (and, by the entry
// decoder, read back).
type FieldPlan struct {
	Key       string // the field's name as a msgpack str
	Index     int
	Kind      FieldKind
	OmitEmpty bool
	Sub       *StructPlan
}

// StructPlan is nil for a type msgpack must encode itself.
type StructPlan struct{ Fields []FieldPlan }

// argPlans maps a struct type to its *StructPlan (nil if none).
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

// PlanFor returns the plan of struct type st, or nil.
func PlanFor(st reflect.Type) *StructPlan {
	if p, ok := argPlans.Load(st); ok {
		return p.(*StructPlan)
	}
	p := makeArgPlan(st, 0)
	argPlans.Store(st, p)
	return p
}

func makeArgPlan(st reflect.Type, depth int) *StructPlan {
	if st.Kind() != reflect.Struct || argCustomEncoded(st) || depth > 8 {
		return nil
	}
	p := &StructPlan{}
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
		f := FieldPlan{Key: string(AppendStr(nil, name)), Index: i, OmitEmpty: opts == "omitempty"}
		t := sf.Type
		if !argCustomEncoded(t) {
			switch t.Kind() {
			case reflect.String:
				f.Kind = KindString
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				f.Kind = KindInt
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				f.Kind = KindUint
			case reflect.Bool:
				f.Kind = KindBool
			case reflect.Slice:
				switch e := t.Elem(); {
				case e == reflect.TypeFor[byte]():
					f.Kind = KindBytes
				case e == reflect.TypeFor[string]():
					f.Kind = KindStrings
				case e.Kind() == reflect.Struct && !argCustomEncoded(e):
					if f.Sub = makeArgPlan(e, depth+1); f.Sub != nil {
						f.Kind = KindStructSlice
					}
				}
			case reflect.Struct:
				if !f.OmitEmpty {
					if f.Sub = makeArgPlan(t, depth+1); f.Sub != nil {
						f.Kind = KindStruct
					}
				}
			}
		}
		if f.OmitEmpty {
			// Emptiness as msgpack decides it, for the kinds it decides
			// simply.
			if t.Implements(argIsZeroerType) {
				return nil
			}
			switch t.Kind() {
			case reflect.Map, reflect.Slice, reflect.Array, reflect.Pointer, reflect.Float32, reflect.Float64:
			default:
				if f.Kind == KindOther {
					return nil
				}
			}
		}
		p.Fields = append(p.Fields, f)
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

// AppendValue appends v encoded exactly as msgpack's reflection encoder
// with UseCompactInts writes it, without the allocations it makes for
// structs with omitempty fields. Log entries (command arguments) and event
// payloads are written with it.
func AppendValue(b []byte, v any) ([]byte, error) {
	if v == nil {
		return append(b, 0xc0), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() || rv.Type().Elem().Kind() != reflect.Struct {
			break
		}
		if p := PlanFor(rv.Type().Elem()); p != nil {
			return appendPlanned(b, p, rv.Elem())
		}
	case reflect.Struct:
		if p := PlanFor(rv.Type()); p != nil {
			return appendPlanned(b, p, rv)
		}
	}
	return entryAppendEncoded(b, rv)
}

// appendPlanned appends struct sv by its plan p.
func appendPlanned(b []byte, p *StructPlan, sv reflect.Value) ([]byte, error) {
	n := 0
	for i := range p.Fields {
		if !p.Fields[i].OmitEmpty || !argEmpty(sv.Field(p.Fields[i].Index)) {
			n++
		}
	}
	b = AppendMapLen(b, n)
	for i := range p.Fields {
		f := &p.Fields[i]
		fv := sv.Field(f.Index)
		if f.OmitEmpty && argEmpty(fv) {
			continue
		}
		b = append(b, f.Key...)
		switch f.Kind {
		case KindString:
			b = AppendStr(b, fv.String())
		case KindInt:
			b = AppendInt(b, fv.Int())
		case KindUint:
			b = AppendUint(b, fv.Uint())
		case KindBool:
			if fv.Bool() {
				b = append(b, 0xc3)
			} else {
				b = append(b, 0xc2)
			}
		case KindBytes:
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
		case KindStrings:
			if fv.IsNil() {
				b = append(b, 0xc0)
				break
			}
			b = AppendArrayLen(b, fv.Len())
			for j := range fv.Len() {
				b = AppendStr(b, fv.Index(j).String())
			}
		case KindStruct:
			var err error
			if b, err = appendPlanned(b, f.Sub, fv); err != nil {
				return b, err
			}
		case KindStructSlice:
			if fv.IsNil() {
				b = append(b, 0xc0)
				break
			}
			b = AppendArrayLen(b, fv.Len())
			for j := range fv.Len() {
				var err error
				if b, err = appendPlanned(b, f.Sub, fv.Index(j)); err != nil {
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

func (w *entryWriter) WriteByte(c byte) error { w.b = append(w.b, c); return nil }

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
