package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// Framing errors. They are *api.Error values so their code reaches the wire.
var (
	// ErrFrameTooLarge: the length prefix exceeds the limit (checked before
	// anything is allocated).
	ErrFrameTooLarge = &api.Error{Code: api.CodeFrameTooLarge, Msg: "frame too large"}
	// ErrMalformedFrame: the payload is not a msgpack frame map.
	ErrMalformedFrame = &api.Error{Code: api.CodeMalformedFrame, Msg: "malformed frame"}
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

// checkMsgpack checks the first msgpack value of b with msgp.Check:
// without it a 20-byte frame claiming a 4 GiB string costs the decoder a
// megabyte, and a megabyte of nested arrays a deep recursion.
func checkMsgpack(b []byte) error {
	_, err := msgp.Check(b, maxNesting)
	return err
}

// CheckMsgpack applies the same declared-length and nesting check that
// DecodeFrame does to a msgpack value carried inside a frame as opaque
// bytes (e.g. a forwarded log entry), before anything decodes it.
func CheckMsgpack(b []byte) error { return checkMsgpack(b) }
