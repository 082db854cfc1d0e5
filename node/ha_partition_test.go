package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// haPartitionHold is how long TestHAClientLeavesCutOffLeader keeps the
// leader cut off at most: the client's write must be acknowledged well
// within it, about the old leader's step-down (a lease, 700 ms here)
// plus the node's no-leader wait (3 s) after the cut.
const haPartitionHold = 15 * time.Second

// TestHAClientLeavesCutOffLeader: a leader cut off from the other nodes
// keeps its clients and answers their writes no_leader once it has
// stepped down and waited for a leader in vain. A Go client with other
// addresses leaves it at that answer, as after a lost connection: the
// write it had sent to the cut-off node is acknowledged by the majority
// while the cut lasts, applied once, and its event stream continues on
// the new node after the last event it had, with no gap, duplicate or
// reordering: the same events, in the same order, as a session of the
// same agent that was on the majority's side all along.
func TestHAClientLeavesCutOffLeader(t *testing.T) {
	cn := newCutNet()
	c := startHAClusterWith(t, 3, cn.tune)
	l := c.leader()
	li := slices.Index(c.nodes, l)
	f := c.followers()[0]
	fi := slices.Index(c.nodes, f)
	admin := haDial(t, c.addrs(fi), "admin", "", haAdminToken, true)
	tokens, fbToken := haSetup(t, admin, "a1")
	conn := haDial(t, c.addrs(fi), "connector", "fb", fbToken, true)
	// The agent on the leader (then the others), and the same agent on a
	// follower, whose stream is the reference.
	ag := haDial(t, c.addrs(li), "agent", "a1", tokens["a1"], true)
	ref := haDial(t, c.addrs(fi), "agent", "a1", tokens["a1"], true)
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

	cn.Isolate(l.id)
	cutAt := time.Now()
	t.Cleanup(func() { cn.Rejoin(l.id) })
	t.Logf("leader %s cut off from the others", l.id)

	type answer struct {
		res api.JoinResult
		err error
		at  time.Time
	}
	joined := make(chan answer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), haPartitionHold+leaderWait)
		defer cancel()
		r, err := ag.Join(ctx, request, "")
		joined <- answer{r, err, time.Now()}
	}()
	message("during-1") // on the majority's side: waits for its new leader

	var a answer
	select {
	case a = <-joined:
	case <-time.After(haPartitionHold - time.Since(cutAt)):
		t.Fatalf("the join sent to the cut-off leader %s is still unanswered %v after the cut: the client waits for the heal", l.id, haPartitionHold)
	}
	took := a.at.Sub(cutAt)
	if a.err != nil {
		t.Fatalf("join on the cut-off leader: %v after %v, want success through another node", a.err, took.Round(time.Millisecond))
	}
	if a.res.Request.ID != request {
		t.Fatalf("join answered with request %q, want %q", a.res.Request.ID, request)
	}
	if n := ag.Welcome().Node; n == l.id {
		t.Fatalf("the agent's client is still on the cut-off node %s", n)
	}
	if l.srv.Node.IsLeader() {
		t.Fatalf("the cut-off node %s leads: is the cut real?", l.id)
	}
	t.Logf("join acknowledged %v after the cut, by way of %s; the cut lasts on", took.Round(time.Millisecond), ag.Welcome().Node)
	message("during-2")

	cn.Rejoin(l.id)
	c.waitConverged()
	last := message("after-heal")

	checkSameStreamsJoinedOnce(t, ag, ref, from, last, request)
}
