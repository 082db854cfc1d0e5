package transport

import (
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"
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
	n, i, ok := msgp.ReadMapLen(b, 0)
	if !ok {
		return false
	}
	for range n {
		var key []byte
		if key, i, ok = msgp.ReadStr(b, i); !ok {
			return false
		}
		switch string(key) {
		case "t":
			var s []byte
			if s, i, ok = msgp.ReadStr(b, i); !ok {
				return false
			}
			f.T = frameType(s)
		case "v":
			var u uint64
			if u, i, ok = msgp.ReadInt(b, i); !ok {
				return false
			}
			f.V = int(int64(u))
		case "role":
			var s []byte
			if s, i, ok = msgp.ReadStr(b, i); !ok {
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
			if u, i, ok = msgp.ReadInt(b, i); !ok {
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
			if u, i, ok = msgp.ReadInt(b, i); !ok {
				return false
			}
			f.MaxFrame = int(int64(u))
		case "ping_ms":
			var u uint64
			if u, i, ok = msgp.ReadInt(b, i); !ok {
				return false
			}
			f.PingMs = int(int64(u))
		case "marker":
			if f.Marker, i, ok = msgp.ReadBool(b, i); !ok {
				return false
			}
		case "id":
			if f.ID, i, ok = msgp.ReadInt(b, i); !ok {
				return false
			}
		case "op":
			var s []byte
			if s, i, ok = msgp.ReadStr(b, i); !ok {
				return false
			}
			f.Op = opName(s)
		case "args":
			if f.Args, i, ok = readRaw(b, i); !ok {
				return false
			}
		case "ok":
			if f.OK, i, ok = msgp.ReadBool(b, i); !ok {
				return false
			}
		case "data":
			if f.Data, i, ok = readRaw(b, i); !ok {
				return false
			}
		case "index":
			if f.Index, i, ok = msgp.ReadInt(b, i); !ok {
				return false
			}
		case "seq":
			if f.Seq, i, ok = msgp.ReadInt(b, i); !ok {
				return false
			}
		case "linearizable":
			if f.Linearizable, i, ok = msgp.ReadBool(b, i); !ok {
				return false
			}
		case "kind":
			if f.Kind, i, ok = readString(b, i); !ok {
				return false
			}
		case "mode":
			var s []byte
			if s, i, ok = msgp.ReadStr(b, i); !ok {
				return false
			}
			f.Mode = modeName(s)
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
	case TypeCaughtUp:
		return TypeCaughtUp
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

// modeName returns the caught_up mode s, without allocating for the
// known ones.
func modeName(s []byte) string {
	switch string(s) {
	case api.CaughtUpReplay:
		return api.CaughtUpReplay
	case api.CaughtUpNone:
		return api.CaughtUpNone
	case api.CaughtUpSync:
		return api.CaughtUpSync
	}
	return string(s)
}

// opName returns the op name s, shared with the command registry when it
// names a command.
func opName(s []byte) string {
	if op, ok := api.WriteOp(s); ok {
		return op
	}
	return string(s)
}

// readString is readStr into a new string.
func readString(b []byte, i int) (string, int, bool) {
	s, next, ok := msgp.ReadStr(b, i)
	if !ok {
		return "", 0, false
	}
	return string(s), next, true
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
	n, err := msgp.Check(b[i:], maxNesting)
	return i + n, err == nil
}
