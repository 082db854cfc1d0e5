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
	"github.com/switchboard/switchboard/fsm/fsmtest"
)

// t0 is the leader time of the walkthrough setup (unix nanoseconds).
const t0 = fsmtest.T0

// Principals of the walkthrough (fsmtest).
var (
	admin  = fsmtest.Admin
	fb     = fsmtest.FB
	web    = fsmtest.Web
	a1     = fsmtest.A1
	a2     = fsmtest.A2
	a3     = fsmtest.A3
	system = fsmtest.System
)

// cmd builds a command with no idempotency key and no time of its own (the
// state's clock stays where it is).
func cmd(op Op, by api.Principal, args any) *Command { return fsmtest.Cmd(op, by, args) }

// at stamps c with leader time t.
func at(t int64, c *Command) *Command { c.Time = t; return c }

// keyed gives c an idempotency key.
func keyed(client string, seq uint64, c *Command) *Command { return fsmtest.Keyed(client, seq, c) }

// walkthroughCommands is the walkthrough setup (fsmtest.WalkthroughCommands).
func walkthroughCommands() []*Command { return fsmtest.WalkthroughCommands() }

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

// sweepEvery is how often (leader time) the state drops expired sessions.
const sweepEvery = int64(60e9)

// A, C are recipient keys.
func A(id string) string { return api.AgentKey(id) }
func C(id string) string { return api.ConnectorKey(id) }
