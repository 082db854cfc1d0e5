package faultnet

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestNet checks the fault layer over real sockets: traffic flows, a
// partition and an isolation break open connections and refuse new ones
// in both directions, heal and rejoin restore it, and drop and delay do
// what they say.
func TestNet(t *testing.T) {
	fn := New[int](1)
	var streams [2]raft.StreamLayer
	for i := range streams {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = fn.Wrap(i)(&tcpStream{Listener: ln})
		fn.Register(i, streams[i].Addr().String())
		t.Cleanup(func() { _ = streams[i].Close() })
		go echo(streams[i])
	}
	addr := func(i int) raft.ServerAddress { return raft.ServerAddress(streams[i].Addr().String()) }
	ping := func(c net.Conn) error {
		if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			return err
		}
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		_, err := io.ReadFull(c, buf)
		return err
	}
	dial := func(from, to int) (net.Conn, error) { return streams[from].Dial(addr(to), 5*time.Second) }

	c01, err := dial(0, 1)
	if err != nil {
		t.Fatalf("dial 0→1: %v", err)
	}
	defer c01.Close()
	if err := ping(c01); err != nil {
		t.Fatalf("ping 0→1 before faults: %v", err)
	}

	fn.Partition([]int{0}, []int{1})
	if err := ping(c01); err == nil {
		t.Fatal("ping on a connection open across a new partition succeeded")
	}
	for _, d := range [][2]int{{0, 1}, {1, 0}} {
		if _, err := dial(d[0], d[1]); !errors.Is(err, ErrPartitioned) {
			t.Fatalf("dial %d→%d across the partition: %v, want ErrPartitioned", d[0], d[1], err)
		}
	}

	fn.Heal()
	c01, err = dial(0, 1)
	if err != nil {
		t.Fatalf("dial 0→1 after heal: %v", err)
	}
	defer c01.Close()
	fn.Isolate(1)
	if err := ping(c01); err == nil {
		t.Fatal("ping on a connection open to a node since isolated succeeded")
	}
	for _, d := range [][2]int{{0, 1}, {1, 0}} {
		if _, err := dial(d[0], d[1]); !errors.Is(err, ErrIsolated) {
			t.Fatalf("dial %d→%d with 1 isolated: %v, want ErrIsolated", d[0], d[1], err)
		}
	}

	fn.Rejoin(1)
	c10, err := dial(1, 0)
	if err != nil {
		t.Fatalf("dial 1→0 after rejoin: %v", err)
	}
	defer c10.Close()
	if err := ping(c10); err != nil {
		t.Fatalf("ping 1→0 after rejoin: %v", err)
	}

	fn.SetLink(0, 1, Fault{Drop: 1})
	if err := ping(c10); !errors.Is(err, ErrDropped) {
		t.Fatalf("ping with drop 1: %v, want ErrDropped", err)
	}

	const d = 50 * time.Millisecond
	fn.SetLink(0, 1, Fault{Delay: d})
	c, err := dial(0, 1)
	if err != nil {
		t.Fatalf("dial with delay: %v", err)
	}
	defer c.Close()
	start := time.Now()
	if err := ping(c); err != nil {
		t.Fatalf("ping with delay: %v", err)
	}
	if took := time.Since(start); took < d {
		t.Fatalf("ping with delay %v took %v", d, took)
	}
	t.Log(fn.Stats())
}

// echo accepts connections on l and echoes what they send until l closes.
func echo(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

// tcpStream is a raft.StreamLayer over plain TCP.
type tcpStream struct{ net.Listener }

func (s *tcpStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}
