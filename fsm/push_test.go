package fsm

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// The product's first example: auto mode, max 3. Accepting an offer leads at
// once to the next while requests wait, up to 3 conversations; a fourth
// comes only when one ends.
func TestPushAutoModeMaxThree(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X")
	var reqs []string
	for i := 1; i <= 5; i++ {
		id, evs := ptArrive(t, s, "WS", fmt.Sprintf("c%d", i), 0)
		reqs = append(reqs, id)
		if i == 1 {
			ptWantKinds(t, evs, "request.queued→connector:cx", "offer.created→agent:X")
			want := api.OfferInfo{ID: "O1", Kind: api.OfferRoute, Agent: "X", Request: s.Requests[id].summary(), Queue: "QS", MRD: "chat", CreatedAt: s.Now, ExpiresAt: s.Now + 30_000*1_000_000}
			ptEqual(t, "offer.created payload", evs[1].Data, any(want))
			ptEqual(t, "request.queued payload", evs[0].Data, any(api.RequestQueued{Request: s.Requests[id].summary(), Queue: "QS", Reason: api.QueuedArrival}))
		} else {
			// X already holds an offer: the console asks for one at a time.
			ptWantKinds(t, evs, "request.queued→connector:cx")
		}
	}
	ptEqual(t, "offers", ptOffered(s), []string{"R1→X"})
	for i := 0; i < 3; i++ {
		evs := ptAccept(t, s, "X", reqs[i])
		if i < 2 {
			ptWantKinds(t, evs, "conversation.joined→agent:X,connector:cx", "offer.created→agent:X")
			ptEqual(t, "next offer", ptOffered(s), []string{reqs[i+1] + "→X"})
		} else {
			ptWantKinds(t, evs, "conversation.joined→agent:X,connector:cx")
			ptEqual(t, "offers at max", ptOffered(s), []string(nil))
		}
	}
	st, _ := s.AgentStatus("X")
	ptEqual(t, "chat load", st.MRDs[0], api.AgentMRDStatus{MRD: "chat", State: api.AgentReady, Since: ptT0, Conversations: 3, Max: 3})
	ptEqual(t, "still waiting", s.Queues["QS"].Waiting, []string{"R4", "R5"})

	// One conversation ends: the fourth request is offered.
	_, evs := ptApply(t, s, ptCmd(OpClose, ptAgent("X"), &api.RequestArgs{Request: "R1"}))
	ptWantKinds(t, evs, "conversation.closed→agent:X,connector:cx", "offer.created→agent:X")
	ptEqual(t, "after close", ptOffered(s), []string{"R4→X"})
}

// The product's second example: pull chat mode, max 3, one chat open:
// nothing is offered until Request Chat, which yields exactly one.
func TestPushPullChatModeRequestChat(t *testing.T) {
	s := ptWorld(t)
	ptApply(t, s, ptCmd(OpSetAgentMode, ptAgent("X"), &api.SetAgentModeArgs{Mode: api.AgentModePull}))
	ptReady(t, s, "chat", "X")
	// The open chat: a list request X joined (it counts in MRD chat too).
	ptApply(t, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: "f1", Text: "hi"}))
	ptApply(t, s, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: "R1"}))
	for i := 2; i <= 4; i++ {
		_, evs := ptArrive(t, s, "WS", fmt.Sprintf("c%d", i), 0)
		ptWantKinds(t, evs, "request.queued→connector:cx")
	}
	ptEqual(t, "offers before request_chat", ptOffered(s), []string(nil))

	res, evs := ptApply(t, s, ptCmd(OpRequestChat, ptAgent("X"), &api.AgentArgs{}))
	ptWantKinds(t, evs, "offer.created→agent:X")
	rc := res.Data.(api.RequestChatResult)
	if rc.Pending || rc.Offer == nil || rc.Offer.Request.ID != "R2" || rc.Offer.Agent != "X" {
		t.Fatalf("request_chat result %+v, want an offer of R2", rc)
	}
	ptEqual(t, "offers", ptOffered(s), []string{"R2→X"})
	ptEqual(t, "waiting", s.Queues["QS"].Waiting, []string{"R3", "R4"})
	if s.Agents["X"].ChatRequested {
		t.Fatal("the served chat request is still pending")
	}

	// Accepting does not bring another offer in pull chat mode.
	evs = ptAccept(t, s, "X", "R2")
	ptWantKinds(t, evs, "conversation.joined→agent:X,connector:cx")
	// One more Request Chat fills the third place; a fourth is refused.
	ptApply(t, s, ptCmd(OpRequestChat, ptAgent("X"), &api.AgentArgs{}))
	ptEqual(t, "offers", ptOffered(s), []string{"R3→X"})
	ptReject(t, s, ptCmd(OpRequestChat, ptAgent("X"), &api.AgentArgs{}), api.CodeOverCapacity)
}

// A Request Chat with nothing waiting stays pending and is served by the
// next arrival, once.
func TestPushRequestChatPending(t *testing.T) {
	s := ptWorld(t)
	ptApply(t, s, ptCmd(OpSetAgentMode, ptAgent("X"), &api.SetAgentModeArgs{Mode: api.AgentModePull}))
	ptReady(t, s, "chat", "X")
	res, evs := ptApply(t, s, ptCmd(OpRequestChat, ptAgent("X"), &api.AgentArgs{}))
	ptEqual(t, "result", res.Data, any(api.RequestChatResult{Pending: true}))
	ptWantKinds(t, evs)
	ptReject(t, s, ptCmd(OpRequestChat, ptAgent("X"), &api.AgentArgs{}), api.CodeWrongState)

	_, evs = ptArrive(t, s, "WV", "c1", 0)
	ptWantKinds(t, evs, "request.queued→connector:cx", "offer.created→agent:X")
	_, evs = ptArrive(t, s, "WS", "c2", 0)
	ptWantKinds(t, evs, "request.queued→connector:cx")
	ptEqual(t, "offers", ptOffered(s), []string{"R1→X"})

	// Switching to auto mode drops a pending request and routes at once.
	ptApply(t, s, ptCmd(OpRequestChat, ptAgent("X"), &api.AgentArgs{}))
	ptEqual(t, "offers", ptOffered(s), []string{"R1→X", "R2→X"})
	ptApply(t, s, ptCmd(OpRequestChat, ptAgent("X"), &api.AgentArgs{}))
	if !s.Agents["X"].ChatRequested {
		t.Fatal("chat request not pending")
	}
	_, evs = ptApply(t, s, ptCmd(OpSetAgentMode, ptAgent("X"), &api.SetAgentModeArgs{Mode: api.AgentModeAuto}))
	ptWantKinds(t, evs, "agent.mode→agent:X")
	if s.Agents["X"].ChatRequested {
		t.Fatal("chat request still pending in auto mode")
	}
}

func TestPushOfferTimeout(t *testing.T) {
	t.Run("re-offered to another agent", func(t *testing.T) {
		s := ptWorld(t)
		ptReady(t, s, "chat", "X", "Y")
		_, _ = ptArrive(t, s, "WS", "c1", 0)
		ptEqual(t, "offers", ptOffered(s), []string{"R1→X"})
		lapsed := s.offerInfo(s.Requests["R1"])
		ptTick(t, s, 30_000)
		timeout := ptCmd(OpOfferTimeout, ptSystem, &api.OfferArgs{Request: "R1", OfferID: "O1"})
		_, evs := ptApply(t, s, timeout)
		ptWantKinds(t, evs, "offer.withdrawn→agent:X", "agent.state→agent:X", "offer.created→agent:Y")
		ptEqual(t, "withdrawn", evs[0].Data, any(api.OfferWithdrawn{Offer: lapsed, Reason: api.WithdrawTimeout}))
		ptEqual(t, "agent.state", evs[1].Data, any(api.AgentStateChange{Agent: "X", MRD: "chat", State: api.AgentNotReady, Reason: api.ReasonRingNoAnswer, Since: s.Now}))
		ptEqual(t, "offers", ptOffered(s), []string{"R1→Y"})
		ptEqual(t, "X in chat", s.Agents["X"].stateIn("chat"), AgentMRDState{State: api.AgentNotReady, Reason: api.ReasonRingNoAnswer, Since: s.Now})
		ptEqual(t, "declined", s.Requests["R1"].Declined, []string{"X"})
		// The timer's second shot finds the offer gone.
		ptReject(t, s, timeout, api.CodeWrongState)
	})
	t.Run("before the expiry: refused, the offer stays", func(t *testing.T) {
		s := ptWorld(t)
		ptReady(t, s, "chat", "X", "Y")
		ptArrive(t, s, "WS", "c1", 0)
		ptTick(t, s, 29_999) // 1 ms short of the 30 s offer timeout
		timeout := ptCmd(OpOfferTimeout, ptSystem, &api.OfferArgs{Request: "R1", OfferID: "O1"})
		ptReject(t, s, timeout, api.CodeWrongState)
		ptEqual(t, "offers", ptOffered(s), []string{"R1→X"})
		ptTick(t, s, 1)
		_, evs := ptApply(t, s, timeout)
		ptWantKinds(t, evs, "offer.withdrawn→agent:X", "agent.state→agent:X", "offer.created→agent:Y")
	})
	t.Run("sole agent: queued, back to it when READY again", func(t *testing.T) {
		s := ptWorld(t)
		ptReady(t, s, "chat", "X")
		ptArrive(t, s, "WS", "c1", 0)
		queuedAt := s.Requests["R1"].QueuedAt
		ptTick(t, s, 30_000)
		_, evs := ptApply(t, s, ptCmd(OpOfferTimeout, ptSystem, &api.OfferArgs{Request: "R1", OfferID: "O1"}))
		ptWantKinds(t, evs, "offer.withdrawn→agent:X", "agent.state→agent:X")
		ptEqual(t, "waiting", s.Queues["QS"].Waiting, []string{"R1"})
		ptEqual(t, "kept its place", s.Requests["R1"].QueuedAt, queuedAt)
		_, evs = ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("X"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}))
		ptWantKinds(t, evs, "agent.state→agent:X", "offer.created→agent:X")
	})
}

func TestPushRejectGoesToNextAgent(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X", "Y", "Z")
	ptArrive(t, s, "WS", "c1", 0)
	for _, step := range []struct{ by, next string }{{"X", "Y"}, {"Y", "Z"}, {"Z", "X"}} {
		ptTick(t, s, 1000)
		_, evs := ptApply(t, s, ptCmd(OpRejectOffer, ptAgent(step.by), &api.OfferArgs{Request: "R1"}))
		ptWantKinds(t, evs, "offer.withdrawn→agent:"+step.by, "offer.created→agent:"+step.next)
		if w := evs[0].Data.(api.OfferWithdrawn); w.Reason != api.WithdrawRejected {
			t.Fatalf("reason %q", w.Reason)
		}
		ptEqual(t, "offers after "+step.by+" rejects", ptOffered(s), []string{"R1→" + step.next})
	}
	// Everyone declined: the last resort is the longest idle (X, offered
	// first), and all stay declined until someone accepts.
	ptEqual(t, "declined", s.Requests["R1"].Declined, []string{"X", "Y", "Z"})
	ptAccept(t, s, "X", "R1")
	ptEqual(t, "declined after accept", s.Requests["R1"].Declined, []string(nil))

	t.Run("sole agent gets it back", func(t *testing.T) {
		s := ptWorld(t)
		ptReady(t, s, "chat", "X")
		ptArrive(t, s, "WS", "c1", 0)
		_, evs := ptApply(t, s, ptCmd(OpRejectOffer, ptAgent("X"), &api.OfferArgs{Request: "R1", OfferID: "O1"}))
		ptWantKinds(t, evs, "offer.withdrawn→agent:X", "offer.created→agent:X")
		ptEqual(t, "offer id", s.Requests["R1"].Offer.ID, "O2")
		// An answer naming the old offer is stale.
		ptReject(t, s, ptCmd(OpAcceptOffer, ptAgent("X"), &api.OfferArgs{Request: "R1", OfferID: "O1"}), api.CodeWrongState)
	})
	t.Run("rejecting agent gets the next request instead", func(t *testing.T) {
		s := ptWorld(t)
		ptReady(t, s, "chat", "X")
		ptArrive(t, s, "WS", "c1", 0)
		ptArrive(t, s, "WS", "c2", 0)
		ptApply(t, s, ptCmd(OpRejectOffer, ptAgent("X"), &api.OfferArgs{Request: "R1"}))
		ptEqual(t, "offers", ptOffered(s), []string{"R2→X"})
		ptEqual(t, "waiting", s.Queues["QS"].Waiting, []string{"R1"})
	})
}

func TestPushLogoutReroutes(t *testing.T) {
	for _, by := range []api.Principal{ptAgent("X"), ptAdmin, ptSystem} {
		t.Run(by.Role.String(), func(t *testing.T) {
			s := ptWorld(t)
			ptReady(t, s, "chat", "X", "Y")
			ptArrive(t, s, "WS", "c1", 0)
			ptEqual(t, "offers", ptOffered(s), []string{"R1→X"})
			args := &api.AgentArgs{}
			if by.Role != api.RoleAgent {
				args.Agent = "X"
			}
			res, evs := ptApply(t, s, ptCmd(OpLogout, by, args))
			ptWantKinds(t, evs, "offer.withdrawn→agent:X", "agent.state→agent:X", "offer.created→agent:Y")
			ptEqual(t, "reason", evs[0].Data.(api.OfferWithdrawn).Reason, api.WithdrawLoggedOut)
			ptEqual(t, "agent.state", evs[1].Data, any(api.AgentStateChange{Agent: "X", State: api.AgentLoggedOut, Since: s.Now}))
			ptEqual(t, "offers", ptOffered(s), []string{"R1→Y"})
			st := res.Data.(api.AgentStatus)
			for _, m := range st.MRDs {
				if m.State != api.AgentLoggedOut {
					t.Fatalf("after logout %s is %s", m.MRD, m.State)
				}
			}
			ptReject(t, s, ptCmd(OpLogout, by, args), api.CodeWrongState)
		})
	}
	t.Run("nobody else: back in the queue at its place", func(t *testing.T) {
		s := ptWorld(t)
		ptReady(t, s, "chat", "X")
		ptArrive(t, s, "WS", "c1", 0)
		ptTick(t, s, 5)
		ptArrive(t, s, "WS", "c2", 0)
		ptApply(t, s, ptCmd(OpLogout, ptAgent("X"), &api.AgentArgs{}))
		ptEqual(t, "waiting", s.Queues["QS"].Waiting, []string{"R1", "R2"})
		ptEqual(t, "declined", s.Requests["R1"].Declined, []string(nil))
	})
}

func TestPushNotReadyReturnsOffers(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X", "Y")
	ptReady(t, s, "email", "X")
	ptArrive(t, s, "WS", "c1", 0)
	ptArrive(t, s, "ME", "m1", 0)
	ptEqual(t, "offers", ptOffered(s), []string{"R1→X", "R2→X"})
	_, evs := ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("X"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady, Reason: "break"}))
	ptWantKinds(t, evs, "offer.withdrawn→agent:X", "agent.state→agent:X", "offer.created→agent:Y")
	ptEqual(t, "reason", evs[0].Data.(api.OfferWithdrawn).Reason, api.WithdrawNotReady)
	// The email offer is untouched.
	ptEqual(t, "offers", ptOffered(s), []string{"R1→Y", "R2→X"})
	// Same state and reason again: nothing happens.
	_, evs = ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("X"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady, Reason: "break"}))
	ptWantKinds(t, evs)
}

// Both pull policies on two queues of different priorities (QV 5, QS 1),
// in pull chat mode and in auto mode.
func TestPushPullPolicies(t *testing.T) {
	cases := []struct {
		policy api.PullPolicy
		want   []string
	}{
		{"", []string{"R2", "R4", "R1"}}, // the default is strict priority
		{api.PolicyStrictPriority, []string{"R2", "R4", "R1"}},
		{api.PolicyFirstDue, []string{"R1", "R2", "R3"}},
	}
	setup := func(t *testing.T, policy api.PullPolicy) *State {
		s := ptWorld(t)
		if policy != "" {
			ptApply(t, s, ptCmd(OpSetPullPolicy, ptAdmin, &api.SetPullPolicyArgs{Policy: policy}))
		}
		// QS: R1 (t+0), R3 (t+2); QV: R2 (t+1), R4 (t+3).
		for i, ch := range []string{"WS", "WV", "WS", "WV"} {
			ptArrive(t, s, ch, fmt.Sprintf("c%d", i+1), 0)
			ptTick(t, s, 1000)
		}
		return s
	}
	for _, tc := range cases {
		name := string(tc.policy)
		if name == "" {
			name = "default"
		}
		t.Run(name+"/pull chat mode", func(t *testing.T) {
			s := setup(t, tc.policy)
			ptApply(t, s, ptCmd(OpSetAgentMode, ptAgent("X"), &api.SetAgentModeArgs{Mode: api.AgentModePull}))
			ptReady(t, s, "chat", "X")
			var got []string
			for range 3 {
				res, _ := ptApply(t, s, ptCmd(OpRequestChat, ptAgent("X"), &api.AgentArgs{}))
				got = append(got, res.Data.(api.RequestChatResult).Offer.Request.ID)
			}
			ptEqual(t, "offer order", got, tc.want)
			ptReject(t, s, ptCmd(OpRequestChat, ptAgent("X"), &api.AgentArgs{}), api.CodeOverCapacity)
		})
		t.Run(name+"/auto mode", func(t *testing.T) {
			s := setup(t, tc.policy)
			ptReady(t, s, "chat", "X")
			var got []string
			for range 3 {
				id := s.Agents["X"].Offers[0]
				got = append(got, id)
				ptAccept(t, s, "X", id)
			}
			ptEqual(t, "offer order", got, tc.want)
		})
	}
}

// Within a queue: request priority (highest first), then arrival, then id.
func TestPushQueueOrder(t *testing.T) {
	s := ptWorld(t)
	for i, prio := range []int{0, 2, 0, 2, 1} {
		ptArrive(t, s, "WS", fmt.Sprintf("c%d", i+1), prio)
	}
	ptTick(t, s, 1)
	ptArrive(t, s, "WS", "c6", 2)
	ptEqual(t, "waiting", s.Queues["QS"].Waiting, []string{"R2", "R4", "R6", "R5", "R1", "R3"})
	v, err := s.Query(ptAdmin, api.QueryQueue, ptMsgpack(t, api.QueryArgs{Queue: "QS"}))
	if err != nil {
		t.Fatal(err)
	}
	qv := v.(api.QueueView)
	ptEqual(t, "view head", qv.Waiting[0], api.QueuedRequest{Request: s.Requests["R2"].summary(), Priority: 2, QueuedAt: ptT0})
	ptReady(t, s, "chat", "X")
	ptEqual(t, "first offer", ptOffered(s), []string{"R2→X"})
}

// Fair choice: least loaded, then longest since the last assignment, then
// id.
func TestPushFairness(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X", "Y", "Z")
	arriveAccept := func(customer, want string) string {
		t.Helper()
		ptTick(t, s, 1000)
		id, _ := ptArrive(t, s, "WS", customer, 0)
		if got := ptOfferee(s, id); got != want {
			t.Fatalf("%s offered to %q, want %s (offers %v)", id, got, want, ptOffered(s))
		}
		ptTick(t, s, 1000)
		ptAccept(t, s, want, id)
		return id
	}
	arriveAccept("c1", "X") // all equal: id
	r2 := arriveAccept("c2", "Y")
	arriveAccept("c3", "Z")
	ptApply(t, s, ptCmd(OpClose, ptConn, &api.RequestArgs{Request: r2}))
	arriveAccept("c4", "Y") // least loaded (0 against 1)
	arriveAccept("c5", "X") // all at 1: X was assigned longest ago
	arriveAccept("c6", "Z") // Y and Z at 1, X at 2: Z assigned before Y
}

func TestPushTransfer(t *testing.T) {
	setup := func(t *testing.T) *State {
		s := ptWorld(t)
		ptReady(t, s, "chat", "X", "Y", "Z")
		ptArrive(t, s, "WS", "c1", 0)
		ptAccept(t, s, "X", "R1")
		return s
	}
	t.Run("accepted", func(t *testing.T) {
		s := setup(t)
		res, evs := ptApply(t, s, ptCmd(OpTransfer, ptAgent("X"), &api.TransferArgs{Request: "R1", ToAgent: "Y"}))
		ptWantKinds(t, evs, "conversation.left→agent:X,connector:cx", "offer.created→agent:Y")
		info := res.Data.(api.OfferInfo)
		if info.Kind != api.OfferTransfer || info.From != "X" || info.Agent != "Y" || info.Request.State != api.StateInactive {
			t.Fatalf("transfer offer %+v", info)
		}
		evs = ptAccept(t, s, "Y", "R1")
		ptWantKinds(t, evs, "conversation.joined→agent:Y,connector:cx")
		ptEqual(t, "participants", s.Requests["R1"].Participants, []string{"Y"})
	})
	t.Run("rejected: to the queue, then to someone else", func(t *testing.T) {
		s := setup(t)
		ptApply(t, s, ptCmd(OpTransfer, ptAgent("X"), &api.TransferArgs{Request: "R1", ToAgent: "Y"}))
		_, evs := ptApply(t, s, ptCmd(OpRejectOffer, ptAgent("Y"), &api.OfferArgs{Request: "R1"}))
		ptWantKinds(t, evs, "offer.withdrawn→agent:Y,agent:X", "request.queued→connector:cx", "offer.created→agent:Z")
		ptEqual(t, "reason", evs[1].Data.(api.RequestQueued).Reason, api.QueuedTransferFailed)
		ptEqual(t, "declined", s.Requests["R1"].Declined, []string{"X", "Y"})
	})
	t.Run("rejections", func(t *testing.T) {
		s := setup(t)
		tr := func(by api.Principal, agent, to string) *Command {
			return ptCmd(OpTransfer, by, &api.TransferArgs{Request: "R1", Agent: agent, ToAgent: to})
		}
		ptReject(t, s, tr(ptAgent("Y"), "", "Z"), api.CodeNotParticipant)
		ptReject(t, s, tr(ptAdmin, "Y", "Z"), api.CodeNotParticipant)
		ptReject(t, s, tr(ptAgent("X"), "", ""), api.CodeBadRequest)
		ptReject(t, s, tr(ptAgent("X"), "", "nobody"), api.CodeNotFound)
		ptReject(t, s, tr(ptAgent("X"), "", "X"), api.CodeAlreadyParticipant)
		ptReject(t, s, tr(ptAgent("X"), "Y", "Z"), api.CodeForbidden)
		ptReject(t, s, tr(ptConn, "X", "Z"), api.CodeForbidden)
		ptReject(t, s, ptCmd(OpTransfer, ptAgent("X"), &api.TransferArgs{Request: "R9", ToAgent: "Y"}), api.CodeNotFound)
		ptApply(t, s, ptCmd(OpLogout, ptAgent("Z"), &api.AgentArgs{}))
		ptReject(t, s, tr(ptAgent("X"), "", "Z"), api.CodeWrongState)
		ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("Y"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady}))
		ptReject(t, s, tr(ptAgent("X"), "", "Y"), api.CodeWrongState)
		ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("Y"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}))
		// Y full of list conversations.
		for i := range 3 {
			ptApply(t, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: fmt.Sprintf("f%d", i), Text: "hi"}))
			ptApply(t, s, ptCmd(OpJoin, ptAgent("Y"), &api.RequestArgs{Request: fmt.Sprintf("R%d", i+2)}))
		}
		ptReject(t, s, tr(ptAgent("X"), "", "Y"), api.CodeOverCapacity)
		// A pending invitation blocks another offer.
		ptReady(t, s, "chat", "Z")
		ptApply(t, s, ptCmd(OpInvite, ptAgent("X"), &api.TransferArgs{Request: "R1", ToAgent: "Z"}))
		ptReject(t, s, tr(ptAgent("X"), "", "Z"), api.CodeWrongState)
		ptApply(t, s, ptCmd(OpClose, ptConn, &api.RequestArgs{Request: "R1"}))
		ptReject(t, s, tr(ptAgent("X"), "", "Z"), api.CodeClosed)
	})
}

func TestPushInvite(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X", "Y")
	ptArrive(t, s, "WS", "c1", 0)
	ptAccept(t, s, "X", "R1")
	res, evs := ptApply(t, s, ptCmd(OpInvite, ptAgent("X"), &api.TransferArgs{Request: "R1", ToAgent: "Y"}))
	ptWantKinds(t, evs, "offer.created→agent:Y")
	if info := res.Data.(api.OfferInfo); info.Kind != api.OfferInvite || info.From != "X" {
		t.Fatalf("invitation %+v", info)
	}
	// The invitation reserves Y's capacity but is not a routing offer, so a
	// new arrival may still be offered to Y: X and Y both count 1, and Y
	// has never been assigned anything.
	ptTick(t, s, 10)
	ptArrive(t, s, "WS", "c2", 0)
	ptEqual(t, "offers", ptOffered(s), []string{"R1→Y", "R2→Y"})
	_, evs = ptApply(t, s, ptCmd(OpRejectOffer, ptAgent("Y"), &api.OfferArgs{Request: "R1"}))
	ptWantKinds(t, evs, "offer.withdrawn→agent:Y,agent:X")
	ptEqual(t, "still X alone", s.Requests["R1"].Participants, []string{"X"})
	ptApply(t, s, ptCmd(OpInvite, ptAgent("X"), &api.TransferArgs{Request: "R1", ToAgent: "Y"}))
	evs = ptAccept(t, s, "Y", "R1")
	ptWantKinds(t, evs, "conversation.joined→agent:X,agent:Y,connector:cx")
	ptEqual(t, "conference", s.Requests["R1"].Participants, []string{"X", "Y"})
	ptReject(t, s, ptCmd(OpInvite, ptAgent("X"), &api.TransferArgs{Request: "R1", ToAgent: "Y"}), api.CodeAlreadyParticipant)
	ptReject(t, s, ptCmd(OpInvite, ptAgent("Z"), &api.TransferArgs{Request: "R1", ToAgent: "Y"}), api.CodeNotParticipant)
}

func TestPushTransferToQueue(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X", "Y")
	ptArrive(t, s, "WS", "c1", 0)
	ptAccept(t, s, "X", "R1")
	ptReject(t, s, ptCmd(OpTransferToQueue, ptAgent("X"), &api.TransferToQueueArgs{Request: "R1", Queue: "QE"}), api.CodeBadRequest)
	ptReject(t, s, ptCmd(OpTransferToQueue, ptAgent("X"), &api.TransferToQueueArgs{Request: "R1", Queue: "Q9"}), api.CodeNotFound)
	ptReject(t, s, ptCmd(OpTransferToQueue, ptAgent("Y"), &api.TransferToQueueArgs{Request: "R1", Queue: "QV"}), api.CodeNotParticipant)
	ptTick(t, s, 500)
	_, evs := ptApply(t, s, ptCmd(OpTransferToQueue, ptAgent("X"), &api.TransferToQueueArgs{Request: "R1", Queue: "QV"}))
	ptWantKinds(t, evs, "conversation.left→agent:X,connector:cx", "request.queued→connector:cx", "offer.created→agent:Y")
	r := s.Requests["R1"]
	if r.Queue != "QV" || r.QueuedAt != s.Now || r.State != api.StateInactive {
		t.Fatalf("moved request %+v", r)
	}
	ptEqual(t, "declined", r.Declined, []string{"X"})
	// An admin may move a request still waiting; into its own queue is
	// refused.
	ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("Y"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady}))
	ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("X"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady}))
	ptEqual(t, "queued", s.Queues["QV"].Waiting, []string{"R1"})
	ptReject(t, s, ptCmd(OpTransferToQueue, ptAdmin, &api.TransferToQueueArgs{Request: "R1", Queue: "QV"}), api.CodeWrongState)
	ptApply(t, s, ptCmd(OpTransferToQueue, ptAdmin, &api.TransferToQueueArgs{Request: "R1", Queue: "QS"}))
	ptEqual(t, "moved", []int{len(s.Queues["QV"].Waiting), len(s.Queues["QS"].Waiting)}, []int{0, 1})
	// A list request is not in push routing.
	ptApply(t, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: "f1", Text: "hi"}))
	ptApply(t, s, ptCmd(OpJoin, ptAgent("Z"), &api.RequestArgs{Request: "R2"}))
	ptReject(t, s, ptCmd(OpTransferToQueue, ptAgent("Z"), &api.TransferToQueueArgs{Request: "R2", Queue: "QS"}), api.CodeWrongState)
}

// Leave and close hooks: the last agent leaving re-queues a push request;
// closing withdraws its offer or takes it out of the queue; both free
// capacity.
func TestPushLeaveAndClose(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X", "Y")
	ptArrive(t, s, "WS", "c1", 0)
	ptAccept(t, s, "X", "R1")
	_, evs := ptApply(t, s, ptCmd(OpLeave, ptAgent("X"), &api.RequestArgs{Request: "R1"}))
	ptWantKinds(t, evs, "conversation.left→agent:X,connector:cx", "request.queued→connector:cx", "offer.created→agent:Y")
	ptEqual(t, "reason", evs[1].Data.(api.RequestQueued).Reason, api.QueuedAgentLeft)

	_, evs = ptApply(t, s, ptCmd(OpClose, ptConn, &api.RequestArgs{Request: "R1"}))
	ptWantKinds(t, evs, "offer.withdrawn→agent:Y", "conversation.closed→connector:cx")
	ptEqual(t, "reason", evs[0].Data.(api.OfferWithdrawn).Reason, api.WithdrawClosed)

	ptApply(t, s, ptCmd(OpLogout, ptAgent("X"), &api.AgentArgs{}))
	ptApply(t, s, ptCmd(OpLogout, ptAgent("Y"), &api.AgentArgs{}))
	ptArrive(t, s, "WS", "c2", 0)
	_, evs = ptApply(t, s, ptCmd(OpClose, ptConn, &api.RequestArgs{Request: "R2"}))
	ptWantKinds(t, evs, "conversation.closed→connector:cx")
	ptEqual(t, "waiting", len(s.Queues["QS"].Waiting), 0)
	// The customer writes again: a new request.
	id, _ := ptArrive(t, s, "WS", "c2", 0)
	ptEqual(t, "new request", id, "R3")
}

// Every conversation in the MRD counts against the maximum, list ones too,
// and offers reserve capacity against list joins.
func TestPushCapacityAcrossModes(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X")
	for i := range 3 {
		ptApply(t, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: fmt.Sprintf("f%d", i), Text: "hi"}))
		ptApply(t, s, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: fmt.Sprintf("R%d", i+1)}))
	}
	ptArrive(t, s, "WS", "c1", 0)
	ptEqual(t, "no offer at max", ptOffered(s), []string(nil))
	_, evs := ptApply(t, s, ptCmd(OpLeave, ptAgent("X"), &api.RequestArgs{Request: "R1"}))
	ptWantKinds(t, evs, "conversation.left→agent:X,connector:cx", "request.updated→agent:X,agent:Y,agent:Z", "offer.created→agent:X")
	// X: 2 list conversations + 1 offer = 3: no list join.
	ptReject(t, s, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: "R1"}), api.CodeOverCapacity)
}

func TestPushJoinRules(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X")
	ptArrive(t, s, "WS", "c1", 0)
	ptArrive(t, s, "WS", "c2", 0)
	ptReject(t, s, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: "R1"}), api.CodeWrongState) // its own offer
	ptReject(t, s, ptCmd(OpJoin, ptAgent("Y"), &api.RequestArgs{Request: "R1"}), api.CodeWrongState) // offered to X
	ptReject(t, s, ptCmd(OpJoin, ptAgent("Y"), &api.RequestArgs{Request: "R2"}), api.CodeWrongState) // queued
	ptAccept(t, s, "X", "R1")
	ptApply(t, s, ptCmd(OpRemoveQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "Z", Queue: "QS"}))
	ptReject(t, s, ptCmd(OpJoin, ptAgent("Z"), &api.RequestArgs{Request: "R1"}), api.CodeNotSubscribed)
	_, evs := ptApply(t, s, ptCmd(OpJoin, ptAgent("Y"), &api.RequestArgs{Request: "R1"}))
	ptWantKinds(t, evs, "conversation.joined→agent:X,agent:Y,connector:cx")
}

func TestPushPendingOffers(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X", "Y")
	ptReady(t, s, "email", "X")
	ptArrive(t, s, "WS", "c1", 0) // 30 s → X
	ptTick(t, s, 1000)
	ptArrive(t, s, "WV", "c2", 0) // 10 s → Y
	ptTick(t, s, 1000)
	ptArrive(t, s, "ME", "m1", 0) // default 30 s → X
	var got []string
	for _, o := range s.PendingOffers() {
		got = append(got, fmt.Sprintf("%s:%s:%s:%d", o.ID, o.Request.ID, o.Agent, (o.ExpiresAt-ptT0)/1_000_000))
	}
	ptEqual(t, "pending", got, []string{"O2:R2:Y:11000", "O1:R1:X:30000", "O3:R3:X:32000"})
}

func TestPushQueueMembers(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X", "Y")
	ptArrive(t, s, "WS", "c1", 0)
	_, evs := ptApply(t, s, ptCmd(OpRemoveQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "X", Queue: "QS"}))
	ptWantKinds(t, evs, "offer.withdrawn→agent:X", "offer.created→agent:Y")
	ptEqual(t, "reason", evs[0].Data.(api.OfferWithdrawn).Reason, api.WithdrawRemoved)
	ptEqual(t, "members", s.Queues["QS"].Members, []string{"Y", "Z"})
	ptEqual(t, "queues", s.Agents["X"].Queues, []string{"QE", "QV"})
	// A new member is routed to at once.
	ptApply(t, s, ptCmd(OpLogout, ptAgent("Y"), &api.AgentArgs{}))
	ptEqual(t, "queued", s.Queues["QS"].Waiting, []string{"R1"})
	_, evs = ptApply(t, s, ptCmd(OpAddQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "X", Queue: "QS"}))
	ptWantKinds(t, evs, "offer.created→agent:X")
	// delete_agent: refused while it holds offers; drops memberships.
	ptReject(t, s, ptCmd(OpDeleteAgent, ptAdmin, &api.IDArgs{ID: "X"}), api.CodeWrongState)
	ptApply(t, s, ptCmd(OpDeleteAgent, ptAdmin, &api.IDArgs{ID: "Z"}))
	ptEqual(t, "members", s.Queues["QV"].Members, []string{"X", "Y"})
}

// Rejections of the new commands: exact codes, nothing changed.
func TestPushRejections(t *testing.T) {
	type rc struct {
		name string
		prep func(t *testing.T, s *State)
		c    *Command
		code api.Code
	}
	login := func(ids ...string) func(t *testing.T, s *State) {
		return func(t *testing.T, s *State) {
			for _, id := range ids {
				ptApply(t, s, ptCmd(OpLogin, ptAgent(id), &api.AgentArgs{}))
			}
		}
	}
	pullReady := func(t *testing.T, s *State) {
		ptApply(t, s, ptCmd(OpSetAgentMode, ptAgent("X"), &api.SetAgentModeArgs{Mode: api.AgentModePull}))
		ptReady(t, s, "chat", "X")
	}
	offered := func(t *testing.T, s *State) {
		ptReady(t, s, "chat", "X")
		ptArrive(t, s, "WS", "c1", 0)
	}
	x := ptAgent("X")
	cases := []rc{
		{"login: unknown agent", nil, ptCmd(OpLogin, ptAdmin, &api.AgentArgs{Agent: "nobody"}), api.CodeNotFound},
		{"login: admin names nobody", nil, ptCmd(OpLogin, ptAdmin, &api.AgentArgs{}), api.CodeBadRequest},
		{"login: for another agent", nil, ptCmd(OpLogin, x, &api.AgentArgs{Agent: "Y"}), api.CodeForbidden},
		{"login: connector", nil, ptCmd(OpLogin, ptConn, &api.AgentArgs{Agent: "X"}), api.CodeForbidden},
		{"login: system", nil, ptCmd(OpLogin, ptSystem, &api.AgentArgs{Agent: "X"}), api.CodeForbidden},
		{"logout: not logged in", nil, ptCmd(OpLogout, x, &api.AgentArgs{}), api.CodeWrongState},
		{"logout: connector", login("X"), ptCmd(OpLogout, ptConn, &api.AgentArgs{Agent: "X"}), api.CodeForbidden},
		{"logout: unknown agent", nil, ptCmd(OpLogout, ptSystem, &api.AgentArgs{Agent: "nobody"}), api.CodeNotFound},
		{"set_agent_state: not logged in", nil, ptCmd(OpSetAgentState, x, &api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}), api.CodeWrongState},
		{"set_agent_state: unknown mrd", login("X"), ptCmd(OpSetAgentState, x, &api.SetAgentStateArgs{MRD: "voice", State: api.AgentReady}), api.CodeNotFound},
		{"set_agent_state: LOGGED_OUT", login("X"), ptCmd(OpSetAgentState, x, &api.SetAgentStateArgs{MRD: "chat", State: api.AgentLoggedOut}), api.CodeBadRequest},
		{"set_agent_state: unknown state", login("X"), ptCmd(OpSetAgentState, x, &api.SetAgentStateArgs{MRD: "chat", State: "BUSY"}), api.CodeBadRequest},
		{"set_agent_state: READY with reason", login("X"), ptCmd(OpSetAgentState, x, &api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady, Reason: "x"}), api.CodeBadRequest},
		{"set_agent_state: reason too long", login("X"), ptCmd(OpSetAgentState, x, &api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady, Reason: strings.Repeat("r", api.MaxIDBytes+1)}), api.CodeBadRequest},
		{"set_agent_state: for another agent", login("X", "Y"), ptCmd(OpSetAgentState, x, &api.SetAgentStateArgs{Agent: "Y", MRD: "chat", State: api.AgentReady}), api.CodeForbidden},
		{"set_agent_state: system", login("X"), ptCmd(OpSetAgentState, ptSystem, &api.SetAgentStateArgs{Agent: "X", MRD: "chat", State: api.AgentReady}), api.CodeForbidden},
		{"set_agent_mode: bad mode", nil, ptCmd(OpSetAgentMode, x, &api.SetAgentModeArgs{Mode: "manual"}), api.CodeBadRequest},
		{"set_agent_mode: unknown agent", nil, ptCmd(OpSetAgentMode, ptAdmin, &api.SetAgentModeArgs{Agent: "nobody", Mode: api.AgentModePull}), api.CodeNotFound},
		{"add_queue_member: agent", nil, ptCmd(OpAddQueueMember, x, &api.QueueMemberArgs{Agent: "X", Queue: "QE"}), api.CodeForbidden},
		{"add_queue_member: unknown agent", nil, ptCmd(OpAddQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "nobody", Queue: "QE"}), api.CodeNotFound},
		{"add_queue_member: unknown queue", nil, ptCmd(OpAddQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "Y", Queue: "Q9"}), api.CodeNotFound},
		{"add_queue_member: duplicate", nil, ptCmd(OpAddQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "X", Queue: "QE"}), api.CodeAlreadyExists},
		{"remove_queue_member: not a member", nil, ptCmd(OpRemoveQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "Y", Queue: "QE"}), api.CodeNotSubscribed},
		{"remove_queue_member: agent", nil, ptCmd(OpRemoveQueueMember, x, &api.QueueMemberArgs{Agent: "X", Queue: "QE"}), api.CodeForbidden},
		{"set_pull_policy: unknown", nil, ptCmd(OpSetPullPolicy, ptAdmin, &api.SetPullPolicyArgs{Policy: "random"}), api.CodeBadRequest},
		{"set_pull_policy: empty", nil, ptCmd(OpSetPullPolicy, ptAdmin, &api.SetPullPolicyArgs{}), api.CodeBadRequest},
		{"set_pull_policy: agent", nil, ptCmd(OpSetPullPolicy, x, &api.SetPullPolicyArgs{Policy: api.PolicyFirstDue}), api.CodeForbidden},
		{"request_chat: auto mode", login("X"), ptCmd(OpRequestChat, x, &api.AgentArgs{}), api.CodeWrongState},
		{"request_chat: logged out", func(t *testing.T, s *State) {
			ptApply(t, s, ptCmd(OpSetAgentMode, x, &api.SetAgentModeArgs{Mode: api.AgentModePull}))
		}, ptCmd(OpRequestChat, x, &api.AgentArgs{}), api.CodeWrongState},
		{"request_chat: not READY", func(t *testing.T, s *State) {
			ptApply(t, s, ptCmd(OpSetAgentMode, x, &api.SetAgentModeArgs{Mode: api.AgentModePull}))
			ptApply(t, s, ptCmd(OpLogin, x, &api.AgentArgs{}))
		}, ptCmd(OpRequestChat, x, &api.AgentArgs{}), api.CodeWrongState},
		{"request_chat: no queue", func(t *testing.T, s *State) {
			pullReady(t, s)
			for _, q := range []string{"QE", "QS", "QV"} {
				ptApply(t, s, ptCmd(OpRemoveQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "X", Queue: q}))
			}
		}, ptCmd(OpRequestChat, x, &api.AgentArgs{}), api.CodeWrongState},
		{"request_chat: connector", pullReady, ptCmd(OpRequestChat, ptConn, &api.AgentArgs{Agent: "X"}), api.CodeForbidden},
		{"accept_offer: unknown request", login("X"), ptCmd(OpAcceptOffer, x, &api.OfferArgs{Request: "R1"}), api.CodeNotFound},
		{"accept_offer: offered to another", offered, ptCmd(OpAcceptOffer, ptAgent("Y"), &api.OfferArgs{Request: "R1"}), api.CodeWrongState},
		{"accept_offer: wrong offer id", offered, ptCmd(OpAcceptOffer, x, &api.OfferArgs{Request: "R1", OfferID: "O7"}), api.CodeWrongState},
		{"accept_offer: no request", offered, ptCmd(OpAcceptOffer, x, &api.OfferArgs{}), api.CodeBadRequest},
		{"accept_offer: closed", func(t *testing.T, s *State) {
			offered(t, s)
			ptApply(t, s, ptCmd(OpClose, ptConn, &api.RequestArgs{Request: "R1"}))
		}, ptCmd(OpAcceptOffer, x, &api.OfferArgs{Request: "R1"}), api.CodeClosed},
		{"accept_offer: connector", offered, ptCmd(OpAcceptOffer, ptConn, &api.OfferArgs{Request: "R1", Agent: "X"}), api.CodeForbidden},
		{"accept_offer: after accepting", func(t *testing.T, s *State) {
			offered(t, s)
			ptAccept(t, s, "X", "R1")
		}, ptCmd(OpAcceptOffer, x, &api.OfferArgs{Request: "R1"}), api.CodeWrongState},
		{"reject_offer: offered to another", offered, ptCmd(OpRejectOffer, ptAgent("Y"), &api.OfferArgs{Request: "R1"}), api.CodeWrongState},
		{"reject_offer: admin names nobody", offered, ptCmd(OpRejectOffer, ptAdmin, &api.OfferArgs{Request: "R1"}), api.CodeBadRequest},
		{"offer_timeout: admin", offered, ptCmd(OpOfferTimeout, ptAdmin, &api.OfferArgs{Request: "R1", OfferID: "O1"}), api.CodeForbidden},
		{"offer_timeout: agent", offered, ptCmd(OpOfferTimeout, x, &api.OfferArgs{Request: "R1", OfferID: "O1"}), api.CodeForbidden},
		{"offer_timeout: no offer id", offered, ptCmd(OpOfferTimeout, ptSystem, &api.OfferArgs{Request: "R1"}), api.CodeBadRequest},
		{"offer_timeout: unknown request", offered, ptCmd(OpOfferTimeout, ptSystem, &api.OfferArgs{Request: "R9", OfferID: "O1"}), api.CodeNotFound},
		{"offer_timeout: stale offer", offered, ptCmd(OpOfferTimeout, ptSystem, &api.OfferArgs{Request: "R1", OfferID: "O2"}), api.CodeWrongState},
		{"offer_timeout: accepted", func(t *testing.T, s *State) {
			offered(t, s)
			ptAccept(t, s, "X", "R1")
		}, ptCmd(OpOfferTimeout, ptSystem, &api.OfferArgs{Request: "R1", OfferID: "O1"}), api.CodeWrongState},
		{"offer_timeout: closed", func(t *testing.T, s *State) {
			offered(t, s)
			ptApply(t, s, ptCmd(OpClose, ptConn, &api.RequestArgs{Request: "R1"}))
		}, ptCmd(OpOfferTimeout, ptSystem, &api.OfferArgs{Request: "R1", OfferID: "O1"}), api.CodeWrongState},
		{"invite: queued request", func(t *testing.T, s *State) {
			ptReady(t, s, "chat", "Y")
			ptArrive(t, s, "WS", "c1", 0)
			ptArrive(t, s, "WS", "c2", 0)
		}, ptCmd(OpInvite, ptAdmin, &api.TransferArgs{Request: "R2", ToAgent: "Y"}), api.CodeWrongState},
		{"transfer: offered request", offered, ptCmd(OpTransfer, ptAdmin, &api.TransferArgs{Request: "R1", ToAgent: "Y"}), api.CodeWrongState},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := ptWorld(t)
			if tc.prep != nil {
				tc.prep(t, s)
			}
			ptReject(t, s, tc.c, tc.code)
		})
	}
}

// Successful transitions of the agent commands, with their results and
// events.
func TestPushAgentCommands(t *testing.T) {
	s := ptWorld(t)
	x := ptAgent("X")
	res, evs := ptApply(t, s, ptCmd(OpLogin, x, &api.AgentArgs{}))
	ptWantKinds(t, evs, "agent.state→agent:X")
	ptEqual(t, "login event", evs[0].Data, any(api.AgentStateChange{Agent: "X", State: api.AgentNotReady, Since: ptT0}))
	want := api.AgentStatus{Agent: "X", Mode: api.AgentModeAuto, LoggedIn: true, Queues: []string{"QE", "QS", "QV"}, MRDs: []api.AgentMRDStatus{
		{MRD: "chat", State: api.AgentNotReady, Since: ptT0, Max: 3},
		{MRD: "email", State: api.AgentNotReady, Since: ptT0, Max: 1},
	}}
	ptEqual(t, "login result", res.Data, any(want))
	// A second session's login changes nothing.
	before := ptMarshal(t, s)
	_, evs = ptApply(t, s, ptCmd(OpLogin, ptAdmin, &api.AgentArgs{Agent: "X"}))
	ptWantKinds(t, evs)
	if !bytes.Equal(before, ptMarshal(t, s)) {
		t.Fatal("second login changed the state")
	}
	ptTick(t, s, 7)
	res, evs = ptApply(t, s, ptCmd(OpSetAgentState, ptAdmin, &api.SetAgentStateArgs{Agent: "X", MRD: "email", State: api.AgentReady}))
	ptWantKinds(t, evs, "agent.state→agent:X")
	want.MRDs[1] = api.AgentMRDStatus{MRD: "email", State: api.AgentReady, Since: ptT0 + 7_000_000, Max: 1}
	ptEqual(t, "set state result", res.Data, any(want))
	res, evs = ptApply(t, s, ptCmd(OpSetAgentMode, x, &api.SetAgentModeArgs{Mode: api.AgentModePull}))
	ptWantKinds(t, evs, "agent.mode→agent:X")
	ptEqual(t, "mode event", evs[0].Data, any(api.AgentModeChange{Agent: "X", Mode: api.AgentModePull}))
	want.Mode = api.AgentModePull
	ptEqual(t, "set mode result", res.Data, any(want))
	_, evs = ptApply(t, s, ptCmd(OpSetAgentMode, x, &api.SetAgentModeArgs{Mode: api.AgentModePull}))
	ptWantKinds(t, evs)
	ptApply(t, s, ptCmd(OpSetPullPolicy, ptAdmin, &api.SetPullPolicyArgs{Policy: api.PolicyFirstDue}))
	ptEqual(t, "policy", s.PullPolicy, api.PolicyFirstDue)
}

func TestPushQueries(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X")
	ptArrive(t, s, "WS", "c1", 0)
	ptArrive(t, s, "WS", "c2", 1)
	v, err := s.Query(ptAdmin, api.QueryQueue, ptMsgpack(t, api.QueryArgs{Queue: "QS"}))
	if err != nil {
		t.Fatal(err)
	}
	qv := v.(api.QueueView)
	ptEqual(t, "members", qv.Members, []string{"X", "Y", "Z"})
	if len(qv.Waiting) != 1 || qv.Waiting[0].Request.ID != "R2" || len(qv.Offers) != 1 || qv.Offers[0].Request.ID != "R1" {
		t.Fatalf("queue view %+v", qv)
	}
	if _, err := s.Query(ptAgent("X"), api.QueryQueue, ptMsgpack(t, api.QueryArgs{Queue: "QS"})); err != nil {
		t.Fatalf("member read: %v", err)
	}
	ptApply(t, s, ptCmd(OpRemoveQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "Y", Queue: "QS"}))
	for _, tc := range []struct {
		p     api.Principal
		op    string
		queue string
		code  api.Code
	}{
		{ptAgent("Y"), api.QueryQueue, "QS", api.CodeForbidden},
		{ptConn, api.QueryQueue, "QS", api.CodeForbidden},
		{ptAdmin, api.QueryQueue, "Q9", api.CodeNotFound},
		{ptConn, api.QueryAgentStates, "", api.CodeForbidden},
	} {
		if _, err := s.Query(tc.p, tc.op, ptMsgpack(t, api.QueryArgs{Queue: tc.queue})); err == nil || err.Code != tc.code {
			t.Errorf("%s by %s: %v, want %s", tc.op, tc.p.Role, err, tc.code)
		}
	}
	all, err := s.Query(ptAdmin, api.QueryAgentStates, nil)
	if err != nil || len(all.([]api.AgentStatus)) != 3 {
		t.Fatalf("agent states %+v %v", all, err)
	}
	mine, err := s.Query(ptAgent("X"), api.QueryAgentStates, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := mine.([]api.AgentStatus)
	if len(st) != 1 || st[0].Agent != "X" || st[0].MRDs[0].Offers != 1 {
		t.Fatalf("own state %+v", st)
	}
	// The sync view carries the push status and offers; an agent that never
	// touched push routing has none.
	view, _ := s.View(api.AgentKey("X"))
	if view.Push == nil || len(view.Push.Offers) != 1 || view.Push.Offers[0].ID != "O1" || !view.Push.Status.LoggedIn {
		t.Fatalf("X view push %+v", view.Push)
	}
	fresh := ptWorld(t)
	ptApply(t, fresh, ptCmd(OpCreateAgent, ptAdmin, &api.CreateAgentArgs{ID: "W", TokenHash: []byte("h")}))
	if view, _ := fresh.View(api.AgentKey("W")); view.Push != nil {
		t.Fatalf("untouched agent has push view %+v", view.Push)
	}
}

// A snapshot taken mid-routing restores to the same bytes and behaves the
// same afterwards.
func TestPushSnapshotRoundTrip(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X", "Y")
	ptApply(t, s, ptCmd(OpSetAgentMode, ptAgent("Z"), &api.SetAgentModeArgs{Mode: api.AgentModePull}))
	ptReady(t, s, "chat", "Z")
	ptApply(t, s, ptCmd(OpRequestChat, ptAgent("Z"), &api.AgentArgs{}))
	for i := range 6 {
		ptArrive(t, s, "WS", fmt.Sprintf("c%d", i), i%3)
	}
	ptAccept(t, s, "X", s.Agents["X"].Offers[0])
	data := ptMarshal(t, s)
	r, err := ReadState(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, ptMarshal(t, r)) {
		t.Fatal("restored state marshals differently")
	}
	if err := ptInvariants(r); err != nil {
		t.Fatal(err)
	}
	next := []*Command{
		ptCmd(OpRejectOffer, ptAgent("Y"), &api.OfferArgs{Request: s.Agents["Y"].Offers[0]}),
		ptCmd(OpLogout, ptAgent("X"), &api.AgentArgs{}),
		ptCmd(OpRequestChat, ptAgent("Z"), &api.AgentArgs{}),
	}
	for _, c := range next {
		r1, e1 := s.Apply(c)
		r2, e2 := r.Apply(c)
		ptEqual(t, "result", r2, r1)
		ptEqual(t, "events", e2, e1)
	}
	if !bytes.Equal(ptMarshal(t, s), ptMarshal(t, r)) {
		t.Fatal("replicas diverged after restore")
	}
}

func ptMsgpack(tb ptTB, v any) []byte {
	tb.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// transfer_to_queue offers the request to the others first: while another
// member is READY, even with no free capacity this instant, the request
// waits for it rather than going straight back to the agent who let it
// go; that agent gets it again only when no other member is READY.
func TestPushTransferToQueueOthersFirst(t *testing.T) {
	s := ptWorld(t)
	ptReady(t, s, "chat", "X")
	ptArrive(t, s, "WS", "c1", 0)
	ptAccept(t, s, "X", "R1")
	// Y is READY but full: three conversations of its own.
	ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("X"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady}))
	ptReady(t, s, "chat", "Y")
	for _, c := range []string{"y1", "y2", "y3"} {
		r, _ := ptArrive(t, s, "WS", c, 0)
		ptAccept(t, s, "Y", r)
	}
	ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("X"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}))

	ptApply(t, s, ptCmd(OpTransferToQueue, ptAgent("X"), &api.TransferToQueueArgs{Request: "R1", Queue: "QS"}))
	if got := ptOfferee(s, "R1"); got != "" {
		t.Fatalf("R1 offered to %s at once; want it to wait for Y", got)
	}
	ptEqual(t, "waiting", s.Queues["QS"].Waiting, []string{"R1"})

	// Y frees a slot: R1 goes to Y.
	ptApply(t, s, ptCmd(OpClose, ptAgent("Y"), &api.RequestArgs{Request: "R2"}))
	ptEqual(t, "offers", ptOffered(s), []string{"R1→Y"})

	// Again, but Y goes NOT_READY while R1 waits: then X, the only READY
	// member, gets it back.
	ptAccept(t, s, "Y", "R1")
	ptApply(t, s, ptCmd(OpTransferToQueue, ptAgent("Y"), &api.TransferToQueueArgs{Request: "R1", Queue: "QS"}))
	ptEqual(t, "offers", ptOffered(s), []string{"R1→X"}) // X is READY and free: the others first
	ptApply(t, s, ptCmd(OpRejectOffer, ptAgent("X"), &api.OfferArgs{Request: "R1"}))
	ptApply(t, s, ptCmd(OpSetAgentState, ptAgent("X"), &api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady}))
	ptEqual(t, "offers", ptOffered(s), []string{"R1→Y"}) // nobody else READY: back to Y
}
