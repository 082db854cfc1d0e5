package fsm_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// Apply benchmarks: one command per op on a state with one list of 100
// subscribed agents, a pull channel and its connector, as the node applies
// it (events computed, recipients included). allocs/op counts everything
// Apply allocates for the command, its result and its events.

const benchSubscribers = 100

var (
	benchAdmin     = api.Principal{Role: api.RoleAdmin, ID: "admin"}
	benchConnector = api.Principal{Role: api.RoleConnector, ID: "cn"}
)

// benchState returns a state with the list, channel, connector and
// agents a0..a99 subscribed.
func benchState(b *testing.B) *fsm.State {
	b.Helper()
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
	do(benchAdmin, fsm.OpCreateChannel, &api.CreateChannelArgs{ID: "ch", Type: "web", Mode: api.ModePull, List: "l"})
	do(benchAdmin, fsm.OpCreateConnector, &api.CreateConnectorArgs{ID: "cn", Channels: []string{"ch"}, TokenHash: []byte("h")})
	for i := range benchSubscribers {
		id := "a" + strconv.Itoa(i)
		do(benchAdmin, fsm.OpCreateAgent, &api.CreateAgentArgs{ID: id, TokenHash: []byte("h")})
		do(benchAdmin, fsm.OpSubscribe, &api.SubscribeArgs{Agent: id, List: "l"})
	}
	return s
}

// open applies n customer messages from new customers: requests R<k>..
func open(b *testing.B, s *fsm.State, n int) (first int) {
	b.Helper()
	first = -1
	for i := range n {
		res, _ := s.Apply(&fsm.Command{Op: fsm.OpCustomerMessage, By: benchConnector, Time: s.Now + 1,
			Args: &api.CustomerMessageArgs{Channel: "ch", CustomerID: fmt.Sprintf("c%d", len(s.Requests)+i), Text: "Hello, I need help with my order"}})
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		if first < 0 {
			first, _ = strconv.Atoi(res.Data.(api.CustomerMessageResult).Request[1:])
		}
	}
	return first
}

func agentDo(b *testing.B, s *fsm.State, agent string, op fsm.Op, args any) {
	b.Helper()
	res, _ := s.Apply(&fsm.Command{Op: op, By: api.Principal{Role: api.RoleAgent, ID: agent}, Time: s.Now + 1, Args: args})
	if res.Err != nil {
		b.Fatalf("op %d: %v", op, res.Err)
	}
}

// BenchmarkApply measures State.Apply per command type.
func BenchmarkApply(b *testing.B) {
	b.Run("noop", func(b *testing.B) {
		s := benchState(b)
		cmd := &fsm.Command{Op: fsm.OpNoop, By: benchConnector, Time: 10, Args: &api.NoopArgs{Pad: make([]byte, 200)}}
		b.ReportAllocs()
		for b.Loop() {
			s.Apply(cmd)
		}
	})
	b.Run("customer_message/new_request", func(b *testing.B) {
		s := benchState(b)
		args := make([]api.CustomerMessageArgs, b.N)
		for i := range args {
			args[i] = api.CustomerMessageArgs{Channel: "ch", CustomerID: "c" + strconv.Itoa(i), Text: "Hello, I need help with my order"}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			s.Apply(&fsm.Command{Op: fsm.OpCustomerMessage, By: benchConnector, Time: int64(100 + i), Args: &args[i]})
		}
	})
	b.Run("customer_message/follow_up", func(b *testing.B) {
		s := benchState(b)
		open(b, s, 1)
		args := &api.CustomerMessageArgs{Channel: "ch", CustomerID: "c0", Text: "Are you there?"}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			s.Apply(&fsm.Command{Op: fsm.OpCustomerMessage, By: benchConnector, Time: int64(100 + i), Args: args})
		}
	})
	// join, leave, close and send each act on a request prepared outside
	// the timer, which is closed (also untimed) afterwards, so that the
	// state stays the same size: 100 subscribers, a few open requests,
	// agents in one conversation at most, and (after a warm-up of
	// MaxClosedKept closes) a full window of closed requests, as on a node
	// that has run for a while.
	perRequest := func(name string, joined bool, op fsm.Op, args func(req string) any) {
		perRequestBacklog(b, name, 0, joined, op, args)
	}
	ref := func(req string) any { return &api.RequestArgs{Request: req} }
	perRequest("join", false, fsm.OpJoin, ref)
	perRequest("leave", true, fsm.OpLeave, ref)
	perRequest("close", true, fsm.OpClose, ref)
	perRequest("send", true, fsm.OpSend, func(req string) any {
		return &api.SendArgs{Request: req, Text: "Thanks for waiting, let me check that for you"}
	})
	// Closing the newest of 100,000 open requests on the list: the cost
	// of finding and removing it among the list's requests.
	perRequestBacklog(b, "close/100k_open", 100_000, true, fsm.OpClose, ref)
}

// perRequestBacklog runs one of BenchmarkApply's per-request benchmarks
// on a state that first gets backlog open requests on the list.
func perRequestBacklog(b *testing.B, name string, backlog int, joined bool, op fsm.Op, args func(req string) any) {
	b.Run(name, func(b *testing.B) {
		s := benchState(b)
		if backlog > 0 {
			open(b, s, backlog)
		}
		cycle := func(timed bool, i int) {
			agent := "a" + strconv.Itoa(i%benchSubscribers)
			req := "R" + strconv.Itoa(open(b, s, 1))
			if joined {
				agentDo(b, s, agent, fsm.OpJoin, &api.RequestArgs{Request: req})
			}
			cmd := &fsm.Command{Op: op, By: api.Principal{Role: api.RoleAgent, ID: agent}, Time: s.Now + 1, Args: args(req)}
			if timed {
				b.StartTimer()
			}
			res, _ := s.Apply(cmd)
			if timed {
				b.StopTimer()
			}
			if res.Err != nil {
				b.Fatal(res.Err)
			}
			if op != fsm.OpClose {
				if op == fsm.OpLeave {
					agentDo(b, s, agent, fsm.OpJoin, &api.RequestArgs{Request: req})
				}
				agentDo(b, s, agent, fsm.OpClose, &api.RequestArgs{Request: req})
			}
		}
		for i := range fsm.MaxClosedKept {
			cycle(false, i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.StopTimer()
		for i := range b.N {
			cycle(true, i)
		}
	})
}

// BenchmarkEntry measures the log entry codec and FSM-side decoding of a
// group-committed entry of 256 customer messages (ns/op per entry).
func BenchmarkEntry(b *testing.B) {
	cmds := make([]*fsm.Command, 256)
	for i := range cmds {
		cmds[i] = &fsm.Command{Op: fsm.OpCustomerMessage, By: benchConnector, ClientID: "0123456789abcdef", Seq: uint64(i + 1), Time: 1e18,
			Args: &api.CustomerMessageArgs{Channel: "ch", CustomerID: "c" + strconv.Itoa(i), CustomerName: "Customer", Text: "Hello, I need help with my order"}}
	}
	data, err := fsm.EncodeEntry(cmds...)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode/256", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := fsm.EncodeEntry(cmds...); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/256", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := fsm.DecodeEntry(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	one, _ := fsm.EncodeEntry(cmds[0])
	b.Run("decode/1", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(one)))
		for b.Loop() {
			if _, err := fsm.DecodeEntry(one); err != nil {
				b.Fatal(err)
			}
		}
	})
}
