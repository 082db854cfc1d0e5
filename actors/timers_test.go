package actors

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/testutil"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/fsm"
)

// sysNode is a real cluster.FSM feeding a Hub whose Submit applies the hub's
// own commands as the next log entries, with real leader time, and records
// them. Names are prefixed sys to stay clear of the other test helpers.
type sysNode struct {
	t   *testing.T
	fsm *cluster.FSM
	hub *Hub

	mu        sync.Mutex // serialises entries
	index     uint64
	submitted []string // "op agent/request offer", in order
	leader    bool
	refuse    int           // Submit fails (no commit) this many times
	elsewhere bool          // ConnectedElsewhere's answer
	behind    time.Duration // how far the leader's clock runs behind the wall clock
	asked     int           // ConnectedElsewhere calls
	// before, if set, is called with each submitted command before it is
	// applied, and after with its result (neither under mu).
	before func(*fsm.Command)
	after  func(*fsm.Command, fsm.Result)
}

var sysAdmin = api.Principal{Role: api.RoleAdmin, ID: "root"}

func newSysNode(t *testing.T, grace time.Duration, opts ...func(*Config)) *sysNode {
	t.Helper()
	n := &sysNode{t: t, fsm: cluster.NewFSM(nil, slog.New(slog.DiscardHandler)), leader: true}
	cfg := Config{
		Encode: testEncode,
		View: func(key string) (v api.StreamView, index uint64, ok bool) {
			n.fsm.Read(func(s *fsm.State, _ uint64) {
				v, ok = s.View(key)
				index = s.Index
			})
			return v, index, ok
		},
		Submit: n.submit,
		IsLeader: func() bool {
			n.mu.Lock()
			defer n.mu.Unlock()
			return n.leader
		},
		PendingOffers: func() (o []api.OfferInfo, index uint64) {
			n.fsm.Read(func(s *fsm.State, _ uint64) {
				o = s.PendingOffers()
				index = s.Index
			})
			return o, index
		},
		AgentPresence: func(id string) (p fsm.Presence) {
			n.fsm.Read(func(s *fsm.State, _ uint64) { p = s.PresenceOf(id) })
			return p
		},
		ConnectedElsewhere: func(context.Context, string) bool {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.asked++
			return n.elsewhere
		},
		Deadlines: func(request string) (ds []fsm.Deadline, index uint64) {
			n.fsm.Read(func(s *fsm.State, _ uint64) {
				ds = s.Deadlines(request)
				index = s.Index
			})
			return ds, index
		},
		// No periodic rescan unless a test asks: the timers must follow
		// the events by themselves.
		DeadlineRescan: -1,
		LogoutGrace:    grace,
		NodeID:         "n1",
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	n.hub = h
	n.fsm.SetSink(h)
	return n
}

// commit applies cmd as the next entry and returns its result.
func (n *sysNode) commit(cmd *fsm.Command) fsm.Result {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.index++
	cmd.Time = time.Now().Add(-n.behind).UnixNano()
	data, err := fsm.EncodeEntry(cmd)
	if err != nil {
		panic(err)
	}
	resp := n.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: n.index, Data: data}).(*cluster.ApplyResponse)
	if resp.Err != nil {
		panic(resp.Err)
	}
	return resp.Results[0]
}

func (n *sysNode) submit(_ context.Context, cmd *fsm.Command) (fsm.Result, error) {
	n.mu.Lock()
	desc := fmt.Sprintf("%d by %s", cmd.Op, cmd.By.ID)
	switch a := cmd.Args.(type) {
	case *api.OfferArgs:
		desc = fmt.Sprintf("offer_timeout %s %s", a.Request, a.OfferID)
	case *api.AgentArgs:
		desc = opName(cmd.Op) + " " + a.Agent
	case *fsm.LogoutAbsentArgs:
		desc = opName(cmd.Op) + " " + a.Agent
	case *api.RequestRef:
		desc = opName(cmd.Op) + " " + a.Request
	}
	if cmd.By.Role != api.RoleSystem || cmd.By.ID != "node:n1" {
		desc += fmt.Sprintf(" by %v", cmd.By)
	}
	n.submitted = append(n.submitted, desc)
	if n.refuse > 0 {
		n.refuse--
		n.mu.Unlock()
		return fsm.Result{}, &api.Error{Code: api.CodeNoLeader, Msg: "no leader (test)"}
	}
	before, after := n.before, n.after
	n.mu.Unlock()
	if before != nil {
		before(cmd)
	}
	res := n.commit(cmd)
	if after != nil {
		after(cmd, res)
	}
	return res, nil
}

// do applies a command and fails the test on a business error.
func (n *sysNode) do(by api.Principal, op fsm.Op, args any) any {
	n.t.Helper()
	res := n.commit(&fsm.Command{Op: op, By: by, Args: args})
	if res.Err != nil {
		n.t.Fatalf("op %d %+v: %v", op, args, res.Err)
	}
	return res.Data
}

func (n *sysNode) proposed() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.submitted)
}

func (n *sysNode) setLeader(leader bool) {
	n.mu.Lock()
	n.leader = leader
	n.mu.Unlock()
	n.hub.SetLeader(leader)
}

// world: MRD chat, queue Q (offers last timeout), push channel W, agents
// A and B (max 3) in Q, logged in and READY.
func (n *sysNode) world(timeout time.Duration) {
	n.t.Helper()
	n.do(sysAdmin, fsm.OpCreateMRD, &api.CreateMRDArgs{ID: "chat"})
	n.do(sysAdmin, fsm.OpCreateChannelType, &api.CreateChannelTypeArgs{ID: "web", MRD: "chat"})
	n.do(sysAdmin, fsm.OpCreateQueue, &api.CreateQueueArgs{ID: "Q", MRD: "chat", OfferTimeoutMs: timeout.Milliseconds()})
	n.do(sysAdmin, fsm.OpCreateChannel, &api.CreateChannelArgs{ID: "W", Type: "web", Mode: api.ModePush, Queue: "Q"})
	for _, id := range []string{"A", "B"} {
		n.do(sysAdmin, fsm.OpCreateAgent, &api.CreateAgentArgs{ID: id, Max: map[string]int{"chat": 3}, TokenHash: []byte("h")})
		n.do(sysAdmin, fsm.OpAddQueueMember, &api.QueueMemberArgs{Agent: id, Queue: "Q"})
	}
}

func (n *sysNode) ready(id string) {
	n.t.Helper()
	n.do(sysAdmin, fsm.OpLogin, &api.AgentArgs{Agent: id})
	n.do(sysAdmin, fsm.OpSetAgentState, &api.SetAgentStateArgs{Agent: id, MRD: "chat", State: api.AgentReady})
}

func (n *sysNode) arrive(customer string) string {
	n.t.Helper()
	res := n.do(sysAdmin, fsm.OpCustomerMessage, &api.CustomerMessageArgs{Channel: "W", CustomerID: customer, Text: "hi"})
	return res.(api.CustomerMessageResult).Request
}

// offerOf returns the pending offer of request r: its id and agent.
func (n *sysNode) offerOf(r string) (id, agent string) {
	n.fsm.Read(func(s *fsm.State, _ uint64) {
		if rq := s.Requests[r]; rq != nil && rq.Offer != nil {
			id, agent = rq.Offer.ID, rq.Offer.Agent
		}
	})
	return id, agent
}

func (n *sysNode) stateOf(agent string) (st api.AgentState, reason string) {
	n.fsm.Read(func(s *fsm.State, _ uint64) {
		as, _ := s.AgentStatus(agent)
		for _, m := range as.MRDs {
			if m.MRD == "chat" {
				st, reason = m.State, m.Reason
			}
		}
	})
	return st, reason
}

func (n *sysNode) armed() string {
	n.t.Helper()
	a, err := n.hub.ArmedOffers()
	if err != nil {
		n.t.Fatal(err)
	}
	var parts []string
	for _, o := range a {
		parts = append(parts, o.Request+"/"+o.Offer+"/"+o.Agent)
	}
	return strings.Join(parts, " ")
}

func sysWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, cond, "waiting for %s", what)
}

// sysHolds checks cond stays true for d: how an absence is asserted.
func sysHolds(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if !cond() {
			t.Fatalf("%s: no longer true", what)
		}
	}
}

// A timer that fires before the replicated clock reaches the offer's
// expiry (here: the leader's clock stamps commands 400 ms behind the
// clock the timer runs on) is refused by the FSM, and the timer tries
// again instead of forgetting the offer: the offer still lapses, once.
func TestOfferTimerRearmsWhenRefusedEarly(t *testing.T) {
	n := newSysNode(t, -1)
	n.setLeader(true)
	n.do(api.Principal{Role: api.RoleSystem, ID: "leader"}, fsm.OpSetFeatureLevel, &api.FeatureLevelArgs{Level: fsm.MaxLevel})
	n.world(150 * time.Millisecond)
	n.ready("A")
	n.mu.Lock()
	n.behind = 400 * time.Millisecond
	n.mu.Unlock()
	r := n.arrive("c1")
	o1, _ := n.offerOf(r)
	n.ready("B")
	sysWait(t, "the offer to lapse", func() bool { id, _ := n.offerOf(r); return id != o1 })
	var timeouts int
	for _, p := range n.proposed() {
		if p == "offer_timeout "+r+" "+o1 {
			timeouts++
		}
	}
	if timeouts < 2 {
		t.Fatalf("offer_timeout proposed %d times (%q); want a refused early one, then the one that lapsed it", timeouts, n.proposed())
	}
	if st, why := n.stateOf("A"); st != api.AgentNotReady || why != api.ReasonRingNoAnswer {
		t.Fatalf("A is %s (%s), want NOT_READY ring_no_answer", st, why)
	}
}

// The leader's timer withdraws a lapsed offer by proposing offer_timeout:
// the request goes to the other agent and the lapsing one is NOT_READY.
func TestOfferTimerProposesTimeoutOnLeader(t *testing.T) {
	n := newSysNode(t, -1)
	n.setLeader(true)
	n.world(150 * time.Millisecond)
	n.ready("A")
	r := n.arrive("c1")
	o1, ag := n.offerOf(r)
	if ag != "A" {
		t.Fatalf("offered to %q, want A", ag)
	}
	sysWait(t, "the timer to arm", func() bool { return n.armed() == r+"/"+o1+"/A" })
	n.ready("B")
	sysWait(t, "re-offer to B", func() bool { _, ag := n.offerOf(r); return ag == "B" })
	if st, why := n.stateOf("A"); st != api.AgentNotReady || why != api.ReasonRingNoAnswer {
		t.Fatalf("A is %s (%s), want NOT_READY ring_no_answer", st, why)
	}
	if got := n.proposed(); len(got) == 0 || got[0] != "offer_timeout "+r+" "+o1 {
		t.Fatalf("proposed %q, want offer_timeout %s %s first", got, r, o1)
	}
}

// Accepting, rejecting or closing ends an offer's timer; a re-offer arms
// a new one.
func TestOfferTimerDisarmedOnAnswer(t *testing.T) {
	n := newSysNode(t, -1)
	n.setLeader(true)
	n.world(time.Hour)
	n.ready("A")
	r1 := n.arrive("c1")
	o1, _ := n.offerOf(r1)
	sysWait(t, "the timer", func() bool { return n.armed() == r1+"/"+o1+"/A" })
	n.do(api.Principal{Role: api.RoleAgent, ID: "A"}, fsm.OpAcceptOffer, &api.OfferArgs{Request: r1})
	sysWait(t, "accept to disarm", func() bool { return n.armed() == "" })

	r2 := n.arrive("c2")
	o2, _ := n.offerOf(r2)
	sysWait(t, "the second timer", func() bool { return n.armed() == r2+"/"+o2+"/A" })
	// Rejected with nobody else READY: offered to A again, a new timer.
	n.do(api.Principal{Role: api.RoleAgent, ID: "A"}, fsm.OpRejectOffer, &api.OfferArgs{Request: r2})
	o3, ag := n.offerOf(r2)
	if o3 == o2 || ag != "A" {
		t.Fatalf("after reject: offer %q to %q", o3, ag)
	}
	sysWait(t, "the re-offer's timer", func() bool { return n.armed() == r2+"/"+o3+"/A" })
	n.do(sysAdmin, fsm.OpClose, &api.RequestArgs{Request: r2})
	sysWait(t, "close to disarm", func() bool { return n.armed() == "" })
	if got := n.proposed(); len(got) != 0 {
		t.Fatalf("proposed %q", got)
	}
}

// A follower arms nothing and proposes nothing; on gaining the lead it
// arms every pending offer, and a lapsed one fires at once. Losing the lead
// stops the timers.
func TestOfferTimersFollowLeadership(t *testing.T) {
	n := newSysNode(t, -1)
	n.leader = false
	n.world(100 * time.Millisecond)
	n.ready("A")
	r1 := n.arrive("c1")
	o1, _ := n.offerOf(r1)
	sysHolds(t, 250*time.Millisecond, "a follower proposes nothing, past the expiry", func() bool {
		return len(n.proposed()) == 0 && n.armed() == ""
	})
	n.setLeader(true)
	sysWait(t, "the lapsed offer to be withdrawn", func() bool { id, _ := n.offerOf(r1); return id == "" })
	if got, want := n.proposed(), []string{"offer_timeout " + r1 + " " + o1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("proposed %q, want %q", got, want)
	}

	// A longer offer, then leadership lost before it lapses.
	n.do(sysAdmin, fsm.OpSetAgentState, &api.SetAgentStateArgs{Agent: "A", MRD: "chat", State: api.AgentReady})
	sysWait(t, "re-offer to A", func() bool { _, ag := n.offerOf(r1); return ag == "A" })
	o2, _ := n.offerOf(r1)
	sysWait(t, "the new timer", func() bool { return n.armed() == r1+"/"+o2+"/A" })
	n.setLeader(false)
	sysWait(t, "timers stopped", func() bool { return n.armed() == "" })
	sysHolds(t, 250*time.Millisecond, "nothing proposed after losing the lead", func() bool { return len(n.proposed()) == 1 })
	if id, _ := n.offerOf(r1); id != o2 {
		t.Fatalf("offer %q, want %q still pending", id, o2)
	}
}

// A timer racing the answer is refused by the FSM (wrong_state); an
// offer_timeout that could not commit is retried while still leading.
func TestOfferTimerRetriesAndRaces(t *testing.T) {
	n := newSysNode(t, -1)
	n.setLeader(true)
	n.refuse = 1
	n.world(50 * time.Millisecond)
	n.ready("A")
	r := n.arrive("c1")
	o1, _ := n.offerOf(r)
	sysWait(t, "the retried timeout to apply", func() bool { id, _ := n.offerOf(r); return id == "" })
	want := []string{"offer_timeout " + r + " " + o1, "offer_timeout " + r + " " + o1}
	if got := n.proposed(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("proposed %q, want %q", got, want)
	}
	// A stale offer_timeout changes nothing.
	res := n.commit(&fsm.Command{Op: fsm.OpOfferTimeout, By: api.Principal{Role: api.RoleSystem, ID: "x"}, Args: &api.OfferArgs{Request: r, OfferID: o1}})
	if api.CodeOf(res.Err) != api.CodeWrongState {
		t.Fatalf("stale offer_timeout: %v, want wrong_state", res.Err)
	}
}

// After a snapshot install the leader's timers follow the new state: an
// offer the snapshot does not hold loses its timer, one it holds is armed.
func TestOfferTimersFollowRestore(t *testing.T) {
	n := newSysNode(t, -1)
	n.setLeader(true)
	n.world(time.Hour)
	n.ready("A")
	r1 := n.arrive("c1")
	o1, _ := n.offerOf(r1)
	var before []byte
	n.fsm.Read(func(s *fsm.State, _ uint64) {
		var err error
		if before, err = s.Marshal(); err != nil {
			t.Fatal(err)
		}
	})
	n.do(api.Principal{Role: api.RoleAgent, ID: "A"}, fsm.OpAcceptOffer, &api.OfferArgs{Request: r1})
	r2 := n.arrive("c2")
	o2, _ := n.offerOf(r2)
	sysWait(t, "the second timer", func() bool { return n.armed() == r2+"/"+o2+"/A" })
	if err := n.fsm.Restore(io.NopCloser(bytes.NewReader(before))); err != nil {
		t.Fatal(err)
	}
	sysWait(t, "the timers of the restored state", func() bool { return n.armed() == r1+"/"+o1+"/A" })
}

// An agent whose last session closes is logged out after the grace unless
// a session comes back in time; its pending offer goes to another agent.
func TestLogoutGrace(t *testing.T) {
	n := newSysNode(t, 150*time.Millisecond)
	n.leader = false // the grace logs out through Submit whoever leads
	n.world(time.Hour)
	n.ready("A")
	key := api.AgentKey("A")

	// Connected to another node: the grace passes without a logout.
	n.mu.Lock()
	n.elsewhere = true
	n.mu.Unlock()
	n.hub.Attach(key, 0, false, &outbox{})()
	sysWait(t, "the grace to ask the other nodes", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.asked == 1
	})
	n.mu.Lock()
	n.elsewhere = false
	n.mu.Unlock()
	if got := n.proposed(); len(got) != 0 {
		t.Fatalf("proposed %q for an agent connected elsewhere", got)
	}

	// Reconnecting within the grace keeps A logged in.
	detach := n.hub.Attach(key, 0, false, &outbox{})
	detach()
	detach2 := n.hub.Attach(key, 0, false, &outbox{})
	nothing := func() bool { return len(n.proposed()) == 0 }
	sysHolds(t, 300*time.Millisecond, "no proposal while a session is back", nothing)
	// Two sessions, one closes: still one attached.
	detach3 := n.hub.Attach(key, 0, false, &outbox{})
	detach3()
	sysHolds(t, 300*time.Millisecond, "no proposal with a session still attached", nothing)

	if got, err := n.hub.AgentSessions("A"); err != nil || got != 1 {
		t.Fatalf("AgentSessions(A) = %d, %v; want 1", got, err)
	}
	if got, err := n.hub.AgentSessions("nobody"); err != nil || got != 0 {
		t.Fatalf("AgentSessions(nobody) = %d, %v; want 0", got, err)
	}

	// A holds an offer when its last session closes: after the grace it is
	// logged out and B gets the request.
	r := n.arrive("c1")
	if _, ag := n.offerOf(r); ag != "A" {
		t.Fatalf("offered to %q, want A", ag)
	}
	n.ready("B")
	detach2()
	sysWait(t, "A logged out", func() bool { st, _ := n.stateOf("A"); return st == api.AgentLoggedOut })
	if _, ag := n.offerOf(r); ag != "B" {
		t.Fatalf("after A's logout the offer is with %q, want B", ag)
	}
	if got, want := n.proposed(), []string{"logout A"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("proposed %q, want %q", got, want)
	}

	// An agent not logged in is not logged out; a connector has no grace.
	for _, key := range []string{api.AgentKey("A"), api.ConnectorKey("cx")} {
		n.hub.Attach(key, 0, false, &outbox{})()
	}
	sysHolds(t, 300*time.Millisecond, "nothing more proposed", func() bool { return len(n.proposed()) == 1 })
}
