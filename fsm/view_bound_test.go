package fsm_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

// The bound of docs/PROTOCOL.md §1: no frame a node sends exceeds
// api.MaxNodeFrame, whatever the state's size. These tests build large
// states (many requests, long messages, many lists, many conversations,
// long queues) and encode what a node would send with the transport's own
// encoders: the sync event (transport.EncodeEvent, as the hub does), the
// answer of every read and of subscribe (transport.ResponseFrame, as a
// session does), and every event the commands caused.

// frameChecker encodes frames as a node would and records the largest.
type frameChecker struct {
	t       *testing.T
	largest int
	what    string
}

func (fc *frameChecker) check(what string, frame []byte, err error) {
	fc.t.Helper()
	if err != nil {
		fc.t.Fatalf("%s: encode: %v", what, err)
	}
	n := len(frame) - 4 // the length prefix is not payload
	if n > api.MaxNodeFrame {
		fc.t.Fatalf("%s: a frame of %d bytes, above the %d a node sends", what, n, api.MaxNodeFrame)
	}
	if n > fc.largest {
		fc.largest, fc.what = n, what
	}
}

// event checks the ev frame of an event.
func (fc *frameChecker) event(what string, kind api.EventKind, data any) {
	fc.t.Helper()
	b, err := transport.EncodeEvent(api.SeqOf(1<<40, 3), kind, data)
	fc.check(what, b, err)
}

// answer checks the res frame of a successful op; a view must never need
// the last-resort refusal.
func (fc *frameChecker) answer(what string, data any, view bool) {
	fc.t.Helper()
	f := transport.ResponseFrame(1<<20, data, 1<<40)
	if view && f.Err != nil {
		fc.t.Fatalf("%s: answered %s: %s", what, f.Err.Name, f.Err.Msg)
	}
	b, err := transport.EncodeFrame(f)
	fc.check(what, b, err)
}

// apply applies c and checks the frames of its events and result.
func (fc *frameChecker) apply(s *State, c *Command) Result {
	fc.t.Helper()
	res, evs := s.Apply(c)
	for _, e := range evs {
		fc.event(fmt.Sprintf("event %s of op %d", e.Kind, c.Op), e.Kind, e.Data)
	}
	if res.Err == nil && res.Data != nil {
		fc.answer(fmt.Sprintf("result of op %d", c.Op), res.Data, false)
	}
	return res
}

func (fc *frameChecker) mustApply(s *State, c *Command) Result {
	fc.t.Helper()
	res := fc.apply(s, c)
	if res.Err != nil {
		fc.t.Fatalf("op %d by %s: %v", c.Op, c.By.ID, res.Err)
	}
	return res
}

// views checks everything a node sends from the state: the sync of every
// agent and connector, and every read each principal may make.
func (fc *frameChecker) views(s *State) {
	fc.t.Helper()
	read := func(p api.Principal, op string, args any, view bool) {
		fc.t.Helper()
		var raw []byte
		if args != nil {
			raw = mustMsgpack(fc.t, args)
		}
		v, err := s.Query(p, op, raw)
		if err != nil {
			if view {
				fc.t.Fatalf("%s by %s: %v", op, p.ID, err)
			}
			return
		}
		fc.answer(fmt.Sprintf("%s %+v by %s", op, args, p.ID), v, view)
	}
	var principals []api.Principal
	for id, ag := range s.Agents {
		p := api.Principal{Role: api.RoleAgent, ID: id}
		principals = append(principals, p)
		for _, l := range ag.Lists {
			read(p, api.QueryList, api.QueryArgs{List: l}, true)
		}
		read(p, api.QueryConversations, api.QueryArgs{Limit: api.MaxPageSize}, true)
		for _, r := range ag.Conversations[:min(len(ag.Conversations), 3)] {
			read(p, api.QueryRequest, api.QueryArgs{Request: r}, true)
		}
	}
	for id := range s.Connectors {
		p := api.Principal{Role: api.RoleConnector, ID: id}
		principals = append(principals, p)
		read(p, api.QueryConversations, api.QueryArgs{Limit: api.MaxPageSize}, true)
	}
	// A supervisor of everything: its sync carries the whole cluster's
	// board, which must stay within the bound too.
	if s.Supervisors["sall"] == nil {
		fc.mustApply(s, cmd(OpCreateSupervisor, admin, &api.CreateSupervisorArgs{ID: "sall", TokenHash: []byte("h")}))
	}
	sup := api.Principal{Role: api.RoleSupervisor, ID: "sall"}
	principals = append(principals, sup)
	read(sup, api.QueryBoard, nil, true)
	read(admin, api.QueryBoard, nil, true)
	for _, p := range principals {
		v, ok := s.View(p.Key())
		if !ok {
			fc.t.Fatalf("no view of %s", p.Key())
		}
		fc.event("sync of "+p.Key(), api.EvSync, v)
		read(p, api.QueryView, nil, true)
		read(p, api.QueryAgentStates, nil, false)
	}
	for id := range s.Lists {
		read(admin, api.QueryList, api.QueryArgs{List: id, Limit: api.MaxPageSize}, true)
	}
	for id := range s.Queues {
		read(admin, api.QueryQueue, api.QueryArgs{Queue: id, Limit: api.MaxPageSize}, true)
	}
	for _, op := range []string{api.QueryMRDs, api.QueryChannelTypes, api.QueryChannels, api.QueryLists, api.QueryQueues,
		api.QueryAgents, api.QueryConnectors, api.QueryAgentStates} {
		read(admin, op, nil, false)
	}
}

// The lock-out: 12,000 open requests with 2 KB messages made a
// list's sync 19.9 MiB. Every subscriber's sync, get_list and subscribe now
// fit, and so does the connector's view of the 12,000 conversations.
func TestViewsOfTwelveThousandRequestsFitTheFrame(t *testing.T) {
	fc := &frameChecker{t: t}
	s := walkthrough(t)
	text := strings.Repeat("m", 2000)
	for i := range 12000 {
		fc.mustApply(s, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: fmt.Sprintf("c%d", i), Text: text}))
	}
	// Unpaged, the list alone would not fit: the test exercises the bound.
	whole := api.ListSnapshot{List: "L1"}
	for _, id := range s.Lists["L1"].Requests {
		r := s.Requests[id]
		sum := s.Summary(r)
		sum.Preview = r.Transcript[0].Text // the whole message, as before level 3
		whole.Requests = append(whole.Requests, sum)
	}
	if b, _ := transport.EncodeEvent(1, api.EvSync, api.StreamView{Lists: []api.ListSnapshot{whole}}); len(b) <= api.MaxNodeFrame {
		t.Fatalf("the whole list encodes to %d bytes: not above the frame bound, the test proves nothing", len(b))
	}
	fc.mustApply(s, cmd(OpSubscribe, a3, &api.SubscribeArgs{List: "L1"}))
	fc.views(s)
	t.Logf("largest frame: %d bytes (%s)", fc.largest, fc.what)
	// The board keeps the oldest requests it can hold and says it cut.
	b, _ := s.SupervisorBoard("sall")
	if !b.Truncated || len(b.Requests) == 0 || len(b.Requests) > api.MaxBoardRequests || b.Requests[0].ID != "R1" || b.Lists[0].Unread != 12000 {
		t.Fatalf("board of 12,000 requests: truncated %v, %d requests from %v, L1 unread %d", b.Truncated, len(b.Requests), b.Requests[0].ID, b.Lists[0].Unread)
	}
}

// Random large states: the property holds whatever their shape.
func TestViewsOfRandomLargeStatesFitTheFrame(t *testing.T) {
	seeds := 4
	if testing.Short() || raceEnabled {
		seeds = 2
	}
	for seed := range int64(seeds) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			fc := &frameChecker{t: t}
			s := randomLargeState(fc, rand.New(rand.NewSource(seed)))
			fc.views(s)
			t.Logf("%d requests, %d lists, %d agents; largest frame %d bytes (%s)",
				len(s.Requests), len(s.Lists), len(s.Agents), fc.largest, fc.what)
		})
	}
}

// randomLargeState builds, through Apply, a state with many lists (up to
// 300, pull channels on up to 100), agents subscribed to many of them, up
// to 12,000 requests with messages up to 4 KiB (some with full
// transcripts), an agent without a maximum in hundreds of conversations
// and subscribed to every list with a channel, and a queue with thousands
// of waiting requests. Paged by count alone, the heavy agent's sync would
// carry up to 100 lists of 100 requests: several times the frame bound.
func randomLargeState(fc *frameChecker, rnd *rand.Rand) *State {
	t := fc.t
	s := walkthrough(t)
	text := func() string {
		n := 1 + rnd.Intn(api.MaxTextBytes)
		if rnd.Intn(3) == 0 {
			n = api.MaxTextBytes
		}
		return strings.Repeat(string(rune('a'+rnd.Intn(26))), n)
	}
	nLists := 1 + rnd.Intn(300)
	var channels []string
	for i := range nLists {
		id := fmt.Sprintf("X%d", i)
		fc.mustApply(s, cmd(OpCreateList, admin, &api.CreateListArgs{ID: id, Name: strings.Repeat("n", rnd.Intn(api.MaxIDBytes+1))}))
		if i < 100 {
			ch := fmt.Sprintf("CH%d", i)
			fc.mustApply(s, cmd(OpCreateChannel, admin, &api.CreateChannelArgs{ID: ch, Type: "facebook", Mode: api.ModePull, List: id}))
			channels = append(channels, ch)
		}
	}
	fc.mustApply(s, cmd(OpCreateConnector, admin, &api.CreateConnectorArgs{ID: "all", Channels: append(channels, "C2"), TokenHash: []byte("h")}))
	nAgents := 3 + rnd.Intn(20)
	for i := range nAgents {
		id := fmt.Sprintf("G%d", i)
		fc.mustApply(s, cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: id, Name: strings.Repeat("g", rnd.Intn(api.MaxIDBytes+1)), TokenHash: []byte("h")}))
		for _, j := range rnd.Perm(nLists)[:rnd.Intn(min(nLists, api.MaxAgentLists)+1)] {
			fc.mustApply(s, cmd(OpSubscribe, admin, &api.SubscribeArgs{Agent: id, List: fmt.Sprintf("X%d", j)}))
		}
	}
	nRequests := rnd.Intn(12000)
	var opened []string
	for i := range nRequests {
		ch := channels[rnd.Intn(len(channels))]
		res := fc.mustApply(s, cmd(OpCustomerMessage, fc.connector(), &api.CustomerMessageArgs{Channel: ch, CustomerID: fmt.Sprintf("k%d", i),
			CustomerName: strings.Repeat("c", rnd.Intn(api.MaxIDBytes+1)), Text: text()}))
		opened = append(opened, res.Data.(api.CustomerMessageResult).Request)
	}
	// Some requests with full transcripts, joined by the heavy agent
	// (no maximum), with long replies.
	fc.mustApply(s, cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: "heavy", TokenHash: []byte("h")}))
	for j := range min(nLists, 100) {
		fc.mustApply(s, cmd(OpSubscribe, admin, &api.SubscribeArgs{Agent: "heavy", List: fmt.Sprintf("X%d", j)}))
	}
	for _, i := range rnd.Perm(len(opened))[:min(len(opened), 400)] {
		r := opened[i]
		if fc.apply(s, cmd(OpJoin, admin, &api.RequestArgs{Request: r, Agent: "heavy"})).Err != nil {
			continue
		}
		for range api.MaxTranscriptMessages {
			fc.mustApply(s, cmd(OpSend, admin, &api.SendArgs{Request: r, Agent: "heavy", Text: text()}))
		}
	}
	// A long queue.
	for i := range rnd.Intn(3000) {
		fc.mustApply(s, cmd(OpCustomerMessage, web, &api.CustomerMessageArgs{Channel: "W1", CustomerID: fmt.Sprintf("q%d", i), Text: text(), Priority: rnd.Intn(5)}))
	}
	return s
}

// connector is the connector of every pull channel of randomLargeState.
func (fc *frameChecker) connector() api.Principal {
	return api.Principal{Role: api.RoleConnector, ID: "all"}
}

// pagingState is a state with enough in it to page: 300 requests on L1
// with long messages, A2 in 150 of them, 150 waiting in Q1.
func pagingState(t testing.TB) *State {
	s := walkthrough(t)
	long := strings.Repeat("ü", api.MaxTextBytes/2)
	for i := range 300 {
		r := customerMessage(t, s, fmt.Sprintf("f%d", i), long)
		if i%2 == 0 {
			mustApply(t, s, cmd(OpJoin, a2, &api.RequestArgs{Request: r}))
		}
	}
	for i := range 150 {
		mustApply(t, s, cmd(OpCustomerMessage, web, &api.CustomerMessageArgs{Channel: "W1", CustomerID: fmt.Sprintf("w%d", i), Text: long}))
	}
	return s
}

// FuzzQuery: a read with any arguments, by any principal, never panics,
// and its answer is a frame within the bound; a view is never refused for
// its size. The arguments' decoder (QueryArgs: after, limit) meets any
// bytes.
func FuzzQuery(f *testing.F) {
	ops := []string{api.QueryList, api.QueryRequest, api.QueryView, api.QueryConversations, api.QueryQueue,
		api.QueryAgentStates, api.QueryLists, api.QueryAgents, api.QueryMRDs}
	principals := []api.Principal{admin, a1, a2, a3, fb, web}
	for i := range ops {
		for _, a := range []api.QueryArgs{{}, {List: "L1", Queue: "Q1", Request: "R2"}, {List: "L1", Queue: "Q1", After: "R40", Limit: 3},
			{List: "L1", Queue: "Q1", Limit: -1}, {List: "L1", Queue: "Q1", Limit: 1 << 40}, {After: "\xff", Limit: api.MaxPageSize}} {
			f.Add(uint8(i), uint8(i), mustMsgpack(f, a))
		}
	}
	f.Add(uint8(0), uint8(0), []byte{0x81, 0xa5, 'l', 'i', 'm', 'i', 't', 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0})
	s := pagingState(f) // reads only: shared by every input
	f.Fuzz(func(t *testing.T, op, who uint8, raw []byte) {
		name, p := ops[int(op)%len(ops)], principals[int(who)%len(principals)]
		v, err := s.Query(p, name, raw)
		if err != nil {
			return
		}
		res := transport.ResponseFrame(1, v, 0)
		if res.Err != nil && name != api.QueryAgentStates && name != api.QueryLists && name != api.QueryAgents && name != api.QueryMRDs {
			t.Fatalf("%s by %s: refused %s", name, p.ID, res.Err.Msg)
		}
		b, eerr := transport.EncodeFrame(res)
		if eerr != nil || len(b)-4 > api.MaxNodeFrame {
			t.Fatalf("%s by %s: a frame of %d bytes (%v)", name, p.ID, len(b)-4, eerr)
		}
	})
}
