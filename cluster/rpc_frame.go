package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// Node-to-node framing. Node sessions run on the client port with the
// client protocol's framing (docs/PROTOCOL.md): a 4-byte big-endian length,
// then a msgpack map. Frame is the part of that map node sessions use, with
// the same keys, the same order and the same encoding, so a node of this
// release and one of the release before (whose node sessions used the
// client protocol's own frame type) talk to each other. node's tests pin
// this against the client protocol's codec, both ways.

// NodeProtocolVersion is the protocol version a node hello and welcome
// carry: the client protocol's version, whose framing node sessions share.
const NodeProtocolVersion = 1

// Frame types of a node session (the "t" key).
const (
	FrameHello    = "hello"   // caller → node: the first frame, authenticates
	FrameWelcome  = "welcome" // node → caller: hello accepted
	FrameRequest  = "req"     // caller → node: a call
	FrameResponse = "res"     // node → caller: the answer to one req
	FramePing     = "ping"    // either way: liveness probe
	FramePong     = "pong"    // answer to ping, echoing its id
	FrameBye      = "bye"     // either way: the reason, just before close
)

// Frame is one frame of a node session. Unused fields are omitted on the
// wire.
type Frame struct {
	T string `msgpack:"t"`

	// hello / welcome
	V        int    `msgpack:"v,omitempty"`
	Role     string `msgpack:"role,omitempty"`
	User     string `msgpack:"user,omitempty"`
	Token    string `msgpack:"token,omitempty"`
	Node     string `msgpack:"node,omitempty"`
	MaxFrame int    `msgpack:"max_frame,omitempty"`

	// req / res / ping / pong
	ID   uint64             `msgpack:"id,omitempty"`
	Op   string             `msgpack:"op,omitempty"`
	Args msgpack.RawMessage `msgpack:"args,omitempty"`
	OK   bool               `msgpack:"ok,omitempty"`
	Data msgpack.RawMessage `msgpack:"data,omitempty"`
	Err  *ErrorBody         `msgpack:"err,omitempty"`
}

// ErrorBody is the error of a res or bye frame: a code, its name, a
// message and the retry hints (the leader's client address, when to
// retry).
type ErrorBody struct {
	Code    api.Code `msgpack:"code"`
	Name    string   `msgpack:"name"`
	Msg     string   `msgpack:"msg"`
	Leader  string   `msgpack:"leader,omitempty"`
	RetryMs int      `msgpack:"retry_ms,omitempty"`
}

// Error makes ErrorBody an error.
func (e *ErrorBody) Error() string { return fmt.Sprintf("%s (%d): %s", e.Name, e.Code, e.Msg) }

// Framing errors, typed so their code reaches the other side.
var (
	errFrameTooLarge  = &api.Error{Code: api.CodeFrameTooLarge, Msg: "frame too large"}
	errMalformedFrame = &api.Error{Code: api.CodeMalformedFrame, Msg: "malformed frame"}
)

// maxFrameNesting bounds how deep arrays and maps may nest in a frame, as
// the client protocol's decoder does.
const maxFrameNesting = 64

// AppendFrame appends f as one complete frame (length prefix, then the
// msgpack map) to dst. The map holds the set fields in declaration order,
// as msgpack's reflection encoder with compact integers writes them.
func AppendFrame(dst []byte, f *Frame) []byte {
	start := len(dst)
	b := append(dst, 0, 0, 0, 0)
	n := 1
	for _, set := range [...]bool{f.V != 0, f.Role != "", f.User != "", f.Token != "", f.Node != "",
		f.MaxFrame != 0, f.ID != 0, f.Op != "", len(f.Args) != 0, f.OK, len(f.Data) != 0, f.Err != nil} {
		if set {
			n++
		}
	}
	b = msgp.AppendMapLen(b, n)
	b = msgp.AppendStr(append(b, 0xa1, 't'), f.T)
	if f.V != 0 {
		b = msgp.AppendInt(append(b, 0xa1, 'v'), int64(f.V))
	}
	if f.Role != "" {
		b = msgp.AppendStr(append(b, "\xa4role"...), f.Role)
	}
	if f.User != "" {
		b = msgp.AppendStr(append(b, "\xa4user"...), f.User)
	}
	if f.Token != "" {
		b = msgp.AppendStr(append(b, "\xa5token"...), f.Token)
	}
	if f.Node != "" {
		b = msgp.AppendStr(append(b, "\xa4node"...), f.Node)
	}
	if f.MaxFrame != 0 {
		b = msgp.AppendInt(append(b, "\xa9max_frame"...), int64(f.MaxFrame))
	}
	if f.ID != 0 {
		b = msgp.AppendUint(append(b, "\xa2id"...), f.ID)
	}
	if f.Op != "" {
		b = msgp.AppendStr(append(b, "\xa2op"...), f.Op)
	}
	if len(f.Args) != 0 {
		b = append(append(b, "\xa4args"...), f.Args...)
	}
	if f.OK {
		b = append(b, "\xa2ok\xc3"...)
	}
	if len(f.Data) != 0 {
		b = append(append(b, "\xa4data"...), f.Data...)
	}
	if e := f.Err; e != nil {
		m := 3
		if e.Leader != "" {
			m++
		}
		if e.RetryMs != 0 {
			m++
		}
		b = msgp.AppendMapLen(append(b, "\xa3err"...), m)
		b = msgp.AppendUint(append(b, "\xa4code"...), uint64(e.Code))
		b = msgp.AppendStr(append(b, "\xa4name"...), e.Name)
		b = msgp.AppendStr(append(b, "\xa3msg"...), e.Msg)
		if e.Leader != "" {
			b = msgp.AppendStr(append(b, "\xa6leader"...), e.Leader)
		}
		if e.RetryMs != 0 {
			b = msgp.AppendInt(append(b, "\xa8retry_ms"...), int64(e.RetryMs))
		}
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// DecodeFrame decodes a frame payload (without its length prefix). It
// fails with a CodeMalformedFrame error on anything that is not a msgpack
// map with a string "t", and on payloads that declare more than they hold
// or nest too deep (msgp.Check), before anything is allocated for
// them. Keys a node session does not use are skipped.
func DecodeFrame(payload []byte, f *Frame) error {
	*f = Frame{}
	if _, err := msgp.Check(payload, maxFrameNesting); err != nil {
		return fmt.Errorf("%w: %v", errMalformedFrame, err)
	}
	if err := msgpack.Unmarshal(payload, f); err != nil {
		*f = Frame{}
		return fmt.Errorf("%w: %v", errMalformedFrame, err)
	}
	if f.T == "" {
		return fmt.Errorf("%w: no frame type", errMalformedFrame)
	}
	return nil
}

// ReadFrame reads and decodes one frame of at most max payload bytes. A
// length of 0 or above max fails before any payload buffer is allocated.
func ReadFrame(r io.Reader, max int, f *Frame) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return fmt.Errorf("%w: empty payload", errMalformedFrame)
	}
	if uint64(n) > uint64(max) {
		return fmt.Errorf("%w: %d bytes, limit %d", errFrameTooLarge, n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return DecodeFrame(buf, f)
}
