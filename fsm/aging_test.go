package fsm

import (
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/api"
	"pgregory.net/rapid"
)

// agingWorld adds to ptWorld a low queue AL (priority 1, aging: +1 per
// stepMs of waiting, at most aging) and a high queue AH (priority
// 1+gap, no aging), channels CL and CH onto them with connector ca, and
// one agent, solo (max 1 in chat), in both: only AL and AH compete for it.
func agingWorld(tb ptTB, gap int, stepMs int64, aging int) *State {
	tb.Helper()
	s := ptWorld(tb)
	ptApply(tb, s, ptCmd(OpCreateQueue, ptAdmin, &api.CreateQueueArgs{ID: "AL", MRD: "chat", Priority: 1, AgingStepMs: stepMs, AgingCap: aging}))
	ptApply(tb, s, ptCmd(OpCreateQueue, ptAdmin, &api.CreateQueueArgs{ID: "AH", MRD: "chat", Priority: 1 + gap}))
	ptApply(tb, s, ptCmd(OpCreateChannel, ptAdmin, &api.CreateChannelArgs{ID: "CL", Type: "webchat", Mode: api.ModePush, Queue: "AL"}))
	ptApply(tb, s, ptCmd(OpCreateChannel, ptAdmin, &api.CreateChannelArgs{ID: "CH", Type: "webchat", Mode: api.ModePush, Queue: "AH"}))
	ptApply(tb, s, ptCmd(OpCreateConnector, ptAdmin, &api.CreateConnectorArgs{ID: "ca", Channels: []string{"CL", "CH"}, TokenHash: []byte("h")}))
	ptApply(tb, s, ptCmd(OpCreateAgent, ptAdmin, &api.CreateAgentArgs{ID: "solo", Max: map[string]int{"chat": 1}, TokenHash: []byte("h")}))
	for _, q := range []string{"AL", "AH"} {
		ptApply(tb, s, ptCmd(OpAddQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: "solo", Queue: q}))
	}
	return s
}

var agingConn = api.Principal{Role: api.RoleConnector, ID: "ca"}

func agingArrive(tb ptTB, s *State, channel, customer string) string {
	tb.Helper()
	res, _ := ptApply(tb, s, ptCmd(OpCustomerMessage, agingConn, &api.CustomerMessageArgs{Channel: channel, CustomerID: customer, Text: "hi"}))
	return res.Data.(api.CustomerMessageResult).Request
}

// Under strict priority, a request of the low queue waits while the high
// queue has requests, until its wait has raised it above the high queue:
// a tie still goes to the higher queue, one more step wins.
func TestAgingRaisesALowQueueUnderStrictPriority(t *testing.T) {
	s := agingWorld(t, 3, 1000, 10) // AL at 1, AH at 4; +1 a second
	ptReady(t, s, "chat", "solo")
	busy := agingArrive(t, s, "CH", "h0") // X's one slot
	ptAccept(t, s, "solo", busy)
	low := agingArrive(t, s, "CL", "l1")
	serveNext := func() string {
		t.Helper()
		ptApply(t, s, ptCmd(OpClose, ptAgent("solo"), &api.RequestArgs{Request: busy}))
		next := s.Agents["solo"].Offers
		if len(next) != 1 {
			t.Fatalf("solo holds offers %v after freeing its slot", next)
		}
		busy = next[0]
		ptAccept(t, s, "solo", busy)
		return busy
	}
	for i, wait := range []int64{1000, 2000, 3000} { // boost 1, 2, 3 (a tie at 3)
		agingArrive(t, s, "CH", fmt.Sprintf("h%d", i+1))
		ptTick(t, s, wait-(s.Now-s.Requests[low].QueuedAt)/1e6)
		if got := serveNext(); got == low {
			t.Fatalf("after %d ms the low request went first (effective %d vs %d)", wait, 1+wait/1000, 4)
		}
	}
	agingArrive(t, s, "CH", "h9")
	ptTick(t, s, 1000) // boost 4: 5 > 4
	if got := serveNext(); got != low {
		t.Fatalf("after 4 s the high queue's %s went first, want the aged %s", got, low)
	}
}

// Aging is a level-2 argument of create_queue, and must be whole.
func TestAgingArguments(t *testing.T) {
	s := ptWorld(t)
	for _, a := range []api.CreateQueueArgs{
		{ID: "B1", MRD: "chat", AgingStepMs: 1000},
		{ID: "B2", MRD: "chat", AgingCap: 3},
		{ID: "B3", MRD: "chat", AgingStepMs: -1, AgingCap: 3},
		{ID: "B4", MRD: "chat", AgingStepMs: 1000, AgingCap: maxAgingCap + 1},
	} {
		ptReject(t, s, ptCmd(OpCreateQueue, ptAdmin, &a), api.CodeBadRequest)
	}
	s1 := NewState()
	for _, c := range ptWorldCommands()[1:] { // without the level raise
		ptApply(t, s1, c)
	}
	ptReject(t, s1, ptCmd(OpCreateQueue, ptAdmin, &api.CreateQueueArgs{ID: "B5", MRD: "chat", AgingStepMs: 1000, AgingCap: 3}), api.CodeFeatureNotEnabled)
}

// TestAgingNeverStarves: with an agent taking one request at a time and
// the high queue never empty (so strict priority alone would starve the
// low queue forever), aging with a cap above the gap serves every low
// request within (gap+1) steps of waiting plus one service slot for each
// low request ahead of it.
func TestAgingNeverStarves(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		gap := rapid.IntRange(1, 5).Draw(rt, "gap")
		stepMs := rapid.Int64Range(50, 2000).Draw(rt, "stepMs")
		aging := gap + rapid.IntRange(1, 4).Draw(rt, "capOverGap")
		tickMs := rapid.Int64Range(10, 3000).Draw(rt, "tickMs")
		s := agingWorld(rt, gap, stepMs, aging)
		ptReady(rt, s, "chat", "solo")
		served := map[string]int64{}
		arrived := map[string]int64{}
		var lows []string
		busy := ""
		ticks := rapid.IntRange(10, 120).Draw(rt, "ticks")
		for i := range ticks {
			agingArrive(rt, s, "CH", fmt.Sprintf("h%d", i)) // the high queue never runs dry
			if rapid.Bool().Draw(rt, "low") {
				r := agingArrive(rt, s, "CL", fmt.Sprintf("l%d", i))
				arrived[r] = s.Now
				lows = append(lows, r)
			}
			ptTick(rt, s, tickMs)
			if busy != "" {
				ptApply(rt, s, ptCmd(OpClose, ptAgent("solo"), &api.RequestArgs{Request: busy}))
			}
			offers := s.Agents["solo"].Offers
			if len(offers) != 1 {
				rt.Fatalf("tick %d: solo holds offers %v with a free slot", i, offers)
			}
			busy = offers[0]
			ptAccept(rt, s, "solo", busy)
			served[busy] = s.Now
		}
		for k, r := range lows {
			bound := int64(gap+1)*stepMs*1e6 + int64(k+2)*tickMs*1e6
			at, ok := served[r]
			if !ok {
				at = s.Now
				if at-arrived[r] <= bound {
					continue // not yet due
				}
			}
			if at-arrived[r] > bound {
				rt.Fatalf("low request %s waited %d ms (served %v), more than the bound %d ms", r, (at-arrived[r])/1e6, ok, bound/1e6)
			}
		}
	})
}
