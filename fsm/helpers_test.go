// The fsm tests live in package fsm_test and exercise the package through
// its exported API only (dot-imported for readability), so their helpers
// never collide with internal tests of package fsm.
package fsm_test

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// t0 is the leader time of the walkthrough setup (unix nanoseconds).
const t0 = int64(1_700_000_000_000_000_000)

// Principals of the walkthrough.
var (
	admin = api.Principal{Role: api.RoleAdmin, ID: "admin"}
	fb    = api.Principal{Role: api.RoleConnector, ID: "fb"}  // allowed on C2 (pull, L1)
	web   = api.Principal{Role: api.RoleConnector, ID: "web"} // allowed on W1 (push, Q1)
	a1    = api.Principal{Role: api.RoleAgent, ID: "A1"}      // subscribed to L1, max 2 in social
	a2    = api.Principal{Role: api.RoleAgent, ID: "A2"}      // subscribed to L1
	a3    = api.Principal{Role: api.RoleAgent, ID: "A3"}      // subscribed to L2 only
	// system is the engine itself (timers, the leader's upkeep).
	system = api.Principal{Role: api.RoleSystem, ID: "leader"}
)

// cmd builds a command with no idempotency key and no time of its own (the
// state's clock stays where it is).
func cmd(op Op, by api.Principal, args any) *Command {
	return &Command{Op: op, By: by, Args: args}
}

// at stamps c with leader time t.
func at(t int64, c *Command) *Command { c.Time = t; return c }

// keyed gives c an idempotency key.
func keyed(client string, seq uint64, c *Command) *Command {
	c.ClientID, c.Seq = client, seq
	return c
}

// walkthroughCommands is the admin setup of the Facebook walkthrough: MRD
// social with channel type facebook, lists L1 and L2, pull channel C2 on L1,
// a push channel W1 on queue Q1 (MRD chat), agents A1 (max 2 in social), A2
// and A3, connectors fb (C2) and web (W1); A1 and A2 subscribe to L1, A3 to
// L2. It starts by raising the state to this build's feature level, as a
// cluster's leader does: the tests exercise the current rules.
func walkthroughCommands() []*Command {
	tok := []byte("hash")
	cs := []*Command{
		cmd(OpSetFeatureLevel, system, &api.FeatureLevelArgs{Level: MaxLevel}),
		cmd(OpCreateMRD, admin, &api.CreateMRDArgs{ID: "social", Name: "Social"}),
		cmd(OpCreateMRD, admin, &api.CreateMRDArgs{ID: "chat", Name: "Chat"}),
		cmd(OpCreateChannelType, admin, &api.CreateChannelTypeArgs{ID: "facebook", MRD: "social"}),
		cmd(OpCreateChannelType, admin, &api.CreateChannelTypeArgs{ID: "webchat", MRD: "chat"}),
		cmd(OpCreateList, admin, &api.CreateListArgs{ID: "L1", Name: "Facebook"}),
		cmd(OpCreateList, admin, &api.CreateListArgs{ID: "L2", Name: "Other"}),
		cmd(OpCreateQueue, admin, &api.CreateQueueArgs{ID: "Q1", Name: "Web", MRD: "chat", Priority: 1, OfferTimeoutMs: 30000}),
		cmd(OpCreateChannel, admin, &api.CreateChannelArgs{ID: "C2", Type: "facebook", Mode: api.ModePull, List: "L1"}),
		cmd(OpCreateChannel, admin, &api.CreateChannelArgs{ID: "W1", Type: "webchat", Mode: api.ModePush, Queue: "Q1"}),
		cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: "A1", Name: "Ann", Max: map[string]int{"social": 2}, TokenHash: tok}),
		cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: "A2", Name: "Bob", TokenHash: tok}),
		cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: "A3", Name: "Cid", TokenHash: tok}),
		cmd(OpCreateConnector, admin, &api.CreateConnectorArgs{ID: "fb", Name: "Facebook", Channels: []string{"C2"}, TokenHash: tok}),
		cmd(OpCreateConnector, admin, &api.CreateConnectorArgs{ID: "web", Name: "Web", Channels: []string{"W1"}, TokenHash: tok}),
		cmd(OpSubscribe, a1, &api.SubscribeArgs{List: "L1"}),
		cmd(OpSubscribe, a2, &api.SubscribeArgs{List: "L1"}),
		cmd(OpSubscribe, a3, &api.SubscribeArgs{List: "L2"}),
	}
	for _, c := range cs {
		c.Time = t0
	}
	return cs
}

// walkthrough returns a state holding the walkthrough setup at time t0.
func walkthrough(tb testing.TB) *State {
	tb.Helper()
	s := NewState()
	for _, c := range walkthroughCommands() {
		mustApply(tb, s, c)
	}
	return s
}

// mustApply applies c and fails the test if it is rejected.
func mustApply(tb testing.TB, s *State, c *Command) (Result, []Event) {
	tb.Helper()
	res, evs := s.Apply(c)
	if res.Err != nil {
		tb.Fatalf("%s by %s:%s: %v", opName(c.Op), c.By.Role, c.By.ID, res.Err)
	}
	return res, evs
}

// customerMessage sends a customer message on C2 through fb and returns the
// request it went to.
func customerMessage(tb testing.TB, s *State, customer, text string) string {
	tb.Helper()
	res, _ := mustApply(tb, s, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: customer, CustomerName: "Cust " + customer, Text: text}))
	return res.Data.(api.CustomerMessageResult).Request
}

// restore decodes a state written by Marshal, or fails.
func restore(tb testing.TB, data []byte) *State {
	tb.Helper()
	s, err := ReadState(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		tb.Fatalf("read state: %v", err)
	}
	return s
}

// marshal returns s.Marshal() or fails.
func marshal(tb testing.TB, s *State) []byte {
	tb.Helper()
	b, err := s.Marshal()
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return b
}

// assertRejected applies c (which must have Seq 0 and no later time than the
// state's clock) and checks it fails with code, returns no events and leaves
// the state byte-for-byte unchanged.
func assertRejected(tb testing.TB, s *State, c *Command, code api.Code) {
	tb.Helper()
	if c.Seq != 0 || c.Time > s.Now {
		tb.Fatalf("assertRejected needs Seq 0 and no clock advance (seq %d, time %d, now %d)", c.Seq, c.Time, s.Now)
	}
	before := marshal(tb, s)
	res, evs := s.Apply(c)
	if res.Err == nil {
		tb.Fatalf("%s succeeded with %+v, want %s", opName(c.Op), res.Data, code)
	}
	if res.Err.Code != code {
		tb.Fatalf("%s failed with %v, want %s", opName(c.Op), res.Err, code)
	}
	if res.Data != nil {
		tb.Errorf("rejected %s returned data %+v", opName(c.Op), res.Data)
	}
	if len(evs) != 0 {
		tb.Errorf("rejected %s returned events %+v", opName(c.Op), evs)
	}
	if after := marshal(tb, s); !bytes.Equal(before, after) {
		tb.Errorf("rejected %s changed the state", opName(c.Op))
	}
}

func opName(op Op) string {
	if i := Commands.Lookup(op); i != nil {
		return i.Name
	}
	return fmt.Sprintf("op%d", op)
}

// ev is an event without its Seq, for comparisons.
func ev(kind api.EventKind, data any, to ...string) Event {
	return Event{Kind: kind, To: to, Data: data}
}

// assertEvents compares events (kind, recipients in order, payload).
func assertEvents(tb testing.TB, got []Event, want ...Event) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d events, want %d:\n got  %s\n want %s", len(got), len(want), kinds(got), kinds(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			tb.Errorf("event %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

func kinds(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(string(e.Kind))
		b.WriteString("→")
		b.WriteString(strings.Join(e.To, ","))
		b.WriteString(" ")
	}
	return b.String()
}

// applyCase is one row of a command table: a command applied to the
// walkthrough state (after prep), and either the Code it must fail with or
// a check of its success.
type applyCase struct {
	name  string
	prep  func(tb testing.TB, s *State)
	c     *Command
	code  api.Code // CodeOK: must succeed
	check func(t *testing.T, s *State, res Result, evs []Event)
}

func runCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := walkthrough(t)
			if tc.prep != nil {
				tc.prep(t, s)
			}
			if tc.code != api.CodeOK {
				if tc.check != nil {
					t.Fatal("a rejection case has no check")
				}
				assertRejected(t, s, tc.c, tc.code)
				return
			}
			res, evs := mustApply(t, s, tc.c)
			if tc.check == nil {
				t.Fatal("a success case needs a check")
			}
			tc.check(t, s, res, evs)
		})
	}
}

func mustMsgpack(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// wire is v as a client decodes it: encoded with msgpack, then decoded
// into generic values. Results compare by wire form across a restore: a
// result replayed from a restored session holds generic maps where the
// original held structs.
func wire(tb testing.TB, v any) any {
	tb.Helper()
	var out any
	if err := msgpack.Unmarshal(mustMsgpack(tb, v), &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// openC2u1 is the State.Open key of customer u1 on channel C2.
const openC2u1 = "C2\x00u1"

// sweepEvery is how often (leader time) the state drops expired sessions.
const sweepEvery = int64(60e9)

// A, C are recipient keys.
func A(id string) string { return api.AgentKey(id) }
func C(id string) string { return api.ConnectorKey(id) }
