// Package faultnet is the network of in-process Raft test clusters: it
// wraps every node's raft.StreamLayer, over real sockets, and cuts, drops
// or delays the traffic between nodes. It is for tests only.
package faultnet

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Net is the network of a test cluster whose nodes are named by N (an
// index, an id): every node's Raft stream layer is wrapped by Wrap, and
// the faults set here apply to the links between nodes.
//
// Faults act at the dialing end of each connection, on both directions of
// it: a Raft connection from a to b carries a's requests and b's answers,
// so blocking a's connections to b and b's connections to a (which every
// link fault does) cuts all traffic between them. Cutting a link
// (Partition, a Fault that blocks, Isolate) refuses new dials across it
// and breaks the connections already open, so Raft sees the failure at
// once rather than after its I/O timeout. Drop fails (and closes) a
// connection on a write with probability p, losing the RPC on it; delay
// holds every write for d plus up to jitter. Dials to an address not
// registered are never faulted.
type Net[N cmp.Ordered] struct {
	mu       sync.Mutex
	addrs    map[raft.ServerAddress]N // advertised address → node
	links    map[link[N]]Fault
	isolated map[N]bool
	conns    map[*conn[N]]struct{} // open dialed connections
	rng      *rand.Rand            // guarded by mu

	refused, dropped, broken atomic.Int64
}

// link names the undirected link between nodes a < b.
type link[N cmp.Ordered] struct{ a, b N }

func linkOf[N cmp.Ordered](x, y N) link[N] {
	if x > y {
		x, y = y, x
	}
	return link[N]{x, y}
}

// Fault is what happens to traffic on one link.
type Fault struct {
	Blocked bool          // partitioned: nothing gets through
	Drop    float64       // probability that a write fails, losing its RPC
	Delay   time.Duration // added to every write
	Jitter  time.Duration // up to this much more, at random
}

func (f Fault) String() string {
	if f.Blocked {
		return "blocked"
	}
	return fmt.Sprintf("drop %.2f, delay %v+%v", f.Drop, f.Delay, f.Jitter)
}

// The errors of faulted dials, reads and writes.
var (
	ErrPartitioned = errors.New("faultnet: link partitioned")
	ErrIsolated    = errors.New("faultnet: node isolated")
	ErrDropped     = errors.New("faultnet: write dropped")
)

// New returns a network with no faults; seed drives its random drops and
// jitter.
func New[N cmp.Ordered](seed uint64) *Net[N] {
	return &Net[N]{
		addrs:    map[raft.ServerAddress]N{},
		links:    map[link[N]]Fault{},
		isolated: map[N]bool{},
		conns:    map[*conn[N]]struct{}{},
		rng:      rand.New(rand.NewPCG(seed, seed^0x5eed)),
	}
}

// Wrap returns the stream layer hook (cluster.Config.StreamLayer) of node
// self.
func (fn *Net[N]) Wrap(self N) func(raft.StreamLayer) raft.StreamLayer {
	return func(inner raft.StreamLayer) raft.StreamLayer {
		return &stream[N]{StreamLayer: inner, net: fn, self: self}
	}
}

// Register tells the network that node listens for Raft at addr.
func (fn *Net[N]) Register(node N, addr string) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	fn.addrs[raft.ServerAddress(addr)] = node
}

// Partition cuts every link between a node of a and a node of b.
func (fn *Net[N]) Partition(a, b []N) {
	fn.mu.Lock()
	for _, x := range a {
		for _, y := range b {
			if x != y {
				f := fn.links[linkOf(x, y)]
				f.Blocked = true
				fn.links[linkOf(x, y)] = f
			}
		}
	}
	fn.mu.Unlock()
	fn.breakCut()
}

// SetLink sets the fault on the link between x and y.
func (fn *Net[N]) SetLink(x, y N, f Fault) {
	fn.mu.Lock()
	fn.links[linkOf(x, y)] = f
	fn.mu.Unlock()
	fn.breakCut()
}

// SetAll sets the fault on every link among the registered nodes.
func (fn *Net[N]) SetAll(f Fault) {
	fn.mu.Lock()
	for _, x := range fn.addrs {
		for _, y := range fn.addrs {
			if x < y {
				fn.links[linkOf(x, y)] = f
			}
		}
	}
	fn.mu.Unlock()
	fn.breakCut()
}

// Isolate cuts node off from every other node, until Rejoin or Heal.
func (fn *Net[N]) Isolate(node N) {
	fn.mu.Lock()
	fn.isolated[node] = true
	fn.mu.Unlock()
	fn.breakCut()
}

// Rejoin undoes Isolate(node); the faults of its links stay.
func (fn *Net[N]) Rejoin(node N) {
	fn.mu.Lock()
	delete(fn.isolated, node)
	fn.mu.Unlock()
}

// Heal removes every fault and isolation.
func (fn *Net[N]) Heal() {
	fn.mu.Lock()
	clear(fn.links)
	clear(fn.isolated)
	fn.mu.Unlock()
}

// Stats summarises the faults injected so far, for the test log.
func (fn *Net[N]) Stats() string {
	return fmt.Sprintf("dials refused %d, writes dropped %d, connections broken %d",
		fn.refused.Load(), fn.dropped.Load(), fn.broken.Load())
}

// fault returns the fault on the link between x and y, and the error of
// traffic on it when it is cut (nil when traffic passes).
func (fn *Net[N]) fault(x, y N) (Fault, error) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.faultLocked(x, y)
}

func (fn *Net[N]) faultLocked(x, y N) (Fault, error) {
	f := fn.links[linkOf(x, y)]
	switch {
	case fn.isolated[x] || fn.isolated[y]:
		return f, ErrIsolated
	case f.Blocked:
		return f, ErrPartitioned
	}
	return f, nil
}

// roll reports whether an event of probability p happens.
func (fn *Net[N]) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.rng.Float64() < p
}

// wait returns the delay for one write on a link with fault f.
func (fn *Net[N]) wait(f Fault) time.Duration {
	d := f.Delay
	if f.Jitter > 0 {
		fn.mu.Lock()
		d += time.Duration(fn.rng.Int64N(int64(f.Jitter)))
		fn.mu.Unlock()
	}
	return d
}

// breakCut closes every open connection on a cut link.
func (fn *Net[N]) breakCut() {
	fn.mu.Lock()
	var doomed []*conn[N]
	for c := range fn.conns {
		if _, err := fn.faultLocked(c.from, c.to); err != nil {
			doomed = append(doomed, c)
		}
	}
	fn.mu.Unlock()
	for _, c := range doomed {
		fn.broken.Add(1)
		_ = c.Close()
	}
}

// peer returns the node at addr.
func (fn *Net[N]) peer(addr raft.ServerAddress) (N, bool) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	n, ok := fn.addrs[addr]
	return n, ok
}

// stream is one node's view of the Net: a raft.StreamLayer whose dialed
// connections suffer the faults of their link.
type stream[N cmp.Ordered] struct {
	raft.StreamLayer
	net  *Net[N]
	self N
}

// Dial implements raft.StreamLayer.
func (s *stream[N]) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	to, ok := s.net.peer(address)
	if !ok {
		return s.StreamLayer.Dial(address, timeout)
	}
	f, err := s.net.fault(s.self, to)
	switch {
	case err != nil:
		s.net.refused.Add(1)
		return nil, fmt.Errorf("dial %s: %w", address, err)
	case s.net.roll(f.Drop):
		s.net.refused.Add(1)
		return nil, fmt.Errorf("dial %s: %w", address, ErrDropped)
	}
	if d := s.net.wait(f); d > 0 {
		time.Sleep(d) // the simulated network latency, not a synchronisation
	}
	inner, err := s.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	c := &conn[N]{Conn: inner, net: s.net, from: s.self, to: to}
	s.net.mu.Lock()
	s.net.conns[c] = struct{}{}
	_, err = s.net.faultLocked(s.self, to)
	s.net.mu.Unlock()
	if err != nil { // cut while dialing
		_ = c.Close()
		s.net.refused.Add(1)
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	return c, nil
}

// conn is a dialed connection from node from to node to.
type conn[N cmp.Ordered] struct {
	net.Conn
	net      *Net[N]
	from, to N
	once     sync.Once
}

func (c *conn[N]) Read(p []byte) (int, error) {
	if _, err := c.net.fault(c.from, c.to); err != nil {
		_ = c.Close()
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *conn[N]) Write(p []byte) (int, error) {
	f, err := c.net.fault(c.from, c.to)
	if err == nil && c.net.roll(f.Drop) {
		c.net.dropped.Add(1)
		_ = c.Close()
		return 0, ErrDropped
	}
	if d := c.net.wait(f); d > 0 {
		time.Sleep(d) // the simulated network latency, not a synchronisation
		f, err = c.net.fault(c.from, c.to)
	}
	if err != nil {
		_ = c.Close()
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *conn[N]) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.net.mu.Lock()
		delete(c.net.conns, c)
		c.net.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}
