package msgp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Check checks the msgpack value at the start of b without decoding
// it and returns its length in bytes: every declared length must fit in the
// bytes that follow it, and containers may nest at most maxDepth deep.
// msgpack's decoder sizes buffers from declared lengths (its allocation
// limit does not cover slices of structs) and recurses on nesting, so a few
// hostile bytes could make it allocate gigabytes or recurse very deep; after
// this check, what it allocates is bounded by a small multiple of the
// value's length. Every value still to be read takes at least one byte, so
// n bytes can make a decoder expect at most n values. It does not recurse.
// It is the one guard in front of every decoder of untrusted msgpack: client
// frames (transport), forwarded log entries (cluster) and snapshots.
func Check(b []byte, maxDepth int) (n int, err error) {
	n, _, err = Walk(b, maxDepth, -1)
	return n, err
}

// Walk is Check that also returns the total length of the
// strings and binaries of at most shortMax bytes in the value: what a
// decoder copying those into one buffer needs.
func Walk(b []byte, maxDepth, shortMax int) (n, short int, err error) {
	// open holds how many values each open array or map still holds;
	// pending is their sum (plus the top-level value while unread). Every
	// value takes at least one byte, so pending never exceeds what is left.
	open := make([]int, 0, 8)
	pending := 1
	i := 0
	for pending > 0 {
		for len(open) > 0 && open[len(open)-1] == 0 {
			open = open[:len(open)-1]
		}
		if len(open) > 0 {
			open[len(open)-1]--
		}
		pending--
		if i >= len(b) {
			return 0, 0, errors.New("truncated")
		}
		var head, body, elems int
		switch c := b[i]; { // the fix types inline: they are most values
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			head = 1
		case c >= 0xa0 && c <= 0xbf:
			head, body = 1, int(c&0x1f)
			if body <= shortMax {
				short += body
			}
		default:
			var ok bool
			if head, body, elems, ok = msgpackSizes(b[i:]); !ok {
				return 0, 0, fmt.Errorf("bad or truncated header 0x%02x at %d", c, i)
			}
			if (c >= 0xd9 && c <= 0xdb || c >= 0xc4 && c <= 0xc6) && body <= shortMax {
				short += body // str8/16/32, bin8/16/32
			}
		}
		i += head
		if body > len(b)-i {
			return 0, 0, fmt.Errorf("value at %d declares %d bytes, %d left", i-head, body, len(b)-i)
		}
		i += body
		if elems > 0 {
			if elems > len(b)-i-pending {
				return 0, 0, fmt.Errorf("container at %d declares %d values, %d bytes left", i-head, elems, len(b)-i)
			}
			pending += elems
			if len(open) == maxDepth {
				return 0, 0, fmt.Errorf("nested deeper than %d", maxDepth)
			}
			open = append(open, elems)
		}
	}
	return i, short, nil
}

// Header decodes the header of the msgpack value at the start of b
// (non-empty): its length, the payload bytes that follow it and the values
// it contains (twice the entries for a map). ok is false for the unused
// code 0xc1 and a cut header. Decoders use it to skip values.
func Header(b []byte) (head, body, elems int, ok bool) { return msgpackSizes(b) }

// msgpackSizes decodes the header at the start of b (non-empty): its
// length, the payload bytes that follow it and the values it contains
// (twice the entries for a map). ok is false for the unused code 0xc1 and a
// cut header.
func msgpackSizes(b []byte) (head, body, elems int, ok bool) {
	c := b[0]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 1, 0, 0, true // fixint, nil, bool
	case c >= 0xa0 && c <= 0xbf:
		return 1, int(c & 0x1f), 0, true // fixstr
	case c >= 0x90 && c <= 0x9f:
		return 1, 0, int(c & 0x0f), true // fixarray
	case c >= 0x80 && c <= 0x8f:
		return 1, 0, 2 * int(c&0x0f), true // fixmap
	}
	var n int
	switch c {
	case 0xcc, 0xd0: // uint8, int8
		return 1, 1, 0, true
	case 0xcd, 0xd1: // uint16, int16
		return 1, 2, 0, true
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return 1, 4, 0, true
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return 1, 8, 0, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16: type byte, data
		return 1, 1 + 1<<(c-0xd4), 0, true
	case 0xc4, 0xd9: // bin8, str8
		n, ok = headerLen(b, 1)
		return 2, n, 0, ok
	case 0xc5, 0xda: // bin16, str16
		n, ok = headerLen(b, 2)
		return 3, n, 0, ok
	case 0xc6, 0xdb: // bin32, str32
		n, ok = headerLen(b, 4)
		return 5, n, 0, ok
	case 0xc7: // ext8: length, type, data
		n, ok = headerLen(b, 1)
		return 2, n + 1, 0, ok
	case 0xc8: // ext16
		n, ok = headerLen(b, 2)
		return 3, n + 1, 0, ok
	case 0xc9: // ext32
		n, ok = headerLen(b, 4)
		return 5, n + 1, 0, ok
	case 0xdc: // array16
		n, ok = headerLen(b, 2)
		return 3, 0, n, ok
	case 0xdd: // array32
		n, ok = headerLen(b, 4)
		return 5, 0, n, ok
	case 0xde: // map16
		n, ok = headerLen(b, 2)
		return 3, 0, 2 * n, ok
	case 0xdf: // map32
		n, ok = headerLen(b, 4)
		return 5, 0, 2 * n, ok
	}
	return 0, 0, 0, false // 0xc1
}

// headerLen reads the big-endian length of n bytes after a header's type
// byte; ok is false if b is too short.
func headerLen(b []byte, n int) (int, bool) {
	if len(b) < 1+n {
		return 0, false
	}
	switch n {
	case 1:
		return int(b[1]), true
	case 2:
		return int(binary.BigEndian.Uint16(b[1:])), true
	}
	return int(binary.BigEndian.Uint32(b[1:])), true
}
