package cluster

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestDialSource(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, c := range []struct {
		local net.Addr
		dst   string
		want  string // "" : the kernel chooses
	}{
		{tcp("10.0.0.1:7401"), "10.0.0.2:7401", "10.0.0.1"},
		{tcp("127.0.0.11:7401"), "127.0.0.1:40000", "127.0.0.11"},
		{tcp("[fd00::1]:7401"), "[fd00::2]:7401", "fd00::1"},
		{tcp("0.0.0.0:7401"), "10.0.0.2:7401", ""},   // wildcard bind
		{tcp("[::]:7401"), "[fd00::2]:7401", ""},     // wildcard bind
		{tcp("10.0.0.1:7401"), "[fd00::2]:7401", ""}, // other family
		{tcp("[fd00::1]:7401"), "10.0.0.2:7401", ""}, // other family
		{tcp("127.0.0.1:7401"), "10.0.0.2:7401", ""}, // loopback bind, remote peer
		{tcp("10.0.0.1:7401"), "127.0.0.1:7401", "10.0.0.1"},
		{tcp("10.0.0.1:7401"), "node2.example:7401", ""}, // a name
		{tcp("10.0.0.1:7401"), "garbage", ""},
		{nil, "10.0.0.2:7401", ""},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, "10.0.0.2:7401", ""},
	} {
		got := dialSource(c.local, c.dst)
		switch {
		case c.want == "" && got != nil:
			t.Errorf("%v → %s: source %v, want the kernel's choice", c.local, c.dst, got)
		case c.want != "" && (got == nil || !got.IP.Equal(net.ParseIP(c.want)) || got.Port != 0):
			t.Errorf("%v → %s: source %v, want %s port 0", c.local, c.dst, got, c.want)
		}
	}
}

// acceptFrom returns the source IP of the next connection ln accepts.
func acceptFrom(t *testing.T, ln net.Listener) chan string {
	t.Helper()
	from := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			from <- "accept: " + err.Error()
			return
		}
		from <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	return from
}

// listenLoopback listens on ip (a 127/8 address) or skips the test where
// the loopback interface does not answer every 127/8 address.
func listenLoopback(t *testing.T, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("loopback address %s: %v", ip, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Raft streams and node calls leave from the address the node listens
// on when it is a specific one, and from the kernel's choice when the
// node listens on every interface.
func TestDialFromBoundAddress(t *testing.T) {
	peer := listenLoopback(t, "127.0.0.3")
	peerAddr := peer.Addr().String()
	for _, c := range []struct {
		bind, want string
	}{
		{"127.0.0.2", "127.0.0.2"},
		{"0.0.0.0", "127.0.0.1"}, // the kernel's choice for 127.0.0.3
	} {
		ln := listenLoopback(t, c.bind)

		from := acceptFrom(t, peer)
		s := &tcpStreamLayer{Listener: ln, advertise: peer.Addr()} // advertise is not the source
		conn, err := s.Dial(raft.ServerAddress(peerAddr), time.Second)
		if err != nil {
			t.Fatalf("bind %s: raft dial: %v", c.bind, err)
		}
		conn.Close()
		if got := <-from; got != c.want {
			t.Errorf("bind %s: raft stream from %s, want %s", c.bind, got, c.want)
		}

		from = acceptFrom(t, peer)
		p := newPeers("n1", "token", nil, ln.Addr(), nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = p.dial(ctx, peerAddr) // the peer answers no welcome: only the source matters
		cancel()
		if err == nil {
			t.Fatalf("bind %s: node call to a listener that says nothing succeeded", c.bind)
		}
		if got := <-from; got != c.want {
			t.Errorf("bind %s: node call from %s, want %s", c.bind, got, c.want)
		}
	}
}
