package fsm_test

import (
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// BenchmarkConnectorSync measures the sync view of a connector (what a
// reconnecting connector gets, computed under the FSM's read lock) whose
// channel has 10 open requests while 100,000 other open requests sit on
// another channel.
func BenchmarkConnectorSync(b *testing.B) {
	const (
		mine   = 10
		others = 100_000
	)
	s := fsm.NewState()
	now := int64(1)
	do := func(by api.Principal, op fsm.Op, args any) {
		now++
		if res, _ := s.Apply(&fsm.Command{Op: op, By: by, Time: now, Args: args}); res.Err != nil {
			b.Fatalf("setup %d: %v", op, res.Err)
		}
	}
	do(benchAdmin, fsm.OpCreateMRD, &api.CreateMRDArgs{ID: "chat"})
	do(benchAdmin, fsm.OpCreateChannelType, &api.CreateChannelTypeArgs{ID: "web", MRD: "chat"})
	do(benchAdmin, fsm.OpCreateList, &api.CreateListArgs{ID: "l"})
	for _, ch := range []string{"mine", "busy"} {
		do(benchAdmin, fsm.OpCreateChannel, &api.CreateChannelArgs{ID: ch, Type: "web", Mode: api.ModePull, List: "l"})
		do(benchAdmin, fsm.OpCreateConnector, &api.CreateConnectorArgs{ID: ch, Channels: []string{ch}, TokenHash: []byte("h")})
	}
	for i := range others {
		do(api.Principal{Role: api.RoleConnector, ID: "busy"}, fsm.OpCustomerMessage,
			&api.CustomerMessageArgs{Channel: "busy", CustomerID: fmt.Sprintf("b%d", i), Text: "hello"})
	}
	for i := range mine {
		do(api.Principal{Role: api.RoleConnector, ID: "mine"}, fsm.OpCustomerMessage,
			&api.CustomerMessageArgs{Channel: "mine", CustomerID: fmt.Sprintf("m%d", i), Text: "hello"})
	}
	key := api.ConnectorKey("mine")
	if v, ok := s.View(key); !ok || len(v.Conversations) != mine {
		b.Fatalf("view of %s: %d conversations, want %d", key, len(v.Conversations), mine)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.View(key)
	}
}
