package node

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/switchboard/switchboard/transport"
)

// The in-process HA tests run whole nodes (Start: Raft on BoltDB,
// the actors, the client port with node-to-node calls) on loopback. Names
// carry an "ha" prefix so they stay apart from other test files' helpers.

const (
	haAdminToken   = "ha-admin-token"
	haClusterToken = "ha-cluster-token"
)

// haNode is one node of an in-process cluster that can be stopped and
// started again on the same data dir.
type haNode struct {
	t        testing.TB
	id       string
	dir      string
	client   string // client address, fixed across restarts
	raft     string // raft address, fixed across restarts
	ports    [2]*testutil.Port
	srv      *Server
	tune     func(*Config)
	stopOnce sync.Once
}

// haConfig is a node config sized for a loaded two-core CI machine under
// -race: elections take a second or so.
func (n *haNode) config() Config {
	cfg := Config{
		Raft: cluster.Config{
			NodeID:           n.id,
			DataDir:          n.dir,
			HeartbeatTimeout: 700 * time.Millisecond,
			ElectionTimeout:  700 * time.Millisecond,
			Logger:           testLogger(n.t),
		},
		ClientListener: n.ports[0].Listener(),
		RaftListener:   n.ports[1].Listener(),
		AdminToken:     haAdminToken,
		ClusterToken:   haClusterToken,
		Logger:         testLogger(n.t),
	}
	if n.tune != nil {
		n.tune(&cfg)
	}
	return cfg
}

// newHANode returns a node on two ports of its own (client, Raft), held
// for the whole test so that it restarts on the same addresses.
func newHANode(t testing.TB, id string, tune func(*Config)) *haNode {
	n := &haNode{t: t, id: id, dir: filepath.Join(t.TempDir(), id), tune: tune}
	n.ports = [2]*testutil.Port{testutil.NewPort(t), testutil.NewPort(t)}
	n.client, n.raft = n.ports[0].Addr(), n.ports[1].Addr()
	return n
}

// moveRaft gives the node a new Raft port, for its next start.
func (n *haNode) moveRaft() {
	n.ports[1] = testutil.NewPort(n.t)
	n.raft = n.ports[1].Addr()
}

// start starts the node; with bootstrap it returns once it is ready.
func (n *haNode) start(extra func(*Config)) {
	n.t.Helper()
	cfg := n.config()
	if extra != nil {
		extra(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaderWait)
	defer cancel()
	srv, err := Start(ctx, cfg)
	if err != nil {
		n.t.Fatalf("start %s: %v", n.id, err)
	}
	n.srv = srv
	n.stopOnce = sync.Once{}
	n.t.Cleanup(n.stop)
}

func (n *haNode) stop() {
	n.stopOnce.Do(func() {
		if n.srv != nil {
			if err := n.srv.Close(); err != nil {
				n.t.Logf("stop %s: %v", n.id, err)
			}
			n.srv = nil
		}
	})
}

func (n *haNode) waitReady() {
	n.t.Helper()
	select {
	case <-n.srv.Ready():
	case <-time.After(leaderWait):
		n.t.Fatalf("%s not ready within %v: %+v", n.id, leaderWait, n.srv.Node.Status())
	}
}

// haCluster is a set of nodes; node 0 bootstraps, the others join it.
type haCluster struct {
	t     testing.TB
	nodes []*haNode
}

func startHACluster(t testing.TB, size int, tune func(*Config)) *haCluster {
	t.Helper()
	c := &haCluster{t: t}
	for i := range size {
		c.nodes = append(c.nodes, newHANode(t, "n"+string(rune('1'+i)), tune))
	}
	c.nodes[0].start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	for _, n := range c.nodes[1:] {
		n.start(func(cfg *Config) { cfg.Join = []string{c.nodes[0].client} })
	}
	for _, n := range c.nodes {
		n.waitReady()
	}
	c.waitRegistered()
	return c
}

// addrs returns every node's client address, starting with node i's.
func (c *haCluster) addrs(i int) []string {
	var out []string
	for k := range c.nodes {
		out = append(out, c.nodes[(i+k)%len(c.nodes)].client)
	}
	return out
}

// running returns the nodes that are started.
func (c *haCluster) running() []*haNode {
	var out []*haNode
	for _, n := range c.nodes {
		if n.srv != nil {
			out = append(out, n)
		}
	}
	return out
}

// leader waits until the running nodes agree on a leader and returns it.
func (c *haCluster) leader() *haNode {
	c.t.Helper()
	var l *haNode
	waitFor(c.t, leaderWait, func() bool {
		l = nil
		ids := map[string]bool{}
		for _, n := range c.running() {
			id, _ := n.srv.Node.Leader()
			ids[id] = true
			if n.srv.Node.IsLeader() {
				l = n
			}
		}
		return l != nil && len(ids) == 1
	})
	return l
}

// followers returns the running nodes other than the leader.
func (c *haCluster) followers() []*haNode {
	l := c.leader()
	var out []*haNode
	for _, n := range c.running() {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

// waitRegistered waits until every running node's registry names every
// running node at its addresses.
func (c *haCluster) waitRegistered() {
	c.t.Helper()
	waitFor(c.t, leaderWait, func() bool {
		for _, n := range c.running() {
			for _, m := range c.running() {
				got, ok := n.srv.Cluster.Registered(m.id)
				if !ok || got != m.srv.Cluster.Self() {
					return false
				}
			}
		}
		return true
	})
}

// waitConverged waits until every running node has applied the leader's
// commit index and holds the same state.
func (c *haCluster) waitConverged() {
	c.t.Helper()
	l := c.leader()
	want := l.srv.Node.Raft().CommitIndex()
	ctx, cancel := context.WithTimeout(context.Background(), applyWait)
	defer cancel()
	for _, n := range c.running() {
		if err := n.srv.Node.WaitIndex(ctx, want); err != nil {
			c.t.Fatalf("%s did not reach the leader's commit index %d: %v", n.id, want, err)
		}
	}
	// Background commands (a registration) may still be applying: the
	// states must become and stay equal.
	var differ string
	deadline := time.Now().Add(applyWait)
	for {
		differ = ""
		ref, _ := stateOf(c.t, l.srv.FSM)
		for _, n := range c.running() {
			if got, _ := stateOf(c.t, n.srv.FSM); string(got) != string(ref) {
				differ = n.id
			}
		}
		if differ == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s's state differs from the leader %s's", differ, l.id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// haDial connects a client to addrs.
func haDial(t testing.TB, addrs []string, role, user, token string, reconnect bool) *transport.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, transport.ClientConfig{
		Addrs: addrs, Role: role, User: user, Token: token, Reconnect: reconnect,
		RequestTimeout: 30 * time.Second, DialTimeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial %s %s at %v: %v", role, user, addrs, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// haCall performs op and fails the test on error.
func haCall(t testing.TB, c *transport.Client, op string, args, out any) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idx, err := c.CallIndex(ctx, op, args, out)
	if err != nil {
		t.Fatalf("%s %+v: %v", op, args, err)
	}
	return idx
}

// haCode returns the error code of a call (CodeOK on success).
func haCode(err error) api.Code {
	var eb *transport.ErrorBody
	if errors.As(err, &eb) {
		return eb.Code
	}
	if err == nil {
		return api.CodeOK
	}
	return api.CodeInternal
}

// haSetup creates a pull-mode domain: MRD social, type fb, list L1,
// channel C1 on L1, connector fb and the agents, each subscribed to L1.
// It returns the agents' and the connector's tokens.
func haSetup(t testing.TB, admin *transport.Client, agents ...string) (map[string]string, string) {
	t.Helper()
	haCall(t, admin, "create_mrd", api.CreateMRDArgs{ID: "social"}, nil)
	haCall(t, admin, "create_channel_type", api.CreateChannelTypeArgs{ID: "fb", MRD: "social"}, nil)
	haCall(t, admin, "create_list", api.CreateListArgs{ID: "L1"}, nil)
	haCall(t, admin, "create_channel", api.CreateChannelArgs{ID: "C1", Type: "fb", Mode: api.ModePull, List: "L1"}, nil)
	tokens := map[string]string{}
	for _, a := range agents {
		var cred Credential
		haCall(t, admin, "create_agent", api.CreateAgentArgs{ID: a}, &cred)
		if cred.Token == "" {
			t.Fatalf("create_agent %s: no token in %+v", a, cred)
		}
		tokens[a] = cred.Token
		haCall(t, admin, "subscribe", api.SubscribeArgs{Agent: a, List: "L1"}, nil)
	}
	var cred Credential
	haCall(t, admin, "create_connector", api.CreateConnectorArgs{ID: "fb", Channels: []string{"C1"}}, &cred)
	return tokens, cred.Token
}

// haBackup streams a fresh snapshot of the leader through snapshot_read,
// as `ctl snapshot save` does.
func haBackup(t testing.TB, admin *transport.Client) []byte {
	t.Helper()
	var (
		out  []byte
		args = cluster.SnapshotReadArgs{Fresh: true}
	)
	for {
		var ch cluster.SnapshotChunk
		haCall(t, admin, OpSnapshotRead, args, &ch)
		if ch.Offset != int64(len(out)) {
			t.Fatalf("chunk at %d, want %d", ch.Offset, len(out))
		}
		out = append(out, ch.Data...)
		if ch.Done {
			if int64(len(out)) != ch.Size {
				t.Fatalf("backup of %d bytes, snapshot has %d", len(out), ch.Size)
			}
			return out
		}
		args = cluster.SnapshotReadArgs{ID: ch.ID, Offset: int64(len(out))}
	}
}

// haNextEvent returns the client's next event.
func haNextEvent(t testing.TB, c *transport.Client) transport.Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatalf("event stream ended: %v", c.Err())
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	return transport.Event{}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// checkSameStreamsJoinedOnce reads the events after seq from of the agent
// a1's two sessions, moved and reference, up to the request_created of
// request last, and fails unless both got the same events, each once and
// in order, with a1's join of request applied once.
func checkSameStreamsJoinedOnce(t *testing.T, moved, ref *transport.Client, from uint64, last, request string) {
	t.Helper()
	// Both sessions of a1 received the same events, each once and in
	// order; the join applied once.
	streams := map[string][]transport.Event{}
	for name, cl := range map[string]*transport.Client{"moved": moved, "reference": ref} {
		var evs []transport.Event
		prev := from
		for {
			ev := haNextEvent(t, cl)
			if ev.Seq <= from {
				continue // before the common start
			}
			if ev.Seq <= prev {
				t.Fatalf("%s stream: event %d (%s) after %d: duplicate or out of order", name, ev.Seq, ev.Kind, prev)
			}
			prev = ev.Seq
			evs = append(evs, ev)
			if ev.Kind == api.EvRequestCreated {
				var sum api.RequestSummary
				if err := ev.Decode(&sum); err != nil {
					t.Fatal(err)
				}
				if sum.ID == last {
					break
				}
			}
		}
		streams[name] = evs
	}
	seqs := func(evs []transport.Event) []uint64 {
		var out []uint64
		for _, ev := range evs {
			out = append(out, ev.Seq)
		}
		return out
	}
	if got, want := seqs(streams["moved"]), seqs(streams["reference"]); !slices.Equal(got, want) {
		t.Fatalf("the moved session's events differ from the reference's:\n got %v\nwant %v", got, want)
	}
	joins := 0
	for _, ev := range streams["reference"] {
		if ev.Kind != api.EvConversationJoined {
			continue
		}
		var pc api.ParticipantChange
		if err := ev.Decode(&pc); err != nil {
			t.Fatal(err)
		}
		if pc.Request == request && pc.Agent == "a1" {
			joins++
		}
	}
	if joins != 1 {
		t.Fatalf("a1 joined %s %d times, want once", request, joins)
	}
	t.Logf("%d events, the same on both sessions of a1", len(streams["reference"]))
}
