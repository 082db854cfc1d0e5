package fsm

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"

	"github.com/vmihailenco/msgpack/v5"
)

// The hand-written decoder of log entries and command arguments, the mirror
// of the encoder's plans (codec.go). It decodes what EncodeEntry writes and
// anything else whose every value is of its own msgpack family (a str for a
// string, an integer for an integer, true/false for a bool, a bin or nil
// for []byte...), exactly as msgpack's reflection decoder would; for
// anything else (nil where a string is expected, a bin string, a float,
// duplicate keys, a struct sent as an array, a type with a decoder method
// of its own...) it gives up and msgpack's reflection decoder decides, on
// the same bytes: the whole entry if its envelope is unusual, the one
// command's arguments otherwise. So every input gets the result (value or
// error) it got before, and followers of any version decode alike. Unknown
// keys are skipped, as msgpack does; integers are converted (and truncated
// into smaller fields) as msgpack converts them.

// maxEntryDepth bounds the nesting of a log entry: the entry, a command,
// its arguments, a field holding a struct, a map or a slice, and room for
// the arguments of newer versions.
const maxEntryDepth = 32

// Strings decoded from an entry are real Go strings (Raft owns and may
// reuse the entry's bytes), but the short ones are not allocated one by
// one: each command's arguments' are copied into one chunk of exactly their
// total length. The state may keep some of them (a customer id, a message),
// which then keep that chunk alive: never more than the short strings of
// their own command's arguments, so memory cannot grow with what other
// commands of the entry carried.
const edShortString = 64

type edArena struct {
	buf  []byte // the command's chunk; never written below len
	left int    // bound on the short-string bytes still to come
}

func (a *edArena) str(p []byte) string {
	n := len(p)
	switch {
	case n == 0:
		return ""
	case n > edShortString:
		return string(p)
	}
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(a.left, n))
	}
	off := len(a.buf)
	a.buf = append(a.buf, p...)
	a.left -= n
	return unsafe.String(&a.buf[off], n)
}

// The readers below take the input and an offset, and return the value, the
// offset after it and whether it is of the expected family and lies within
// b. They never allocate.

// edNum reads an integer (or nil, as 0) as msgpack's DecodeUint64 and
// DecodeInt64 do: the 64 bits, sign-extended from signed encodings.
func edNum(b []byte, i int) (uint64, int, bool) {
	if i < len(b) && b[i] == 0xc0 {
		return 0, i + 1, true
	}
	return msgp.ReadInt(b, i)
}

// edLen reads an array (isMap false) or map header; nil is -1.
func edLen(b []byte, i int, isMap bool) (int, int, bool) {
	switch {
	case i < len(b) && b[i] == 0xc0:
		return -1, i + 1, true
	case isMap:
		return msgp.ReadMapLen(b, i)
	}
	return msgp.ReadArrayLen(b, i)
}

// edSkip skips one well-formed value, without recursion.
func edSkip(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	n, err := msgp.Check(b[i:], maxEntryDepth)
	return i + n, err == nil
}

// argDecField is how one field of an argument struct is decoded.
type argDecField struct {
	name string
	off  uintptr
	kind msgp.FieldKind // KindString, KindInt, KindUint, KindBool, KindBytes, KindStrings, KindStruct or KindOther
	size uintptr        // of integers
	typ  reflect.Type
	sub  *argDecPlan
}

// argDecPlan is nil for a type msgpack must decode itself.
type argDecPlan struct {
	typ    reflect.Type
	fields []argDecField
}

var argDecPlans sync.Map // reflect.Type → *argDecPlan

var (
	argCustomDecoderType     = reflect.TypeFor[msgpack.CustomDecoder]()
	argUnmarshalerType       = reflect.TypeFor[msgpack.Unmarshaler]()
	argBinaryUnmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	argTextUnmarshalerType   = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// argCustomDecoded reports whether msgpack decodes t (or an addressable t)
// with a method of its own.
func argCustomDecoded(t reflect.Type) bool {
	for _, x := range [...]reflect.Type{t, reflect.PointerTo(t)} {
		if x.Implements(argCustomDecoderType) || x.Implements(argUnmarshalerType) ||
			x.Implements(argBinaryUnmarshalerType) || x.Implements(argTextUnmarshalerType) {
			return true
		}
	}
	return false
}

func argDecPlanFor(st reflect.Type) *argDecPlan {
	if p, ok := argDecPlans.Load(st); ok {
		return p.(*argDecPlan)
	}
	p := makeArgDecPlan(st)
	argDecPlans.Store(st, p)
	return p
}

// makeArgDecPlan derives the decoding plan of struct st from its encoding
// plan: the same fields under the same names, which are the fields msgpack
// decodes.
func makeArgDecPlan(st reflect.Type) *argDecPlan {
	ep := msgp.PlanFor(st)
	if ep == nil || argCustomDecoded(st) {
		return nil
	}
	p := &argDecPlan{typ: st}
	for _, ef := range ep.Fields {
		sf := st.Field(ef.Index)
		name, _, _ := bytes.Cut([]byte(sf.Tag.Get("msgpack")), []byte(","))
		f := argDecField{name: string(name), off: sf.Offset, kind: ef.Kind, size: sf.Type.Size(), typ: sf.Type}
		switch {
		case argCustomDecoded(sf.Type):
			f.kind = msgp.KindOther
		case f.kind == msgp.KindStruct:
			if f.sub = argDecPlanFor(sf.Type); f.sub == nil {
				f.kind = msgp.KindOther
			}
		case f.kind == msgp.KindStructSlice:
			f.kind = msgp.KindOther
		}
		p.fields = append(p.fields, f)
	}
	if len(p.fields) > 64 {
		return nil // the duplicate check holds 64
	}
	return p
}

// decodeArgsPlanned decodes the map at b[i:] into the struct at base by plan
// p. It reports false (leaving the struct in any state) for anything it
// does not decode exactly as msgpack would; the caller then lets msgpack
// decode a fresh value.
func decodeArgsPlanned(b []byte, i int, p *argDecPlan, base unsafe.Pointer, a *edArena) (int, bool) {
	n, i, ok := edLen(b, i, true)
	if !ok || n < 0 || n > len(b)-i {
		return i, false
	}
	var seen uint64
	next := 0
	for range n {
		var key []byte
		if key, i, ok = msgp.ReadStr(b, i); !ok {
			return i, false
		}
		// Keys usually come in the fields' order: the search starts after
		// the last one found.
		var f *argDecField
		for range p.fields {
			if next == len(p.fields) {
				next = 0
			}
			k := next
			next++
			if p.fields[k].name == string(key) {
				f = &p.fields[k]
				if seen&(1<<k) != 0 {
					return i, false // a duplicate: msgpack decodes it over the first
				}
				seen |= 1 << k
				break
			}
		}
		if f == nil {
			if i, ok = edSkip(b, i); !ok {
				return i, false
			}
			continue
		}
		ptr := unsafe.Add(base, f.off)
		switch f.kind {
		case msgp.KindString:
			var s []byte
			if s, i, ok = msgp.ReadStr(b, i); !ok {
				return i, false
			}
			*(*string)(ptr) = a.str(s)
		case msgp.KindInt, msgp.KindUint:
			var u uint64
			if u, i, ok = edNum(b, i); !ok {
				return i, false
			}
			switch f.size { // truncated, as reflect's SetInt and SetUint do
			case 1:
				*(*uint8)(ptr) = uint8(u)
			case 2:
				*(*uint16)(ptr) = uint16(u)
			case 4:
				*(*uint32)(ptr) = uint32(u)
			case 8:
				*(*uint64)(ptr) = u
			default:
				return i, false
			}
		case msgp.KindBool:
			if i >= len(b) || (b[i] != 0xc2 && b[i] != 0xc3) {
				return i, false
			}
			*(*bool)(ptr) = b[i] == 0xc3
			i++
		case msgp.KindBytes:
			if i >= len(b) {
				return i, false
			}
			var m, h int
			switch c := b[i]; {
			case c == 0xc0:
				i++
				continue // stays nil
			case c == 0xc4 && i+2 <= len(b):
				m, h = int(b[i+1]), 2
			case c == 0xc5 && i+3 <= len(b):
				m, h = int(binary.BigEndian.Uint16(b[i+1:])), 3
			case c == 0xc6 && i+5 <= len(b):
				m, h = int(binary.BigEndian.Uint32(b[i+1:])), 5
			default:
				return i, false
			}
			i += h
			if m > len(b)-i {
				return i, false
			}
			bs := make([]byte, m) // msgpack's: empty but not nil for a bin of 0
			copy(bs, b[i:i+m])
			*(*[]byte)(ptr) = bs
			i += m
		case msgp.KindStrings:
			var m int
			if m, i, ok = edLen(b, i, false); !ok || m > len(b)-i {
				return i, false
			}
			if m < 0 {
				continue // nil: stays nil
			}
			ss := make([]string, m)
			for k := range ss {
				var s []byte
				if s, i, ok = msgp.ReadStr(b, i); !ok {
					return i, false
				}
				ss[k] = a.str(s)
			}
			*(*[]string)(ptr) = ss
		case msgp.KindStruct:
			if i, ok = decodeArgsPlanned(b, i, f.sub, ptr, a); !ok {
				return i, false
			}
		default:
			end, ok := edSkip(b, i)
			if !ok {
				return i, false
			}
			if decodeArgReflect(b[i:end], reflect.NewAt(f.typ, ptr).Interface()) != nil {
				return i, false
			}
			i = end
		}
	}
	return i, true
}

// decodeArgReflect decodes b into v (a pointer) with msgpack's reflection
// decoder, as DecodeEntry always has.
func decodeArgReflect(b []byte, v any) error {
	dec := msgpack.GetDecoder()
	var r bytes.Reader
	r.Reset(b)
	dec.Reset(&r)
	err := dec.Decode(v)
	msgpack.PutDecoder(dec)
	return err
}

// decodeArgs decodes the arguments at b[i:] (a whole value, checked) into a
// fresh value of t at ptr, by plan p (argDecPlanFor(t)), and returns the offset after them.
func decodeCommandArgs(b []byte, i int, t reflect.Type, p *argDecPlan, ptr unsafe.Pointer, a *edArena) (int, error) {
	if p != nil {
		if j, ok := decodeArgsPlanned(b, i, p, ptr, a); ok {
			return j, nil
		}
	}
	end, ok := edSkip(b, i)
	if !ok {
		return i, fmt.Errorf("malformed arguments")
	}
	v := reflect.NewAt(t, ptr)
	v.Elem().SetZero()
	return end, decodeArgReflect(b[i:end], v.Interface())
}

// entryOpSlab holds the arguments of one op in an entry.
type entryOpSlab struct {
	info    *OpInfo
	n, used int
	base    unsafe.Pointer
}

// entryDecScratch holds where each command's arguments start, between the
// two passes of decodeEntryFast.
type entryDecScratch struct {
	args []int       // where each command's arguments start
	env  [][2][]byte // each command's by id and client id, undecoded
}

var entryDecScratches = sync.Pool{New: func() any { return &entryDecScratch{} }}

// decodeEntryFast decodes the commands array at b (checked by checkEntry);
// fallback is true if msgpack must decode the entry instead.
//
// Allocations: the []*Command, one []Command for all of them, one slice of
// arguments per op that occurs, the arena's chunks, and []byte and []string
// fields. Commands and arguments of one entry share memory: none outlives
// the apply of its entry in the state (arguments are read, not kept).
func decodeEntryFast(b []byte) (cmds []*Command, fallback bool, err error) {
	n, i, ok := edLen(b, 0, false)
	if !ok || n < 0 {
		return nil, true, nil
	}
	if n > len(b)+1 { // as it always was: the entry's length, kind byte included
		return nil, false, fmt.Errorf("%w: %d commands", ErrUndecodable, n)
	}
	if n > (len(b)-i)/8 {
		// A command takes at least 8 bytes (an array of 7 values): this
		// entry is cut short, and the reflection decoder, which allocates
		// as it goes, finds where. Allocating n commands up front here
		// would cost ~150 bytes per byte of a hostile entry.
		return nil, true, nil
	}
	sc := entryDecScratches.Get().(*entryDecScratch)
	defer func() {
		if cap(sc.args) <= 1<<16 {
			clear(sc.env) // no reference to b stays behind
			entryDecScratches.Put(sc)
		}
	}()
	sc.args, sc.env = sc.args[:0], sc.env[:0]
	arenas := make([]edArena, n) // one per command, for its arguments
	envBytes := 0                // the short by ids and client ids
	slab := make([]Command, n)
	cmds = make([]*Command, n)
	var slabs [8]entryOpSlab // the ops of the entry, usually one or two
	ops := slabs[:0]
	for k := range slab {
		c := &slab[k]
		cmds[k] = c
		if i >= len(b) || b[i] != 0x97 {
			return nil, true, nil
		}
		var u uint64
		if u, i, ok = edNum(b, i+1); !ok {
			return nil, true, nil
		}
		c.Op = Op(u)
		if u, i, ok = edNum(b, i); !ok {
			return nil, true, nil
		}
		c.By.Role = api.Role(u)
		var env [2][]byte
		for e := range env {
			if env[e], i, ok = msgp.ReadStr(b, i); !ok {
				return nil, true, nil
			}
			if len(env[e]) <= edShortString {
				envBytes += len(env[e])
			}
		}
		sc.env = append(sc.env, env)
		if c.Seq, i, ok = edNum(b, i); !ok {
			return nil, true, nil
		}
		if u, i, ok = edNum(b, i); !ok {
			return nil, true, nil
		}
		c.Time = int64(u)
		sc.args = append(sc.args, i)
		argLen, argShort, err := msgp.Walk(b[i:], maxEntryDepth, edShortString)
		if err != nil {
			return nil, true, nil
		}
		i += argLen
		arenas[k].left = argShort
		if info := Commands.Lookup(c.Op); info != nil {
			j := 0
			for j < len(ops) && ops[j].info != info {
				j++
			}
			if j == len(ops) {
				ops = append(ops, entryOpSlab{info: info})
			}
			ops[j].n++
		}
	}
	// By ids and client ids share one chunk: the state does not keep them
	// (it keeps its own agents' and connectors' ids), so it is dropped with
	// the entry's commands. A command from the same principal or client as
	// the one before shares its strings.
	envArena := edArena{left: envBytes}
	for k := range slab {
		c, env := &slab[k], sc.env[k]
		if k > 0 && slab[k-1].By.ID == string(env[0]) {
			c.By.ID = slab[k-1].By.ID
		} else {
			c.By.ID = envArena.str(env[0])
		}
		if k > 0 && slab[k-1].ClientID == string(env[1]) {
			c.ClientID = slab[k-1].ClientID
		} else {
			c.ClientID = envArena.str(env[1])
		}
	}
	// The arguments, each op's in one slice of its struct; each command's
	// short strings in a chunk of their own.
	for k := range slab {
		info := Commands.Lookup(slab[k].Op)
		if info == nil {
			continue // unknown op: arguments skipped, Args nil
		}
		j := 0
		for ops[j].info != info {
			j++
		}
		o := &ops[j]
		if o.base == nil {
			if o.n == 1 {
				o.base = reflect.New(info.Args).UnsafePointer()
			} else {
				o.base = reflect.MakeSlice(reflect.SliceOf(info.Args), o.n, o.n).UnsafePointer()
			}
		}
		ptr := unsafe.Add(o.base, uintptr(o.used)*info.Args.Size())
		o.used++
		if _, err := decodeCommandArgs(b, sc.args[k], info.Args, info.dec, ptr, &arenas[k]); err != nil {
			return nil, false, fmt.Errorf("%w: command %d: %v", ErrUndecodable, k, err)
		}
		slab[k].Args = reflect.NewAt(info.Args, ptr).Interface()
	}
	return cmds, false, nil
}

// decodeArgsValue decodes raw (a client's arguments, unchecked) into args,
// a pointer to a zero struct of info.Args, exactly as msgpack.Unmarshal does;
// it returns args or a fresh value decoded by msgpack. Short strings share
// one allocation of at most len(raw) bytes.
func decodeArgsValue(raw []byte, info *OpInfo, args any) (any, error) {
	if p := info.dec; p != nil {
		a := edArena{left: len(raw)}
		if _, ok := decodeArgsPlanned(raw, 0, p, reflect.ValueOf(args).UnsafePointer(), &a); ok {
			return args, nil
		}
		args = info.NewArgs()
	}
	return args, msgpack.Unmarshal(raw, args)
}
