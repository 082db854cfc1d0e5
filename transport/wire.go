package transport

import (
	"encoding/binary"
	"fmt"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolVersion is the wire protocol version sent in hello and welcome.
const ProtocolVersion = 1

// DefaultMaxFrame is the default limit on a frame's payload length.
const DefaultMaxFrame = 1 << 20

// Frame types (the "t" key of every frame).
const (
	TypeHello    = "hello"   // client → server: first frame, authenticates
	TypeWelcome  = "welcome" // server → client: hello accepted
	TypeRequest  = "req"     // client → server: an operation
	TypeResponse = "res"     // server → client: the answer to one req
	TypeEvent    = "ev"      // server → client: a notification
	TypePing     = "ping"    // either way: liveness probe
	TypePong     = "pong"    // answer to ping, echoing its id
	TypeBye      = "bye"     // server → client: the reason, just before close
	// TypeCaughtUp (server → client) follows the replay or the sync of a
	// session whose hello asked for it (Marker): mode and seq.
	TypeCaughtUp = "caught_up"
)

// Frame is every frame's shape: a msgpack map whose "t" says which fields
// apply. Unused fields are omitted on the wire.
type Frame struct {
	T string `msgpack:"t"`

	// hello / welcome
	V        int     `msgpack:"v,omitempty"`
	Role     string  `msgpack:"role,omitempty"`
	User     string  `msgpack:"user,omitempty"`
	Token    string  `msgpack:"token,omitempty"`
	Client   string  `msgpack:"client,omitempty"`
	Since    *uint64 `msgpack:"since,omitempty"` // hello: resume after this event seq
	Node     string  `msgpack:"node,omitempty"`
	MaxFrame int     `msgpack:"max_frame,omitempty"`
	// welcome: the node sends a ping after this many milliseconds without
	// sending anything (0: it does not say; older nodes).
	PingMs int `msgpack:"ping_ms,omitempty"`
	// hello: send a caught_up frame once the stream's replay or sync is
	// delivered; welcome: one will follow (a stream is attached and the
	// node knows the frame).
	Marker bool `msgpack:"marker,omitempty"`

	// req / res / ping / pong
	ID    uint64             `msgpack:"id,omitempty"`
	Op    string             `msgpack:"op,omitempty"`
	Args  msgpack.RawMessage `msgpack:"args,omitempty"`
	OK    bool               `msgpack:"ok,omitempty"`
	Data  msgpack.RawMessage `msgpack:"data,omitempty"`
	Index uint64             `msgpack:"index,omitempty"`
	Err   *ErrorBody         `msgpack:"err,omitempty"`

	// req: idempotency sequence; ev and welcome: event sequence number
	Seq uint64 `msgpack:"seq,omitempty"`
	// req of a read op: answer only after confirming the leader's commit
	// index and applying it (see WithLinearizable).
	Linearizable bool `msgpack:"linearizable,omitempty"`

	// ev
	Kind string `msgpack:"kind,omitempty"`

	// caught_up: how the stream caught up (api.CaughtUpReplay,
	// api.CaughtUpNone, api.CaughtUpSync); Seq is the last seq delivered.
	Mode string `msgpack:"mode,omitempty"`

	// bye (also uses Err)
}

// ErrorBody is the error object of a res or bye frame.
type ErrorBody struct {
	Code    api.Code `msgpack:"code"`
	Name    string   `msgpack:"name"`
	Msg     string   `msgpack:"msg"`
	Leader  string   `msgpack:"leader,omitempty"`   // CodeNotLeader: the leader's client address
	RetryMs int      `msgpack:"retry_ms,omitempty"` // CodeNoLeader etc.: when to retry
}

// Error makes ErrorBody an error.
func (e *ErrorBody) Error() string { return fmt.Sprintf("%s (%d): %s", e.Name, e.Code, e.Msg) }

// Is matches another *ErrorBody or an *api.Error with the same code, so
// errors.Is(err, &api.Error{Code: api.CodeNotFound}) works on client errors.
func (e *ErrorBody) Is(target error) bool {
	switch t := target.(type) {
	case *ErrorBody:
		return t.Code == e.Code
	case *api.Error:
		return t.Code == e.Code
	}
	return false
}

// NewErrorBody converts any error into an ErrorBody (CodeInternal if it
// carries no code).
func NewErrorBody(err error) *ErrorBody {
	code := api.CodeOf(err)
	return &ErrorBody{Code: code, Name: code.String(), Msg: err.Error()}
}

// AppendFrame appends the encoded frame (4-byte big-endian length, then the
// msgpack payload) to dst. A Frame is written by the hand-written encoder
// (codec.go); any other value goes through msgpack's reflection encoder.
func AppendFrame(dst []byte, v any) ([]byte, error) {
	var f *Frame
	switch x := v.(type) {
	case *Frame:
		f = x
	case Frame:
		f = &x
	}
	if f == nil {
		return appendFrameReflect(dst, v)
	}
	start := len(dst)
	dst = appendFramePayload(append(dst, 0, 0, 0, 0), f)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst, nil
}

// EncodeFrame returns v encoded as one complete frame.
func EncodeFrame(v any) ([]byte, error) { return AppendFrame(nil, v) }

// eventFrame is the wire form of an event.
type eventFrame struct {
	T    string `msgpack:"t"`
	Seq  uint64 `msgpack:"seq"`
	Kind string `msgpack:"kind"`
	Data any    `msgpack:"data"`
}

// EncodeEvent encodes an event as one complete "ev" frame. The bytes are the
// same for every recipient, so a node encodes each event once. They are
// those of eventFrame through msgpack's reflection encoder, written by hand
// (appendEvent).
func EncodeEvent(seq uint64, kind api.EventKind, data any) ([]byte, error) {
	return appendEvent(make([]byte, 0, eventFrameSizeHint), seq, kind, data)
}

// eventFrameSizeHint is the initial buffer of an event frame: most events
// (a request summary) fit.
const eventFrameSizeHint = 256
