package cluster_test

import (
	"bufio"
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// Helpers of the FSM adapter's tests, after fsm's own test helpers: the
// walkthrough setup, principals, encoding shorthands and a recording sink.

// t0 is the leader time of the walkthrough setup (unix nanoseconds).
const t0 = int64(1_700_000_000_000_000_000)

// Principals of the walkthrough.
var (
	admin = api.Principal{Role: api.RoleAdmin, ID: "admin"}
	fb    = api.Principal{Role: api.RoleConnector, ID: "fb"} // allowed on C2 (pull, L1)
	a1    = api.Principal{Role: api.RoleAgent, ID: "A1"}     // subscribed to L1, max 2 in social
	a2    = api.Principal{Role: api.RoleAgent, ID: "A2"}     // subscribed to L1
	a3    = api.Principal{Role: api.RoleAgent, ID: "A3"}     // subscribed to L2 only
)

// cmd builds a command with no idempotency key and no time of its own.
func cmd(op Op, by api.Principal, args any) *Command {
	return &Command{Op: op, By: by, Args: args}
}

// keyed gives c an idempotency key.
func keyed(client string, seq uint64, c *Command) *Command {
	c.ClientID, c.Seq = client, seq
	return c
}

// walkthroughCommands is the admin setup of the Facebook walkthrough (as in
// fsm's tests): MRD social with channel type facebook, lists L1 and L2,
// pull channel C2 on L1, a push channel W1 on queue Q1 (MRD chat), agents
// A1 (max 2 in social), A2 and A3, connectors fb (C2) and web (W1); A1 and
// A2 subscribe to L1, A3 to L2.
func walkthroughCommands() []*Command {
	tok := []byte("hash")
	cs := []*Command{
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

// recordingSink keeps what an FSM publishes.
type recordingSink struct {
	mu        sync.Mutex
	published map[uint64][]Event
	order     []uint64
	resets    []uint64
}

func (r *recordingSink) Publish(index uint64, evs []Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.published == nil {
		r.published = map[uint64][]Event{}
	}
	r.published[index] = evs
	r.order = append(r.order, index)
}

func (r *recordingSink) Reset(index uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resets = append(r.resets, index)
}

func (r *recordingSink) take(index uint64) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.published[index]
	delete(r.published, index)
	return evs
}
