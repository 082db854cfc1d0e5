package fsm

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/api"
	"pgregory.net/rapid"
)

// TestPushProperty drives random sequences of push-routing commands —
// arrivals, agent state and mode changes, logins and logouts (a node's
// logout_absent too, with the presence it read or a stale one, and
// agent_present), accepts, rejects, timeouts, Request Chat, leaves,
// closes, transfers, invitations,
// queue membership and policy changes, list joins, clock ticks — through two
// replicas: A applies each command as built, B applies it after
// EncodeEntry/DecodeEntry, and now and then B restarts from its own
// snapshot (Marshal, ReadState). After every step:
//   - the push invariants hold (ptInvariants);
//   - both replicas return the same result and events and marshal to the
//     same bytes;
//   - a rejected command changed nothing (commands other than ticks carry no
//     clock advance, so the bytes must be identical).
//
// Commands are drawn mostly from what the state makes meaningful (a pending
// offer to accept, a participant to leave), with a share of random and
// stale ones so the rejections are exercised too.
func TestPushProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a := ptWorld(rt)
		b := ptWorld(rt)
		g := &ptGen{t: rt, s: a}
		steps := rapid.IntRange(20, 150).Draw(rt, "steps")
		before := ptMarshal(rt, a)
		for i := 0; i < steps; i++ {
			c := g.next()
			if c == nil {
				continue
			}
			ra, ea := a.Apply(c)
			data, err := EncodeEntry(c)
			if err != nil {
				rt.Fatalf("step %d: encode %s: %v", i, ptOpName(c.Op), err)
			}
			cmds, err := DecodeEntry(data)
			if err != nil || len(cmds) != 1 {
				rt.Fatalf("step %d: decode %s: %v", i, ptOpName(c.Op), err)
			}
			rb, eb := b.Apply(cmds[0])
			if !reflect.DeepEqual(ra, rb) {
				rt.Fatalf("step %d %s: results differ:\n A %+v\n B %+v", i, ptOpName(c.Op), ra, rb)
			}
			if !reflect.DeepEqual(ea, eb) {
				rt.Fatalf("step %d %s: events differ:\n A %+v\n B %+v", i, ptOpName(c.Op), ea, eb)
			}
			after := ptMarshal(rt, a)
			if !bytes.Equal(after, ptMarshal(rt, b)) {
				rt.Fatalf("step %d %s: replicas diverged", i, ptOpName(c.Op))
			}
			if ra.Err != nil {
				g.rejected[ra.Err.Code]++
				if !bytes.Equal(before, after) {
					rt.Fatalf("step %d: rejected %s (%v) changed the state", i, ptOpName(c.Op), ra.Err)
				}
				if len(ea) != 0 {
					rt.Fatalf("step %d: rejected %s emitted %v", i, ptOpName(c.Op), ptKinds(ea))
				}
			} else {
				g.ok[c.Op]++
			}
			if err := ptInvariants(a); err != nil {
				rt.Fatalf("step %d %s (%v): %v", i, ptOpName(c.Op), ra.Err, err)
			}
			before = after
			if rapid.IntRange(0, 19).Draw(rt, "restore") == 0 {
				// B restarts from its own snapshot.
				nb, err := ReadState(bufio.NewReader(bytes.NewReader(ptMarshal(rt, b))))
				if err != nil {
					rt.Fatal(err)
				}
				b = nb
			}
		}
		rt.Logf("applied %v, rejected %v", g.ok, g.rejected)
	})
}

// ptGen draws commands for the property test from the current state.
type ptGen struct {
	t        *rapid.T
	s        *State
	cust     int
	ok       map[Op]int
	rejected map[api.Code]int
	warm     []*Command // drawn start-up commands, applied first
}

var (
	ptAgents   = []string{"X", "Y", "Z"}
	ptQueues   = []string{"QS", "QV", "QE"}
	ptChannels = []string{"WS", "WV", "ME"}
	ptMRDs     = []string{"chat", "email"}
)

func (g *ptGen) pick(label string, xs []string) string {
	return rapid.SampledFrom(xs).Draw(g.t, label)
}

func (g *ptGen) chance(label string, n int) bool { return rapid.IntRange(0, n-1).Draw(g.t, label) == 0 }

// by is the principal acting for agent id: the agent itself, or now and
// then an admin naming it.
func (g *ptGen) by(id string) (api.Principal, string) {
	if g.chance("admin", 5) {
		return ptAdmin, id
	}
	return ptAgent(id), ""
}

// liveIDs lists the live requests (optionally only push or only list ones).
func (g *ptGen) liveIDs(keep func(*Request) bool) []string {
	var ids []string
	for id, r := range g.s.Requests {
		if r.State != api.StateClosed && (keep == nil || keep(r)) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, compareRequestIDs)
	return ids
}

func (g *ptGen) next() *Command {
	if g.ok == nil {
		g.ok, g.rejected = map[Op]int{}, map[api.Code]int{}
		// Warm-up: most agents log in and go READY, so that offers,
		// accepts and conversations are common from the start.
		for _, id := range ptAgents {
			if g.chance("logged in "+id, 4) {
				continue
			}
			g.warm = append(g.warm, ptCmd(OpLogin, ptAgent(id), &api.AgentArgs{}))
			for _, mrd := range ptMRDs {
				if !g.chance("not ready "+id+" "+mrd, 3) {
					g.warm = append(g.warm, ptCmd(OpSetAgentState, ptAgent(id), &api.SetAgentStateArgs{MRD: mrd, State: api.AgentReady}))
				}
			}
			if g.chance("pull "+id, 3) {
				g.warm = append(g.warm, ptCmd(OpSetAgentMode, ptAgent(id), &api.SetAgentModeArgs{Mode: api.AgentModePull}))
			}
		}
	}
	if len(g.warm) > 0 {
		c := g.warm[0]
		g.warm = g.warm[1:]
		return c
	}
	s := g.s
	kind := rapid.SampledFrom([]string{
		"arrive", "arrive", "arrive", "list", "join", "login", "logout", "state", "state", "mode",
		"accept", "accept", "accept", "reject", "timeout", "timeout", "chat", "leave", "close",
		"transfer", "invite", "toqueue", "member", "policy", "tick", "again", "present",
	}).Draw(g.t, "kind")
	switch kind {
	case "arrive":
		g.cust++
		cust := fmt.Sprintf("c%d", g.cust)
		if g.chance("old customer", 3) && g.cust > 1 {
			cust = fmt.Sprintf("c%d", rapid.IntRange(1, g.cust-1).Draw(g.t, "customer"))
		}
		return ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: g.pick("channel", ptChannels), CustomerID: cust, Text: "hi", Priority: rapid.IntRange(0, 2).Draw(g.t, "prio")})
	case "list":
		g.cust++
		return ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: fmt.Sprintf("f%d", g.cust), Text: "hi"})
	case "join":
		ids := g.liveIDs(nil)
		if len(ids) == 0 {
			return nil
		}
		by, named := g.by(g.pick("agent", ptAgents))
		return ptCmd(OpJoin, by, &api.RequestArgs{Request: g.pick("request", ids), Agent: named})
	case "login":
		by, named := g.by(g.pick("agent", ptAgents))
		return ptCmd(OpLogin, by, &api.AgentArgs{Agent: named})
	case "logout":
		id := g.pick("agent", ptAgents)
		if g.chance("absent", 3) {
			// A node's logout of an agent it found absent: with the
			// presence it read, or a stale one.
			p := s.PresenceOf(id)
			if g.chance("stale presence", 2) {
				p.Value = rapid.Uint64Range(0, s.NextPresence+1).Draw(g.t, "presence")
			}
			return AbsentLogout(ptSystem, id, p)
		}
		if g.chance("system", 3) {
			return ptCmd(OpLogout, ptSystem, &api.AgentArgs{Agent: id})
		}
		by, named := g.by(id)
		return ptCmd(OpLogout, by, &api.AgentArgs{Agent: named})
	case "present":
		return ptCmd(OpAgentPresent, ptSystem, &api.AgentArgs{Agent: g.pick("agent", ptAgents)})
	case "state":
		by, named := g.by(g.pick("agent", ptAgents))
		st := rapid.SampledFrom([]api.AgentState{api.AgentReady, api.AgentReady, api.AgentNotReady}).Draw(g.t, "state")
		reason := ""
		if st == api.AgentNotReady {
			reason = g.pick("reason", []string{"", "break", "lunch"})
		}
		return ptCmd(OpSetAgentState, by, &api.SetAgentStateArgs{Agent: named, MRD: g.pick("mrd", ptMRDs), State: st, Reason: reason})
	case "mode":
		by, named := g.by(g.pick("agent", ptAgents))
		return ptCmd(OpSetAgentMode, by, &api.SetAgentModeArgs{Agent: named, Mode: rapid.SampledFrom([]api.AgentMode{api.AgentModeAuto, api.AgentModePull}).Draw(g.t, "mode")})
	case "accept", "reject", "timeout":
		offers := s.PendingOffers()
		var req, agent, oid string
		if len(offers) > 0 && !g.chance("random offer", 6) {
			o := rapid.SampledFrom(offers).Draw(g.t, "offer")
			req, agent, oid = o.Request.ID, o.Agent, o.ID
			if g.chance("no offer id", 2) && kind != "timeout" {
				oid = ""
			}
		} else {
			ids := g.liveIDs(nil)
			if len(ids) == 0 {
				return nil
			}
			req, agent = g.pick("request", ids), g.pick("agent", ptAgents)
			oid = fmt.Sprintf("O%d", rapid.IntRange(1, int(s.NextOffer)+1).Draw(g.t, "offer id"))
		}
		switch kind {
		case "timeout":
			return ptCmd(OpOfferTimeout, ptSystem, &api.OfferArgs{Request: req, OfferID: oid})
		case "accept":
			by, named := g.by(agent)
			return ptCmd(OpAcceptOffer, by, &api.OfferArgs{Request: req, Agent: named, OfferID: oid})
		default:
			by, named := g.by(agent)
			return ptCmd(OpRejectOffer, by, &api.OfferArgs{Request: req, Agent: named, OfferID: oid})
		}
	case "chat":
		by, named := g.by(g.pick("agent", ptAgents))
		return ptCmd(OpRequestChat, by, &api.AgentArgs{Agent: named})
	case "leave", "close", "transfer", "invite", "toqueue":
		ids := g.liveIDs(func(r *Request) bool { return len(r.Participants) > 0 })
		if len(ids) == 0 || g.chance("any request", 8) {
			ids = g.liveIDs(nil)
		}
		if len(ids) == 0 {
			return nil
		}
		r := s.Requests[g.pick("request", ids)]
		agent := g.pick("agent", ptAgents)
		if len(r.Participants) > 0 && !g.chance("outsider", 6) {
			agent = g.pick("participant", r.Participants)
		}
		by, named := g.by(agent)
		switch kind {
		case "leave":
			return ptCmd(OpLeave, by, &api.RequestArgs{Request: r.ID, Agent: named})
		case "close":
			if g.chance("connector closes", 2) {
				return ptCmd(OpClose, ptConn, &api.RequestArgs{Request: r.ID})
			}
			return ptCmd(OpClose, by, &api.RequestArgs{Request: r.ID, Agent: named})
		case "toqueue":
			return ptCmd(OpTransferToQueue, by, &api.TransferToQueueArgs{Request: r.ID, Agent: named, Queue: g.pick("queue", ptQueues)})
		}
		to := g.pick("to", ptAgents)
		var others []string
		for _, id := range ptAgents {
			if !slices.Contains(r.Participants, id) {
				others = append(others, id)
			}
		}
		if len(others) > 0 && !g.chance("any target", 6) {
			to = g.pick("other", others)
		}
		if kind == "transfer" {
			return ptCmd(OpTransfer, by, &api.TransferArgs{Request: r.ID, Agent: named, ToAgent: to})
		}
		return ptCmd(OpInvite, by, &api.TransferArgs{Request: r.ID, Agent: named, ToAgent: to})
	case "member":
		op := OpAddQueueMember
		if g.chance("remove", 2) {
			op = OpRemoveQueueMember
		}
		return ptCmd(op, ptAdmin, &api.QueueMemberArgs{Agent: g.pick("agent", ptAgents), Queue: g.pick("queue", ptQueues)})
	case "policy":
		return ptCmd(OpSetPullPolicy, ptAdmin, &api.SetPullPolicyArgs{Policy: rapid.SampledFrom([]api.PullPolicy{api.PolicyFirstDue, api.PolicyStrictPriority}).Draw(g.t, "policy")})
	case "tick":
		c := ptCmd(OpNoop, ptAdmin, &api.NoopArgs{})
		c.Time = s.Now + rapid.Int64Range(1, 40_000).Draw(g.t, "ms")*1_000_000
		return c
	case "again":
		// The customer asks for an agent again (changes nothing in push).
		ids := g.liveIDs(nil)
		if len(ids) == 0 {
			return nil
		}
		return ptCmd(OpRequestAgent, ptConn, &api.RequestAgentArgs{Request: g.pick("request", ids)})
	}
	return nil
}

var _ ptTB = (*rapid.T)(nil)
