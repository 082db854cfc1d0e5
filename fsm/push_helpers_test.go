package fsm

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/api"
)

// Push-routing test world (names prefixed pt so they stay clear of the
// other test files' helpers):
//
//	MRDs chat and email; queues QS (chat, priority 1, 30 s offers),
//	QV (chat, priority 5, 10 s offers) and QE (email, priority 0, default
//	timeout); push channels WS→QS, WV→QV, ME→QE; a pull channel FC on list
//	LC in MRD chat; connector cx on all four; agents X, Y, Z with max 3 in
//	chat and 1 in email, members of QS and QV, X also of QE, all subscribed
//	to LC. Nobody is logged in.
const ptT0 = int64(1_800_000_000_000_000_000)

var (
	ptAdmin  = api.Principal{Role: api.RoleAdmin, ID: "root"}
	ptConn   = api.Principal{Role: api.RoleConnector, ID: "cx"}
	ptSystem = api.Principal{Role: api.RoleSystem, ID: "leader"}
)

// ptTB is what the helpers need of a test: both *testing.T and *rapid.T
// have it (testing.TB cannot be implemented outside package testing).
type ptTB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Fatal(args ...any)
}

func ptAgent(id string) api.Principal { return api.Principal{Role: api.RoleAgent, ID: id} }

func ptCmd(op Op, by api.Principal, args any) *Command { return &Command{Op: op, By: by, Args: args} }

func ptWorldCommands() []*Command {
	tok := []byte("h")
	cs := []*Command{
		ptCmd(OpSetFeatureLevel, ptSystem, &api.FeatureLevelArgs{Level: MaxLevel}),
		ptCmd(OpCreateMRD, ptAdmin, &api.CreateMRDArgs{ID: "chat"}),
		ptCmd(OpCreateMRD, ptAdmin, &api.CreateMRDArgs{ID: "email"}),
		ptCmd(OpCreateChannelType, ptAdmin, &api.CreateChannelTypeArgs{ID: "webchat", MRD: "chat"}),
		ptCmd(OpCreateChannelType, ptAdmin, &api.CreateChannelTypeArgs{ID: "forum", MRD: "chat"}),
		ptCmd(OpCreateChannelType, ptAdmin, &api.CreateChannelTypeArgs{ID: "mail", MRD: "email"}),
		ptCmd(OpCreateQueue, ptAdmin, &api.CreateQueueArgs{ID: "QS", Name: "Sales", MRD: "chat", Priority: 1, OfferTimeoutMs: 30_000}),
		ptCmd(OpCreateQueue, ptAdmin, &api.CreateQueueArgs{ID: "QV", Name: "VIP", MRD: "chat", Priority: 5, OfferTimeoutMs: 10_000}),
		ptCmd(OpCreateQueue, ptAdmin, &api.CreateQueueArgs{ID: "QE", Name: "Mail", MRD: "email"}),
		ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "LC"}),
		ptCmd(OpCreateChannel, ptAdmin, &api.CreateChannelArgs{ID: "WS", Type: "webchat", Mode: api.ModePush, Queue: "QS"}),
		ptCmd(OpCreateChannel, ptAdmin, &api.CreateChannelArgs{ID: "WV", Type: "webchat", Mode: api.ModePush, Queue: "QV"}),
		ptCmd(OpCreateChannel, ptAdmin, &api.CreateChannelArgs{ID: "ME", Type: "mail", Mode: api.ModePush, Queue: "QE"}),
		ptCmd(OpCreateChannel, ptAdmin, &api.CreateChannelArgs{ID: "FC", Type: "forum", Mode: api.ModePull, List: "LC"}),
		ptCmd(OpCreateConnector, ptAdmin, &api.CreateConnectorArgs{ID: "cx", Channels: []string{"WS", "WV", "ME", "FC"}, TokenHash: tok}),
	}
	for _, id := range []string{"X", "Y", "Z"} {
		cs = append(cs,
			ptCmd(OpCreateAgent, ptAdmin, &api.CreateAgentArgs{ID: id, Max: map[string]int{"chat": 3, "email": 1}, TokenHash: tok}),
			ptCmd(OpAddQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: id, Queue: "QS"}),
			ptCmd(OpAddQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: id, Queue: "QV"}),
			ptCmd(OpSubscribe, ptAgent(id), &api.SubscribeArgs{List: "LC"}),
		)
	}
	cs = append(cs, ptCmd(OpAddQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "X", Queue: "QE"}))
	cs[0].Time = ptT0
	return cs
}

func ptWorld(tb ptTB) *State {
	tb.Helper()
	s := NewState()
	for _, c := range ptWorldCommands() {
		ptApply(tb, s, c)
	}
	return s
}

// ptApply applies c, fails on rejection, and checks the push invariants.
func ptApply(tb ptTB, s *State, c *Command) (Result, []Event) {
	tb.Helper()
	res, evs := s.Apply(c)
	if res.Err != nil {
		tb.Fatalf("%s by %s:%s: %v", ptOpName(c.Op), c.By.Role, c.By.ID, res.Err)
	}
	if err := ptInvariants(s); err != nil {
		tb.Fatalf("after %s: %v", ptOpName(c.Op), err)
	}
	return res, evs
}

// ptReject applies c (Seq 0, no clock advance) and checks that it fails with
// code, emits nothing and leaves the state byte-for-byte unchanged.
func ptReject(tb ptTB, s *State, c *Command, code api.Code) {
	tb.Helper()
	if c.Seq != 0 || c.Time > s.Now {
		tb.Fatalf("ptReject needs Seq 0 and no clock advance")
	}
	before := ptMarshal(tb, s)
	res, evs := s.Apply(c)
	switch {
	case res.Err == nil:
		tb.Fatalf("%s succeeded with %+v, want %s", ptOpName(c.Op), res.Data, code)
	case res.Err.Code != code:
		tb.Fatalf("%s failed with %v, want %s", ptOpName(c.Op), res.Err, code)
	}
	if res.Data != nil || len(evs) != 0 {
		tb.Errorf("rejected %s returned data %+v, events %s", ptOpName(c.Op), res.Data, ptKinds(evs))
	}
	if !bytes.Equal(before, ptMarshal(tb, s)) {
		tb.Errorf("rejected %s changed the state", ptOpName(c.Op))
	}
}

func ptMarshal(tb ptTB, s *State) []byte {
	tb.Helper()
	b, err := s.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func ptOpName(op Op) string {
	if i := Commands.Lookup(op); i != nil {
		return i.Name
	}
	return fmt.Sprintf("op%d", op)
}

// ptTick advances the leader clock by ms milliseconds.
func ptTick(tb ptTB, s *State, ms int64) {
	tb.Helper()
	c := ptCmd(OpNoop, ptAdmin, &api.NoopArgs{})
	c.Time = s.Now + ms*1_000_000
	ptApply(tb, s, c)
}

// ptArrive brings a new customer message on a push channel and returns the
// request it opened.
func ptArrive(tb ptTB, s *State, channel, customer string, prio int) (string, []Event) {
	tb.Helper()
	res, evs := ptApply(tb, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: channel, CustomerID: customer, Text: "hello from " + customer, Priority: prio}))
	cm := res.Data.(api.CustomerMessageResult)
	if !cm.Created {
		tb.Fatalf("customer %s on %s: no new request", customer, channel)
	}
	return cm.Request, evs
}

// ptReady logs the agents in and makes them READY in mrd.
func ptReady(tb ptTB, s *State, mrd string, agents ...string) {
	tb.Helper()
	for _, id := range agents {
		ptApply(tb, s, ptCmd(OpLogin, ptAgent(id), &api.AgentArgs{}))
		ptApply(tb, s, ptCmd(OpSetAgentState, ptAgent(id), &api.SetAgentStateArgs{MRD: mrd, State: api.AgentReady}))
	}
}

func ptAccept(tb ptTB, s *State, agent, req string) []Event {
	tb.Helper()
	_, evs := ptApply(tb, s, ptCmd(OpAcceptOffer, ptAgent(agent), &api.OfferArgs{Request: req}))
	return evs
}

// ptOfferee is the agent request req is offered to ("" if none).
func ptOfferee(s *State, req string) string {
	if r := s.Requests[req]; r != nil && r.Offer != nil {
		return r.Offer.Agent
	}
	return ""
}

// ptOffered lists "request→agent" of every pending offer, by request id.
func ptOffered(s *State) []string {
	var out []string
	for _, o := range s.PendingOffers() {
		out = append(out, o.Request.ID+"→"+o.Agent)
	}
	slices.SortFunc(out, func(a, b string) int {
		ra, _, _ := strings.Cut(a, "→")
		rb, _, _ := strings.Cut(b, "→")
		return compareRequestIDs(ra, rb)
	})
	return out
}

// ptKinds renders events as "kind→recipients" for comparisons.
func ptKinds(evs []Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, string(e.Kind)+"→"+strings.Join(e.To, ","))
	}
	return out
}

func ptWantKinds(tb ptTB, evs []Event, want ...string) {
	tb.Helper()
	if want == nil {
		want = []string{}
	}
	if got := ptKinds(evs); !reflect.DeepEqual(got, want) {
		tb.Fatalf("events:\n got  %q\n want %q", got, want)
	}
}

func ptEqual[V any](tb ptTB, what string, got, want V) {
	tb.Helper()
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

// ptInvariants recomputes the push-routing indexes from scratch and checks
// every invariant the routing must keep:
//   - indexes match: agents' conversations, offers and queues; queues'
//     members, waiting lines (in queue order) and offered sets;
//   - no request is offered to two agents (one Offer per request, listed by
//     exactly that agent); an offer's agent is logged in, READY in its MRD
//     and not in the conversation;
//   - no agent is above its maximum (conversations + offers) in any MRD
//     (an auto agent is given one routing offer at a time, but offers it got
//     in pull chat mode stay when it switches, so that is checked by the
//     completeness rule below, not as a state invariant);
//   - every live push request nobody is in is queued or offered, never both;
//     a closed one is neither;
//   - the route pass is complete: no queued request has an eligible agent.
//
// It is written independently of routing.go, so it checks it.
func ptInvariants(s *State) error {
	ids := slices.SortedFunc(maps.Keys(s.Requests), compareRequestIDs)
	conv := map[string][]string{}
	offers := map[string][]string{}
	waiting := map[string][]*Request{}
	offered := map[string][]string{}
	load := map[[2]string]int{}
	routeOffers := map[[2]string]int{}
	offerIDs := map[string]bool{}
	for _, id := range ids {
		r := s.Requests[id]
		live := r.State != api.StateClosed
		if live {
			for _, a := range r.Participants {
				conv[a] = append(conv[a], id)
				load[[2]string{a, r.MRD}]++
			}
		}
		if !live && (r.Queued || r.Offer != nil) {
			return fmt.Errorf("closed request %s is queued %v / offered %+v", id, r.Queued, r.Offer)
		}
		if r.Queued && r.Offer != nil {
			return fmt.Errorf("request %s is both queued and offered to %s", id, r.Offer.Agent)
		}
		if r.Queued {
			if r.Queue == "" {
				return fmt.Errorf("request %s is queued but has no queue", id)
			}
			waiting[r.Queue] = append(waiting[r.Queue], r)
		}
		if live && r.Queue != "" && len(r.Participants) == 0 && !r.Queued && r.Offer == nil {
			return fmt.Errorf("push request %s (%s) is lost: nobody in it, not queued, not offered", id, r.State)
		}
		if o := r.Offer; o != nil {
			if offerIDs[o.ID] {
				return fmt.Errorf("offer id %s used twice", o.ID)
			}
			offerIDs[o.ID] = true
			ag := s.Agents[o.Agent]
			if ag == nil {
				return fmt.Errorf("request %s offered to unknown agent %s", id, o.Agent)
			}
			if st, ok := ag.States[r.MRD]; !ag.LoggedIn || !ok || st.State != api.AgentReady {
				return fmt.Errorf("request %s offered to %s, who is not READY in %s", id, o.Agent, r.MRD)
			}
			if slices.Contains(r.Participants, o.Agent) {
				return fmt.Errorf("request %s offered to its participant %s", id, o.Agent)
			}
			offers[o.Agent] = append(offers[o.Agent], id)
			load[[2]string{o.Agent, r.MRD}]++
			if o.Kind == api.OfferRoute {
				if r.Queue == "" {
					return fmt.Errorf("list request %s has a routing offer", id)
				}
				offered[r.Queue] = append(offered[r.Queue], id)
				routeOffers[[2]string{o.Agent, r.MRD}]++
			}
		}
	}
	for _, aid := range slices.Sorted(maps.Keys(s.Agents)) {
		ag := s.Agents[aid]
		if !ptSameSet(ag.Conversations, conv[aid]) {
			return fmt.Errorf("agent %s conversations %v, recomputed %v", aid, ag.Conversations, conv[aid])
		}
		if !ptSameSet(ag.Offers, offers[aid]) {
			return fmt.Errorf("agent %s offers %v, recomputed %v", aid, ag.Offers, offers[aid])
		}
		if !slices.IsSorted(ag.Offers) || !slices.IsSorted(ag.Queues) {
			return fmt.Errorf("agent %s offers %v / queues %v not sorted", aid, ag.Offers, ag.Queues)
		}
		var qs []string
		for _, qid := range slices.Sorted(maps.Keys(s.Queues)) {
			if slices.Contains(s.Queues[qid].Members, aid) {
				qs = append(qs, qid)
			}
		}
		if !ptSameSet(ag.Queues, qs) {
			return fmt.Errorf("agent %s queues %v, members of %v", aid, ag.Queues, qs)
		}
		if !ag.LoggedIn && (len(ag.States) > 0 || ag.ChatRequested) {
			return fmt.Errorf("logged-out agent %s has states %v / chat request %v", aid, ag.States, ag.ChatRequested)
		}
		for mrd, max := range ag.Max {
			if n := load[[2]string{aid, mrd}]; n > max {
				return fmt.Errorf("agent %s has %d conversations+offers in %s, max %d", aid, n, mrd, max)
			}
		}
	}
	for _, qid := range slices.Sorted(maps.Keys(s.Queues)) {
		q := s.Queues[qid]
		want := waiting[qid]
		slices.SortFunc(want, func(a, b *Request) int {
			if a.Priority != b.Priority {
				return b.Priority - a.Priority
			}
			if c := cmp.Compare(a.QueuedAt, b.QueuedAt); c != 0 {
				return c
			}
			return compareRequestIDs(a.ID, b.ID)
		})
		var wantIDs []string
		for _, r := range want {
			wantIDs = append(wantIDs, r.ID)
		}
		if !slices.Equal(q.Waiting, wantIDs) {
			return fmt.Errorf("queue %s waiting %v, recomputed %v", qid, q.Waiting, wantIDs)
		}
		if !ptSameSet(q.Offered, offered[qid]) || !slices.IsSorted(q.Offered) {
			return fmt.Errorf("queue %s offered %v, recomputed %v", qid, q.Offered, offered[qid])
		}
		for _, m := range q.Members {
			if s.Agents[m] == nil {
				return fmt.Errorf("queue %s has unknown member %s", qid, m)
			}
		}
		// Completeness: nobody could take a queued request.
		for _, r := range want {
			for _, m := range q.Members {
				ag := s.Agents[m]
				st, ok := ag.States[q.MRD]
				if !ag.LoggedIn || !ok || st.State != api.AgentReady || slices.Contains(r.Participants, m) {
					continue
				}
				if ag.mode() == api.AgentModePull && !ag.ChatRequested {
					continue
				}
				if ag.mode() == api.AgentModeAuto && routeOffers[[2]string{m, q.MRD}] > 0 {
					continue
				}
				if max, ok := ag.Max[q.MRD]; ok && load[[2]string{m, q.MRD}] >= max {
					continue
				}
				if r.StrictDecline && slices.Contains(r.Declined, m) && slices.ContainsFunc(q.Members, func(o string) bool {
					oa := s.Agents[o]
					return !slices.Contains(r.Declined, o) && oa.LoggedIn && oa.States[q.MRD].State == api.AgentReady
				}) {
					continue // it let the request go: it waits for the READY others
				}
				return fmt.Errorf("request %s waits in %s though %s could take it", r.ID, qid, m)
			}
		}
	}
	for k, id := range s.Open.flat() {
		if r := s.Requests[id]; r == nil || r.State == api.StateClosed {
			return fmt.Errorf("open key %q names %s, which is not live", k, id)
		}
	}
	return nil
}

func ptSameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
