package node

import (
	"bufio"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cluster"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// TestSplitListenerRoutes: a node hello goes to the node handler with the
// rest of the stream; anything else reaches Accept byte for byte (a ping
// before hello, an oversized first frame); before SetReady a client gets
// bye unavailable.
func TestSplitListenerRoutes(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type nodeConn struct {
		hello cluster.Frame
		next  transport.Frame
	}
	nodes := make(chan nodeConn, 1)
	l := newSplitListener(inner, time.Second, slog.New(slog.DiscardHandler), func(c net.Conn, hello *cluster.Frame, br *bufio.Reader) {
		defer c.Close()
		nc := nodeConn{hello: *hello}
		if err := transport.ReadFrame(br, 1<<20, &nc.next); err != nil {
			t.Errorf("node conn: %v", err)
		}
		nodes <- nc
	})
	defer l.Close()
	addr := inner.Addr().String()
	frame := func(f *transport.Frame) []byte {
		b, err := transport.EncodeFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dialSend := func(b ...[]byte) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range b {
			if _, err := c.Write(x); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}

	// Not ready: a client is told to go elsewhere.
	c := dialSend(frame(&transport.Frame{T: transport.TypeHello, V: 1, Role: "admin", Token: "x"}))
	var bye transport.Frame
	if err := transport.ReadFrame(c, 1<<20, &bye); err != nil || bye.T != transport.TypeBye || bye.Err.Code != api.CodeUnavailable || bye.Err.RetryMs == 0 {
		t.Fatalf("client before ready: %+v %v", bye, err)
	}
	c.Close()

	// A node hello is served even before ready.
	c = dialSend(frame(&transport.Frame{T: transport.TypeHello, V: 1, Role: cluster.RoleNode, User: "n2", Token: "t"}),
		frame(&transport.Frame{T: transport.TypeRequest, ID: 7, Op: "info"}))
	select {
	case nc := <-nodes:
		if nc.hello.User != "n2" || nc.next.Op != "info" || nc.next.ID != 7 {
			t.Fatalf("node conn got %+v then %+v", nc.hello, nc.next)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("node conn not routed")
	}
	c.Close()

	l.SetReady()
	ping := frame(&transport.Frame{T: transport.TypePing, ID: 1})
	hello := frame(&transport.Frame{T: transport.TypeHello, V: 1, Role: "agent", User: "a", Token: "x"})
	big := make([]byte, 4+maxPeekHello+10)
	binary.BigEndian.PutUint32(big, maxPeekHello+10)
	for name, want := range map[string][]byte{
		"ping first":  append(append([]byte{}, ping...), hello...),
		"client":      hello,
		"large first": big,
	} {
		c := dialSend(want)
		got, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(want))
		_ = got.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(got, buf); err != nil || string(buf) != string(want) {
			t.Fatalf("%s: accepted connection read %d bytes, err %v", name, len(buf), err)
		}
		got.Close()
		c.Close()
	}
}
