package msgp

import "encoding/binary"

// The readers take the input and an offset, and return the value, the
// offset after it and whether a value of that family lies there, whole,
// within b. They never allocate and never accept nil: callers that read
// nil as a zero value check for it (0xc0) themselves. On failure the
// offset returned is i.

// ReadStr reads a str (not bin) at i and returns its bytes, aliasing b.
func ReadStr(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) {
		return nil, i, false
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
		return nil, i, false
	}
	start := i + head
	if n > len(b)-start {
		return nil, i, false
	}
	return b[start : start+n], start + n, true
}

// ReadInt reads any integer at i as the 64 bits msgpack's decoder gives
// it: signed encodings sign-extended, so that uint64(v) and int64(v) are
// what DecodeUint64 and DecodeInt64 return.
func ReadInt(b []byte, i int) (v uint64, next int, ok bool) {
	if i >= len(b) {
		return 0, i, false
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
		return 0, i, false
	}
	if size > len(b)-i-1 {
		return 0, i, false
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

// ReadBool reads true or false at i.
func ReadBool(b []byte, i int) (v bool, next int, ok bool) {
	if i < len(b) {
		switch b[i] {
		case 0xc2:
			return false, i + 1, true
		case 0xc3:
			return true, i + 1, true
		}
	}
	return false, i, false
}

// ReadMapLen reads a map header at i: its number of entries.
func ReadMapLen(b []byte, i int) (n, next int, ok bool) {
	return readLen(b, i, 0x80, 0xde, 0xdf)
}

// ReadArrayLen reads an array header at i: its number of elements.
func ReadArrayLen(b []byte, i int) (n, next int, ok bool) {
	return readLen(b, i, 0x90, 0xdc, 0xdd)
}

func readLen(b []byte, i int, fix, l16, l32 byte) (n, next int, ok bool) {
	if i >= len(b) {
		return 0, i, false
	}
	switch c := b[i]; {
	case c&0xf0 == fix:
		return int(c & 0x0f), i + 1, true
	case c == l16 && i+3 <= len(b):
		return int(binary.BigEndian.Uint16(b[i+1:])), i + 3, true
	case c == l32 && i+5 <= len(b):
		return int(binary.BigEndian.Uint32(b[i+1:])), i + 5, true
	}
	return 0, i, false
}
