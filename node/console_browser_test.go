package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// TestConsoleInBrowser drives the web console in headless Chromium against
// a 3-node cluster behind a load balancer (a TCP proxy the test controls):
// the supervisor logs in; a request appears live on the wallboard and its
// row changes when an agent joins; the balancer cuts every connection and
// sends the browser's reconnect to another node, where the stream resumes
// with exactly the events missed (the page's applied ids are held to the
// supervisor's TCP stream); a close from the request page reaches the
// agents over TCP; an SLA breach turns a row red; the agents table sets an
// agent NOT_READY. It saves a screenshot of the populated wallboard (SWITCHBOARD_CONSOLE_SCREENSHOT=path to keep
// it, as docs/img/console.png was made).
func TestConsoleInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	start := time.Now()
	c3 := startHACluster(t, 3, withHTTP(t))
	n1, n2 := c3.nodes[0], c3.nodes[1]
	lb := newLBProxy(t, n1.srv.HTTPAddr())
	base := "http://" + lb.addr()
	d := newConsoleDemo(t, c3)
	ref := newRefStream(t, haDial(t, c3.addrs(2), "supervisor", "sam", d.supToken, false))
	b := newBrowser(t, chromium)
	t.Logf("cluster, domain and browser ready in %v", time.Since(start).Round(time.Millisecond))

	// Log in: the form posts the token; the console's page opens its
	// stream, whose first event is a sync.
	b.run(t, "log in", 20*time.Second,
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("id"), "sam"),
		chromedp.SendKeys(chromedp.ID("token"), d.supToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("requests")),
	)
	if url := eval[string](t, b, `location.href`); strings.Contains(url, d.supToken) || !strings.HasSuffix(url, "/console/") {
		t.Fatalf("after login the page is at %s", url)
	}
	b.waitJS(t, "the stream's sync", `document.body.dataset.stream === "open" && document.body.dataset.syncs === "1"`, 15*time.Second)

	// A customer writes: the request appears live; an agent joins: its row
	// turns ACTIVE.
	maria := d.customer(t, "fb-sales", "maria", "Maria Lopez", "Hi! Do you ship the Oslo sofa to Norway?")
	row := fmt.Sprintf(`document.querySelector('#requests tr[data-request=%q]')`, maria)
	b.waitJS(t, "Maria's request on the wallboard", row+`?.dataset.state === "UNREAD"`, 15*time.Second)
	d.join(t, "alice", maria)
	b.waitJS(t, "Maria's request ACTIVE", row+`?.dataset.state === "ACTIVE" && `+row+`.textContent.includes("Alice Martin")`, 15*time.Second)

	// The rest of a working morning, live.
	d.populate(t)

	// The balancer loses every connection, and has no node for a while:
	// meanwhile requests come, an agent joins and leaves. It then sends
	// the browser's reconnect to n2, where Last-Event-ID resumes it.
	before := eval[int](t, b, `window.sb.applied`)
	lb.route("")
	lb.cut()
	b.waitJS(t, "the page to see its stream drop", `document.body.dataset.stream !== "open"`, 10*time.Second)
	tom := d.customer(t, "fb-sales", "tom", "Tom Becker", "Is the spring sale still on?")
	yuki := d.customer(t, "fb-sales", "yuki", "Yuki Tanaka", "I need to change my delivery address")
	d.join(t, "bob", yuki)
	d.say(t, "bob", yuki, "Sure, what is the new address?")
	d.leave(t, "bob", yuki)
	last := ref.waitFor(t, "bob leaving Yuki's request", func(ev transport.Event) bool {
		return ev.Kind == api.EvConversationLeft && strings.Contains(string(ev.Data), yuki)
	}).Seq
	lb.route(n2.srv.HTTPAddr())
	b.waitJS(t, "the page to catch up on n2", fmt.Sprintf(`BigInt(document.body.dataset.lastEventId || "0") >= %dn`, last), 20*time.Second)
	var ids [][2]string
	if err := json.Unmarshal([]byte(eval[string](t, b, `JSON.stringify(window.sb.ids)`)), &ids); err != nil {
		t.Fatal(err)
	}
	var syncSeq uint64
	var got []string
	for _, id := range ids {
		seq := mustSeq(t, id[0])
		switch {
		case id[1] == "sync":
			syncSeq, got = seq, nil
		case seq <= last:
			got = append(got, eventLine(seq, id[1]))
		}
	}
	want := ref.between(syncSeq, last)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the page applied after its sync %d:\n  %s\nthe supervisor's TCP stream had:\n  %s", syncSeq, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if n := eval[int](t, b, `window.sb.applied`); n <= before {
		t.Fatalf("no event applied after the cut (%d before, %d after)", before, n)
	}
	if syncs, dupes := eval[int](t, b, `window.sb.syncs`), eval[int](t, b, `window.sb.dupes`); syncs != 1 || dupes != 0 {
		t.Fatalf("after the reconnect: %d syncs and %d duplicates, want 1 and 0 (a resume, not a resync)", syncs, dupes)
	}
	for _, r := range []string{tom, yuki} {
		b.waitJS(t, "a request that came during the cut", fmt.Sprintf(`!!document.querySelector('#requests tr[data-request=%q]')`, r), 5*time.Second)
	}
	t.Logf("resumed on n2 with %d events applied, none missing, none twice", len(got))

	// A supervisor action: Omar's request is closed from its page (two
	// clicks); alice, in it, and bob, on its list, hear it over TCP.
	omar := d.customer(t, "fb-sales", "omar", "Omar Haddad", "Please cancel order 5512, I ordered twice by mistake")
	d.join(t, "alice", omar)
	b.run(t, "open Omar's request", 15*time.Second,
		chromedp.Navigate(base+"/console/#/request/"+omar),
		chromedp.WaitVisible(chromedp.ID("act-close")),
	)
	b.waitJS(t, "Omar's transcript", `document.querySelector("#transcript").textContent.includes("order 5512")`, 10*time.Second)
	b.run(t, "close Omar's request", 10*time.Second,
		chromedp.Click(chromedp.ID("act-close")),
		chromedp.Click(chromedp.ID("act-close")),
	)
	d.expect(t, "alice", func(ev transport.Event) bool {
		var cc api.ConversationClosed
		return ev.Kind == api.EvConversationClosed && ev.Decode(&cc) == nil && cc.Request == omar && cc.By.Role == api.RoleSupervisor && cc.By.ID == "sam"
	})
	d.expect(t, "bob", func(ev transport.Event) bool {
		return ev.Kind == api.EvRequestRemoved && strings.Contains(string(ev.Data), omar)
	})
	b.waitJS(t, "the request page to show it closed", `document.querySelector("#request-head").dataset.state === "CLOSED"`, 10*time.Second)

	// An SLA breach turns its row red, with the word on it.
	b.run(t, "back to the wallboard", 10*time.Second, chromedp.Navigate(base+"/console/#/"), chromedp.WaitVisible(chromedp.ID("requests")))
	prow := fmt.Sprintf(`document.querySelector('#requests tr[data-request=%q]')`, d.priya)
	b.waitJS(t, "Priya's request breached", prow+`?.dataset.sla === "breached"`, 20*time.Second)
	badge := eval[string](t, b, prow+`.querySelector(".badge-sla-breached").textContent`)
	color := eval[string](t, b, `getComputedStyle(`+prow+`.querySelector(".badge-sla-breached")).backgroundColor`)
	rowBg := eval[string](t, b, `getComputedStyle(`+prow+`.querySelector("td")).backgroundColor`)
	if badge != "BREACHED" || color != "rgb(185, 28, 28)" || rowBg == "rgba(0, 0, 0, 0)" {
		t.Fatalf("the breached row: badge %q on %s, row background %s; want BREACHED on red, a tinted row", badge, color, rowBg)
	}

	// The picture of the wallboard.
	b.waitJS(t, "the board's figures read again and the toast gone",
		`document.body.dataset.board !== "refreshing" && document.getElementById("toast").hidden`, 10*time.Second)
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := filepath.Join(t.TempDir(), "console.png")
	if p := os.Getenv("SWITCHBOARD_CONSOLE_SCREENSHOT"); p != "" {
		out = p
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the wallboard (%d bytes) in %s", len(png), out)

	// The agents table's buttons: Erin is set NOT_READY in chat and hears
	// it; the table shows it.
	erin := `document.querySelector('#agents tr[data-agent="erin"]')`
	b.run(t, "open the agents table", 10*time.Second,
		chromedp.Navigate(base+"/console/#/agents"),
		chromedp.WaitVisible(chromedp.CSS(`#agents tr[data-agent="erin"] button[data-action="not_ready"][data-mrd="chat"]`)),
		chromedp.Click(chromedp.CSS(`#agents tr[data-agent="erin"] button[data-action="not_ready"][data-mrd="chat"]`)),
	)
	d.expect(t, "erin", func(ev transport.Event) bool {
		var sc api.AgentStateChange
		return ev.Kind == api.EvAgentState && ev.Decode(&sc) == nil && sc.MRD == "chat" && sc.State == api.AgentNotReady && sc.Reason == "supervisor"
	})
	b.waitJS(t, "Erin NOT_READY in the table", erin+`.querySelector('[data-mrd="chat"]').dataset.state === "NOT_READY"`, 10*time.Second)
	t.Logf("the whole test took %v", time.Since(start).Round(time.Millisecond))
}

// consoleDemo is a contact center in the middle of a morning: two lists
// on Facebook channels, two web chat queues, five agents and a supervisor
// of everything.
type consoleDemo struct {
	admin  *transport.Client
	conns  map[string]*transport.Client // connectors: fb, web
	agents map[string]*transport.Client
	// refs of the agents' events (the test's checks read them)
	refs     map[string]*refStream
	chanConn map[string]string // channel → its connector
	supToken string
	// priya's request waits on the support list, whose SLA is short.
	priya string
}

// Names of the demo's agents.
var demoAgents = []struct {
	id, name string
	max      map[string]int
	lists    []string
	queues   []string
}{
	{"alice", "Alice Martin", map[string]int{"social": 3, "chat": 2}, []string{"sales", "support"}, nil},
	{"bob", "Bob Chen", map[string]int{"social": 3}, []string{"sales", "support"}, nil},
	{"carol", "Carol Diaz", map[string]int{"chat": 2}, nil, []string{"billing"}},
	{"dave", "Dave Okafor", map[string]int{"chat": 2}, nil, []string{"billing", "vip"}},
	{"erin", "Erin Novak", map[string]int{"chat": 1, "social": 2}, []string{"support"}, []string{"vip"}},
}

func newConsoleDemo(t *testing.T, c *haCluster) *consoleDemo {
	t.Helper()
	admin := haDial(t, c.addrs(0), "admin", "", haAdminToken, false)
	d := &consoleDemo{admin: admin, conns: map[string]*transport.Client{}, agents: map[string]*transport.Client{},
		refs: map[string]*refStream{}, chanConn: map[string]string{}}
	call := func(op string, args any) { haCall(t, admin, op, args, nil) }
	call(api.OpCreateMRD, api.CreateMRDArgs{ID: "social", Name: "Social"})
	call(api.OpCreateMRD, api.CreateMRDArgs{ID: "chat", Name: "Chat"})
	call(api.OpCreateChannelType, api.CreateChannelTypeArgs{ID: "facebook", MRD: "social"})
	call(api.OpCreateChannelType, api.CreateChannelTypeArgs{ID: "webchat", MRD: "chat"})
	call(api.OpCreateList, api.CreateListArgs{ID: "sales", Name: "Facebook · Sales", SLAMs: 120_000, SLAWarnPct: 50})
	// Support's target is short, so that a request breaches during the
	// test: the leader's deadline timer proposes sla_breach.
	call(api.OpCreateList, api.CreateListArgs{ID: "support", Name: "Facebook · Support", SLAMs: 3_000, SLAWarnPct: 50})
	call(api.OpCreateQueue, api.CreateQueueArgs{ID: "billing", Name: "Web chat · Billing", MRD: "chat", OfferTimeoutMs: 120_000, SLAMs: 60_000, SLAWarnPct: 50})
	call(api.OpCreateQueue, api.CreateQueueArgs{ID: "vip", Name: "Web chat · VIP", MRD: "chat", Priority: 10, OfferTimeoutMs: 120_000, SLAMs: 30_000, SLAWarnPct: 50})
	call(api.OpCreateChannel, api.CreateChannelArgs{ID: "fb-sales", Type: "facebook", Mode: api.ModePull, List: "sales"})
	call(api.OpCreateChannel, api.CreateChannelArgs{ID: "fb-support", Type: "facebook", Mode: api.ModePull, List: "support"})
	call(api.OpCreateChannel, api.CreateChannelArgs{ID: "web-billing", Type: "webchat", Mode: api.ModePush, Queue: "billing"})
	call(api.OpCreateChannel, api.CreateChannelArgs{ID: "web-vip", Type: "webchat", Mode: api.ModePush, Queue: "vip"})
	for id, channels := range map[string][]string{"fb": {"fb-sales", "fb-support"}, "web": {"web-billing", "web-vip"}} {
		var cred Credential
		haCall(t, admin, api.OpCreateConnector, api.CreateConnectorArgs{ID: id, Channels: channels}, &cred)
		d.conns[id] = haDial(t, c.addrs(1), "connector", id, cred.Token, false)
		for _, ch := range channels {
			d.chanConn[ch] = id
		}
	}
	for i, a := range demoAgents {
		var cred Credential
		haCall(t, admin, api.OpCreateAgent, api.CreateAgentArgs{ID: a.id, Name: a.name, Max: a.max}, &cred)
		for _, l := range a.lists {
			call(api.OpSubscribe, api.SubscribeArgs{Agent: a.id, List: l})
		}
		for _, q := range a.queues {
			call(api.OpAddQueueMember, api.QueueMemberArgs{Agent: a.id, Queue: q})
		}
		cl := haDial(t, c.addrs(i%3), "agent", a.id, cred.Token, false)
		d.agents[a.id] = cl
		d.refs[a.id] = newRefStream(t, cl)
		haCall(t, cl, api.OpLogin, api.AgentArgs{}, nil)
	}
	var cred Credential
	haCall(t, admin, api.OpCreateSupervisor, api.CreateSupervisorArgs{ID: "sam", Name: "Sam Reyes"}, &cred)
	d.supToken = cred.Token
	return d
}

// customer sends a customer's message on a channel and returns the
// request.
func (d *consoleDemo) customer(t *testing.T, channel, id, name, text string) string {
	t.Helper()
	var res api.CustomerMessageResult
	haCall(t, d.conns[d.chanConn[channel]], api.OpCustomerMessage,
		api.CustomerMessageArgs{Channel: channel, CustomerID: id, CustomerName: name, Text: text}, &res)
	return res.Request
}

func (d *consoleDemo) join(t *testing.T, agent, request string) {
	t.Helper()
	haCall(t, d.agents[agent], api.OpJoin, api.RequestArgs{Request: request}, nil)
}

func (d *consoleDemo) leave(t *testing.T, agent, request string) {
	t.Helper()
	haCall(t, d.agents[agent], api.OpLeave, api.RequestArgs{Request: request}, nil)
}

func (d *consoleDemo) say(t *testing.T, agent, request, text string) {
	t.Helper()
	haCall(t, d.agents[agent], api.OpSend, api.SendArgs{Request: request, Text: text}, nil)
}

func (d *consoleDemo) ready(t *testing.T, agent, mrd string) {
	t.Helper()
	haCall(t, d.agents[agent], api.OpSetAgentState, api.SetAgentStateArgs{MRD: mrd, State: api.AgentReady}, nil)
}

// accept accepts the next offer made to agent.
func (d *consoleDemo) accept(t *testing.T, agent, request string) {
	t.Helper()
	d.expect(t, agent, func(ev transport.Event) bool {
		var o api.OfferInfo
		return ev.Kind == api.EvOfferCreated && ev.Decode(&o) == nil && o.Request.ID == request
	})
	haCall(t, d.agents[agent], api.OpAcceptOffer, api.OfferArgs{Request: request}, nil)
}

// expect waits for an event of agent's that match accepts.
func (d *consoleDemo) expect(t *testing.T, agent string, match func(transport.Event) bool) {
	t.Helper()
	d.refs[agent].waitFor(t, "the expected event for "+agent, match)
}

// populate fills the morning: requests on both lists, one of them on the
// support list that nobody takes (it breaches), requests routed to and
// accepted by agents, others waiting, an agent at lunch.
func (d *consoleDemo) populate(t *testing.T) {
	t.Helper()
	d.priya = d.customer(t, "fb-support", "priya", "Priya Shah", "My order #4471 arrived damaged, the box was crushed")
	lena := d.customer(t, "fb-support", "lena", "Lena Fischer", "How do I reset my account password?")
	d.join(t, "bob", lena)
	d.say(t, "bob", lena, "Hi Lena, I can help with that.")
	d.customer(t, "fb-sales", "ken", "Ken Adams", "Do you have the Bergen chair in green?")

	haCall(t, d.agents["dave"], api.OpSetAgentState, api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady, Reason: "lunch"}, nil)
	d.ready(t, "carol", "chat")
	d.ready(t, "erin", "chat")
	for _, c := range []struct{ channel, id, name, text, agent string }{
		{"web-billing", "noah", "Noah Wilson", "I was charged twice for invoice 2207", "carol"},
		{"web-vip", "sofia", "Sofia Rossi", "Our team plan renewal failed", "erin"},
		{"web-billing", "liam", "Liam O'Brien", "Can I get a copy of my last receipt?", "carol"},
	} {
		r := d.customer(t, c.channel, c.id, c.name, c.text)
		d.accept(t, c.agent, r)
	}
	// Nobody free left in chat: these wait.
	d.customer(t, "web-billing", "emma", "Emma Johansson", "Why did my card get declined?")
	d.customer(t, "web-vip", "lucas", "Lucas Meyer", "Need an urgent invoice for our finance team")
	d.customer(t, "web-billing", "ava", "Ava Kim", "Refund status for order 3390?")
}
