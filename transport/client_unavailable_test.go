package transport_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// ctLeaveStay is the client's stay on a node before a no_leader or
// unavailable answer from it moves the client (transport's
// clientLeaveStay).
const ctLeaveStay = 2 * time.Second

// removedBackend is a node of the fake cluster that can be removed from
// it. Once removed it answers as a real removed node does
// (node/removed.go): every hello, write and read is refused unavailable
// at once, and it records the client id and seq of each write it refused.
// The sessions it had stay open.
type removedBackend struct {
	*ctBackend
	id      string
	mu      sync.Mutex
	removed bool
	refused []transport.Write
}

func (b *removedBackend) remove() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removed = true
}

// refusedWrites returns the writes the node refused since its removal.
func (b *removedBackend) refusedWrites() []transport.Write {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.refused)
}

func (b *removedBackend) gone() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.removed {
		return nil
	}
	return api.Errorf(api.CodeUnavailable, "node %s was removed from the cluster: connect to another node", b.id)
}

func (b *removedBackend) Authenticate(role api.Role, id, token string) (api.Principal, error) {
	if err := b.gone(); err != nil {
		return api.Principal{}, err
	}
	return b.ctBackend.Authenticate(role, id, token)
}

func (b *removedBackend) Commit(ctx context.Context, w transport.Write) (any, uint64, error) {
	if err := b.gone(); err != nil {
		b.mu.Lock()
		b.refused = append(b.refused, w)
		b.mu.Unlock()
		return nil, 0, err
	}
	return b.ctBackend.Commit(ctx, w)
}

func (b *removedBackend) Query(ctx context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error) {
	if err := b.gone(); err != nil {
		return nil, err
	}
	return b.ctBackend.Query(ctx, p, op, args)
}

// newRemovableCluster is newCTCluster whose first node can be removed;
// the other nodes share be as they are.
func newRemovableCluster(t *testing.T, n int, be *ctBackend) (*ctCluster, *removedBackend) {
	t.Helper()
	rb := &removedBackend{ctBackend: be, id: "node-1"}
	return newCTClusterFirst(t, n, be, rb), rb
}

// TestClientLeavesUnavailableNode: an agent whose node answers
// unavailable (it was removed from the cluster, and keeps the sessions it
// had) moves to its next address, as after a lost connection: its writes
// are applied there, sent with the client id and seq the node refused, a
// read refused with them is answered there too, and its event stream
// resumes after the last event it had, with no gap, no duplicate and no
// reordering. Several calls refused together move it once; and not before
// its connection to the node is 2 s old: until then the calls are retried
// on the node.
func TestClientLeavesUnavailableNode(t *testing.T) {
	be := newCTBackend()
	be.overlap = 2 // the new node replays a little before the cursor
	cl, rb := newRemovableCluster(t, 2, be)
	adm := cl.admin(t, cl.addrs[1])
	tk := ctSetup(t, adm)
	cn := cl.dial(t, transport.ClientConfig{Addrs: cl.addrs[1:], Role: "connector", User: "cn1", Token: tk.connector})
	dialed := time.Now() // the agent's connection to node-1 is younger than this
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

	// node-1 is removed: the agent's joins and a read are answered
	// unavailable there, and served by node-2.
	rb.remove()
	type answer struct {
		what string
		err  error
		at   time.Time
	}
	answers := make(chan answer, 4)
	for _, r := range requests[:3] {
		go func() {
			_, err := ag.Join(ctCtx(t), r, "")
			answers <- answer{"join " + r, err, time.Now()}
		}()
	}
	go func() {
		var v api.StreamView
		err := ag.Call(ctCtx(t), api.QueryView, nil, &v)
		answers <- answer{"get_view", err, time.Now()}
	}()
	// Requests created meanwhile reach the agent whichever node it is on.
	for _, c := range customerIDs(5, 8) {
		message(t, cn, c)
	}
	for range 4 {
		select {
		case a := <-answers:
			if a.err != nil {
				t.Fatalf("%s from a removed node: %v, want success through the other node", a.what, a.err)
			}
			// Served by node-2 only once the client left node-1, which
			// it may not do before the connection is ctLeaveStay old.
			if early := ctLeaveStay - a.at.Sub(dialed); early > 0 {
				t.Fatalf("%s answered %v before the connection to node-1 was %v old: the client did not stay", a.what, early, ctLeaveStay)
			}
		case <-time.After(ctWait):
			t.Fatalf("a call refused unavailable was not answered within %v: the client stayed on the removed node", ctWait)
		}
	}
	if n := ag.Welcome().Node; n != "node-2" {
		t.Fatalf("agent on %s after the unavailable answers, want node-2", n)
	}
	att := be.attachesOf(api.AgentKey("a1"))
	if len(att) != 2 || att[0].resume || !att[1].resume {
		t.Fatalf("attaches = %+v, want a fresh one, then one resume (one move for four refused calls)", att)
	}
	// Each join went to node-2 with the client id and seq node-1 refused
	// (as often as node-1 refused it), and applied once.
	refused := rb.refusedWrites()
	seqs := map[uint64]bool{}
	for _, w := range refused {
		seqs[w.Seq] = true
		subs := be.submitsWhere(func(s ctSubmit) bool { return s.op == api.OpJoin && s.seq == w.Seq })
		if w.Op != api.OpJoin || len(subs) != 1 || subs[0].client != w.ClientID || w.ClientID != ag.ClientID() {
			t.Fatalf("refused %s seq %d by %s; applied as %+v: want it once, same client id and seq", w.Op, w.Seq, w.ClientID, subs)
		}
	}
	if len(seqs) != 3 {
		t.Fatalf("node-1 refused writes of %d seqs (%d attempts), want the 3 joins", len(seqs), len(refused))
	}
	t.Logf("node-1 refused %d attempts of the 3 joins before the client left it", len(refused))

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
