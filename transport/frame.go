package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// Framing errors. They are *fsm.Error values so their code reaches the wire.
var (
	// ErrFrameTooLarge: the length prefix exceeds the limit (checked before
	// anything is allocated).
	ErrFrameTooLarge = &fsm.Error{Code: fsm.CodeFrameTooLarge, Msg: "frame too large"}
	// ErrMalformedFrame: the payload is not a msgpack frame map.
	ErrMalformedFrame = &fsm.Error{Code: fsm.CodeMalformedFrame, Msg: "malformed frame"}
)

// ReadFramePayload reads one frame and returns its payload. A length of 0 or
// above max fails with ErrFrameTooLarge / ErrMalformedFrame before any
// payload buffer is allocated. buf is reused when large enough.
func ReadFramePayload(r io.Reader, max int, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrMalformedFrame)
	}
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// DecodeFrame decodes a frame payload. It fails with ErrMalformedFrame on
// anything that is not a msgpack map with a string "t", and on payloads that
// declare more than they hold (see checkMsgpack). The usual frames are read
// by a hand-written decoder (decodeFrameFast); anything it does not expect
// goes to msgpack's reflection decoder, so the result is always the one
// decodeFrameReflect gives.
func DecodeFrame(payload []byte, f *Frame) error {
	*f = Frame{}
	if err := checkMsgpack(payload); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedFrame, err)
	}
	if !decodeFrameFast(payload, f) {
		*f = Frame{}
		if err := msgpack.Unmarshal(payload, f); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformedFrame, err)
		}
	}
	if f.T == "" {
		return fmt.Errorf("%w: no frame type", ErrMalformedFrame)
	}
	return nil
}

// decodeFrameReflect is DecodeFrame through msgpack's reflection decoder
// only: the reference the tests hold DecodeFrame to.
func decodeFrameReflect(payload []byte, f *Frame) error {
	*f = Frame{}
	if err := checkMsgpack(payload); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedFrame, err)
	}
	if err := msgpack.Unmarshal(payload, f); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedFrame, err)
	}
	if f.T == "" {
		return fmt.Errorf("%w: no frame type", ErrMalformedFrame)
	}
	return nil
}

// ReadFrame reads and decodes one frame.
func ReadFrame(r io.Reader, max int, f *Frame) error {
	p, err := ReadFramePayload(r, max, nil)
	if err != nil {
		return err
	}
	return DecodeFrame(p, f)
}

// maxNesting bounds how deep arrays and maps may nest in a payload; frames
// use a handful of levels.
const maxNesting = 64

// checkMsgpack walks the first msgpack value of b without decoding it and
// fails if a string, binary, extension, array or map declares more than the
// bytes left could hold, or if containers nest deeper than maxNesting.
// msgpack's decoder sizes buffers from declared lengths and recurses on
// nesting, and its pooled decoders keep what they allocated: without this
// check a 20-byte frame claiming a 4 GiB string costs a megabyte, and a
// megabyte of nested arrays a deep recursion. Every value still to be read
// needs at least one byte, so a payload of n bytes can make the decoder
// expect at most n values.
func checkMsgpack(b []byte) error {
	// open holds how many values each open array or map still holds;
	// pending is their sum plus the top-level value.
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
		c := b[i]
		var head, body, elems int // header bytes, payload bytes, contained values
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			head = 1 // fixint, nil, bool
		case c >= 0xa0 && c <= 0xbf:
			head, body = 1, int(c&0x1f)
		case c >= 0x90 && c <= 0x9f:
			head, elems = 1, int(c&0x0f)
		case c >= 0x80 && c <= 0x8f:
			head, elems = 1, 2*int(c&0x0f)
		default:
			var ok bool
			if head, body, elems, ok = msgpackHeader(c, b[i+1:]); !ok {
				return fmt.Errorf("bad or truncated header 0x%02x at %d", c, i)
			}
		}
		i += head
		if body > len(b)-i {
			return fmt.Errorf("value at %d declares %d bytes, %d left", i-head, body, len(b)-i)
		}
		i += body
		if elems > 0 {
			pending += elems
			if pending > len(b)-i {
				return fmt.Errorf("container at %d declares %d values, %d bytes left", i-head, elems, len(b)-i)
			}
			if len(open) == maxNesting {
				return fmt.Errorf("nested deeper than %d", maxNesting)
			}
			open = append(open, elems)
		}
	}
	return nil
}

// msgpackHeader decodes the header of the non-fix msgpack type c, whose
// following bytes are rest: header length (c included), payload bytes and
// contained values. ok is false for 0xc1 (never used) or a cut header.
func msgpackHeader(c byte, rest []byte) (head, body, elems int, ok bool) {
	size := func(n int) (int, bool) { // big-endian length of n bytes
		if len(rest) < n {
			return 0, false
		}
		v := 0
		for _, x := range rest[:n] {
			v = v<<8 | int(x)
		}
		return v, true
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
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type byte + data
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

// CheckMsgpack applies the same declared-length and nesting check that
// DecodeFrame does to a msgpack value carried inside a frame as opaque
// bytes (e.g. a forwarded log entry), before anything decodes it.
func CheckMsgpack(b []byte) error { return checkMsgpack(b) }
