package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

// TestHAForwardingReadYourWrites: any node accepts any write; a follower
// forwards it and answers only once it has applied it, so a read on that
// follower right after sees it; a create_agent through a follower returns
// a token that logs in on every node; a linearizable read on another
// follower sees the write too.
func TestHAForwardingReadYourWrites(t *testing.T) {
	c := startHACluster(t, 3, nil)
	f := c.followers()
	admin := haDial(t, []string{f[0].client}, "admin", "", haAdminToken, false)
	for i := range 20 {
		id := fmt.Sprintf("X%d", i)
		idx := haCall(t, admin, "create_list", api.CreateListArgs{ID: id}, nil)
		if idx == 0 {
			t.Fatalf("create_list through a follower: no index")
		}
		// Read-your-writes on the follower that answered.
		var lists []api.ListInfo
		haCall(t, admin, api.QueryLists, nil, &lists)
		if !slices.ContainsFunc(lists, func(l api.ListInfo) bool { return l.ID == id }) {
			t.Fatalf("follower %s answered create_list %s (index %d) but does not list it (applied %d)",
				f[0].id, id, idx, f[0].srv.FSM.Applied())
		}
	}
	// A linearizable read on the other follower sees the last write.
	other := haDial(t, []string{f[1].client}, "admin", "", haAdminToken, false)
	ctx, cancel := context.WithTimeout(transport.WithLinearizable(context.Background()), 20*time.Second)
	defer cancel()
	var lists []api.ListInfo
	if err := other.Call(ctx, api.QueryLists, nil, &lists); err != nil {
		t.Fatalf("linearizable read on %s: %v", f[1].id, err)
	}
	if len(lists) != 20 || lists[19].ID != "X9" {
		t.Fatalf("linearizable read on %s: %d lists, want 20", f[1].id, len(lists))
	}

	// A token made through a follower logs in everywhere.
	tokens, _ := haSetup(t, admin, "alice")
	for _, n := range c.nodes {
		a := haDial(t, []string{n.client}, "agent", "alice", tokens["alice"], false)
		var v api.StreamView
		haCall(t, a, api.QueryView, nil, &v)
		if v.Agent != "alice" {
			t.Fatalf("alice's view on %s: %+v", n.id, v)
		}
	}
	// A business error keeps its code through the forward.
	err := admin.Call(context.Background(), "create_list", api.CreateListArgs{ID: "X0"}, nil)
	if haCode(err) != api.CodeAlreadyExists {
		t.Fatalf("duplicate create through a follower: %v, want already_exists", err)
	}
	// Only nodes may change the registry.
	err = admin.Call(context.Background(), "register_node", fsm.RegisterNodeArgs{Node: fsm.NodeInfo{ID: "x", RaftAddr: "h:1", ClientAddr: "h:2"}}, nil)
	if haCode(err) != api.CodeForbidden {
		t.Fatalf("register_node by an admin: %v, want forbidden", err)
	}
	c.waitConverged()
}

// TestHAJoinIsIdempotentAndReplaces: joining again with the same id and
// address changes nothing; a node back with a wiped data dir and a new
// Raft address under the same id replaces its old entry.
func TestHAJoinIsIdempotentAndReplaces(t *testing.T) {
	c := startHACluster(t, 3, nil)
	l := c.leader()
	before, err := l.srv.Node.Members()
	if err != nil {
		t.Fatal(err)
	}
	idxBefore := l.srv.Node.Raft().LastIndex()
	n3 := c.nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n3.srv.Cluster.JoinCluster(ctx, []string{c.nodes[0].client, c.nodes[1].client}); err != nil {
		t.Fatalf("second join: %v", err)
	}
	after, err := l.srv.Node.Members()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("a repeated join changed the configuration:\n%v\n%v", before, after)
	}
	if got := l.srv.Node.Raft().LastIndex(); got != idxBefore {
		t.Fatalf("a repeated join wrote to the log: last index %d -> %d", idxBefore, got)
	}

	// n3 comes back wiped, on a new Raft port, same id.
	n3.stop()
	n3.dir += "-wiped"
	n3.moveRaft()
	n3.start(func(cfg *Config) { cfg.Join = []string{c.nodes[0].client, c.nodes[1].client} })
	n3.waitReady()
	c.waitRegistered()
	servers, err := c.leader().srv.Node.Members()
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 3 {
		t.Fatalf("after the rejoin: %v, want 3 servers", servers)
	}
	for _, s := range servers {
		if string(s.ID) == n3.id && string(s.Address) != n3.srv.Node.Addr() {
			t.Fatalf("n3 still at %s, want %s", s.Address, n3.srv.Node.Addr())
		}
	}
	admin := haDial(t, []string{n3.client}, "admin", "", haAdminToken, false)
	haCall(t, admin, "create_list", api.CreateListArgs{ID: "after-rejoin"}, nil)
	c.waitConverged()
}

// TestHANoLeaderIsATypedError: with the quorum gone, a write is answered
// no_leader with a retry hint within the no-leader wait, not a hang.
func TestHANoLeaderIsATypedError(t *testing.T) {
	c := startHACluster(t, 3, nil)
	f := c.followers()
	admin := haDial(t, []string{f[0].client}, "admin", "", haAdminToken, false)
	haCall(t, admin, "create_list", api.CreateListArgs{ID: "L1"}, nil)
	for _, n := range c.nodes {
		if n != f[0] {
			n.stop()
		}
	}
	waitFor(t, leaderWait, func() bool { id, _ := f[0].srv.Node.Leader(); return id == "" })
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := admin.Call(ctx, "create_list", api.CreateListArgs{ID: "L2"}, nil)
	var eb *transport.ErrorBody
	if !errors.As(err, &eb) || eb.Code != api.CodeNoLeader || eb.RetryMs <= 0 {
		t.Fatalf("write without a quorum: %v, want no_leader with retry_ms", err)
	}
	if d := time.Since(start); d > 2*cluster.DefaultNoLeaderWait+time.Second {
		t.Fatalf("no_leader took %v", d)
	}
	// A linearizable read says the same; a local read still answers.
	err = admin.Call(transport.WithLinearizable(ctx), api.QueryLists, nil, nil)
	if haCode(err) != api.CodeNoLeader {
		t.Fatalf("linearizable read without a quorum: %v, want no_leader", err)
	}
	var lists []api.ListInfo
	haCall(t, admin, api.QueryLists, nil, &lists)
	if len(lists) != 1 {
		t.Fatalf("local read: %+v", lists)
	}
}

// TestHAFailoverResumesOnAnotherNode: an agent connected to the leader
// keeps its stream when the leader stops: it reconnects to another node
// and resumes after its last seq, with nothing lost or repeated, while a
// connector keeps writing through the failover.
func TestHAFailoverResumesOnAnotherNode(t *testing.T) {
	c := startHACluster(t, 3, nil)
	l := c.leader()
	li := slices.Index(c.nodes, l)
	admin := haDial(t, c.addrs(li), "admin", "", haAdminToken, true)
	tokens, fbToken := haSetup(t, admin, "alice")
	alice := haDial(t, c.addrs(li), "agent", "alice", tokens["alice"], true)
	fb := haDial(t, c.addrs((li+1)%3), "connector", "fb", fbToken, true)

	got := make(chan transport.Event, 1024)
	go func() {
		for ev := range alice.Events() {
			got <- ev
		}
	}()
	var (
		created []string
		lastSeq uint64
	)
	expect := func(n int) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for len(created) < n {
			select {
			case ev := <-got:
				if ev.Seq <= lastSeq {
					t.Fatalf("event seq %d after %d", ev.Seq, lastSeq)
				}
				first := lastSeq == 0
				lastSeq = ev.Seq
				if ev.Kind == api.EvSync && !first {
					t.Fatalf("unexpected sync at seq %d: the history covers the cursor", ev.Seq)
				}
				if ev.Kind == api.EvRequestCreated {
					var s api.RequestSummary
					if err := ev.Decode(&s); err != nil {
						t.Fatal(err)
					}
					created = append(created, s.ID)
				}
			case <-deadline:
				t.Fatalf("alice got %d request.created events, want %d", len(created), n)
			}
		}
	}
	send := func(i int) string {
		var r api.CustomerMessageResult
		haCall(t, fb, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: fmt.Sprintf("cust%d", i), Text: "hi"}, &r)
		return r.Request
	}
	var sent []string
	for i := range 10 {
		sent = append(sent, send(i))
	}
	expect(10)
	l.stop()
	for i := 10; i < 20; i++ {
		sent = append(sent, send(i))
	}
	expect(20)
	if fmt.Sprint(created) != fmt.Sprint(sent) {
		t.Fatalf("alice saw %v\nwant %v", created, sent)
	}
	if w := alice.Welcome(); w.Node == l.id {
		t.Fatalf("alice still on the stopped leader %s", l.id)
	}
}

// TestHACatchUpBySnapshotAndRestoreResync: a node down while the leader
// compacted its log catches up by snapshot install; restoring a backup
// re-syncs connected agents on every node.
func TestHACatchUpBySnapshotAndRestoreResync(t *testing.T) {
	c := startHACluster(t, 3, func(cfg *Config) {
		cfg.Raft.SnapshotThreshold = 50
		cfg.Raft.TrailingLogs = 10
		cfg.Raft.SnapshotInterval = 200 * time.Millisecond
	})
	l := c.leader()
	f := c.followers()
	admin := haDial(t, c.addrs(slices.Index(c.nodes, l)), "admin", "", haAdminToken, true)
	tokens, _ := haSetup(t, admin, "alice")

	// A backup of the state as it is now.
	backup := haBackup(t, admin)

	down := f[1]
	down.stop()
	for i := range 200 {
		haCall(t, admin, "create_list", api.CreateListArgs{ID: fmt.Sprintf("X%d", i)}, nil)
	}
	if err := l.srv.Node.Snapshot(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		t.Fatal(err)
	}
	snap, ok, err := l.srv.Node.LatestSnapshot()
	if err != nil || !ok {
		t.Fatalf("leader snapshot: %v %v", ok, err)
	}
	down.start(nil)
	down.waitReady()
	c.waitConverged()
	if st := down.srv.Node.Status(); st.LastSnapshotIndex < snap.Index {
		t.Fatalf("%s caught up without installing the leader's snapshot %d: %+v", down.id, snap.Index, st)
	}

	// Agents connected to every node hear of the restore by a sync.
	var agents []*transport.Client
	for i := range c.nodes {
		a := haDial(t, []string{c.nodes[i].client}, "agent", "alice", tokens["alice"], false)
		ev := haNextEvent(t, a)
		if ev.Kind != api.EvSync {
			t.Fatalf("first event %s", ev.Kind)
		}
		agents = append(agents, a)
	}
	haCall(t, admin, "create_list", api.CreateListArgs{ID: "L2"}, nil)
	haCall(t, admin, "subscribe", api.SubscribeArgs{Agent: "alice", List: "L2"}, nil)
	for _, a := range agents {
		if ev := haNextEvent(t, a); ev.Kind != api.EvListSubscribed {
			t.Fatalf("want list.subscribed, got %s", ev.Kind)
		}
	}
	if _, err := c.leader().srv.Node.RestoreBackup(bytesReader(backup), time.Minute); err != nil {
		t.Fatalf("restore: %v", err)
	}
	for i, a := range agents {
		ev := haNextEvent(t, a)
		if ev.Kind != api.EvSync {
			t.Fatalf("agent on %s after the restore: %s, want sync", c.nodes[i].id, ev.Kind)
		}
		var v api.StreamView
		if err := ev.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if len(v.Lists) != 1 || v.Lists[0].List != "L1" {
			t.Fatalf("view after restore on %s: %+v, want only L1", c.nodes[i].id, v.Lists)
		}
	}
	c.waitConverged()
}

// TestHAMembershipOps: cluster status, leadership transfer to a chosen
// node and removal, through the admin ops on a follower.
func TestHAMembershipOps(t *testing.T) {
	c := startHACluster(t, 3, nil)
	f := c.followers()
	admin := haDial(t, []string{f[0].client}, "admin", "", haAdminToken, true)

	var cs api.ClusterStatus
	haCall(t, admin, QueryClusterStatus, nil, &cs)
	if len(cs.Nodes) != 3 || cs.Leader != c.leader().id {
		t.Fatalf("cluster status: %+v", cs)
	}
	for _, n := range cs.Nodes {
		if !n.Reachable || n.Status == nil || n.ClientAddr == "" {
			t.Fatalf("cluster status: node %+v", n)
		}
	}

	var tr cluster.TransferResult
	haCall(t, admin, OpTransferLeadership, cluster.NodeIDArgs{Node: f[1].id}, &tr)
	waitFor(t, leaderWait, func() bool { return c.leader() == f[1] })

	// Remove the node the admin is not connected to, nor the leader.
	var victim *haNode
	for _, n := range c.nodes {
		if n != f[0] && n != f[1] {
			victim = n
		}
	}
	haCall(t, admin, OpClusterRemove, cluster.NodeIDArgs{Node: victim.id}, nil)
	waitFor(t, leaderWait, func() bool {
		servers, err := f[0].srv.Node.Members()
		_, registered := f[0].srv.Cluster.Registered(victim.id)
		return err == nil && len(servers) == 2 && !registered
	})
	victim.stop()
	// The two left still commit.
	haCall(t, admin, "create_list", api.CreateListArgs{ID: "after-remove"}, nil)
	err := admin.Call(context.Background(), OpClusterRemove, cluster.NodeIDArgs{Node: "nobody"}, nil)
	if haCode(err) != api.CodeNotFound {
		t.Fatalf("removing a non-member: %v", err)
	}
	agentLike := haDial(t, []string{f[0].client}, "admin", "", haAdminToken, false)
	_ = agentLike
}

// TestHABootstrapExpect: three nodes started together, each listing the
// others, form one cluster.
func TestHABootstrapExpect(t *testing.T) {
	var nodes []*haNode
	for _, id := range []string{"b", "a", "c"} {
		nodes = append(nodes, newHANode(t, id, nil))
	}
	var all []string
	for _, n := range nodes {
		all = append(all, n.client)
	}
	for _, n := range nodes {
		n.start(func(cfg *Config) { cfg.BootstrapExpect = 3; cfg.Join = all })
	}
	for _, n := range nodes {
		n.waitReady()
	}
	c := &haCluster{t: t, nodes: nodes}
	c.waitRegistered()
	for _, n := range nodes {
		servers, err := n.srv.Node.Members()
		if err != nil || len(servers) != 3 {
			t.Fatalf("%s: configuration %v %v", n.id, servers, err)
		}
	}
	admin := haDial(t, all, "admin", "", haAdminToken, true)
	haCall(t, admin, "create_list", api.CreateListArgs{ID: "L1"}, nil)
	c.waitConverged()
}
