package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// reflectFrame is f through msgpack's reflection encoder with compact
// integers: the reference AppendFrame is held to.
func reflectFrame(t *testing.T, f *Frame) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(f); err != nil {
		t.Fatal(err)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(buf.Len()))
	return append(out, buf.Bytes()...)
}

func TestAppendFrameMatchesReflectionAndRoundTrips(t *testing.T) {
	raw, _ := msgpack.Marshal(map[string]int{"a": 1})
	for _, f := range []Frame{
		{T: FrameHello, V: 1, Role: RoleNode, User: "n1", Token: "t"},
		{T: FrameWelcome, V: 1, Role: RoleNode, User: "n1", Node: "n2", MaxFrame: nodeMaxFrame},
		{T: FrameRequest, ID: 1<<40 + 3, Op: "forward", Args: raw},
		{T: FrameResponse, ID: 2, OK: true, Data: raw},
		{T: FrameResponse, ID: 3, Err: &ErrorBody{Code: api.CodeNotLeader, Name: "not_leader", Msg: "m", Leader: "h:1", RetryMs: 70000}},
		{T: FramePing, ID: 1},
		{T: FrameBye, Err: &ErrorBody{Code: api.CodeProtocol, Name: "protocol", Msg: "x"}},
	} {
		got := AppendFrame([]byte{0xff}, &f)[1:]
		if want := reflectFrame(t, &f); !bytes.Equal(got, want) {
			t.Errorf("%+v:\n got  %x\n want %x", f, got, want)
		}
		var back Frame
		if err := ReadFrame(bytes.NewReader(got), nodeMaxFrame, &back); err != nil || !reflect.DeepEqual(back, f) {
			t.Errorf("%+v: read back %+v, %v", f, back, err)
		}
	}
}

func TestReadFrameRefusesBadFrames(t *testing.T) {
	frame := func(payload []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
	}
	for name, c := range map[string]struct {
		b    []byte
		code api.Code
	}{
		"empty":          {frame(nil), api.CodeMalformedFrame},
		"too large":      {binary.BigEndian.AppendUint32(nil, nodeMaxFrame+1), api.CodeFrameTooLarge},
		"not a map":      {frame([]byte{0x01}), api.CodeMalformedFrame},
		"no type":        {frame([]byte{0x81, 0xa2, 'i', 'd', 0x01}), api.CodeMalformedFrame},
		"inflated array": {frame([]byte{0x81, 0xa4, 'a', 'r', 'g', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}), api.CodeMalformedFrame},
	} {
		var f Frame
		err := ReadFrame(bytes.NewReader(c.b), nodeMaxFrame, &f)
		var fe *api.Error
		if !errors.As(err, &fe) || fe.Code != c.code {
			t.Errorf("%s: %v, want code %s", name, err, c.code)
		}
	}
}
