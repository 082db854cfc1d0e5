package actors

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// slaWorld: feature level 2, MRD chat, list L with the given settings and
// pull channel P onto it, agent A subscribed (so the list's changes have
// an audience, unless lonely), customers writing through admin.
func (n *sysNode) slaWorld(list api.CreateListArgs, lonely bool) {
	n.t.Helper()
	n.do(api.Principal{Role: api.RoleSystem, ID: "leader"}, fsm.OpSetFeatureLevel, &api.FeatureLevelArgs{Level: fsm.MaxLevel})
	n.do(sysAdmin, fsm.OpCreateMRD, &api.CreateMRDArgs{ID: "chat"})
	n.do(sysAdmin, fsm.OpCreateChannelType, &api.CreateChannelTypeArgs{ID: "web", MRD: "chat"})
	list.ID = "L"
	n.do(sysAdmin, fsm.OpCreateList, &list)
	n.do(sysAdmin, fsm.OpCreateChannel, &api.CreateChannelArgs{ID: "P", Type: "web", Mode: api.ModePull, List: "L"})
	n.do(sysAdmin, fsm.OpCreateAgent, &api.CreateAgentArgs{ID: "A", TokenHash: []byte("h")})
	if !lonely {
		n.do(sysAdmin, fsm.OpSubscribe, &api.SubscribeArgs{Agent: "A", List: "L"})
	}
}

func (n *sysNode) arriveOnList(customer string) string {
	n.t.Helper()
	res := n.do(sysAdmin, fsm.OpCustomerMessage, &api.CustomerMessageArgs{Channel: "P", CustomerID: customer, Text: "hi"})
	return res.(api.CustomerMessageResult).Request
}

func (n *sysNode) request(id string) (r fsm.Request) {
	n.fsm.Read(func(s *fsm.State, _ uint64) {
		if rq := s.Requests[id]; rq != nil {
			r = *rq
		}
	})
	return r
}

func (n *sysNode) armedDeadlines() string {
	n.t.Helper()
	ds, err := n.hub.ArmedDeadlines()
	if err != nil {
		n.t.Fatal(err)
	}
	var parts []string
	for _, d := range ds {
		parts = append(parts, opName(d.Op)+" "+d.Request)
	}
	return fmt.Sprint(parts)
}

func (n *sysNode) count(p string) int {
	c := 0
	for _, x := range n.proposed() {
		if x == p {
			c++
		}
	}
	return c
}

// The leader proposes sla_warning, then sla_breach, for a request nobody
// answers; each changes the request's SLA state.
func TestSLATimersWarnThenBreach(t *testing.T) {
	n := newSysNode(t, -1)
	n.setLeader(true)
	n.slaWorld(api.CreateListArgs{SLAMs: 300, SLAWarnPct: 50}, false)
	r := n.arriveOnList("c1")
	sysWait(t, "the warning", func() bool { return n.request(r).SLA == api.SLAWarning })
	sysWait(t, "the breach", func() bool { return n.request(r).SLA == api.SLABreached })
	if got, want := n.proposed(), []string{"sla_warning " + r, "sla_breach " + r}; !slices.Equal(got, want) {
		t.Fatalf("proposed %q, want %q", got, want)
	}
	sysWait(t, "no timer left", func() bool { return n.armedDeadlines() == "[]" })
}

// A request answered in time loses its timers: nothing is proposed, and
// it is met.
func TestSLATimersNothingWhenAnswered(t *testing.T) {
	n := newSysNode(t, -1)
	n.setLeader(true)
	n.slaWorld(api.CreateListArgs{SLAMs: 400, SLAWarnPct: 75}, false)
	r := n.arriveOnList("c1")
	sysWait(t, "both timers", func() bool { return n.armedDeadlines() == fmt.Sprint([]string{"sla_warning " + r, "sla_breach " + r}) })
	n.do(api.Principal{Role: api.RoleAgent, ID: "A"}, fsm.OpJoin, &api.RequestArgs{Request: r})
	sysWait(t, "the timers to go", func() bool { return n.armedDeadlines() == "[]" })
	sysHolds(t, 600*time.Millisecond, "nothing proposed past the deadline", func() bool { return len(n.proposed()) == 0 })
	if got := n.request(r).SLA; got != api.SLAMet {
		t.Fatalf("sla %q, want met", got)
	}
}

// A breach proposed before the replicated clock reaches the deadline
// (the leader stamps commands 400 ms behind the timer's clock) is refused;
// the timer re-arms instead of forgetting, and the breach lands once.
func TestSLATimerRearmsWhenRefusedEarly(t *testing.T) {
	n := newSysNode(t, -1)
	n.setLeader(true)
	n.slaWorld(api.CreateListArgs{SLAMs: 150}, false)
	n.mu.Lock()
	n.behind = 400 * time.Millisecond
	n.mu.Unlock()
	r := n.arriveOnList("c1")
	sysWait(t, "the breach", func() bool { return n.request(r).SLA == api.SLABreached })
	if c := n.count("sla_breach " + r); c < 2 {
		t.Fatalf("sla_breach proposed %d times (%q); want a refused early one, then the one that applied", c, n.proposed())
	}
}

// A follower arms and proposes nothing; gaining the lead arms every
// deadline of the state (lapsed ones fire at once); losing it stops them.
func TestDeadlineTimersFollowLeadership(t *testing.T) {
	n := newSysNode(t, -1)
	n.leader = false
	n.slaWorld(api.CreateListArgs{SLAMs: 100}, false)
	r1 := n.arriveOnList("c1")
	sysHolds(t, 250*time.Millisecond, "a follower proposes nothing, past the deadline", func() bool {
		return len(n.proposed()) == 0 && n.armedDeadlines() == "[]"
	})
	n.setLeader(true)
	sysWait(t, "the lapsed breach", func() bool { return n.request(r1).SLA == api.SLABreached })
	if got, want := n.proposed(), []string{"sla_breach " + r1}; !slices.Equal(got, want) {
		t.Fatalf("proposed %q, want %q", got, want)
	}
	n.do(sysAdmin, fsm.OpSetServiceLevel, &api.ServiceLevelArgs{List: "L", SLAMs: 300})
	r2 := n.arriveOnList("c2")
	sysWait(t, "the new timer", func() bool { return n.armedDeadlines() == "[sla_breach "+r2+"]" })
	n.setLeader(false)
	sysWait(t, "timers stopped", func() bool { return n.armedDeadlines() == "[]" })
	sysHolds(t, 500*time.Millisecond, "nothing proposed after losing the lead", func() bool { return len(n.proposed()) == 1 })
	if got := n.request(r2).SLA; got != api.SLAOk {
		t.Fatalf("sla %q, want ok", got)
	}
}

// After a snapshot install the timers follow the restored state.
func TestDeadlineTimersFollowRestore(t *testing.T) {
	n := newSysNode(t, -1)
	n.setLeader(true)
	n.slaWorld(api.CreateListArgs{SLAMs: time.Hour.Milliseconds()}, false)
	r1 := n.arriveOnList("c1")
	var before []byte
	n.fsm.Read(func(s *fsm.State, _ uint64) {
		var err error
		if before, err = s.Marshal(); err != nil {
			t.Fatal(err)
		}
	})
	n.do(api.Principal{Role: api.RoleAgent, ID: "A"}, fsm.OpJoin, &api.RequestArgs{Request: r1})
	r2 := n.arriveOnList("c2")
	sysWait(t, "r2's timer only", func() bool { return n.armedDeadlines() == "[sla_breach "+r2+"]" })
	if err := n.fsm.Restore(io.NopCloser(bytes.NewReader(before))); err != nil {
		t.Fatal(err)
	}
	sysWait(t, "the restored state's timers", func() bool { return n.armedDeadlines() == "[sla_breach "+r1+"]" })
}

// A request left INACTIVE is reminded, then closed by the system.
func TestInactiveTimersRemindThenClose(t *testing.T) {
	n := newSysNode(t, -1)
	n.setLeader(true)
	n.slaWorld(api.CreateListArgs{RemindInactiveMs: 100, CloseInactiveMs: 300}, false)
	r := n.arriveOnList("c1")
	agent := api.Principal{Role: api.RoleAgent, ID: "A"}
	n.do(agent, fsm.OpJoin, &api.RequestArgs{Request: r})
	n.do(agent, fsm.OpLeave, &api.RequestArgs{Request: r})
	sysWait(t, "the auto-close", func() bool { return n.request(r).State == api.StateClosed })
	if got, want := n.proposed(), []string{"remind_inactive " + r, "close_inactive " + r}; !slices.Equal(got, want) {
		t.Fatalf("proposed %q, want %q", got, want)
	}
	if !n.request(r).Reminded {
		t.Fatal("closed without the reminder")
	}
}

// A request whose arrival told nobody (a list with no subscribers, a
// channel with no connector) is still found, by the periodic rescan.
func TestDeadlineRescanFindsSilentRequests(t *testing.T) {
	n := newSysNode(t, -1, func(c *Config) { c.DeadlineRescan = 100 * time.Millisecond })
	n.setLeader(true)
	n.armedDeadlines() // the scan on gaining the lead is done: it cannot see r
	n.slaWorld(api.CreateListArgs{SLAMs: 50}, true)
	r := n.arriveOnList("c1")
	sysWait(t, "the breach", func() bool { return n.request(r).SLA == api.SLABreached })
}

// The periodic rescan walks every request under the FSM's read lock, so it
// is skipped while no list or queue sets a deadline; it resumes once one
// does (and then finds a request that told nobody).
func TestDeadlineRescanSkippedWhileNothingSetsADeadline(t *testing.T) {
	var mu sync.Mutex
	fullScans := 0
	var n *sysNode
	n = newSysNode(t, -1, func(c *Config) {
		c.DeadlineRescan = 20 * time.Millisecond
		deadlines := c.Deadlines
		c.Deadlines = func(request string) ([]fsm.Deadline, uint64) {
			if request == "" {
				mu.Lock()
				fullScans++
				mu.Unlock()
			}
			return deadlines(request)
		}
		c.DeadlinesConfigured = func() (yes bool) {
			n.fsm.Read(func(s *fsm.State, _ uint64) { yes = s.DeadlinesConfigured() })
			return yes
		}
	})
	scans := func() int {
		mu.Lock()
		defer mu.Unlock()
		return fullScans
	}
	n.setLeader(true)
	n.armedDeadlines() // the scan on gaining the lead
	after := scans()
	// Ten rescan periods with no deadline setting anywhere: no full scan.
	sysHolds(t, 200*time.Millisecond, "no full scan while nothing sets a deadline", func() bool { return scans() == after })

	n.slaWorld(api.CreateListArgs{SLAMs: 50}, true)
	r := n.arriveOnList("c1")
	sysWait(t, "the breach, found by a rescan", func() bool { return n.request(r).SLA == api.SLABreached })
	if scans() == after {
		t.Fatal("a list sets a service level, yet no full scan ran")
	}
}
