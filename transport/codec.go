package transport

import (
	"encoding/binary"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"

	"github.com/vmihailenco/msgpack/v5"
)

// Hand-written frame codec. The reflection codec of msgpack builds a
// filtered field list on every encode of a struct with omitempty fields and
// allocates for every field it decodes; frames are encoded and decoded once
// per request, response and event, so these paths write and read the bytes
// directly. Both produce exactly what the reflection codec does (the
// differential tests in codec_test.go and FuzzDecodeFrameDifferential hold
// them to it): same keys, same order, same omissions, same integer widths.

// appendFramePayload appends f's msgpack map: the fields in declaration
// order, every omitempty field left out when zero, as the reflection
// encoder writes them.
func appendFramePayload(b []byte, f *Frame) []byte {
	n := 1
	for _, set := range [...]bool{f.V != 0, f.Role != "", f.User != "", f.Token != "", f.Client != "", f.Since != nil,
		f.Node != "", f.MaxFrame != 0, f.PingMs != 0, f.Marker, f.ID != 0, f.Op != "", len(f.Args) != 0, f.OK, len(f.Data) != 0,
		f.Index != 0, f.Err != nil, f.Seq != 0, f.Linearizable, f.Kind != "", f.Mode != ""} {
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
	if f.Client != "" {
		b = msgp.AppendStr(append(b, "\xa6client"...), f.Client)
	}
	if f.Since != nil {
		b = msgp.AppendUint(append(b, "\xa5since"...), *f.Since)
	}
	if f.Node != "" {
		b = msgp.AppendStr(append(b, "\xa4node"...), f.Node)
	}
	if f.MaxFrame != 0 {
		b = msgp.AppendInt(append(b, "\xa9max_frame"...), int64(f.MaxFrame))
	}
	if f.PingMs != 0 {
		b = msgp.AppendInt(append(b, "\xa7ping_ms"...), int64(f.PingMs))
	}
	if f.Marker {
		b = append(b, "\xa6marker\xc3"...)
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
	if f.Index != 0 {
		b = msgp.AppendUint(append(b, "\xa5index"...), f.Index)
	}
	if f.Err != nil {
		b = appendErrorBody(append(b, "\xa3err"...), f.Err)
	}
	if f.Seq != 0 {
		b = msgp.AppendUint(append(b, "\xa3seq"...), f.Seq)
	}
	if f.Linearizable {
		b = append(b, "\xaclinearizable\xc3"...)
	}
	if f.Kind != "" {
		b = msgp.AppendStr(append(b, "\xa4kind"...), f.Kind)
	}
	if f.Mode != "" {
		b = msgp.AppendStr(append(b, "\xa4mode"...), f.Mode)
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
	b = msgp.AppendMapLen(b, n)
	b = msgp.AppendUint(append(b, "\xa4code"...), uint64(e.Code))
	b = msgp.AppendStr(append(b, "\xa4name"...), e.Name)
	b = msgp.AppendStr(append(b, "\xa3msg"...), e.Msg)
	if e.Leader != "" {
		b = msgp.AppendStr(append(b, "\xa6leader"...), e.Leader)
	}
	if e.RetryMs != 0 {
		b = msgp.AppendInt(append(b, "\xa8retry_ms"...), int64(e.RetryMs))
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

// appendEvent appends the complete "ev" frame of an event: the map {t, seq, kind,
// data} (eventFrame, no field omitted) with data encoded as msgpack's
// encoder does (msgp.AppendValue), or copied as is when it is already
// msgpack.
func appendEvent(b []byte, seq uint64, kind api.EventKind, data any) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, "\x84\xa1t\xa2ev\xa3seq"...)
	b = msgp.AppendUint(b, seq)
	b = msgp.AppendStr(append(b, "\xa4kind"...), string(kind))
	b = append(b, "\xa4data"...)
	if raw, ok := data.(msgpack.RawMessage); ok && raw != nil {
		b = append(b, raw...) // already msgpack: copied, as msgpack's encoder does
	} else {
		var err error
		if b, err = msgp.AppendValue(b, data); err != nil {
			return b[:start], err
		}
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b, nil
}
