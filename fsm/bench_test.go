package fsm_test

import (
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// These complement apply_bench_test.go (BenchmarkApply for customer_message,
// join, leave, close, send; BenchmarkEntry for 256-command entries and
// single-command decoding) with subscribe, single-command encoding and the
// snapshot encoding.

// benchBatch is how many commands run on one prepared state before a new
// one is built (untimed): states stay small and realistic, not b.N large.
const benchBatch = 256

// benchApply times Apply of prepared commands. prepare builds a fresh state
// and benchBatch commands that must all succeed on it, in order.
func benchApply(b *testing.B, prepare func(b *testing.B) (*State, []*Command)) {
	b.ReportAllocs()
	var s *State
	var cmds []*Command
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%benchBatch == 0 {
			b.StopTimer()
			s, cmds = prepare(b)
			b.StartTimer()
		}
		if res, _ := s.Apply(cmds[i%benchBatch]); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}

// Subscribing to a list with 20 open requests: the agent's ListSnapshot is
// built, returned and sent as list.subscribed.
func BenchmarkApplySubscribe(b *testing.B) {
	benchApply(b, func(b *testing.B) (*State, []*Command) {
		s := walkthrough(b)
		for i := range 20 {
			customerMessage(b, s, fmt.Sprintf("c%d", i), "Hello, I need help with my order")
		}
		cmds := make([]*Command, benchBatch)
		for i := range cmds {
			id := fmt.Sprintf("S%d", i)
			mustApply(b, s, cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: id, TokenHash: []byte("h")}))
			cmds[i] = keyed("app", 1, cmd(OpSubscribe, api.Principal{Role: api.RoleAgent, ID: id}, &api.SubscribeArgs{List: "L1"}))
		}
		return s, cmds
	})
}

// One command per entry: what a node proposes without group commit.
func BenchmarkEncodeEntrySingle(b *testing.B) {
	c := &Command{Op: OpCustomerMessage, By: fb, ClientID: "fb-1", Seq: 123456, Time: t0,
		Args: &api.CustomerMessageArgs{Channel: "C2", CustomerID: "c42", CustomerName: "Customer", Text: "Hello, I need help with my order"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEntry(c); err != nil {
			b.Fatal(err)
		}
	}
}

// Snapshot encoding (State.Marshal, canonical map order) of a state with
// 1000 open and 1000 closed requests, 16 agents and busy idempotency
// sessions.
func BenchmarkMarshal(b *testing.B) {
	s := walkthrough(b)
	const agents = 16
	for i := range agents {
		id := fmt.Sprintf("B%d", i)
		mustApply(b, s, cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: id, TokenHash: []byte("h")}))
		mustApply(b, s, cmd(OpSubscribe, admin, &api.SubscribeArgs{Agent: id, List: "L1"}))
	}
	for i := range 2000 {
		ag := api.Principal{Role: api.RoleAgent, ID: fmt.Sprintf("B%d", i%agents)}
		r := customerMessage(b, s, fmt.Sprintf("c%d", i), "Hello, I need help with my order")
		mustApply(b, s, keyed("app", uint64(i+1), cmd(OpJoin, ag, &api.RequestArgs{Request: r})))
		if i%2 == 0 {
			mustApply(b, s, cmd(OpClose, ag, &api.RequestArgs{Request: r}))
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(marshal(b, s))))
	for b.Loop() {
		if _, err := s.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
