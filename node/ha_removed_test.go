package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/transport"
)

// haRemovedHold bounds how long TestHAClientLeavesRemovedNode waits for
// the agent's write after the removal: a client that leaves the removed
// node at its first unavailable answer is served by another node within
// a reconnect and a replay.
const haRemovedHold = 15 * time.Second

// TestHAClientLeavesRemovedNode: a node removed from the cluster keeps
// the sessions it had and answers their every request unavailable. A Go
// client with the other nodes' addresses leaves it at that answer, as
// after a lost connection: its write is acknowledged by the cluster,
// applied once, and its event stream continues on another node after
// the last event it had, with no gap, duplicate or reordering: the same
// events, in the same order, as a session of the same agent that was on
// a member all along.
func TestHAClientLeavesRemovedNode(t *testing.T) {
	c := startHACluster(t, 3, nil)
	l := c.leader()
	li := slices.Index(c.nodes, l)
	victim := c.followers()[0]
	vi := slices.Index(c.nodes, victim)
	admin := haDial(t, c.addrs(li), "admin", "", haAdminToken, true)
	tokens, fbToken := haSetup(t, admin, "a1")
	conn := haDial(t, c.addrs(li), "connector", "fb", fbToken, true)
	// The agent on the victim (then the others), and the same agent on
	// the leader, whose stream is the reference.
	ag := haDial(t, c.addrs(vi), "agent", "a1", tokens["a1"], true)
	ref := haDial(t, c.addrs(li), "agent", "a1", tokens["a1"], true)
	if n := ag.Welcome().Node; n != victim.id {
		t.Fatalf("agent on %s, want the victim %s", n, victim.id)
	}
	var from uint64 // events after the later of the two syncs are compared
	for _, cl := range []*transport.Client{ag, ref} {
		ev := haNextEvent(t, cl)
		if ev.Kind != api.EvSync {
			t.Fatalf("first event %s, want a sync", ev.Kind)
		}
		from = max(from, ev.Seq)
	}
	message := func(customer string) string {
		t.Helper()
		var r api.CustomerMessageResult
		haCall(t, conn, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: customer, Text: "hello"}, &r)
		return r.Request
	}
	request := message("before-1")
	message("before-2")

	haCall(t, admin, OpClusterRemove, cluster.NodeIDArgs{Node: victim.id}, nil)
	select {
	case <-victim.srv.RemovedCh():
	case <-time.After(leaderWait):
		t.Fatalf("%s never learned it was removed: %+v", victim.id, victim.srv.Node.Status())
	}
	removedAt := time.Now()
	t.Logf("%s removed; its sessions stay open", victim.id)

	type answer struct {
		res api.JoinResult
		err error
		at  time.Time
	}
	joined := make(chan answer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*haRemovedHold)
		defer cancel()
		r, err := ag.Join(ctx, request, "")
		joined <- answer{r, err, time.Now()}
	}()
	message("during-1")

	var a answer
	select {
	case a = <-joined:
	case <-time.After(haRemovedHold):
		t.Fatalf("the join sent to the removed node %s is still unanswered %v after its removal: the client stays on it", victim.id, haRemovedHold)
	}
	took := a.at.Sub(removedAt)
	if a.err != nil {
		t.Fatalf("join on the removed node: %v after %v, want success through another node", a.err, took.Round(time.Millisecond))
	}
	if a.res.Request.ID != request {
		t.Fatalf("join answered with request %q, want %q", a.res.Request.ID, request)
	}
	if n := ag.Welcome().Node; n == victim.id {
		t.Fatalf("the agent's client is still on the removed node %s", n)
	}
	t.Logf("join acknowledged %v after the removal, by way of %s", took.Round(time.Millisecond), ag.Welcome().Node)
	last := message("after-move")

	checkSameStreamsJoinedOnce(t, ag, ref, from, last, request)
}
