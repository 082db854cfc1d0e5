package transport

import (
	"encoding/binary"

	"github.com/switchboard/switchboard/fsm"
)

// decodeFrameFast decodes a frame payload the way msgpack's reflection
// decoder does, for the frames clients and nodes actually send: a map with
// str keys whose known fields hold values of their own msgpack family (str
// for strings, an integer for integers, true/false for booleans, any value
// for args and data). It reports false, leaving f in any state, for anything
// else (nil values, bin strings, floats, arrays as frames, an err map...):
// the caller then resets f and runs the reflection decoder, which decides,
// so every input gets exactly the result it got before. Unknown keys are
// skipped, as msgpack does. b must have passed checkMsgpack: the value's
// declared lengths fit in b (every read is still bounds-checked).
func decodeFrameFast(b []byte, f *Frame) bool {
	n, i, ok := mapHeader(b, 0)
	if !ok {
		return false
	}
	for range n {
		var key []byte
		if key, i, ok = readStr(b, i); !ok {
			return false
		}
		switch string(key) {
		case "t":
			var s []byte
			if s, i, ok = readStr(b, i); !ok {
				return false
			}
			f.T = frameType(s)
		case "v":
			var u uint64
			if u, i, ok = readInt(b, i); !ok {
				return false
			}
			f.V = int(int64(u))
		case "role":
			var s []byte
			if s, i, ok = readStr(b, i); !ok {
				return false
			}
			f.Role = roleName(s)
		case "user":
			if f.User, i, ok = readString(b, i); !ok {
				return false
			}
		case "token":
			if f.Token, i, ok = readString(b, i); !ok {
				return false
			}
		case "client":
			if f.Client, i, ok = readString(b, i); !ok {
				return false
			}
		case "since":
			var u uint64
			if u, i, ok = readInt(b, i); !ok {
				return false
			}
			if f.Since == nil {
				f.Since = new(uint64)
			}
			*f.Since = u
		case "node":
			if f.Node, i, ok = readString(b, i); !ok {
				return false
			}
		case "max_frame":
			var u uint64
			if u, i, ok = readInt(b, i); !ok {
				return false
			}
			f.MaxFrame = int(int64(u))
		case "id":
			if f.ID, i, ok = readInt(b, i); !ok {
				return false
			}
		case "op":
			var s []byte
			if s, i, ok = readStr(b, i); !ok {
				return false
			}
			f.Op = opName(s)
		case "args":
			if f.Args, i, ok = readRaw(b, i); !ok {
				return false
			}
		case "ok":
			if f.OK, i, ok = readBool(b, i); !ok {
				return false
			}
		case "data":
			if f.Data, i, ok = readRaw(b, i); !ok {
				return false
			}
		case "index":
			if f.Index, i, ok = readInt(b, i); !ok {
				return false
			}
		case "seq":
			if f.Seq, i, ok = readInt(b, i); !ok {
				return false
			}
		case "linearizable":
			if f.Linearizable, i, ok = readBool(b, i); !ok {
				return false
			}
		case "kind":
			if f.Kind, i, ok = readString(b, i); !ok {
				return false
			}
		case "err":
			return false // rare (failed res, bye): the reflection decoder
		default:
			if i, ok = skipValue(b, i); !ok {
				return false
			}
		}
	}
	return true
}

// frameType returns the frame type s, without allocating for the known ones.
func frameType(s []byte) string {
	switch string(s) {
	case TypeRequest:
		return TypeRequest
	case TypeResponse:
		return TypeResponse
	case TypeEvent:
		return TypeEvent
	case TypePing:
		return TypePing
	case TypePong:
		return TypePong
	case TypeHello:
		return TypeHello
	case TypeWelcome:
		return TypeWelcome
	case TypeBye:
		return TypeBye
	}
	return string(s)
}

// roleName returns the hello role s, without allocating for the known ones.
func roleName(s []byte) string {
	switch string(s) {
	case "agent":
		return "agent"
	case "connector":
		return "connector"
	case "admin":
		return "admin"
	case "node":
		return "node"
	}
	return string(s)
}

// opName returns the op name s, shared with the command registry when it
// names a command.
func opName(s []byte) string {
	if info := fsm.Commands.LookupName(string(s)); info != nil {
		return info.Name
	}
	return string(s)
}

// mapHeader reads a map header at i: its number of pairs and where the
// first key starts.
func mapHeader(b []byte, i int) (n, next int, ok bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	c := b[i]
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), i + 1, true
	case c == 0xde && i+3 <= len(b):
		return int(binary.BigEndian.Uint16(b[i+1:])), i + 3, true
	case c == 0xdf && i+5 <= len(b):
		return int(binary.BigEndian.Uint32(b[i+1:])), i + 5, true
	}
	return 0, 0, false
}

// readStr reads a msgpack str (not bin, not nil) at i, returning its bytes
// (aliasing b).
func readStr(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) {
		return nil, 0, false
	}
	c := b[i]
	var n, head int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n, head = int(c&0x1f), 1
	case c == 0xd9 && i+2 <= len(b):
		n, head = int(b[i+1]), 2
	case c == 0xda && i+3 <= len(b):
		n, head = int(binary.BigEndian.Uint16(b[i+1:])), 3
	case c == 0xdb && i+5 <= len(b):
		n, head = int(binary.BigEndian.Uint32(b[i+1:])), 5
	default:
		return nil, 0, false
	}
	start := i + head
	if n > len(b)-start {
		return nil, 0, false
	}
	return b[start : start+n], start + n, true
}

// readString is readStr into a new string.
func readString(b []byte, i int) (string, int, bool) {
	s, next, ok := readStr(b, i)
	if !ok {
		return "", 0, false
	}
	return string(s), next, true
}

// readInt reads any msgpack integer at i as the 64 bits msgpack's decoder
// gives it: signed values sign-extended, so that uint64(x) and int64(x)
// are what DecodeUint64 and DecodeInt64 return.
func readInt(b []byte, i int) (v uint64, next int, ok bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	c := b[i]
	if c <= 0x7f || c >= 0xe0 {
		return uint64(int64(int8(c))), i + 1, true
	}
	var size int
	switch c {
	case 0xcc, 0xd0:
		size = 1
	case 0xcd, 0xd1:
		size = 2
	case 0xce, 0xd2:
		size = 4
	case 0xcf, 0xd3:
		size = 8
	default:
		return 0, 0, false
	}
	if size > len(b)-i-1 {
		return 0, 0, false
	}
	p := b[i+1 : i+1+size]
	switch c {
	case 0xcc:
		v = uint64(p[0])
	case 0xd0:
		v = uint64(int64(int8(p[0])))
	case 0xcd:
		v = uint64(binary.BigEndian.Uint16(p))
	case 0xd1:
		v = uint64(int64(int16(binary.BigEndian.Uint16(p))))
	case 0xce:
		v = uint64(binary.BigEndian.Uint32(p))
	case 0xd2:
		v = uint64(int64(int32(binary.BigEndian.Uint32(p))))
	default: // 0xcf, 0xd3
		v = binary.BigEndian.Uint64(p)
	}
	return v, i + 1 + size, true
}

// readBool reads msgpack true or false at i.
func readBool(b []byte, i int) (v bool, next int, ok bool) {
	if i >= len(b) {
		return false, 0, false
	}
	switch b[i] {
	case 0xc2:
		return false, i + 1, true
	case 0xc3:
		return true, i + 1, true
	}
	return false, 0, false
}

// readRaw returns a copy of the msgpack value at i (not nil), as
// msgpack.RawMessage decoding does: the frame's payload buffer is reused
// for the next frame while the request runs.
func readRaw(b []byte, i int) (raw []byte, next int, ok bool) {
	if i >= len(b) || b[i] == 0xc0 {
		return nil, 0, false
	}
	end, ok := skipValue(b, i)
	if !ok {
		return nil, 0, false
	}
	return append([]byte(nil), b[i:end]...), end, true
}

// skipValue returns where the msgpack value at i ends.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	n, err := fsm.CheckMsgpack(b[i:], maxNesting)
	return i + n, err == nil
}
