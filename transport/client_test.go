package transport_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// ctWait bounds every wait in these tests: generous for a slow CI under the
// race detector; nothing waits that long when the code is right.
const ctWait = 15 * time.Second

const ctAdminToken = "admin-secret"

// ctBackend is a one-process stand-in for a cluster: a real fsm.State
// behind a lock, numbered like the Raft log, with an unbounded event history
// for resume. Every server of a test shares it, like the nodes of a cluster
// share the log. Hooks are set before the servers start.
type ctBackend struct {
	// afterApply runs after a command applied, outside the lock; an error
	// makes Submit fail as if the commit's outcome was lost.
	afterApply func(ctx context.Context, cmd *fsm.Command) error
	// overlap makes a resume replay this many of the key's events at or
	// before the cursor too: duplicates the client must drop.
	overlap int

	mu       sync.Mutex
	state    *fsm.State
	index    uint64
	history  []fsm.Event
	streams  map[string]map[transport.Outbox]bool
	submits  []ctSubmit
	attaches []ctAttach
	dups     int // events at or before a resume cursor sent on purpose
}

type ctSubmit struct {
	op     string
	client string
	seq    uint64
	args   any
}

type ctAttach struct {
	key    string
	since  uint64
	resume bool
}

// ctCredential is the create_agent / create_connector result.
type ctCredential struct {
	ID    string `msgpack:"id"`
	Token string `msgpack:"token"`
}

func newCTBackend() *ctBackend {
	return &ctBackend{state: fsm.NewState(), streams: map[string]map[transport.Outbox]bool{}}
}

func ctHash(token string) []byte { s := sha256.Sum256([]byte(token)); return s[:] }

func (b *ctBackend) Authenticate(role api.Role, id, token string) (api.Principal, error) {
	bad := api.Errorf(api.CodeUnauthenticated, "unknown principal or bad token")
	if role == api.RoleAdmin {
		if token != ctAdminToken {
			return api.Principal{}, bad
		}
		return api.Principal{Role: role, ID: "admin"}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var stored []byte
	switch role {
	case api.RoleAgent:
		if a := b.state.Agents[id]; a != nil {
			stored = a.TokenHash
		}
	case api.RoleConnector:
		if c := b.state.Connectors[id]; c != nil {
			stored = c.TokenHash
		}
	}
	if token == "" || !bytes.Equal(stored, ctHash(token)) {
		return api.Principal{}, bad
	}
	return api.Principal{Role: role, ID: id}, nil
}

// Commit decodes the write as the node does and hands it to Submit.
func (b *ctBackend) Commit(ctx context.Context, w transport.Write) (any, uint64, error) {
	cmd, ferr := fsm.Commands.NewCommand(w.By, w.ClientID, w.Seq, w.Op, w.Args)
	if ferr != nil {
		return nil, 0, ferr
	}
	res, index, err := b.Submit(ctx, cmd)
	if err != nil {
		return nil, 0, err
	}
	if res.Err != nil {
		return nil, index, res.Err
	}
	return res.Data, index, nil
}

func (b *ctBackend) Submit(ctx context.Context, cmd *fsm.Command) (fsm.Result, uint64, error) {
	var token string
	switch a := cmd.Args.(type) {
	case *api.CreateAgentArgs:
		token = fmt.Sprintf("tok-%d", rand.Uint64())
		a.TokenHash = ctHash(token)
	case *api.CreateConnectorArgs:
		token = fmt.Sprintf("tok-%d", rand.Uint64())
		a.TokenHash = ctHash(token)
	}
	b.mu.Lock()
	b.index++
	index := b.index
	cmd.Time = int64(index)
	b.submits = append(b.submits, ctSubmit{op: fsm.Commands.Lookup(cmd.Op).Name, client: cmd.ClientID, seq: cmd.Seq, args: cmd.Args})
	res, evs := b.state.Apply(cmd)
	for i := range evs {
		evs[i].Seq = api.SeqOf(index, i)
		b.history = append(b.history, evs[i])
		for _, key := range evs[i].To {
			for out := range b.streams[key] {
				b.deliver(key, out, evs[i])
			}
		}
	}
	var data []byte
	if res.Err == nil && res.Data != nil {
		if c, ok := res.Data.(api.Created); ok && token != "" {
			res.Data = ctCredential{ID: c.ID, Token: token}
		}
		// Encoded under the lock: the result may share slices with the state.
		data, _ = msgpack.Marshal(res.Data)
		res.Data = msgpack.RawMessage(data)
	}
	b.mu.Unlock()
	if b.afterApply != nil {
		if err := b.afterApply(ctx, cmd); err != nil {
			return fsm.Result{}, 0, err
		}
	}
	return res, index, nil
}

// deliver sends ev to one attached outbox; b.mu is held.
func (b *ctBackend) deliver(key string, out transport.Outbox, ev fsm.Event) bool {
	frame, err := transport.EncodeEvent(ev.Seq, ev.Kind, ev.Data)
	if err != nil {
		panic(err)
	}
	if !out.Deliver(frame) {
		delete(b.streams[key], out)
		return false
	}
	return true
}

func (b *ctBackend) Query(_ context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error) {
	if op == "status" {
		return api.NodeStatus{Node: "fake", State: "Leader"}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out, qerr := b.state.Query(p, op, args)
	if qerr != nil {
		return nil, qerr
	}
	raw, err := msgpack.Marshal(out)
	return msgpack.RawMessage(raw), err
}

// Attach replays the history after since (the history is never trimmed),
// or starts with a sync, tells the outbox how it caught up, then delivers
// live events.
func (b *ctBackend) Attach(key string, since uint64, resume bool, out transport.Outbox) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.attaches = append(b.attaches, ctAttach{key, since, resume})
	ok := true
	mode, last := api.CaughtUpNone, since
	if resume {
		var mine []fsm.Event
		for _, ev := range b.history {
			if slices.Contains(ev.To, key) {
				mine = append(mine, ev)
			}
		}
		i := slices.IndexFunc(mine, func(ev fsm.Event) bool { return ev.Seq > since })
		if i < 0 {
			i = len(mine)
		}
		start := max(0, i-b.overlap)
		b.dups += i - start
		for _, ev := range mine[start:] {
			if ok = b.deliver(key, out, ev); !ok {
				break
			}
			mode, last = api.CaughtUpReplay, ev.Seq
		}
	} else {
		view, found := b.state.View(key)
		if !found {
			return func() {}
		}
		mode, last = api.CaughtUpSync, api.SeqOf(b.index, 1<<api.SeqShift-1)
		ok = b.deliver(key, out, fsm.Event{Seq: last, Kind: api.EvSync, Data: view})
	}
	if cu, isCU := out.(interface{ CaughtUp(string, uint64) }); ok && isCU {
		cu.CaughtUp(mode, last)
	}
	if ok {
		if b.streams[key] == nil {
			b.streams[key] = map[transport.Outbox]bool{}
		}
		b.streams[key][out] = true
	}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.streams[key], out)
	}
}

func (b *ctBackend) attachesOf(key string) []ctAttach {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []ctAttach
	for _, a := range b.attaches {
		if a.key == key {
			out = append(out, a)
		}
	}
	return out
}

func (b *ctBackend) submitsWhere(pred func(ctSubmit) bool) []ctSubmit {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []ctSubmit
	for _, s := range b.submits {
		if pred(s) {
			out = append(out, s)
		}
	}
	return out
}

// ctCluster is n real transport.Servers on loopback over one ctBackend.
type ctCluster struct {
	be    *ctBackend
	srvs  []*transport.Server
	addrs []string
}

func newCTCluster(t *testing.T, n int, be *ctBackend) *ctCluster {
	t.Helper()
	if be == nil {
		be = newCTBackend()
	}
	return newCTClusterFirst(t, n, be, be)
}

// newCTClusterFirst is newCTCluster whose first node serves first (a
// wrapper of be that can fail as a real node does) and the others be.
func newCTClusterFirst(t *testing.T, n int, be *ctBackend, first transport.Backend) *ctCluster {
	t.Helper()
	cl := &ctCluster{be: be}
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var nb transport.Backend = be
		if i == 0 {
			nb = first
		}
		srv := transport.NewServer(nb, transport.ServerConfig{NodeID: fmt.Sprintf("node-%d", i+1), Logger: slog.New(slog.DiscardHandler)})
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		cl.srvs = append(cl.srvs, srv)
		cl.addrs = append(cl.addrs, ln.Addr().String())
	}
	return cl
}

// dial connects a client to the cluster (every address unless cfg names
// some) and closes it when the test ends.
func (cl *ctCluster) dial(t *testing.T, cfg transport.ClientConfig) *transport.Client {
	t.Helper()
	if cfg.Addrs == nil {
		cfg.Addrs = cl.addrs
	}
	c, err := transport.Dial(ctCtx(t), cfg)
	if err != nil {
		t.Fatalf("dial %s %q: %v", cfg.Role, cfg.User, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (cl *ctCluster) admin(t *testing.T, addrs ...string) *transport.Client {
	t.Helper()
	return cl.dial(t, transport.ClientConfig{Addrs: addrs, Role: "admin", Token: ctAdminToken})
}

// ctTokens are the credentials created by ctSetup.
type ctTokens struct{ agent, connector string }

// ctSetup creates MRD chat, channel type webchat, list L1, pull channel web
// on it, agent a1 (max 5 chats) and connector cn1 on web.
func ctSetup(t *testing.T, adm *transport.Client) ctTokens {
	t.Helper()
	ctx := ctCtx(t)
	must(t, adm.CreateMRD(ctx, api.CreateMRDArgs{ID: "chat", Name: "Chat"}))
	must(t, adm.CreateChannelType(ctx, api.CreateChannelTypeArgs{ID: "webchat", MRD: "chat"}))
	must(t, adm.CreateList(ctx, api.CreateListArgs{ID: "L1", Name: "Sales"}))
	must(t, adm.CreateChannel(ctx, api.CreateChannelArgs{ID: "web", Type: "webchat", Mode: api.ModePull, List: "L1"}))
	var tk ctTokens
	var err error
	tk.agent, err = adm.CreateAgent(ctx, api.CreateAgentArgs{ID: "a1", Name: "Ann", Max: map[string]int{"chat": 5}})
	must(t, err)
	tk.connector, err = adm.CreateConnector(ctx, api.CreateConnectorArgs{ID: "cn1", Name: "Web", Channels: []string{"web"}})
	must(t, err)
	if tk.agent == "" || tk.connector == "" {
		t.Fatalf("create returned empty tokens: %+v", tk)
	}
	return tk
}

func ctCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), ctWait)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or ctWait passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, ctWait, cond, "%s", what)
}

// nextEvent returns the client's next event, failing after ctWait.
func nextEvent(t *testing.T, c *transport.Client) transport.Event {
	t.Helper()
	timer := time.NewTimer(ctWait)
	defer timer.Stop()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatalf("event stream ended: %v", c.Err())
		}
		return ev
	case <-timer.C:
		t.Fatalf("no event within %v (last seq %d)", ctWait, c.LastSeq())
	}
	return transport.Event{}
}

// expectKind reads the next event and checks its kind.
func expectKind(t *testing.T, c *transport.Client, kind api.EventKind) transport.Event {
	t.Helper()
	ev := nextEvent(t, c)
	if ev.Kind != kind {
		t.Fatalf("event %d is %q, want %q", ev.Seq, ev.Kind, kind)
	}
	return ev
}

// message has the connector bring in one customer message.
func message(t *testing.T, cn *transport.Client, customer string) api.CustomerMessageResult {
	t.Helper()
	r, err := cn.CustomerMessage(ctCtx(t), api.CustomerMessageArgs{Channel: "web", CustomerID: customer, CustomerName: customer, Text: "hello from " + customer})
	must(t, err)
	return r
}

// collectCreated reads events until it has seen n request.created events,
// checking that seqs strictly increase and nothing arrives twice; it
// returns the customers of the created requests in arrival order.
func collectCreated(t *testing.T, c *transport.Client, after uint64, n int) []string {
	customers, _ := collectCreatedSeq(t, c, after, n)
	return customers
}

// collectCreatedSeq is collectCreated that also returns the last seq read.
func collectCreatedSeq(t *testing.T, c *transport.Client, after uint64, n int) ([]string, uint64) {
	t.Helper()
	var customers []string
	last := after
	for len(customers) < n {
		ev := nextEvent(t, c)
		if ev.Seq <= last {
			t.Fatalf("event %d (%s) after %d: duplicate or out of order", ev.Seq, ev.Kind, last)
		}
		last = ev.Seq
		if ev.Kind != api.EvRequestCreated {
			t.Fatalf("event %d is %q, want %q", ev.Seq, ev.Kind, api.EvRequestCreated)
		}
		var sum api.RequestSummary
		must(t, ev.Decode(&sum))
		customers = append(customers, sum.Customer.ID)
	}
	return customers, last
}

func customerIDs(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("c%d", i))
	}
	return out
}

func codeOf(err error) api.Code {
	var eb *transport.ErrorBody
	if errors.As(err, &eb) {
		return eb.Code
	}
	return api.CodeOf(err)
}

func TestClientCallsPipelined(t *testing.T) {
	be := newCTBackend()
	// Hold each create_list a random moment so that answers overtake each
	// other on the connection.
	be.afterApply = func(ctx context.Context, cmd *fsm.Command) error {
		if cmd.Op == fsm.OpCreateList {
			timer := time.NewTimer(time.Duration(rand.IntN(3000)) * time.Microsecond)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		return nil
	}
	cl := newCTCluster(t, 1, be)
	adm := cl.admin(t)
	ctx := ctCtx(t)

	w := adm.Welcome()
	if w.T != transport.TypeWelcome || w.Node != "node-1" || w.Role != "admin" || w.Client != adm.ClientID() || w.MaxFrame != transport.DefaultMaxFrame {
		t.Fatalf("welcome = %+v, client id %q", w, adm.ClientID())
	}
	st, err := adm.Status(ctx)
	must(t, err)
	if st.Node != "fake" || st.State != "Leader" {
		t.Fatalf("status = %+v", st)
	}
	if rtt, err := adm.Ping(ctx); err != nil || rtt <= 0 {
		t.Fatalf("ping = %v, %v", rtt, err)
	}

	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			id, name := fmt.Sprintf("L%02d", i), fmt.Sprintf("list number %d", i)
			idx, err := adm.CallIndex(ctx, "create_list", api.CreateListArgs{ID: id, Name: name}, nil)
			if err != nil || idx == 0 {
				errs <- fmt.Errorf("create %s: index %d, %v", id, idx, err)
				return
			}
			snap, err := adm.List(ctx, id)
			if err != nil || snap.List != id || snap.Name != name {
				errs <- fmt.Errorf("get_list %s = %+v, %v", id, snap, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	lists, err := adm.Lists(ctx)
	must(t, err)
	if len(lists) != n {
		t.Fatalf("%d lists, want %d", len(lists), n)
	}
	// Every write got its own idempotency seq.
	seqs := map[uint64]bool{}
	for _, s := range be.submitsWhere(func(s ctSubmit) bool { return s.op == "create_list" }) {
		if s.seq == 0 || seqs[s.seq] || s.client != adm.ClientID() {
			t.Fatalf("submit %+v: seq zero, reused, or wrong client id", s)
		}
		seqs[s.seq] = true
	}
}

func TestClientTypedErrors(t *testing.T) {
	cl := newCTCluster(t, 1, nil)
	adm := cl.admin(t)
	tk := ctSetup(t, adm)
	ctx := ctCtx(t)

	_, err := adm.List(ctx, "nope")
	if !errors.Is(err, &api.Error{Code: api.CodeNotFound}) {
		t.Fatalf("get_list of a missing list: %v, want not_found", err)
	}
	var eb *transport.ErrorBody
	if !errors.As(err, &eb) || eb.Name != "not_found" || eb.Msg == "" {
		t.Fatalf("error body = %+v", eb)
	}
	if err := adm.Call(ctx, "bogus", nil, nil); !errors.Is(err, &api.Error{Code: api.CodeUnknownOp}) {
		t.Fatalf("unknown op: %v", err)
	}
	idx, err := adm.CallIndex(ctx, "create_list", api.CreateListArgs{ID: "L1"}, nil)
	if !errors.Is(err, &api.Error{Code: api.CodeAlreadyExists}) || idx == 0 {
		t.Fatalf("duplicate create: index %d, %v; want already_exists with the log index", idx, err)
	}

	// A request above the node's frame limit fails locally and leaves the
	// connection usable.
	err = adm.Noop(ctx, make([]byte, transport.DefaultMaxFrame))
	if !errors.Is(err, transport.ErrFrameTooLarge) || !errors.Is(err, &api.Error{Code: api.CodeFrameTooLarge}) {
		t.Fatalf("oversized request: %v", err)
	}
	must(t, adm.Noop(ctx, []byte("ok")))

	ag := cl.dial(t, transport.ClientConfig{Role: "agent", User: "a1", Token: tk.agent})
	if err := ag.CreateList(ctx, api.CreateListArgs{ID: "L9"}); codeOf(err) != api.CodeForbidden {
		t.Fatalf("agent create_list: %v, want forbidden", err)
	}
	if _, err := ag.Join(ctx, "R404", ""); codeOf(err) != api.CodeNotFound {
		t.Fatalf("join of a missing request: %v, want not_found", err)
	}

	for _, reconnect := range []bool{false, true} {
		_, err := transport.Dial(ctx, transport.ClientConfig{Addrs: cl.addrs, Role: "agent", User: "a1", Token: "wrong", Reconnect: reconnect})
		if !errors.Is(err, &api.Error{Code: api.CodeUnauthenticated}) {
			t.Fatalf("dial with a bad token (reconnect %v): %v, want unauthenticated", reconnect, err)
		}
	}
	if _, err := transport.Dial(ctx, transport.ClientConfig{Addrs: cl.addrs, Role: "boss"}); err == nil {
		t.Fatal("dial with an unknown role succeeded")
	}
}

func TestClientEventsInOrder(t *testing.T) {
	cl := newCTCluster(t, 1, nil)
	adm := cl.admin(t)
	tk := ctSetup(t, adm)
	ctx := ctCtx(t)

	ag := cl.dial(t, transport.ClientConfig{Role: "agent", User: "a1", Token: tk.agent})
	cn := cl.dial(t, transport.ClientConfig{Role: "connector", User: "cn1", Token: tk.connector})

	syncEv := expectKind(t, ag, api.EvSync)
	var view api.StreamView
	must(t, syncEv.Decode(&view))
	if view.Agent != "a1" || len(view.Lists) != 0 {
		t.Fatalf("sync view = %+v", view)
	}
	expectKind(t, cn, api.EvSync)

	snap, err := ag.Subscribe(ctx, "", "L1")
	must(t, err)
	if snap.List != "L1" {
		t.Fatalf("subscribe result = %+v", snap)
	}
	sub := expectKind(t, ag, api.EvListSubscribed)
	if sub.Seq <= syncEv.Seq {
		t.Fatalf("list.subscribed seq %d not after sync %d", sub.Seq, syncEv.Seq)
	}

	const n = 50
	for _, c := range customerIDs(0, n) {
		if r := message(t, cn, c); !r.Created || r.State != api.StateUnread {
			t.Fatalf("customer message = %+v", r)
		}
	}
	got, last := collectCreatedSeq(t, ag, sub.Seq, n)
	if !slices.Equal(got, customerIDs(0, n)) {
		t.Fatalf("requests announced in order %v", got)
	}
	if ag.LastSeq() != last {
		t.Fatalf("LastSeq = %d, last event read %d", ag.LastSeq(), last)
	}
}

// TestClientHelpersConversation drives a whole pull-mode conversation
// through the typed helpers, against the real state machine.
func TestClientHelpersConversation(t *testing.T) {
	cl := newCTCluster(t, 1, nil)
	adm := cl.admin(t)
	tk := ctSetup(t, adm)
	ctx := ctCtx(t)
	ag := cl.dial(t, transport.ClientConfig{Role: "agent", User: "a1", Token: tk.agent})
	cn := cl.dial(t, transport.ClientConfig{Role: "connector", User: "cn1", Token: tk.connector})
	expectKind(t, ag, api.EvSync)
	expectKind(t, cn, api.EvSync)

	_, err := adm.Subscribe(ctx, "a1", "L1") // an admin acting for the agent
	must(t, err)
	expectKind(t, ag, api.EvListSubscribed)
	r := message(t, cn, "bob")
	expectKind(t, ag, api.EvRequestCreated)

	jr, err := ag.Join(ctx, r.Request, "")
	must(t, err)
	if jr.Request.State != api.StateActive || len(jr.Transcript) != 1 {
		t.Fatalf("join = %+v", jr)
	}
	expectKind(t, ag, api.EvConversationJoined)
	expectKind(t, ag, api.EvRequestUpdated)
	expectKind(t, cn, api.EvConversationJoined)

	must(t, ag.Send(ctx, r.Request, "", "how can I help?"))
	msg := expectKind(t, cn, api.EvConversationMessage)
	var cm api.ConversationMessage
	must(t, msg.Decode(&cm))
	if cm.Request != r.Request || cm.Message.Text != "how can I help?" || cm.Message.From.ID != "a1" {
		t.Fatalf("message event = %+v", cm)
	}
	expectKind(t, ag, api.EvConversationMessage)

	must(t, ag.Leave(ctx, r.Request, ""))
	expectKind(t, ag, api.EvConversationLeft)
	expectKind(t, cn, api.EvConversationLeft)
	upd := expectKind(t, ag, api.EvRequestUpdated)
	var sum api.RequestSummary
	must(t, upd.Decode(&sum))
	if sum.State != api.StateInactive {
		t.Fatalf("after leave the request is %s", sum.State)
	}
	ra, err := cn.RequestAgent(ctx, api.RequestAgentArgs{Channel: "web", CustomerID: "bob"})
	must(t, err)
	if ra.Request != r.Request || ra.State != api.StateInactive || ra.Announced {
		t.Fatalf("request_agent on an INACTIVE request = %+v, want nothing announced", ra)
	}

	cv, err := ag.Request(ctx, r.Request)
	must(t, err)
	if len(cv.Transcript) != 2 {
		t.Fatalf("transcript = %+v", cv.Transcript)
	}
	view, err := ag.View(ctx)
	must(t, err)
	if len(view.Lists) != 1 || len(view.Lists[0].Requests) != 1 {
		t.Fatalf("view = %+v", view)
	}
	if err := adm.DeleteList(ctx, "L1"); codeOf(err) != api.CodeWrongState {
		t.Fatalf("delete of a list in use: %v", err)
	}
	must(t, cn.CloseRequest(ctx, r.Request))
	expectKind(t, cn, api.EvConversationClosed)
	expectKind(t, ag, api.EvRequestRemoved)
	must(t, ag.Unsubscribe(ctx, "", "L1"))
	expectKind(t, ag, api.EvListUnsubscribed)

	must(t, adm.CreateQueue(ctx, api.CreateQueueArgs{ID: "Q1", Name: "Support", MRD: "chat", Priority: 1}))
	must(t, adm.CreateChannel(ctx, api.CreateChannelArgs{ID: "web2", Type: "webchat", Mode: api.ModePush, Queue: "Q1"}))
	must(t, adm.CreateList(ctx, api.CreateListArgs{ID: "L2"}))
	must(t, adm.DeleteList(ctx, "L2"))
	_, err = adm.CreateAgent(ctx, api.CreateAgentArgs{ID: "a2"})
	must(t, err)
	must(t, adm.DeleteAgent(ctx, "a2"))

	counts := []struct {
		what string
		n    func() (int, error)
		want int
	}{
		{"mrds", func() (int, error) { x, err := adm.MRDs(ctx); return len(x), err }, 1},
		{"channel types", func() (int, error) { x, err := adm.ChannelTypes(ctx); return len(x), err }, 1},
		{"channels", func() (int, error) { x, err := adm.Channels(ctx); return len(x), err }, 2},
		{"lists", func() (int, error) { x, err := adm.Lists(ctx); return len(x), err }, 1},
		{"queues", func() (int, error) { x, err := adm.Queues(ctx); return len(x), err }, 1},
		{"agents", func() (int, error) { x, err := adm.Agents(ctx); return len(x), err }, 1},
		{"connectors", func() (int, error) { x, err := adm.Connectors(ctx); return len(x), err }, 1},
	}
	for _, c := range counts {
		n, err := c.n()
		if err != nil || n != c.want {
			t.Errorf("%s: %d, %v; want %d", c.what, n, err, c.want)
		}
	}
}

// TestClientReconnectResumes closes the node an agent is connected to; the
// client redials the other node and resumes from LastSeq. The backend also
// replays a few events at or before the cursor, which the client drops, so
// the application sees every event once, in order.
func TestClientReconnectResumes(t *testing.T) {
	be := newCTBackend()
	be.overlap = 3
	cl := newCTCluster(t, 2, be)
	adm := cl.admin(t, cl.addrs[1])
	tk := ctSetup(t, adm)
	cn := cl.dial(t, transport.ClientConfig{Addrs: cl.addrs[1:], Role: "connector", User: "cn1", Token: tk.connector})
	ag := cl.dial(t, transport.ClientConfig{Role: "agent", User: "a1", Token: tk.agent, Reconnect: true})
	if ag.Welcome().Node != "node-1" {
		t.Fatalf("agent connected to %s, want node-1", ag.Welcome().Node)
	}
	expectKind(t, ag, api.EvSync)
	_, err := ag.Subscribe(ctCtx(t), "", "L1")
	must(t, err)
	sub := expectKind(t, ag, api.EvListSubscribed)

	for _, c := range customerIDs(0, 10) {
		message(t, cn, c)
	}
	got := collectCreated(t, ag, sub.Seq, 10)
	cursor := ag.LastSeq()

	must(t, cl.srvs[0].Close()) // bye unavailable, connection closed
	for _, c := range customerIDs(10, 20) {
		message(t, cn, c)
	}
	got = append(got, collectCreated(t, ag, cursor, 10)...)
	if !slices.Equal(got, customerIDs(0, 20)) {
		t.Fatalf("requests seen: %v", got)
	}
	if n := ag.Welcome().Node; n != "node-2" {
		t.Fatalf("reconnected to %s, want node-2", n)
	}
	att := be.attachesOf(api.AgentKey("a1"))
	if len(att) != 2 || att[0].resume || !att[1].resume || att[1].since != cursor {
		t.Fatalf("attaches = %+v, want a fresh one then a resume after %d", att, cursor)
	}
	be.mu.Lock()
	dups := be.dups
	be.mu.Unlock()
	if dups == 0 {
		t.Fatal("the backend replayed nothing before the cursor: the client's filter was not exercised")
	}
	// Nothing further is pending.
	must(t, adm.Noop(ctCtx(t), nil))
	select {
	case ev := <-ag.Events():
		t.Fatalf("unexpected event %d %s", ev.Seq, ev.Kind)
	default:
	}
}

// TestClientWriteRetryKeepsSeq loses the answer to a write that committed:
// the node closes while the write is in flight. The client re-sends it to
// the other node with the same seq, and the node's idempotency returns the
// original success instead of already_exists.
func TestClientWriteRetryKeepsSeq(t *testing.T) {
	be := newCTBackend()
	held := make(chan struct{})
	var once sync.Once
	be.afterApply = func(ctx context.Context, cmd *fsm.Command) error {
		if a, ok := cmd.Args.(*api.CreateListArgs); ok && a.ID == "Lretry" {
			first := false
			once.Do(func() { first = true })
			if first {
				close(held)
				<-ctx.Done() // the answer is lost with the connection
				return ctx.Err()
			}
		}
		return nil
	}
	cl := newCTCluster(t, 2, be)
	adm := cl.dial(t, transport.ClientConfig{Role: "admin", Token: ctAdminToken, Reconnect: true})

	done := make(chan error, 1)
	go func() { done <- adm.CreateList(ctCtx(t), api.CreateListArgs{ID: "Lretry", Name: "retry"}) }()
	select {
	case <-held:
	case <-time.After(ctWait):
		t.Fatal("the write never reached the backend")
	}
	must(t, cl.srvs[0].Close())
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("retried create_list: %v, want the original success", err)
		}
	case <-time.After(ctWait):
		t.Fatal("the write was not retried")
	}
	subs := be.submitsWhere(func(s ctSubmit) bool {
		a, ok := s.args.(*api.CreateListArgs)
		return ok && a.ID == "Lretry"
	})
	if len(subs) != 2 || subs[0].seq == 0 || subs[0].seq != subs[1].seq || subs[0].client != subs[1].client || subs[0].client != adm.ClientID() {
		t.Fatalf("submits = %+v, want the same client id and seq twice", subs)
	}
	if adm.Welcome().Node != "node-2" {
		t.Fatalf("retried on %s", adm.Welcome().Node)
	}
	lists, err := adm.Lists(ctCtx(t))
	must(t, err)
	if len(lists) != 1 {
		t.Fatalf("lists = %+v", lists)
	}
}

// TestClientEventOverflow: an application that does not drain Events gets
// the connection cut by its own client, never a stalled read loop.
func TestClientEventOverflow(t *testing.T) {
	cl := newCTCluster(t, 1, nil)
	adm := cl.admin(t)
	tk := ctSetup(t, adm)
	cn := cl.dial(t, transport.ClientConfig{Role: "connector", User: "cn1", Token: tk.connector})
	_, err := adm.Subscribe(ctCtx(t), "a1", "L1")
	must(t, err)

	t.Run("reconnect resumes", func(t *testing.T) {
		ag := cl.dial(t, transport.ClientConfig{Role: "agent", User: "a1", Token: tk.agent, Reconnect: true, EventBuffer: 4})
		// After the sync, so that the requests are announced as events
		// rather than found in the sync's view.
		expectKind(t, ag, api.EvSync)
		first := len(cl.be.attachesOf(api.AgentKey("a1")))
		for _, c := range customerIDs(0, 20) {
			message(t, cn, c)
		}
		// Once the agent's own call is answered, every event before it has
		// reached the client, which overflowed (20 events, room for 4) yet
		// still answers calls. It resumes once the application has drained
		// half of Events.
		must(t, ag.Noop(ctCtx(t), nil))
		got := collectCreated(t, ag, 0, 20)
		if !slices.Equal(got, customerIDs(0, 20)) {
			t.Fatalf("requests seen: %v", got)
		}
		att := cl.be.attachesOf(api.AgentKey("a1"))
		if len(att) <= first || !att[len(att)-1].resume {
			t.Fatalf("attaches = %+v: no resume after the overflow", att)
		}
	})

	t.Run("without reconnect the client ends", func(t *testing.T) {
		ag := cl.dial(t, transport.ClientConfig{Role: "agent", User: "a1", Token: tk.agent, EventBuffer: 2})
		expectKind(t, ag, api.EvSync)
		for _, c := range customerIDs(20, 25) {
			message(t, cn, c)
		}
		select {
		case <-ag.Done():
		case <-time.After(ctWait):
			t.Fatal("client did not end")
		}
		if !errors.Is(ag.Err(), transport.ErrEventOverflow) || !errors.Is(ag.Err(), &api.Error{Code: api.CodeSlowConsumer}) {
			t.Fatalf("Err = %v", ag.Err())
		}
		n := 0
		for range ag.Events() {
			n++
		}
		if n != 2 {
			t.Fatalf("%d events buffered, want 2", n)
		}
		if err := ag.Noop(ctCtx(t), nil); !errors.Is(err, transport.ErrEventOverflow) {
			t.Fatalf("call after the end: %v", err)
		}
	})
}

func TestClientCloseAndBye(t *testing.T) {
	cl := newCTCluster(t, 2, nil)
	adm := cl.admin(t)
	must(t, adm.Close())
	<-adm.Done()
	if !errors.Is(adm.Err(), transport.ErrClosed) {
		t.Fatalf("Err after Close = %v", adm.Err())
	}
	if _, ok := <-adm.Events(); ok {
		t.Fatal("Events not closed")
	}
	if err := adm.Noop(ctCtx(t), nil); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
	if _, err := adm.Ping(ctCtx(t)); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("ping after Close: %v", err)
	}

	// Without Reconnect, the node's bye ends the client with its code.
	adm2 := cl.admin(t, cl.addrs[1])
	must(t, cl.srvs[1].Close())
	select {
	case <-adm2.Done():
	case <-time.After(ctWait):
		t.Fatal("client did not end on bye")
	}
	if !errors.Is(adm2.Err(), &api.Error{Code: api.CodeUnavailable}) {
		t.Fatalf("Err after the node's bye = %v", adm2.Err())
	}
}

// TestClientDefaultID checks the generated client id.
func TestClientDefaultID(t *testing.T) {
	cl := newCTCluster(t, 1, nil)
	a, b := cl.admin(t), cl.admin(t)
	for _, c := range []*transport.Client{a, b} {
		if raw, err := hex.DecodeString(c.ClientID()); err != nil || len(raw) != 16 {
			t.Fatalf("client id %q is not 16 bytes of hex", c.ClientID())
		}
	}
	if a.ClientID() == b.ClientID() {
		t.Fatal("two clients share an id")
	}
}

// caughtUp is one OnCaughtUp call, with how many events the Events
// channel held then.
type caughtUp struct {
	mode     string
	seq      uint64
	buffered int
}

// TestClientOnCaughtUp: with OnCaughtUp the client asks for the marker
// and is told, on each connection, how the stream started, once every
// event of the start is on the Events channel; without it, the welcome
// carries no marker and nothing changes.
func TestClientOnCaughtUp(t *testing.T) {
	cl := newCTCluster(t, 1, nil)
	adm := cl.admin(t)
	tk := ctSetup(t, adm)
	ctx := ctCtx(t)
	var (
		mu    sync.Mutex
		calls []caughtUp
		ag    *transport.Client
	)
	seen := func() []caughtUp {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}
	ready := make(chan struct{})
	onCaughtUp := func(mode string, seq uint64) {
		<-ready // ag is set
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, caughtUp{mode, seq, len(ag.Events())})
	}
	ag = cl.dial(t, transport.ClientConfig{Role: "agent", User: "a1", Token: tk.agent, OnCaughtUp: onCaughtUp})
	close(ready)
	if !ag.Welcome().Marker {
		t.Fatalf("welcome %+v, want marker", ag.Welcome())
	}
	waitFor(t, "the first caught_up", func() bool { return len(seen()) == 1 })
	if c := seen()[0]; c.mode != api.CaughtUpSync || c.buffered != 1 {
		t.Fatalf("fresh connection: %+v, want sync with the sync event already buffered", c)
	}
	syncEv := expectKind(t, ag, api.EvSync)
	if c := seen()[0]; c.seq != syncEv.Seq {
		t.Fatalf("caught_up seq %d, sync seq %d", c.seq, syncEv.Seq)
	}

	// Two events after the cursor: a resume replays them, then the marker.
	cn := cl.dial(t, transport.ClientConfig{Role: "connector", User: "cn1", Token: tk.connector})
	_, err := ag.Subscribe(ctx, "", "L1")
	must(t, err)
	sub := expectKind(t, ag, api.EvListSubscribed)
	message(t, cn, "c1")
	created := expectKind(t, ag, api.EvRequestCreated)
	var resumed []caughtUp
	var rmu sync.Mutex
	again := cl.dial(t, transport.ClientConfig{Role: "agent", User: "a1", Token: tk.agent, Resume: true, Since: syncEv.Seq,
		OnCaughtUp: func(mode string, seq uint64) {
			rmu.Lock()
			defer rmu.Unlock()
			resumed = append(resumed, caughtUp{mode, seq, 0})
		}})
	if got := expectKind(t, again, api.EvListSubscribed); got.Seq != sub.Seq {
		t.Fatalf("replayed %d, want %d", got.Seq, sub.Seq)
	}
	expectKind(t, again, api.EvRequestCreated)
	waitFor(t, "the resumed connection's caught_up", func() bool { rmu.Lock(); defer rmu.Unlock(); return len(resumed) == 1 })
	rmu.Lock()
	if r := resumed[0]; r.mode != api.CaughtUpReplay || r.seq != created.Seq {
		t.Fatalf("resume: %+v, want replay at %d", r, created.Seq)
	}
	rmu.Unlock()

	// Without OnCaughtUp: no marker asked, none in welcome.
	plain := cl.dial(t, transport.ClientConfig{Role: "agent", User: "a1", Token: tk.agent})
	if plain.Welcome().Marker {
		t.Fatal("welcome carries the marker though the client did not ask")
	}
	expectKind(t, plain, api.EvSync)
}
