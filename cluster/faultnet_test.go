package cluster

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// faultNet is the network of an in-process test cluster: every node's Raft
// stream layer is wrapped by wrap(i), over real TCP sockets on 127.0.0.1,
// and the faults set here apply to the links between nodes.
//
// Faults act at the dialing end of each connection, on both directions of
// it: a Raft connection from a to b carries a's requests and b's answers, so
// blocking a's connections to b and b's connections to a (which every link
// fault does) cuts all traffic between them. Partitioning a link refuses new
// dials across it and breaks the connections already open, so Raft sees the
// failure at once rather than after its I/O timeout. Drop fails (and closes)
// a connection on a write with probability p, losing the RPC on it; delay
// holds every write for d plus up to jitter.
type faultNet struct {
	mu    sync.Mutex
	addrs map[raft.ServerAddress]int // advertised address → node index
	links map[linkKey]linkFault
	conns map[*faultConn]struct{} // open dialed connections
	rng   *rand.Rand              // guarded by mu

	refused, dropped, broken atomic.Int64
}

// linkKey names the undirected link between nodes a < b.
type linkKey struct{ a, b int }

func keyOf(x, y int) linkKey {
	if x > y {
		x, y = y, x
	}
	return linkKey{x, y}
}

// linkFault is what happens to traffic on one link.
type linkFault struct {
	blocked bool          // partitioned: nothing gets through
	drop    float64       // probability that a write fails, losing its RPC
	delay   time.Duration // added to every write
	jitter  time.Duration // up to this much more, at random
}

func (f linkFault) String() string {
	if f.blocked {
		return "blocked"
	}
	return fmt.Sprintf("drop %.2f, delay %v+%v", f.drop, f.delay, f.jitter)
}

var (
	errPartitioned = errors.New("faultnet: link partitioned")
	errDropped     = errors.New("faultnet: write dropped")
)

func newFaultNet(seed uint64) *faultNet {
	return &faultNet{
		addrs: map[raft.ServerAddress]int{},
		links: map[linkKey]linkFault{},
		conns: map[*faultConn]struct{}{},
		rng:   rand.New(rand.NewPCG(seed, seed^0x5eed)),
	}
}

// wrap returns the Config.StreamLayer hook for node i.
func (fn *faultNet) wrap(i int) func(raft.StreamLayer) raft.StreamLayer {
	return func(inner raft.StreamLayer) raft.StreamLayer {
		return &faultStream{StreamLayer: inner, net: fn, self: i}
	}
}

// register tells the network that node i listens at addr. Dials to an
// address not registered are never faulted.
func (fn *faultNet) register(i int, addr string) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	fn.addrs[raft.ServerAddress(addr)] = i
}

// Partition cuts every link between a node of a and a node of b.
func (fn *faultNet) Partition(a, b []int) {
	fn.mu.Lock()
	for _, x := range a {
		for _, y := range b {
			if x != y {
				f := fn.links[keyOf(x, y)]
				f.blocked = true
				fn.links[keyOf(x, y)] = f
			}
		}
	}
	fn.mu.Unlock()
	fn.breakBlocked()
}

// SetLink sets the fault on the link between x and y.
func (fn *faultNet) SetLink(x, y int, f linkFault) {
	fn.mu.Lock()
	fn.links[keyOf(x, y)] = f
	fn.mu.Unlock()
	fn.breakBlocked()
}

// SetAll sets the fault on every link among nodes 0..n-1.
func (fn *faultNet) SetAll(n int, f linkFault) {
	fn.mu.Lock()
	for x := range n {
		for y := x + 1; y < n; y++ {
			fn.links[keyOf(x, y)] = f
		}
	}
	fn.mu.Unlock()
	fn.breakBlocked()
}

// Heal removes every fault.
func (fn *faultNet) Heal() {
	fn.mu.Lock()
	clear(fn.links)
	fn.mu.Unlock()
}

// fault returns the fault on the link between x and y.
func (fn *faultNet) fault(x, y int) linkFault {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.links[keyOf(x, y)]
}

// roll reports whether an event of probability p happens.
func (fn *faultNet) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.rng.Float64() < p
}

// wait returns the delay for one write on a link with fault f.
func (fn *faultNet) wait(f linkFault) time.Duration {
	d := f.delay
	if f.jitter > 0 {
		fn.mu.Lock()
		d += time.Duration(fn.rng.Int64N(int64(f.jitter)))
		fn.mu.Unlock()
	}
	return d
}

// breakBlocked closes every open connection on a blocked link.
func (fn *faultNet) breakBlocked() {
	fn.mu.Lock()
	var doomed []*faultConn
	for c := range fn.conns {
		if fn.links[keyOf(c.from, c.to)].blocked {
			doomed = append(doomed, c)
		}
	}
	fn.mu.Unlock()
	for _, c := range doomed {
		fn.broken.Add(1)
		_ = c.Close()
	}
}

// peer returns the index of the node at addr.
func (fn *faultNet) peer(addr raft.ServerAddress) (int, bool) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	i, ok := fn.addrs[addr]
	return i, ok
}

// Stats summarises the faults injected so far, for the test log.
func (fn *faultNet) Stats() string {
	return fmt.Sprintf("dials refused %d, writes dropped %d, connections broken %d",
		fn.refused.Load(), fn.dropped.Load(), fn.broken.Load())
}

// faultStream is one node's view of the faultNet: a raft.StreamLayer whose
// dialed connections suffer the faults of their link.
type faultStream struct {
	raft.StreamLayer
	net  *faultNet
	self int
}

// Dial implements raft.StreamLayer.
func (s *faultStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	to, ok := s.net.peer(address)
	if !ok {
		return s.StreamLayer.Dial(address, timeout)
	}
	f := s.net.fault(s.self, to)
	switch {
	case f.blocked:
		s.net.refused.Add(1)
		return nil, fmt.Errorf("dial %s: %w", address, errPartitioned)
	case s.net.roll(f.drop):
		s.net.refused.Add(1)
		return nil, fmt.Errorf("dial %s: %w", address, errDropped)
	}
	if d := s.net.wait(f); d > 0 {
		time.Sleep(d) // the simulated network latency, not a synchronisation
	}
	conn, err := s.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	c := &faultConn{Conn: conn, net: s.net, from: s.self, to: to}
	s.net.mu.Lock()
	s.net.conns[c] = struct{}{}
	blocked := s.net.links[keyOf(s.self, to)].blocked
	s.net.mu.Unlock()
	if blocked { // partitioned while dialing
		_ = c.Close()
		s.net.refused.Add(1)
		return nil, fmt.Errorf("dial %s: %w", address, errPartitioned)
	}
	return c, nil
}

// faultConn is a dialed connection from node from to node to.
type faultConn struct {
	net.Conn
	net      *faultNet
	from, to int
	once     sync.Once
}

func (c *faultConn) Read(p []byte) (int, error) {
	if c.net.fault(c.from, c.to).blocked {
		_ = c.Close()
		return 0, errPartitioned
	}
	return c.Conn.Read(p)
}

func (c *faultConn) Write(p []byte) (int, error) {
	f := c.net.fault(c.from, c.to)
	if !f.blocked && c.net.roll(f.drop) {
		c.net.dropped.Add(1)
		_ = c.Close()
		return 0, errDropped
	}
	if d := c.net.wait(f); d > 0 {
		time.Sleep(d) // the simulated network latency, not a synchronisation
		f = c.net.fault(c.from, c.to)
	}
	if f.blocked {
		_ = c.Close()
		return 0, errPartitioned
	}
	return c.Conn.Write(p)
}

func (c *faultConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.net.mu.Lock()
		delete(c.net.conns, c)
		c.net.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// TestFaultNet checks the fault layer itself over real sockets: traffic
// flows, a partition breaks open connections and refuses new ones in both
// directions, heal restores it, and drop and delay do what they say.
func TestFaultNet(t *testing.T) {
	fn := newFaultNet(1)
	var streams [2]raft.StreamLayer
	for i := range streams {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = fn.wrap(i)(&tcpStreamLayer{Listener: ln})
		fn.register(i, streams[i].Addr().String())
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
		if _, err := dial(d[0], d[1]); !errors.Is(err, errPartitioned) {
			t.Fatalf("dial %d→%d across the partition: %v, want errPartitioned", d[0], d[1], err)
		}
	}

	fn.Heal()
	c10, err := dial(1, 0)
	if err != nil {
		t.Fatalf("dial 1→0 after heal: %v", err)
	}
	defer c10.Close()
	if err := ping(c10); err != nil {
		t.Fatalf("ping 1→0 after heal: %v", err)
	}

	fn.SetLink(0, 1, linkFault{drop: 1})
	if err := ping(c10); !errors.Is(err, errDropped) {
		t.Fatalf("ping with drop 1: %v, want errDropped", err)
	}

	const d = 50 * time.Millisecond
	fn.SetLink(0, 1, linkFault{delay: d})
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
