package node

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// haFreezer stops a node's network traffic as SIGSTOP would, without
// stopping the node: while frozen, every connection the node accepted
// (client port, Raft) or dialled for Raft neither reads nor writes.
// Bytes sent to it stay in the socket buffers and are read after Thaw;
// deadlines do not fire meanwhile, as a stopped process's would not.
type haFreezer struct {
	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed by Thaw
}

func newHAFreezer() *haFreezer {
	z := &haFreezer{thawed: make(chan struct{})}
	close(z.thawed)
	return z
}

// Freeze stops the node's traffic.
func (z *haFreezer) Freeze() {
	z.mu.Lock()
	defer z.mu.Unlock()
	if !z.frozen {
		z.frozen = true
		z.thawed = make(chan struct{})
	}
}

// Thaw lets the traffic flow again.
func (z *haFreezer) Thaw() {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.frozen {
		z.frozen = false
		close(z.thawed)
	}
}

// wait blocks while the node is frozen.
func (z *haFreezer) wait() {
	z.mu.Lock()
	ch := z.thawed
	z.mu.Unlock()
	<-ch
}

// tune makes the node's client listener and Raft stream layer freezable.
func (z *haFreezer) tune(cfg *Config) {
	cfg.ClientListener = &freezeListener{Listener: cfg.ClientListener, z: z}
	cfg.Raft.StreamLayer = func(inner raft.StreamLayer) raft.StreamLayer {
		return &freezeStream{StreamLayer: inner, z: z}
	}
}

type freezeConn struct {
	net.Conn
	z *haFreezer
}

func (c *freezeConn) Read(p []byte) (int, error) {
	c.z.wait()
	n, err := c.Conn.Read(p)
	c.z.wait() // what arrived during a freeze is seen after it
	return n, err
}

func (c *freezeConn) Write(p []byte) (int, error) {
	c.z.wait()
	return c.Conn.Write(p)
}

type freezeListener struct {
	net.Listener
	z *haFreezer
}

func (l *freezeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &freezeConn{Conn: c, z: l.z}, nil
}

type freezeStream struct {
	raft.StreamLayer
	z *haFreezer
}

func (s *freezeStream) Accept() (net.Conn, error) {
	c, err := s.StreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return &freezeConn{Conn: c, z: s.z}, nil
}

func (s *freezeStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := s.StreamLayer.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &freezeConn{Conn: c, z: s.z}, nil
}

// TestHAForwardedWriteLeavesAFrozenLeader: writes that the followers had
// forwarded to the leader when it froze are re-sent to the new leader as
// soon as a follower knows it, on the follower that becomes the leader as
// on the other one. They are acknowledged long before the freeze ends (and
// before the 10 s apply timeout), and each applies exactly once.
func TestHAForwardedWriteLeavesAFrozenLeader(t *testing.T) {
	freezers := map[string]*haFreezer{}
	for i := range 3 {
		freezers["n"+string(rune('1'+i))] = newHAFreezer()
	}
	c := startHACluster(t, 3, func(cfg *Config) { freezers[cfg.Raft.NodeID].tune(cfg) })
	l := c.leader()
	li := slices.Index(c.nodes, l)
	admin := haDial(t, c.addrs(li), "admin", "", haAdminToken, false)
	_, fbToken := haSetup(t, admin)
	fs := c.followers()
	var conns [2]*haClient
	for i, f := range fs {
		conns[i] = &haClient{node: f.id, c: haDial(t, []string{f.client}, "connector", "fb", fbToken, false)}
		// A write through each follower before the freeze: the path works.
		var r api.CustomerMessageResult
		haCall(t, conns[i].c, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: "cust-" + f.id, Text: "before"}, &r)
	}

	z := freezers[l.id]
	z.Freeze()
	frozeAt := time.Now()
	t.Cleanup(z.Thaw) // before the nodes stop
	t.Logf("froze leader %s", l.id)

	// Writes sent at once, while the followers still take l for the
	// leader, are forwarded to it and wait on it.
	type answer struct {
		node  string
		err   error
		at    time.Time
		nokey bool
	}
	const perFollower = 4
	answers := make(chan answer, 2*perFollower+2)
	for i := range conns {
		for k := range perFollower {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				var r api.CustomerMessageResult
				err := conns[i].c.Call(ctx, "customer_message", api.CustomerMessageArgs{
					Channel: "C1", CustomerID: "cust-" + conns[i].node, Text: fmt.Sprintf("frozen-%d", k)}, &r)
				answers <- answer{node: conns[i].node, err: err, at: time.Now()}
			}()
		}
	}

	// A write without an idempotency key cannot be re-sent safely: it is
	// answered timeout (outcome unknown) as soon as the leader moves,
	// rather than at the end of its deadline.
	for _, f := range fs {
		go func() {
			args, err := msgpack.Marshal(api.CreateListArgs{ID: "nokey-" + f.id})
			if err != nil {
				panic(err)
			}
			cmd, ferr := fsm.Commands.NewCommand(api.Principal{Role: api.RoleAdmin, ID: "admin"}, "", 0, api.OpCreateList, args)
			if ferr != nil {
				panic(ferr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, _, err = f.srv.Cluster.Commit(ctx, cmd)
			answers <- answer{node: f.id, err: err, at: time.Now(), nokey: true}
		}()
	}

	// The followers elect a new leader among themselves.
	var (
		newLeader string
		electedAt time.Time
	)
	testutil.WaitFor(t, leaderWait, func() bool {
		for _, f := range fs {
			if id, _ := f.srv.Node.Leader(); id == "" || id == l.id {
				return false
			}
		}
		newLeader, _ = fs[0].srv.Node.Leader()
		electedAt = time.Now()
		return true
	}, "the followers to know a new leader")
	t.Logf("new leader %s known by both followers %v after the freeze", newLeader, electedAt.Sub(frozeAt).Round(time.Millisecond))

	// Every write is acknowledged soon after: within a bound well below
	// the 10 s apply timeout, and while l is still frozen.
	const bound = 3 * time.Second
	for range 2*perFollower + 2 {
		a := <-answers
		if a.nokey {
			if api.CodeOf(a.err) != api.CodeTimeout {
				t.Fatalf("write without a seq through %s: %v, want timeout", a.node, a.err)
			}
		} else if a.err != nil {
			t.Fatalf("write through %s: %v (after %v)", a.node, a.err, a.at.Sub(frozeAt).Round(time.Millisecond))
		}
		if late := a.at.Sub(electedAt); late > bound {
			t.Fatalf("write through %s acknowledged %v after the new leader was known, want under %v",
				a.node, late.Round(time.Millisecond), bound)
		}
	}
	t.Logf("every write acknowledged %v after the freeze", time.Since(frozeAt).Round(time.Millisecond))

	// The old leader comes back; everyone converges, and each write is in
	// its transcript exactly once, on every node.
	z.Thaw()
	c.waitConverged()
	for _, n := range c.nodes {
		n.srv.FSM.Read(func(st *fsm.State, _ uint64) {
			for _, f := range fs {
				counts := map[string]int{}
				for _, r := range st.Requests {
					if r.Customer.ID != "cust-"+f.id {
						continue
					}
					for _, m := range r.Transcript {
						counts[m.Text]++
					}
				}
				for k := range perFollower {
					text := fmt.Sprintf("frozen-%d", k)
					if counts[text] != 1 {
						t.Errorf("on %s, the write %q through %s applied %d times, want once (transcript %v)",
							n.id, text, f.id, counts[text], counts)
					}
				}
			}
		})
	}
}

// haClient is a client connected to one named node.
type haClient struct {
	node string
	c    *transport.Client
}
