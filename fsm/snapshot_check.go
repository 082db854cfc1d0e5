package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxSnapshotDepth bounds the nesting of a snapshot's msgpack value. A
// state nests 6 deep (state, requests, request, transcript, message, from);
// command results carry arbitrary but shallow values.
const maxSnapshotDepth = 32

// checkMsgpack checks that b is exactly one well-formed msgpack value whose
// every declared length fits in the bytes that follow it, nested at most
// maxDepth deep. msgpack's decoder trusts declared lengths (its allocation
// limit does not cover slices of structs), so a few corrupt bytes could
// make it allocate gigabytes; after this check, everything it allocates is
// bounded by a small multiple of len(b). It does not recurse.
func checkMsgpack(b []byte, maxDepth int) error {
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
			return errors.New("truncated")
		}
		head, body, elems, ok := msgpackSizes(b[i:])
		if !ok {
			return fmt.Errorf("bad or truncated header 0x%02x at %d", b[i], i)
		}
		i += head
		if body > len(b)-i {
			return fmt.Errorf("value at %d declares %d bytes, %d left", i-head, body, len(b)-i)
		}
		i += body
		if elems > 0 {
			if elems > len(b)-i-pending {
				return fmt.Errorf("container at %d declares %d values, %d bytes left", i-head, elems, len(b)-i)
			}
			pending += elems
			if len(open) == maxDepth {
				return fmt.Errorf("nested deeper than %d", maxDepth)
			}
			open = append(open, elems)
		}
	}
	if i != len(b) {
		return fmt.Errorf("%d bytes after the value", len(b)-i)
	}
	return nil
}

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
	size := func(n int) (int, bool) { // big-endian length in b[1:1+n]
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
		n, ok = size(1)
		return 2, n, 0, ok
	case 0xc5, 0xda: // bin16, str16
		n, ok = size(2)
		return 3, n, 0, ok
	case 0xc6, 0xdb: // bin32, str32
		n, ok = size(4)
		return 5, n, 0, ok
	case 0xc7: // ext8: length, type, data
		n, ok = size(1)
		return 2, n + 1, 0, ok
	case 0xc8: // ext16
		n, ok = size(2)
		return 3, n + 1, 0, ok
	case 0xc9: // ext32
		n, ok = size(4)
		return 5, n + 1, 0, ok
	case 0xdc: // array16
		n, ok = size(2)
		return 3, 0, n, ok
	case 0xdd: // array32
		n, ok = size(4)
		return 5, 0, n, ok
	case 0xde: // map16
		n, ok = size(2)
		return 3, 0, 2 * n, ok
	case 0xdf: // map32
		n, ok = size(4)
		return 5, 0, 2 * n, ok
	}
	return 0, 0, 0, false // 0xc1
}
