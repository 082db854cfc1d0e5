package transport_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// A node that has no leader answers writes no_leader once it has waited
// for one in vain (cluster.DefaultNoLeaderWait, 3 s). The fake here waits
// ctLeaderlessWait: past the client's stay on a node before a no_leader
// answer moves it (2 s).
const ctLeaderlessWait = 2500 * time.Millisecond

// leaderlessBackend is a node of the fake cluster that can lose its
// leader. While leaderless, a write waits for the leader's return for
// wait (not at all if 0), and is then answered no_leader, applied
// nothing; the node records the client id and seq of each write that
// found it leaderless. Reads and the event stream go on.
type leaderlessBackend struct {
	*ctBackend
	mu         sync.Mutex
	leaderless bool
	back       chan struct{} // closed when the leader returns
	wait       time.Duration
	waited     []transport.Write
}

func (b *leaderlessBackend) set(leaderless bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case leaderless && !b.leaderless:
		b.back = make(chan struct{})
	case !leaderless && b.leaderless:
		close(b.back)
	}
	b.leaderless, b.wait = leaderless, wait
}

// leaderlessWrites returns the writes that found the node leaderless.
func (b *leaderlessBackend) leaderlessWrites() []transport.Write {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.waited)
}

// ctNoLeader is the node's error: no_leader with a retry hint.
type ctNoLeader struct{ err *api.Error }

func (e ctNoLeader) Error() string           { return e.err.Error() }
func (e ctNoLeader) Unwrap() error           { return e.err }
func (ctNoLeader) RetryAfter() time.Duration { return 250 * time.Millisecond }

func (b *leaderlessBackend) Commit(ctx context.Context, w transport.Write) (any, uint64, error) {
	b.mu.Lock()
	if !b.leaderless {
		b.mu.Unlock()
		return b.ctBackend.Commit(ctx, w)
	}
	b.waited = append(b.waited, w)
	back, wait := b.back, b.wait
	b.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-back:
		return b.ctBackend.Commit(ctx, w)
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, 0, ctNoLeader{api.Errorf(api.CodeNoLeader, "no leader right now; retry")}
}

// newLeaderlessCluster is newCTCluster whose first node can lose its
// leader; the other nodes share be as they are.
func newLeaderlessCluster(t *testing.T, n int, be *ctBackend) (*ctCluster, *leaderlessBackend) {
	t.Helper()
	lb := &leaderlessBackend{ctBackend: be}
	return newCTClusterFirst(t, n, be, lb), lb
}

// TestClientLeavesLeaderlessNode: an agent whose node answers no_leader
// (a leader cut off from the others keeps its clients) moves to its next
// address, as after a lost connection: its write is applied there, sent
// with the client id and seq the leaderless node refused, and its event
// stream resumes after the last event it had, with no gap, no duplicate
// and no reordering. Several writes refused together move it once.
func TestClientLeavesLeaderlessNode(t *testing.T) {
	be := newCTBackend()
	be.overlap = 2 // the new node replays a little before the cursor
	cl, lb := newLeaderlessCluster(t, 2, be)
	adm := cl.admin(t, cl.addrs[1])
	tk := ctSetup(t, adm)
	cn := cl.dial(t, transport.ClientConfig{Addrs: cl.addrs[1:], Role: "connector", User: "cn1", Token: tk.connector})
	ag := cl.dial(t, transport.ClientConfig{Role: "agent", User: "a1", Token: tk.agent, Reconnect: true})
	if n := ag.Welcome().Node; n != "node-1" {
		t.Fatalf("agent on %s, want node-1", n)
	}
	start := expectKind(t, ag, api.EvSync)
	_, err := ag.Subscribe(ctCtx(t), "", "L1")
	must(t, err)
	got := []uint64{expectKind(t, ag, api.EvListSubscribed).Seq}
	var requests []string
	for _, c := range customerIDs(0, 5) {
		requests = append(requests, message(t, cn, c).Request)
	}
	for range 5 {
		got = append(got, expectKind(t, ag, api.EvRequestCreated).Seq)
	}

	// node-1 loses its leader: the agent's joins are answered no_leader
	// there, and applied on node-2.
	lb.set(true, ctLeaderlessWait)
	type joined struct {
		request string
		err     error
	}
	answers := make(chan joined, 3)
	sent := time.Now()
	for _, r := range requests[:3] {
		go func() {
			_, err := ag.Join(ctCtx(t), r, "")
			answers <- joined{r, err}
		}()
	}
	// Requests created meanwhile reach the agent whichever node it is on.
	for _, c := range customerIDs(5, 8) {
		message(t, cn, c)
	}
	for range 3 {
		select {
		case a := <-answers:
			if a.err != nil {
				t.Fatalf("join %s from a leaderless node: %v, want success through the other node", a.request, a.err)
			}
		case <-time.After(ctWait):
			t.Fatalf("a join refused no_leader was not answered within %v: the client stayed on the leaderless node", ctWait)
		}
	}
	t.Logf("joins answered %v after they were sent", time.Since(sent).Round(time.Millisecond))
	if n := ag.Welcome().Node; n != "node-2" {
		t.Fatalf("agent on %s after the no_leader answers, want node-2", n)
	}
	att := be.attachesOf(api.AgentKey("a1"))
	if len(att) != 2 || att[0].resume || !att[1].resume {
		t.Fatalf("attaches = %+v, want a fresh one, then one resume (one move for three refused writes)", att)
	}
	// Each join went to node-2 with the client id and seq node-1 refused,
	// and applied once.
	refused := lb.leaderlessWrites()
	if len(refused) != 3 {
		t.Fatalf("node-1 refused %d writes, want the 3 joins", len(refused))
	}
	for _, w := range refused {
		subs := be.submitsWhere(func(s ctSubmit) bool { return s.op == api.OpJoin && s.seq == w.Seq })
		if w.Op != api.OpJoin || len(subs) != 1 || subs[0].client != w.ClientID || w.ClientID != ag.ClientID() {
			t.Fatalf("refused %s seq %d by %s; applied as %+v: want it once, same client id and seq", w.Op, w.Seq, w.ClientID, subs)
		}
	}

	// The stream: every event for a1 after the sync, once, in order,
	// across the move.
	be.mu.Lock()
	var want []uint64
	for _, ev := range be.history {
		if slices.Contains(ev.To, api.AgentKey("a1")) && ev.Seq > start.Seq {
			want = append(want, ev.Seq)
		}
	}
	be.mu.Unlock()
	for len(got) < len(want) {
		ev := nextEvent(t, ag)
		if last := got[len(got)-1]; ev.Seq <= last {
			t.Fatalf("event %d (%s) after %d: duplicate or out of order", ev.Seq, ev.Kind, last)
		}
		got = append(got, ev.Seq)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("agent's events after the sync:\n got %v\nwant %v", got, want)
	}
	if !slices.Contains(got, att[1].since) || att[1].since < got[5] {
		t.Fatalf("resumed after %d, want the seq of an event delivered on node-1, at least %d", att[1].since, got[5])
	}
	select {
	case ev := <-ag.Events():
		t.Fatalf("unexpected event %d %s", ev.Seq, ev.Kind)
	default:
	}
}

// TestClientStaysOnLeaderlessNode: a client does not leave its node for
// a no_leader answer when it has nowhere to go (a single address), nor
// when it has been on the node for less than its stay (an answer given
// at once, as every node would give during an election, must not bounce
// clients from node to node): it retries there, with the same seq, as
// before.
func TestClientStaysOnLeaderlessNode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs int
		wait  time.Duration
	}{
		{"single address", 1, ctLeaderlessWait},
		{"young connection", 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newCTBackend()
			cl, lb := newLeaderlessCluster(t, 2, be)
			adm := cl.dial(t, transport.ClientConfig{Addrs: cl.addrs[:tc.addrs], Role: "admin", Token: ctAdminToken, Reconnect: true})
			lb.set(true, tc.wait)
			done := make(chan error, 1)
			go func() { done <- adm.CreateList(ctCtx(t), api.CreateListArgs{ID: "L"}) }()
			// The second attempt on node-1 shows the client stayed after
			// the first answer.
			waitFor(t, "a retry on node-1 after a no_leader answer", func() bool { return len(lb.leaderlessWrites()) >= 2 })
			lb.set(false, 0)
			select {
			case err := <-done:
				must(t, err)
			case <-time.After(ctWait):
				t.Fatal("create_list not answered once the node has a leader again")
			}
			if n := adm.Welcome().Node; n != "node-1" {
				t.Fatalf("client on %s, want node-1: it left", n)
			}
			subs := be.submitsWhere(func(s ctSubmit) bool { return s.op == api.OpCreateList })
			if tried := lb.leaderlessWrites(); len(subs) != 1 || subs[0].seq != tried[0].Seq || tried[1].Seq != tried[0].Seq {
				t.Fatalf("applied %+v after attempts on the leaderless node %+v: want once, all with the same seq", subs, tried)
			}
		})
	}
}
