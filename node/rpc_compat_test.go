package node

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// Node sessions used the client protocol's frames (transport.Frame) up to
// the release before this one; cluster now has its own frame type and
// codec. A rolling upgrade needs the two to put the same bytes on the
// wire: these tests pin cluster's codec to transport's, both ways.

// compatFrames are node-session frames of every kind, as cluster and as
// transport types.
func compatFrames(t *testing.T) []struct {
	c  cluster.Frame
	tr transport.Frame
} {
	args, err := msgpack.Marshal(map[string]any{"entry": []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := msgpack.Marshal(map[string]any{"index": uint64(1) << 40, "results": []any{map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	return []struct {
		c  cluster.Frame
		tr transport.Frame
	}{
		{cluster.Frame{T: cluster.FrameHello, V: cluster.NodeProtocolVersion, Role: cluster.RoleNode, User: "n1", Token: "secret"},
			transport.Frame{T: transport.TypeHello, V: transport.ProtocolVersion, Role: "node", User: "n1", Token: "secret"}},
		{cluster.Frame{T: cluster.FrameWelcome, V: 1, Node: "n2", Role: cluster.RoleNode, User: "n1", MaxFrame: 4 << 20},
			transport.Frame{T: transport.TypeWelcome, V: 1, Node: "n2", Role: "node", User: "n1", MaxFrame: 4 << 20}},
		{cluster.Frame{T: cluster.FrameRequest, ID: 1 << 33, Op: "forward", Args: args},
			transport.Frame{T: transport.TypeRequest, ID: 1 << 33, Op: "forward", Args: args}},
		{cluster.Frame{T: cluster.FrameRequest, ID: 7, Op: "read_index"},
			transport.Frame{T: transport.TypeRequest, ID: 7, Op: "read_index"}},
		{cluster.Frame{T: cluster.FrameResponse, ID: 7, OK: true, Data: data},
			transport.Frame{T: transport.TypeResponse, ID: 7, OK: true, Data: data}},
		{cluster.Frame{T: cluster.FrameResponse, ID: 8, OK: true},
			transport.Frame{T: transport.TypeResponse, ID: 8, OK: true}},
		{cluster.Frame{T: cluster.FrameResponse, ID: 9, Err: &cluster.ErrorBody{Code: api.CodeNotLeader, Name: "not_leader", Msg: "not the leader", Leader: "10.0.0.2:7400"}},
			transport.Frame{T: transport.TypeResponse, ID: 9, Err: &transport.ErrorBody{Code: api.CodeNotLeader, Name: "not_leader", Msg: "not the leader", Leader: "10.0.0.2:7400"}}},
		{cluster.Frame{T: cluster.FrameResponse, ID: 10, Err: &cluster.ErrorBody{Code: api.CodeNoLeader, Name: "no_leader", Msg: "retry", RetryMs: 250}},
			transport.Frame{T: transport.TypeResponse, ID: 10, Err: &transport.ErrorBody{Code: api.CodeNoLeader, Name: "no_leader", Msg: "retry", RetryMs: 250}}},
		{cluster.Frame{T: cluster.FramePing, ID: 3}, transport.Frame{T: transport.TypePing, ID: 3}},
		{cluster.Frame{T: cluster.FramePong, ID: 3}, transport.Frame{T: transport.TypePong, ID: 3}},
		{cluster.Frame{T: cluster.FrameBye, Err: &cluster.ErrorBody{Code: api.CodeUnauthenticated, Name: "unauthenticated", Msg: "bad cluster token"}},
			transport.Frame{T: transport.TypeBye, Err: &transport.ErrorBody{Code: api.CodeUnauthenticated, Name: "unauthenticated", Msg: "bad cluster token"}}},
	}
}

// toCluster is the cluster frame of the node-session fields of f.
func toCluster(f *transport.Frame) cluster.Frame {
	c := cluster.Frame{T: f.T, V: f.V, Role: f.Role, User: f.User, Token: f.Token, Node: f.Node, MaxFrame: f.MaxFrame,
		ID: f.ID, Op: f.Op, Args: f.Args, OK: f.OK, Data: f.Data}
	if f.Err != nil {
		c.Err = &cluster.ErrorBody{Code: f.Err.Code, Name: f.Err.Name, Msg: f.Err.Msg, Leader: f.Err.Leader, RetryMs: f.Err.RetryMs}
	}
	return c
}

func TestNodeFramesMatchTheClientProtocol(t *testing.T) {
	if cluster.NodeProtocolVersion != transport.ProtocolVersion {
		t.Fatalf("node protocol version %d, client protocol %d", cluster.NodeProtocolVersion, transport.ProtocolVersion)
	}
	if cluster.FrameHello != transport.TypeHello || cluster.FrameWelcome != transport.TypeWelcome ||
		cluster.FrameRequest != transport.TypeRequest || cluster.FrameResponse != transport.TypeResponse ||
		cluster.FramePing != transport.TypePing || cluster.FramePong != transport.TypePong || cluster.FrameBye != transport.TypeBye {
		t.Fatal("frame type names differ")
	}
	for _, tc := range compatFrames(t) {
		// cluster → transport: the same bytes, and transport decodes them.
		got := cluster.AppendFrame(nil, &tc.c)
		want, err := transport.EncodeFrame(&tc.tr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s frame: cluster encodes\n %x\ntransport\n %x", tc.c.T, got, want)
		}
		var tf transport.Frame
		if err := transport.ReadFrame(bytes.NewReader(got), 4<<20, &tf); err != nil {
			t.Fatalf("%s frame from cluster: transport: %v", tc.c.T, err)
		}
		if c := toCluster(&tf); !reflect.DeepEqual(c, tc.c) {
			t.Errorf("%s frame from cluster: transport read\n %+v\nwant\n %+v", tc.c.T, c, tc.c)
		}
		// transport → cluster.
		var cf cluster.Frame
		if err := cluster.ReadFrame(bufio.NewReader(bytes.NewReader(want)), 4<<20, &cf); err != nil {
			t.Fatalf("%s frame from transport: cluster: %v", tc.c.T, err)
		}
		if !reflect.DeepEqual(cf, tc.c) {
			t.Errorf("%s frame from transport: cluster read\n %+v\nwant\n %+v", tc.c.T, cf, tc.c)
		}
	}
}

// A frame with client-protocol fields a node session does not use
// decodes in cluster with those fields skipped.
func TestNodeFrameSkipsClientFields(t *testing.T) {
	since := uint64(5)
	b, err := transport.EncodeFrame(&transport.Frame{T: transport.TypeRequest, ID: 4, Op: "info", Client: "c", Since: &since,
		Index: 9, Seq: 3, Linearizable: true, Kind: "k"})
	if err != nil {
		t.Fatal(err)
	}
	var f cluster.Frame
	if err := cluster.ReadFrame(bytes.NewReader(b), 1<<20, &f); err != nil {
		t.Fatal(err)
	}
	if want := (cluster.Frame{T: cluster.FrameRequest, ID: 4, Op: "info"}); !reflect.DeepEqual(f, want) {
		t.Fatalf("decoded %+v, want %+v", f, want)
	}
}
