package transport

import (
	"encoding/binary"
	"math"

	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// Hand-written frame codec. The reflection codec of msgpack builds a
// filtered field list on every encode of a struct with omitempty fields and
// allocates for every field it decodes; frames are encoded and decoded once
// per request, response and event, so these paths write and read the bytes
// directly. Both produce exactly what the reflection codec does (the
// differential tests in codec_test.go and FuzzDecodeFrameDifferential hold
// them to it): same keys, same order, same omissions, same integer widths.

// appendStr appends s as a msgpack str, in the smallest encoding.
func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 256:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

// appendUint appends n in the smallest msgpack encoding (the encoder's
// UseCompactInts).
func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xcd, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, 0xce, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
}

// appendInt appends n in the smallest msgpack encoding.
func appendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendUint(b, uint64(n))
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return append(b, 0xd1, byte(n>>8), byte(n))
	case n >= math.MinInt32:
		return append(b, 0xd2, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
}

// appendMapLen appends a msgpack map header of n entries.
func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xde, byte(n>>8), byte(n))
	}
	return append(b, 0xdf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// appendFramePayload appends f's msgpack map: the fields in declaration
// order, every omitempty field left out when zero, as the reflection
// encoder writes them.
func appendFramePayload(b []byte, f *Frame) []byte {
	n := 1
	for _, set := range [...]bool{f.V != 0, f.Role != "", f.User != "", f.Token != "", f.Client != "", f.Since != nil,
		f.Node != "", f.MaxFrame != 0, f.ID != 0, f.Op != "", len(f.Args) != 0, f.OK, len(f.Data) != 0,
		f.Index != 0, f.Err != nil, f.Seq != 0, f.Linearizable, f.Kind != ""} {
		if set {
			n++
		}
	}
	b = appendMapLen(b, n)
	b = appendStr(append(b, 0xa1, 't'), f.T)
	if f.V != 0 {
		b = appendInt(append(b, 0xa1, 'v'), int64(f.V))
	}
	if f.Role != "" {
		b = appendStr(append(b, "\xa4role"...), f.Role)
	}
	if f.User != "" {
		b = appendStr(append(b, "\xa4user"...), f.User)
	}
	if f.Token != "" {
		b = appendStr(append(b, "\xa5token"...), f.Token)
	}
	if f.Client != "" {
		b = appendStr(append(b, "\xa6client"...), f.Client)
	}
	if f.Since != nil {
		b = appendUint(append(b, "\xa5since"...), *f.Since)
	}
	if f.Node != "" {
		b = appendStr(append(b, "\xa4node"...), f.Node)
	}
	if f.MaxFrame != 0 {
		b = appendInt(append(b, "\xa9max_frame"...), int64(f.MaxFrame))
	}
	if f.ID != 0 {
		b = appendUint(append(b, "\xa2id"...), f.ID)
	}
	if f.Op != "" {
		b = appendStr(append(b, "\xa2op"...), f.Op)
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
	if f.Index != 0 {
		b = appendUint(append(b, "\xa5index"...), f.Index)
	}
	if f.Err != nil {
		b = appendErrorBody(append(b, "\xa3err"...), f.Err)
	}
	if f.Seq != 0 {
		b = appendUint(append(b, "\xa3seq"...), f.Seq)
	}
	if f.Linearizable {
		b = append(b, "\xaclinearizable\xc3"...)
	}
	if f.Kind != "" {
		b = appendStr(append(b, "\xa4kind"...), f.Kind)
	}
	return b
}

func appendErrorBody(b []byte, e *ErrorBody) []byte {
	n := 3
	if e.Leader != "" {
		n++
	}
	if e.RetryMs != 0 {
		n++
	}
	b = appendMapLen(b, n)
	b = appendUint(append(b, "\xa4code"...), uint64(e.Code))
	b = appendStr(append(b, "\xa4name"...), e.Name)
	b = appendStr(append(b, "\xa3msg"...), e.Msg)
	if e.Leader != "" {
		b = appendStr(append(b, "\xa6leader"...), e.Leader)
	}
	if e.RetryMs != 0 {
		b = appendInt(append(b, "\xa8retry_ms"...), int64(e.RetryMs))
	}
	return b
}

// appendFrameReflect is AppendFrame through msgpack's reflection encoder:
// the path for values other than Frame, and the reference the hand-written
// encoder is tested against.
func appendFrameReflect(dst []byte, v any) ([]byte, error) {
	start := len(dst)
	w := &appendWriter{b: append(dst, 0, 0, 0, 0)}
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(w)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return dst[:start], err
	}
	binary.BigEndian.PutUint32(w.b[start:], uint32(len(w.b)-start-4))
	return w.b, nil
}

// appendWriter lets a msgpack encoder append to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *appendWriter) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }
func (w *appendWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

// appendEvent appends the complete "ev" frame of ev: the map {t, seq, kind,
// data} (eventFrame, no field omitted) with data encoded as msgpack's
// encoder does (fsm.AppendMsgpack), or copied as is when it is already
// msgpack.
func appendEvent(b []byte, ev *fsm.Event) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, "\x84\xa1t\xa2ev\xa3seq"...)
	b = appendUint(b, ev.Seq)
	b = appendStr(append(b, "\xa4kind"...), string(ev.Kind))
	b = append(b, "\xa4data"...)
	if raw, ok := ev.Data.(msgpack.RawMessage); ok && raw != nil {
		b = append(b, raw...) // already msgpack: copied, as msgpack's encoder does
	} else {
		var err error
		if b, err = fsm.AppendMsgpack(b, ev.Data); err != nil {
			return b[:start], err
		}
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b, nil
}
