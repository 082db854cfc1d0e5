package transport_test

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// Frame benchmarks: the encodings on the hot paths. EncodeEvent runs once
// per event on a node (its bytes are shared by every recipient);
// DecodeFrame once per request a session reads; AppendFrame once per
// response; ReadFramePayload for every frame.

var benchSummary = api.RequestSummary{
	ID: "R123456", Channel: "webchat", List: "support", Customer: api.Customer{ID: "c-42", Name: "Ada"},
	State: api.StateUnread, Participants: []string{}, CreatedAt: 1e18, UpdatedAt: 1e18, Preview: "Hello, I need help with my order",
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := fsm.Event{Seq: api.SeqOf(123456, 0), Kind: api.EvRequestCreated, To: []string{"agent:a1"}, Data: benchSummary}
	frame, _ := transport.EncodeEvent(ev.Seq, ev.Kind, ev.Data)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := transport.EncodeEvent(ev.Seq, ev.Kind, ev.Data); err != nil {
			b.Fatal(err)
		}
	}
}

func requestPayload(b *testing.B) []byte {
	args, err := msgpack.Marshal(api.CustomerMessageArgs{Channel: "webchat", CustomerID: "c-42", CustomerName: "Ada", Text: "Hello, I need help with my order"})
	if err != nil {
		b.Fatal(err)
	}
	frame, err := transport.EncodeFrame(&transport.Frame{T: transport.TypeRequest, ID: 77, Op: "customer_message", Args: args, Seq: 77})
	if err != nil {
		b.Fatal(err)
	}
	return frame
}

func BenchmarkDecodeFrame(b *testing.B) {
	frame := requestPayload(b)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	var f transport.Frame
	for b.Loop() {
		if err := transport.DecodeFrame(frame[4:], &f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRequest is DecodeFrame plus decoding the op's arguments
// into their struct, as a session does for every write.
func BenchmarkDecodeRequest(b *testing.B) {
	frame := requestPayload(b)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	var f transport.Frame
	for b.Loop() {
		if err := transport.DecodeFrame(frame[4:], &f); err != nil {
			b.Fatal(err)
		}
		if _, _, err := fsm.Commands.DecodeArgs(f.Op, f.Args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendFrameResponse(b *testing.B) {
	data, _ := msgpack.Marshal(api.CustomerMessageResult{Request: "R123456", Created: true, State: api.StateUnread})
	f := &transport.Frame{T: transport.TypeResponse, ID: 77, OK: true, Index: 123456, Data: data}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = transport.AppendFrame(buf[:0], f); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkReadFramePayload(b *testing.B) {
	frame := requestPayload(b)
	stream := bytes.Repeat(frame, 1024)
	r := bytes.NewReader(stream)
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := transport.ReadFramePayload(br, transport.DefaultMaxFrame, buf)
		if err != nil {
			r.Reset(stream)
			br.Reset(r)
			continue
		}
		buf = p[:0]
	}
}
