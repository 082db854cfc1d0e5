package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/switchboard/switchboard/transport"
)

// histSum returns the sum of the histogram family name's first series.
func histSum(fams map[string]*dto.MetricFamily, name string) float64 {
	f := fams[name]
	if f == nil || len(f.GetMetric()) == 0 || f.GetMetric()[0].Histogram == nil {
		return -1
	}
	return f.GetMetric()[0].GetHistogram().GetSampleSum()
}

// metricsWait bounds the waits for a figure to catch up with an action
// that has already been answered (a counter bumped after delivery).
const metricsWait = 10 * time.Second

// waitSample scrapes n until the sample name{lbl} satisfies ok, and fails
// the test with the last value otherwise.
func waitSample(t *testing.T, n *haNode, name string, lbl map[string]string, ok func(float64) bool, want string) float64 {
	t.Helper()
	var (
		got     float64
		present bool
	)
	testutil.WaitFor(t, metricsWait, func() bool {
		got, present = sample(scrape(t, n.srv), name, lbl)
		return present && ok(got)
	}, "%s%v: want %s, have %s", name, lbl, want, testutil.Lazy(func() string { return fmt.Sprintf("%v (present %v)", got, present) }))
	return got
}

// TestHTTPMetricsRaftCommitAndLogStore: a node times its Raft log
// writes from the start (bootstrapping writes the log), and concurrent
// writes move the commit-latency histogram and the commands-per-entry
// histogram, whose sum counts every command committed.
func TestHTTPMetricsRaftCommitAndLogStore(t *testing.T) {
	n := startHTTPNode(t, nil)
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	haCall(t, admin, "create_mrd", api.CreateMRDArgs{ID: "warm-up"}, nil)
	fams := scrape(t, n.srv)
	commits0, ok := sample(fams, "switchboard_raft_commit_duration_seconds", nil)
	if !ok || commits0 < 1 {
		t.Fatalf("commit latency count %v (present %v) after a committed write", commits0, ok)
	}
	stores0, ok := sample(fams, "switchboard_raft_log_store_duration_seconds", nil)
	if !ok || stores0 < 1 {
		t.Fatalf("log store count %v (present %v) on a bootstrapped node", stores0, ok)
	}
	cmds0 := histSum(fams, "switchboard_raft_entry_commands")
	entries0, _ := sample(fams, "switchboard_raft_entry_commands", nil)
	if cmds0 < 1 {
		t.Fatalf("commands per entry: sum %v", cmds0)
	}

	const writes = 64
	var wg sync.WaitGroup
	for i := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := admin.Call(ctx, "create_mrd", api.CreateMRDArgs{ID: fmt.Sprintf("m%d", i)}, nil); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		}()
	}
	wg.Wait()

	fams = scrape(t, n.srv)
	commits, _ := sample(fams, "switchboard_raft_commit_duration_seconds", nil)
	entries, _ := sample(fams, "switchboard_raft_entry_commands", nil)
	stores, _ := sample(fams, "switchboard_raft_log_store_duration_seconds", nil)
	cmds := histSum(fams, "switchboard_raft_entry_commands")
	if commits <= commits0 || entries != commits || entries-entries0 > writes {
		t.Errorf("committed entries: %v then %v (per-entry histogram %v then %v) for %d writes", commits0, commits, entries0, entries, writes)
	}
	if cmds-cmds0 < writes {
		t.Errorf("commands in committed entries grew by %v, want at least %d", cmds-cmds0, writes)
	}
	if stores <= stores0 {
		t.Errorf("log writes: %v then %v", stores0, stores)
	}
	if s := histSum(fams, "switchboard_raft_commit_duration_seconds"); s <= 0 || s > 30*commits {
		t.Errorf("commit latency sum %v s over %v entries", s, commits)
	}
}

// dialStream dials an agent's stream, resuming after since when resume.
func dialStream(t *testing.T, n *haNode, agent, token string, resume bool, since uint64) *transport.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, transport.ClientConfig{Addrs: []string{n.client}, Role: "agent", User: agent, Token: token,
		Resume: resume, Since: since, DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("dial %s: %v", agent, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestHTTPMetricsResumesSyncsAndHistory: a fresh stream counts a sync
// (new), a resume the history covers counts a resume, one it no longer
// covers a sync (cursor_not_held); the history's gauges follow the events
// it holds, up to its size.
func TestHTTPMetricsResumesSyncsAndHistory(t *testing.T) {
	const historySize = 8
	n := startHTTPNode(t, func(cfg *Config) { cfg.HistorySize = historySize })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, fbToken := haSetup(t, admin, "a1")
	newSyncs := labels("reason", "new")
	lostSyncs := labels("reason", "cursor_not_held")
	fams := scrape(t, n.srv)
	syncs0, _ := sample(fams, "switchboard_events_syncs_total", newSyncs)
	resumes0, _ := sample(fams, "switchboard_events_resumes_total", nil)
	lost0, _ := sample(fams, "switchboard_events_syncs_total", lostSyncs)

	a1 := dialStream(t, n, "a1", tokens["a1"], false, 0)
	if ev := haNextEvent(t, a1); ev.Kind != api.EvSync {
		t.Fatalf("first event %s, want sync", ev.Kind)
	}
	waitSample(t, n, "switchboard_events_syncs_total", newSyncs, func(v float64) bool { return v == syncs0+1 }, "one more new sync")
	// The connector dials only now: its own stream's sync, counted when
	// it is sent, would otherwise race the baseline above.
	fb := haDial(t, []string{n.client}, "connector", "fb", fbToken, false)

	// Two requests: a1 hears of them; the history holds their events.
	haCall(t, fb, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: "c1", Text: "hi"}, nil)
	first := haNextEvent(t, a1)
	haCall(t, fb, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: "c2", Text: "hi"}, nil)
	haNextEvent(t, a1)
	fams = scrape(t, n.srv)
	if e, _ := sample(fams, "switchboard_events_history_entries", nil); e < 2 || e > historySize {
		t.Errorf("history entries %v after two requests, size %d", e, historySize)
	}
	if b, _ := sample(fams, "switchboard_events_history_bytes", nil); b < 2*20 {
		t.Errorf("history bytes %v after two request events", b)
	}

	// A resume from the first event: the second is replayed.
	again := dialStream(t, n, "a1", tokens["a1"], true, first.Seq)
	if ev := haNextEvent(t, again); ev.Kind != api.EvRequestCreated || ev.Seq <= first.Seq {
		t.Fatalf("resumed stream's first event %s at %d, want the second request after %d", ev.Kind, ev.Seq, first.Seq)
	}
	waitSample(t, n, "switchboard_events_resumes_total", nil, func(v float64) bool { return v == resumes0+1 }, "one resume")

	// Enough events to push the first one out of the history: resuming
	// from it gets a sync.
	for i := range historySize + 2 {
		haCall(t, fb, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: fmt.Sprintf("d%d", i), Text: "hi"}, nil)
	}
	fams = scrape(t, n.srv)
	if e, _ := sample(fams, "switchboard_events_history_entries", nil); e != historySize {
		t.Errorf("history entries %v, want it full at %d", e, historySize)
	}
	old := dialStream(t, n, "a1", tokens["a1"], true, first.Seq)
	if ev := haNextEvent(t, old); ev.Kind != api.EvSync {
		t.Fatalf("resume from an evicted cursor: %s, want sync", ev.Kind)
	}
	waitSample(t, n, "switchboard_events_syncs_total", lostSyncs, func(v float64) bool { return v == lost0+1 }, "one sync for a lost cursor")
	if v, _ := sample(scrape(t, n.srv), "switchboard_events_resumes_total", nil); v != resumes0+1 {
		t.Errorf("resumes %v, want %v: a sync is not a resume", v, resumes0+1)
	}
}

// offerTally counts, from an agent's stream, the offers it was made and
// how they ended.
type offerTally struct {
	mu      sync.Mutex
	made    map[api.OfferKind]int
	ended   map[string]int
	pending map[string]api.OfferInfo // by request
}

func newOfferTally() *offerTally {
	return &offerTally{made: map[api.OfferKind]int{}, ended: map[string]int{}, pending: map[string]api.OfferInfo{}}
}

// follow reads c's events into the tally until c ends.
func (o *offerTally) follow(t *testing.T, c *transport.Client) {
	go func() {
		for ev := range c.Events() {
			o.mu.Lock()
			switch ev.Kind {
			case api.EvOfferCreated:
				var info api.OfferInfo
				if err := ev.Decode(&info); err != nil {
					t.Errorf("offer.created: %v", err)
				}
				o.made[info.Kind]++
				o.pending[info.Request.ID] = info
			case api.EvOfferWithdrawn:
				var w api.OfferWithdrawn
				if err := ev.Decode(&w); err != nil {
					t.Errorf("offer.withdrawn: %v", err)
				}
				o.ended[w.Reason]++
				delete(o.pending, w.Offer.Request.ID)
			}
			o.mu.Unlock()
		}
	}()
}

// offer waits for a pending offer of the tally and returns it.
func (o *offerTally) offer(t *testing.T) api.OfferInfo {
	t.Helper()
	var info api.OfferInfo
	waitFor(t, metricsWait, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, i := range o.pending {
			info = i
			return true
		}
		return false
	})
	return info
}

func (o *offerTally) accepted(info api.OfferInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended["accepted"]++
	delete(o.pending, info.Request.ID)
}

// TestHTTPMetricsOffers: the offer counters follow what the agents saw:
// offers made (route), and ended accepted, rejected, timed out and
// withdrawn when the agent went NOT_READY.
func TestHTTPMetricsOffers(t *testing.T) {
	n := startHTTPNode(t, nil)
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	haCall(t, admin, "create_mrd", api.CreateMRDArgs{ID: "chat"}, nil)
	haCall(t, admin, "create_channel_type", api.CreateChannelTypeArgs{ID: "web", MRD: "chat"}, nil)
	haCall(t, admin, "create_queue", api.CreateQueueArgs{ID: "Q", MRD: "chat", OfferTimeoutMs: 60000}, nil)
	haCall(t, admin, "create_queue", api.CreateQueueArgs{ID: "T", MRD: "chat", OfferTimeoutMs: 300}, nil)
	haCall(t, admin, "create_channel", api.CreateChannelArgs{ID: "W", Type: "web", Mode: api.ModePush, Queue: "Q"}, nil)
	haCall(t, admin, "create_channel", api.CreateChannelArgs{ID: "WT", Type: "web", Mode: api.ModePush, Queue: "T"}, nil)
	agents := map[string]*transport.Client{}
	tallies := map[string]*offerTally{}
	for agent, queue := range map[string]string{"p": "Q", "t": "T"} {
		var cred Credential
		haCall(t, admin, "create_agent", api.CreateAgentArgs{ID: agent, Max: map[string]int{"chat": 2}}, &cred)
		haCall(t, admin, "add_queue_member", api.QueueMemberArgs{Agent: agent, Queue: queue}, nil)
		agents[agent] = haDial(t, []string{n.client}, "agent", agent, cred.Token, false)
		tallies[agent] = newOfferTally()
		tallies[agent].follow(t, agents[agent])
		haCall(t, agents[agent], "login", api.AgentArgs{}, nil)
	}
	fams := scrape(t, n.srv)
	for _, o := range offerEnds {
		if v, ok := sample(fams, "switchboard_offers_ended_total", labels("outcome", o)); !ok || v != 0 {
			t.Fatalf("offers ended %s = %v (present %v) before any offer", o, v, ok)
		}
	}

	// p: one offer accepted, one rejected, then NOT_READY withdraws
	// whatever it holds.
	p, pt := agents["p"], tallies["p"]
	haCall(t, admin, "customer_message", api.CustomerMessageArgs{Channel: "W", CustomerID: "c1", Text: "hi"}, nil)
	haCall(t, p, "set_agent_state", api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}, nil)
	o1 := pt.offer(t)
	haCall(t, p, api.OpAcceptOffer, api.OfferArgs{Request: o1.Request.ID, OfferID: o1.ID}, nil)
	pt.accepted(o1)
	haCall(t, admin, "customer_message", api.CustomerMessageArgs{Channel: "W", CustomerID: "c2", Text: "hi"}, nil)
	o2 := pt.offer(t)
	haCall(t, p, api.OpRejectOffer, api.OfferArgs{Request: o2.Request.ID, OfferID: o2.ID}, nil)
	haCall(t, p, "set_agent_state", api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady}, nil)

	// t: an offer that lapses.
	haCall(t, agents["t"], "set_agent_state", api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}, nil)
	haCall(t, admin, "customer_message", api.CustomerMessageArgs{Channel: "WT", CustomerID: "c3", Text: "hi"}, nil)
	tallies["t"].offer(t)
	waitFor(t, metricsWait, func() bool {
		tallies["t"].mu.Lock()
		defer tallies["t"].mu.Unlock()
		return tallies["t"].ended[api.WithdrawTimeout] == 1
	})

	// Every figure matches what the streams told, once applied.
	made := map[api.OfferKind]int{}
	ended := map[string]int{}
	for _, o := range tallies {
		o.mu.Lock()
		for k, v := range o.made {
			made[k] += v
		}
		for k, v := range o.ended {
			ended[k] += v
		}
		o.mu.Unlock()
	}
	for _, want := range []string{"accepted", api.WithdrawRejected, api.WithdrawTimeout} {
		if ended[want] < 1 {
			t.Fatalf("the streams saw no offer end %s: %v", want, ended)
		}
	}
	if made[api.OfferRoute] < 3 {
		t.Fatalf("the streams saw %d route offers, want at least 3", made[api.OfferRoute])
	}
	var last string
	testutil.WaitFor(t, metricsWait, func() bool {
		fams := scrape(t, n.srv)
		for _, k := range offerKinds {
			if v, _ := sample(fams, "switchboard_offers_made_total", labels("kind", string(k))); v != float64(made[k]) {
				last = fmt.Sprintf("made %s = %v, streams saw %d", k, v, made[k])
				return false
			}
		}
		for _, o := range offerEnds {
			if v, _ := sample(fams, "switchboard_offers_ended_total", labels("outcome", o)); v != float64(ended[o]) {
				last = fmt.Sprintf("ended %s = %v, streams saw %d", o, v, ended[o])
				return false
			}
		}
		return true
	}, "the offer counters to match the streams: %s", testutil.Lazy(func() string { return last }))
	t.Logf("offers made %v, ended %v", made, ended)
}

// TestHTTPMetricsServiceLevels: a request left waiting past its queue's
// service level is counted breached (the leader's deadline timer decides
// it), one answered in time met, in the changes counter and in the
// queue's figures of the day.
func TestHTTPMetricsServiceLevels(t *testing.T) {
	n := startHTTPNode(t, nil)
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	haCall(t, admin, "create_mrd", api.CreateMRDArgs{ID: "chat"}, nil)
	haCall(t, admin, "create_channel_type", api.CreateChannelTypeArgs{ID: "web", MRD: "chat"}, nil)
	haCall(t, admin, "create_queue", api.CreateQueueArgs{ID: "Q", MRD: "chat", OfferTimeoutMs: 60000, SLAMs: 300}, nil)
	haCall(t, admin, "create_channel", api.CreateChannelArgs{ID: "W", Type: "web", Mode: api.ModePush, Queue: "Q"}, nil)
	var cred Credential
	haCall(t, admin, "create_agent", api.CreateAgentArgs{ID: "p", Max: map[string]int{"chat": 2}}, &cred)
	haCall(t, admin, "add_queue_member", api.QueueMemberArgs{Agent: "p", Queue: "Q"}, nil)
	p := haDial(t, []string{n.client}, "agent", "p", cred.Token, false)
	tally := newOfferTally()
	tally.follow(t, p)
	haCall(t, p, "login", api.AgentArgs{}, nil)
	for _, st := range []string{"warning", "breached", "met"} {
		if v, ok := sample(scrape(t, n.srv), "switchboard_sla_changes_total", labels("state", st)); !ok || v != 0 {
			t.Fatalf("sla changes %s = %v (present %v) before any request", st, v, ok)
		}
	}

	// Nobody READY: the first request waits past its 300 ms.
	haCall(t, admin, "customer_message", api.CustomerMessageArgs{Channel: "W", CustomerID: "late", Text: "hi"}, nil)
	waitSample(t, n, "switchboard_sla_changes_total", labels("state", "breached"), func(v float64) bool { return v == 1 }, "1")
	waitSample(t, n, "switchboard_queue_service_level_today", labels("queue", "Q", "outcome", "breached"), func(v float64) bool { return v == 1 }, "1")
	haCall(t, p, "set_agent_state", api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}, nil)
	o := tally.offer(t)
	haCall(t, p, api.OpAcceptOffer, api.OfferArgs{Request: o.Request.ID, OfferID: o.ID}, nil)
	tally.accepted(o)
	// The agent is READY with room: the next one is offered and taken at once.
	haCall(t, admin, "customer_message", api.CustomerMessageArgs{Channel: "W", CustomerID: "fast", Text: "hi"}, nil)
	o = tally.offer(t)
	haCall(t, p, api.OpAcceptOffer, api.OfferArgs{Request: o.Request.ID, OfferID: o.ID}, nil)
	waitSample(t, n, "switchboard_sla_changes_total", labels("state", "met"), func(v float64) bool { return v == 1 }, "1")
	waitSample(t, n, "switchboard_queue_service_level_today", labels("queue", "Q", "outcome", "met"), func(v float64) bool { return v == 1 }, "1")
	if v, _ := sample(scrape(t, n.srv), "switchboard_sla_changes_total", labels("state", "breached")); v != 1 {
		t.Fatalf("breached = %v after a late answer, want still 1 (a late answer is not met)", v)
	}
}
