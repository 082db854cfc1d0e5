package fsmtest

import (
	"fmt"
	"math/rand"
	"strings"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// Gen makes a random stream of commands: every op, valid and invalid ids,
// every role, retries, stale and zero sequence numbers, clocks that jump,
// stall and go back.
type Gen struct {
	r        *rand.Rand
	now      int64
	seqs     map[string]uint64
	sent     []*Command
	requests uint64   // requests created so far (read from a replica)
	open     []string // open requests on L1 (read from a replica)
}

// sweepEvery is how often (leader time) the state drops expired sessions.
const sweepEvery = int64(60e9)

// NewGen returns a generator seeded with seed: the same seed gives the
// same stream.
func NewGen(seed int64) *Gen {
	return &Gen{r: rand.New(rand.NewSource(seed)), now: T0, seqs: map[string]uint64{}}
}

func pick[T any](g *Gen, xs ...T) T { return xs[g.r.Intn(len(xs))] }

func (g *Gen) pick(xs ...string) string { return pick(g, xs...) }

func (g *Gen) oneIn(n int) bool { return g.r.Intn(n) == 0 }

func (g *Gen) agentID() string {
	return g.pick("A1", "A2", "A3", "A4", "A5", "A1", "A2", "A4", "A9", "")
}
func (g *Gen) listID() string { return g.pick("L1", "L1", "L2", "L3", "L9", "", "bad id") }
func (g *Gen) mrdID() string  { return g.pick("social", "chat", "voice", "") }
func (g *Gen) text() string {
	switch g.r.Intn(60) {
	case 0:
		return strings.Repeat("z", api.MaxTextBytes)
	case 1:
		return strings.Repeat("z", api.MaxTextBytes+1)
	case 2:
		return ""
	case 3:
		return "bad \xff"
	}
	return g.pick("hi", "hello there", "ok", "ünïcode")
}

// requestID names mostly an open request (the generator peeks at them),
// sometimes one of the newest (maybe closed), an old one or nothing.
func (g *Gen) requestID() string {
	switch n := g.r.Intn(20); {
	case n == 0:
		return g.pick("", "R0", "nope", "R99999")
	case n == 1:
		return fmt.Sprintf("R%d", 1+g.r.Intn(int(g.requests)+1))
	case n < 6 || len(g.open) == 0:
		return fmt.Sprintf("R%d", max(1, int(g.requests)-g.r.Intn(3)))
	}
	return g.open[g.r.Intn(len(g.open))]
}

func (g *Gen) agentPrincipal() api.Principal {
	return api.Principal{Role: api.RoleAgent, ID: g.pick("A1", "A1", "A2", "A2", "A3", "A4", "A4", "A5", "A9")}
}

func (g *Gen) connectorPrincipal() api.Principal {
	return api.Principal{Role: api.RoleConnector, ID: g.pick("fb", "fb", "fb", "fb", "fb", "web", "ghost")}
}

// actor returns a principal for an agent-or-admin op, and the agent to name.
func (g *Gen) actor() (api.Principal, string) {
	switch g.r.Intn(16) {
	case 0, 1:
		return Admin, g.agentID()
	case 2:
		return g.agentPrincipal(), g.agentID() // maybe acting for another
	case 3:
		return g.connectorPrincipal(), g.agentID() // forbidden
	case 4:
		// A supervisor (of everything, of social, of L2, or deleted):
		// forbidden but for close in its scope.
		return api.Principal{Role: api.RoleSupervisor, ID: g.pick("sall", "ssoc", "sl2", "gone")}, g.agentID()
	}
	return g.agentPrincipal(), ""
}

func (g *Gen) tick() int64 {
	switch n := g.r.Intn(100); {
	case n < 2:
		return 0 // unstamped: the state's clock
	case n < 4:
		return g.now - int64(g.r.Intn(5e9)) // behind the clock
	case n < 6:
		g.now += SessionTTL/2 + int64(g.r.Intn(int(sweepEvery)))
	default:
		g.now += int64(g.r.Intn(3e9))
	}
	return g.now
}

func (g *Gen) next() *Command {
	if len(g.sent) > 0 && g.r.Intn(20) == 0 { // a retry, maybe much later
		old := *g.sent[g.r.Intn(len(g.sent))]
		old.Time = g.tick()
		return &old
	}
	c := &Command{Time: g.tick()}
	switch n := g.r.Intn(110); {
	case n >= 100:
		g.serviceLevel(c)
	case n < 25:
		c.Op, c.By = OpCustomerMessage, FB
		if g.oneIn(8) {
			c.By = pick(g, Admin, Web, api.Principal{Role: api.RoleConnector, ID: "ghost"})
		}
		a := &api.CustomerMessageArgs{Channel: "C2", CustomerID: g.pick("u1", "u2", "u3", "u4", "u5", "u6"), CustomerName: "Ursula", Text: g.text()}
		if g.oneIn(10) {
			a.Channel = g.pick("W1", "C9", "C3", "")
		}
		if g.oneIn(12) {
			a.CustomerID = g.pick("", "bad id", "\xff", strings.Repeat("u", api.MaxIDBytes+1))
		}
		if g.oneIn(20) {
			a.CustomerName = g.pick("", "\xff", strings.Repeat("n", api.MaxIDBytes+1))
		}
		c.Args = a
	case n < 40:
		by, ag := g.actor()
		c.Op, c.By, c.Args = OpJoin, by, &api.RequestArgs{Request: g.requestID(), Agent: ag}
	case n < 50:
		by, ag := g.actor()
		c.Op, c.By, c.Args = OpLeave, by, &api.RequestArgs{Request: g.requestID(), Agent: ag}
	case n < 60:
		by, ag := g.actor()
		c.Op, c.By, c.Args = OpSend, by, &api.SendArgs{Request: g.requestID(), Agent: ag, Text: g.text()}
	case n < 68:
		by, _ := g.actor()
		if g.r.Intn(3) == 0 {
			by = g.connectorPrincipal()
		}
		c.Op, c.By, c.Args = OpClose, by, &api.RequestArgs{Request: g.requestID()}
	case n < 73:
		c.Op, c.By = OpRequestAgent, g.connectorPrincipal()
		if g.r.Intn(2) == 0 {
			c.Args = &api.RequestAgentArgs{Request: g.requestID()}
		} else {
			c.Args = &api.RequestAgentArgs{Channel: g.pick("C2", "W1"), CustomerID: g.pick("u1", "u2", "u3", "")}
		}
	case n < 80:
		by, ag := g.actor()
		c.Op, c.By, c.Args = OpSubscribe, by, &api.SubscribeArgs{Agent: ag, List: g.listID()}
	case n < 84:
		by, ag := g.actor()
		c.Op, c.By, c.Args = OpUnsubscribe, by, &api.SubscribeArgs{Agent: ag, List: g.listID()}
	case n < 87:
		max := map[string]int{"social": 1 + g.r.Intn(3)}
		if g.oneIn(4) {
			max[g.mrdID()] = g.r.Intn(4) - 1
		}
		c.Op, c.By, c.Args = OpCreateAgent, Admin, &api.CreateAgentArgs{ID: g.agentID(), Name: g.pick("Dee", "Dee", "Dee", "", "\xff"), Max: max, TokenHash: []byte("h")}
	case n < 89:
		a := &api.CreateListArgs{ID: g.listID(), Name: "list"}
		if g.oneIn(2) {
			a.SLAMs, a.SLAWarnPct = g.slaMs(), pick(g, 0, 50, 80, 100)
			a.RemindInactiveMs, a.CloseInactiveMs = g.slaMs(), g.slaMs()
		}
		c.Op, c.By, c.Args = OpCreateList, Admin, a
	case n < 90:
		c.Op, c.By, c.Args = OpCreateChannel, Admin, &api.CreateChannelArgs{ID: g.pick("C3", "C4"), Type: g.pick("facebook", "webchat", "nope"), Mode: api.RoutingMode(g.pick("pull", "push", "")), List: g.listID(), Queue: g.pick("", "Q1")}
	case n < 91:
		c.Op, c.By, c.Args = OpCreateConnector, Admin, &api.CreateConnectorArgs{ID: g.pick("fb2", "fb"), Channels: []string{g.pick("C2", "C3", "W1", "C9")}, TokenHash: []byte("h")}
	case n < 92:
		c.Op, c.By, c.Args = OpCreateMRD, Admin, &api.CreateMRDArgs{ID: g.mrdID()}
	case n < 93:
		c.Op, c.By, c.Args = OpCreateChannelType, Admin, &api.CreateChannelTypeArgs{ID: g.pick("sms", "facebook"), MRD: g.mrdID()}
	case n < 94:
		c.Op, c.By, c.Args = OpCreateQueue, Admin, &api.CreateQueueArgs{ID: g.pick("Q1", "Q2"), MRD: g.mrdID(), OfferTimeoutMs: int64(g.r.Intn(3) - 1)}
	case n < 95:
		c.Op, c.By, c.Args = OpDeleteList, Admin, &api.IDArgs{ID: g.listID()}
	case n < 96:
		c.Op, c.By, c.Args = OpDeleteAgent, Admin, &api.IDArgs{ID: g.pick("A3", "A5", "A9")}
	case n < 97:
		c.Op, c.By, c.Args = OpNoop, g.agentPrincipal(), &api.NoopArgs{}
	case n < 98:
		g.listAccess(c)
	case n < 99:
		c.Op, c.By, c.Args = Op(90+g.r.Intn(10)), Admin, &api.IDArgs{ID: "x"} // unknown op
	default:
		c.Op, c.By, c.Args = OpCreateMRD, api.Principal{Role: api.Role(g.r.Intn(6)), ID: "who"}, &api.CreateMRDArgs{ID: "m"}
	}
	// Idempotency key: mostly increasing per client, sometimes none,
	// sometimes stale.
	client := g.pick("c1", "c1", "c2", "")
	key := c.By.Role.String() + c.By.ID + client
	switch n := g.r.Intn(20); {
	case n == 0:
		c.ClientID = client
	case n == 1 && g.seqs[key] > 2:
		c.ClientID, c.Seq = client, uint64(g.r.Int63n(int64(g.seqs[key])))+1
	case n == 2:
		g.seqs[key] += SessionWindow // a jump: older seqs go stale
		c.ClientID, c.Seq = client, g.seqs[key]
	default:
		g.seqs[key]++
		c.ClientID, c.Seq = client, g.seqs[key]
	}
	g.sent = append(g.sent, c)
	return c
}

// listAccess makes a grant_list, revoke_list or set_list_access, mostly
// valid.
func (g *Gen) listAccess(c *Command) {
	c.By = Admin
	if g.oneIn(10) {
		c.By = g.agentPrincipal()
	}
	switch g.r.Intn(3) {
	case 0:
		c.Op, c.Args = OpGrantList, &api.ListGrantArgs{List: g.listID(), Agent: g.agentID()}
	case 1:
		c.Op, c.Args = OpRevokeList, &api.ListGrantArgs{List: g.listID(), Agent: g.agentID()}
	default:
		c.Op, c.Args = OpSetListAccess, &api.ListAccessArgs{List: g.listID(), Access: api.ListAccess(g.pick("open", "restricted", "restricted", "", "x"))}
	}
}

// slaMs is a service-level or INACTIVE setting: mostly a few seconds (the
// clock moves up to 3 s a command), sometimes off or invalid.
func (g *Gen) slaMs() int64 {
	return pick[int64](g, 0, 1000, 2000, 5000, 5000, 9000, -1, api.MaxSLAMs+1)
}

// serviceLevel makes a service-level command: set_service_level, or one
// of the System timer ops, mostly by the System, aimed at open requests,
// at whatever time the clock says (so early, due and stale ones).
func (g *Gen) serviceLevel(c *Command) {
	switch n := g.r.Intn(10); {
	case n < 3:
		a := &api.ServiceLevelArgs{SLAMs: g.slaMs(), WarnPct: pick(g, 0, 0, 50, 80, 100)}
		switch g.r.Intn(5) {
		case 0:
			a.Queue = g.pick("Q1", "Q2")
		case 1:
			a.List, a.Queue = g.listID(), "Q1"
		default:
			a.List = g.listID()
		}
		c.Op, c.By, c.Args = OpSetServiceLevel, Admin, a
		if g.oneIn(10) {
			c.By = g.agentPrincipal()
		}
	default:
		c.Op = pick(g, OpSLAWarning, OpSLABreach, OpSLABreach, OpRemindInactive, OpCloseInactive)
		c.By = api.Principal{Role: api.RoleSystem, ID: "node:n1"}
		if g.oneIn(10) {
			c.By = Admin
		}
		c.Args = &api.RequestRef{Request: g.requestID()}
	}
}

// SetupEntries is the first two log entries: the walkthrough's Admin commands.
func SetupEntries() [][]*Command {
	setup := WalkthroughCommands()
	more := []*Command{
		Cmd(OpCreateAgent, Admin, &api.CreateAgentArgs{ID: "A4", Max: map[string]int{"social": 3}, TokenHash: []byte("h")}),
		Cmd(OpCreateAgent, Admin, &api.CreateAgentArgs{ID: "A5", Max: map[string]int{"social": 1, "chat": 1}, TokenHash: []byte("h")}),
		Cmd(OpSubscribe, Admin, &api.SubscribeArgs{Agent: "A4", List: "L1"}),
		Cmd(OpSubscribe, Admin, &api.SubscribeArgs{Agent: "A5", List: "L1"}),
		// Supervisors hear events in their scope (supervisors.go).
		Cmd(OpCreateSupervisor, Admin, &api.CreateSupervisorArgs{ID: "sall", TokenHash: []byte("h")}),
		Cmd(OpCreateSupervisor, Admin, &api.CreateSupervisorArgs{ID: "ssoc", MRDs: []string{"social"}, TokenHash: []byte("h")}),
		Cmd(OpCreateSupervisor, Admin, &api.CreateSupervisorArgs{ID: "sl2", Lists: []string{"L2"}, TokenHash: []byte("h")}),
		Cmd(OpCreateSupervisor, Admin, &api.CreateSupervisorArgs{ID: "gone", TokenHash: []byte("h")}),
		Cmd(OpDeleteSupervisor, Admin, &api.IDArgs{ID: "gone"}),
	}
	return [][]*Command{setup[:8], setup[8:], more}
}

// Peek lets the generator aim at requests that exist.
func (g *Gen) Peek(s *State) {
	g.requests = s.NextRequest
	g.open = nil
	if l := s.Lists["L1"]; l != nil {
		g.open = append(g.open, l.Requests...)
	}
}

// Entry makes the next log entry: one command, or a batch of up to four.
func (g *Gen) Entry() []*Command {
	batch := make([]*Command, 1+g.r.Intn(4)*g.r.Intn(2))
	for i := range batch {
		batch[i] = g.next()
	}
	return batch
}
