package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/node"

	"github.com/switchboard/switchboard/transport"
)

// The multi-process tests build the real switchboard binary once and run
// it as separate processes on loopback: real Raft, real BoltDB, real
// sockets, kill -9.

const (
	e2eAdminToken   = "e2e-admin-token"
	e2eClusterToken = "e2e-cluster-token"
	// e2eWait bounds every wait on a condition (startup, failover,
	// catch-up) on a slow two-core CI machine.
	e2eWait = 60 * time.Second
)

var (
	e2eBinOnce sync.Once
	e2eBinDir  string
	e2eBin     string
	e2eBinErr  error
)

// TestMain removes the binary built for the multi-process tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if e2eBinDir != "" {
		os.RemoveAll(e2eBinDir)
	}
	os.Exit(code)
}

// e2eBinary builds ./cmd/switchboard once per test run and returns its
// path. SWITCHBOARD_E2E_RACE=1 builds it with the race detector.
func e2eBinary(t *testing.T) string {
	t.Helper()
	e2eBinOnce.Do(func() {
		e2eBinDir, e2eBinErr = os.MkdirTemp("", "switchboard-e2e-")
		if e2eBinErr != nil {
			return
		}
		e2eBin = filepath.Join(e2eBinDir, "switchboard")
		args := []string{"build", "-o", e2eBin}
		if os.Getenv("SWITCHBOARD_E2E_RACE") == "1" {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			e2eBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if e2eBinErr != nil {
		t.Fatal(e2eBinErr)
	}
	return e2eBin
}

// procNode is one switchboard process, restartable on the same data dir
// and ports.
type procNode struct {
	t      *testing.T
	id     string
	client string
	raft   string
	http   string // the HTTP listener's address
	dir    string
	log    string
	ports  [3]*heldPort // client, raft, HTTP
	args   []string     // extra serve flags
	env    []string     // extra environment (KEY=value)
	cmd    *exec.Cmd
	exited chan struct{}
	starts int

	// advertiseClient and advertiseRaft, when set, are the addresses the
	// node advertises instead of the ones it listens on (the test's
	// proxies in front of it: e2e_partition_test.go).
	advertiseClient, advertiseRaft string
}

// procCluster is three (or more) switchboard processes.
type procCluster struct {
	t     *testing.T
	nodes []*procNode
	extra []string
}

// startProcCluster starts size nodes that form a cluster with
// --bootstrap-expect, each listing all of them in --join.
func startProcCluster(t *testing.T, size int, extra ...string) *procCluster {
	t.Helper()
	return startProcClusterEnv(t, size, nil, extra...)
}

// startProcClusterEnv is startProcCluster with env added to every node's
// environment.
func startProcClusterEnv(t *testing.T, size int, env []string, extra ...string) *procCluster {
	t.Helper()
	return startProcClusterOpts(t, procClusterOpts{size: size, env: env, extra: extra})
}

// procClusterOpts shape a cluster of processes.
type procClusterOpts struct {
	size  int
	env   []string // added to every node's environment
	extra []string // extra serve flags of every node
	// host, if set, is the loopback address node i (from 0) listens on,
	// instead of 127.0.0.1.
	host func(i int) string
	// front, if set, is called with each node before any starts: it may
	// put something in front of its ports and set the addresses it
	// advertises.
	front func(n *procNode)
}

// startProcClusterOpts starts the nodes of o, which form a cluster with
// --bootstrap-expect, each listing every node's advertised client address
// in --join.
func startProcClusterOpts(t *testing.T, o procClusterOpts) *procCluster {
	t.Helper()
	e2eBinary(t)
	c := &procCluster{t: t, extra: o.extra}
	root := t.TempDir()
	for i := range o.size {
		id := fmt.Sprintf("node%d", i+1)
		host := "127.0.0.1"
		if o.host != nil {
			host = o.host(i)
		}
		n := newProcNodeOn(t, id, root, o.env, host)
		if o.front != nil {
			o.front(n)
		}
		c.nodes = append(c.nodes, n)
	}
	var all []string
	for _, n := range c.nodes {
		all = append(all, n.reachedAt())
	}
	for _, n := range c.nodes {
		n.args = append([]string{"--bootstrap-expect", fmt.Sprint(o.size), "--join", strings.Join(all, ",")}, o.extra...)
		n.start()
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill()
		}
		if t.Failed() {
			for _, n := range c.nodes {
				n.dumpLog(40)
			}
		}
	})
	c.waitHealthy(e2eWait)
	return c
}

// newProcNode is node id with its data and log under root and three held
// ports on 127.0.0.1.
func newProcNode(t *testing.T, id, root string, env []string) *procNode {
	return newProcNodeOn(t, id, root, env, "127.0.0.1")
}

// newProcNodeOn is newProcNode with the ports held on host.
func newProcNodeOn(t *testing.T, id, root string, env []string, host string) *procNode {
	n := &procNode{t: t, id: id, dir: filepath.Join(root, id), log: filepath.Join(root, id+".log"), env: env,
		ports: [3]*heldPort{holdPortOn(t, host), holdPortOn(t, host), holdPortOn(t, host)}}
	n.client, n.raft, n.http = n.ports[0].addr, n.ports[1].addr, n.ports[2].addr
	return n
}

// reachedAt is the client address the node advertises to the others.
func (n *procNode) reachedAt() string {
	if n.advertiseClient != "" {
		return n.advertiseClient
	}
	return n.client
}

// start runs the node's process; it does not wait for it to be ready.
func (n *procNode) start() {
	n.t.Helper()
	lf, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	n.starts++
	fmt.Fprintf(lf, "=== start %d of %s\n", n.starts, n.id)
	args := append([]string{"serve", "--node-id", n.id, "--data", n.dir, "--client-addr", n.client,
		"--raft-addr", n.raft, "--http-addr", n.http, "--client-listener-fd", "3", "--raft-listener-fd", "4",
		"--http-listener-fd", "5", "--log-level", "info"}, n.args...)
	if n.advertiseClient != "" {
		args = append(args, "--advertise-client", n.advertiseClient)
	}
	if n.advertiseRaft != "" {
		args = append(args, "--advertise", n.advertiseRaft)
	}
	cmd := exec.Command(e2eBin, args...)
	for _, p := range n.ports {
		p.pause()
		f := p.file(n.t)
		defer f.Close() // the child has its own copy once started
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	cmd.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_TOKEN="+e2eAdminToken, "SWITCHBOARD_CLUSTER_TOKEN="+e2eClusterToken)
	cmd.Env = append(cmd.Env, n.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		n.t.Fatalf("start %s: %v", n.id, err)
	}
	n.cmd = cmd
	exited := make(chan struct{})
	n.exited = exited
	ports := n.ports
	go func() {
		_ = cmd.Wait()
		lf.Close()
		for _, p := range ports {
			p.refuse() // nobody serves the ports until the next start
		}
		close(exited)
	}()
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (n *procNode) kill() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
	n.cmd = nil
}

// stop sends SIGTERM and waits for a clean exit.
func (n *procNode) stop() {
	n.t.Helper()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.t.Errorf("%s did not stop within 30s of SIGTERM; killing it", n.id)
		n.kill()
	}
	n.cmd = nil
}

func (n *procNode) running() bool { return n.cmd != nil }

func (n *procNode) dumpLog(lines int) {
	b, err := os.ReadFile(n.log)
	if err != nil {
		return
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	n.t.Logf("--- last %d log lines of %s ---\n%s", lines, n.id, strings.Join(all[max(0, len(all)-lines):], "\n"))
}

// status asks the node for its status; an error if it does not serve.
func (n *procNode) status(ctx context.Context) (api.NodeStatus, error) {
	var st api.NodeStatus
	c, err := transport.Dial(ctx, transport.ClientConfig{Addrs: []string{n.client}, Role: "admin", Token: e2eAdminToken,
		DialTimeout: 2 * time.Second, RequestTimeout: 5 * time.Second, PingInterval: -1})
	if err != nil {
		return st, err
	}
	defer c.Close()
	err = c.Call(ctx, node.QueryStatus, nil, &st)
	return st, err
}

// waitHealthy waits until every running node serves clients and they all
// name the same leader, and returns that leader.
func (c *procCluster) waitHealthy(timeout time.Duration) *procNode {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		leader, why := c.healthy()
		if leader != nil {
			return leader
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not healthy within %v: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *procCluster) healthy() (*procNode, string) {
	var leader string
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		st, err := n.status(ctx)
		cancel()
		switch {
		case err != nil:
			return nil, fmt.Sprintf("%s: %v", n.id, err)
		case st.Leader == "":
			return nil, n.id + " knows no leader"
		case leader != "" && st.Leader != leader:
			return nil, fmt.Sprintf("%s says the leader is %s, others %s", n.id, st.Leader, leader)
		}
		leader = st.Leader
	}
	for _, n := range c.nodes {
		if n.id == leader && n.running() {
			return n, ""
		}
	}
	return nil, "the leader " + leader + " is not running"
}

// addrs returns the client addresses of every node, starting with n's.
func (c *procCluster) addrs(first *procNode) []string {
	i := slices.Index(c.nodes, first)
	var out []string
	for k := range c.nodes {
		out = append(out, c.nodes[(i+k)%len(c.nodes)].client)
	}
	return out
}

// waitCaughtUp waits until n has applied the leader's commit index as of
// the wait's start (its first moment with a healthy cluster): a target
// that holds still while writers keep committing, which a node trailing
// the leader by one round trip would otherwise chase on a loaded machine.
func (c *procCluster) waitCaughtUp(n *procNode, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var target uint64
	for {
		if leader, _ := c.healthy(); leader != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			if target == 0 {
				if lst, err := leader.status(ctx); err == nil {
					target = lst.CommitIndex
				}
			}
			st, err := n.status(ctx)
			cancel()
			if target > 0 && err == nil && st.AppliedIndex > 0 && st.CommitIndex >= target && st.LastLogIndex >= target {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s did not catch up with commit index %d within %v", n.id, target, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// e2eDial connects a client with failover to addrs.
func e2eDial(t *testing.T, addrs []string, role, user, token string) *transport.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, transport.ClientConfig{
		Addrs: addrs, Role: role, User: user, Token: token, Reconnect: true,
		DialTimeout: 2 * time.Second, RequestTimeout: 30 * time.Second, PingInterval: time.Second,
	})
	if err != nil {
		t.Fatalf("dial %s %s: %v", role, user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func e2eCall(t *testing.T, c *transport.Client, op string, args, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Call(ctx, op, args, out); err != nil {
		t.Fatalf("%s %+v: %v", op, args, err)
	}
}

// e2eSetup creates the pull-mode domain the scenarios use: list L1 on
// channel C1, connector fb, and the agents subscribed to L1.
func e2eSetup(t *testing.T, admin *transport.Client, agents []string) (map[string]string, string) {
	t.Helper()
	e2eCall(t, admin, "create_mrd", api.CreateMRDArgs{ID: "social"}, nil)
	e2eCall(t, admin, "create_channel_type", api.CreateChannelTypeArgs{ID: "facebook", MRD: "social"}, nil)
	e2eCall(t, admin, "create_list", api.CreateListArgs{ID: "L1"}, nil)
	e2eCall(t, admin, "create_channel", api.CreateChannelArgs{ID: "C1", Type: "facebook", Mode: api.ModePull, List: "L1"}, nil)
	tokens := map[string]string{}
	for _, a := range agents {
		var cred node.Credential
		e2eCall(t, admin, "create_agent", api.CreateAgentArgs{ID: a}, &cred)
		tokens[a] = cred.Token
		e2eCall(t, admin, "subscribe", api.SubscribeArgs{Agent: a, List: "L1"}, nil)
	}
	var cred node.Credential
	e2eCall(t, admin, "create_connector", api.CreateConnectorArgs{ID: "fb", Channels: []string{"C1"}}, &cred)
	return tokens, cred.Token
}

// ack is one write a writer sent: its customer, the outcome and when.
type ack struct {
	customer string
	request  string // "" unless acknowledged
	err      error  // nil when acknowledged
	at       time.Time
}

// writerPool runs writing goroutines until halted and keeps how each write
// ended (T): what the writers of every scenario share.
type writerPool[T any] struct {
	mu   sync.Mutex
	out  []T
	stop chan struct{}
	wg   sync.WaitGroup
}

func newWriterPool[T any]() *writerPool[T] {
	return &writerPool[T]{stop: make(chan struct{})}
}

// loop runs write(0), write(1)... in a goroutine, keeping each outcome
// and pausing between writes, until the pool is halted.
func (p *writerPool[T]) loop(pause time.Duration, write func(k int) T) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for k := 0; ; k++ {
			select {
			case <-p.stop:
				return
			default:
			}
			o := write(k)
			p.mu.Lock()
			p.out = append(p.out, o)
			p.mu.Unlock()
			if pause > 0 {
				select {
				case <-p.stop:
				case <-time.After(pause):
				}
			}
		}
	}()
}

// halt stops the writers once every write in flight has ended, and
// returns every outcome.
func (p *writerPool[T]) halt() []T {
	close(p.stop)
	p.wg.Wait()
	return p.snapshot()
}

// snapshot returns the outcomes so far.
func (p *writerPool[T]) snapshot() []T {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.out)
}

// writers are clients that stream customer_message commands (each to a
// new customer, so each opens one request) until stopped.
type writers struct {
	*writerPool[ack]
}

func startWriters(t *testing.T, c *procCluster, token string, n int, pause time.Duration) *writers {
	w := &writers{newWriterPool[ack]()}
	for i := range n {
		cl := e2eDial(t, c.addrs(c.nodes[i%len(c.nodes)]), "connector", "fb", token)
		w.loop(pause, func(k int) ack {
			cust := fmt.Sprintf("w%d-%d", i, k)
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			var r api.CustomerMessageResult
			err := cl.Call(ctx, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: cust, Text: "hello " + cust}, &r)
			a := ack{customer: cust, err: err, at: time.Now()}
			if err == nil {
				a.request = r.Request
			}
			return a
		})
	}
	return w
}

// watcher is an agent watching L1: it keeps its current view of L1 (from
// the last sync, then request.created events) and checks that events
// arrive in seq order, each once.
type watcher struct {
	name   string
	client *transport.Client

	mu       sync.Mutex
	lastSeq  uint64
	syncs    int
	ids      map[string]bool      // L1's requests as this agent knows them
	arrived  map[string]time.Time // when each request.created arrived
	created  map[string]int64     // request id → created_at (leader time)
	problems []string
	events   int
}

func watch(name string, c *transport.Client) *watcher {
	w := &watcher{name: name, client: c, ids: map[string]bool{}, arrived: map[string]time.Time{}, created: map[string]int64{}}
	go func() {
		for ev := range c.Events() {
			if after := w.take(ev); after != "" {
				w.page(after)
			}
		}
	}()
	return w
}

// page reads the rest of L1 after request after, as a client does when a
// sync or list.subscribed carries a first page (docs/PROTOCOL.md §18):
// the watcher only collects ids, so it takes the union.
func (w *watcher) page(after string) {
	for after != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		snap, err := w.client.ListPage(ctx, "L1", after, api.MaxPageSize)
		cancel()
		w.mu.Lock()
		if err != nil {
			if !errors.Is(err, transport.ErrClosed) {
				w.problems = append(w.problems, fmt.Sprintf("get_list L1 after %s: %v", after, err))
			}
			w.mu.Unlock()
			return
		}
		for _, r := range snap.Requests {
			if !w.ids[r.ID] {
				w.ids[r.ID] = true
				w.created[r.ID] = r.CreatedAt
			}
		}
		w.mu.Unlock()
		after = ""
		if snap.More && len(snap.Requests) > 0 {
			after = snap.Requests[len(snap.Requests)-1].ID
		}
	}
}

// take applies an event to the watcher's view of L1. It returns the
// request after which L1 must be read further ("" if it need not): a sync
// or a list.subscribed that carried a first page.
func (w *watcher) take(ev transport.Event) (after string) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events++
	if ev.Kind == api.EvSync {
		var v api.StreamView
		if err := ev.Decode(&v); err != nil {
			w.problems = append(w.problems, fmt.Sprintf("sync %d: %v", ev.Seq, err))
			return
		}
		w.syncs++
		w.lastSeq = ev.Seq
		clear(w.ids)
		for _, l := range v.Lists {
			if l.List == "L1" {
				for _, r := range l.Requests {
					w.ids[r.ID] = true
					w.created[r.ID] = r.CreatedAt
				}
				after = morePages(l)
			}
		}
		return after
	}
	if ev.Seq <= w.lastSeq {
		w.problems = append(w.problems, fmt.Sprintf("event %d (%s) after %d: duplicate or out of order", ev.Seq, ev.Kind, w.lastSeq))
		return
	}
	w.lastSeq = ev.Seq
	switch ev.Kind {
	case api.EvRequestCreated:
		var s api.RequestSummary
		if err := ev.Decode(&s); err != nil {
			w.problems = append(w.problems, fmt.Sprintf("event %d: %v", ev.Seq, err))
			return
		}
		if w.ids[s.ID] {
			w.problems = append(w.problems, fmt.Sprintf("request.created %s twice (seq %d)", s.ID, ev.Seq))
		}
		w.ids[s.ID] = true
		w.arrived[s.ID] = now
		w.created[s.ID] = s.CreatedAt
	case api.EvListSubscribed:
		var l api.ListSnapshot
		if err := ev.Decode(&l); err == nil && l.List == "L1" {
			clear(w.ids)
			for _, r := range l.Requests {
				w.ids[r.ID] = true
			}
			return morePages(l)
		}
	}
	return ""
}

// morePages is the request after which a first page of a list goes on,
// "" if it is the whole list.
func morePages(l api.ListSnapshot) string {
	if !l.More || len(l.Requests) == 0 {
		return ""
	}
	return l.Requests[len(l.Requests)-1].ID
}

// has reports whether the watcher knows every one of ids.
func (w *watcher) has(ids []string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		if !w.ids[id] {
			return false
		}
	}
	return true
}

// resumedAt returns when the watcher received its first request.created
// for a request the leader stamped after t0.
func (w *watcher) resumedAt(t0 time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for id, at := range w.arrived {
		if w.created[id] > t0.UnixNano() && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

func (w *watcher) syncCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.syncs
}

func (w *watcher) known() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]bool, len(w.ids))
	for id := range w.ids {
		out[id] = true
	}
	return out
}

// listL1 reads L1, every page, with linearizable reads: request id →
// summary.
func listL1(t *testing.T, admin *transport.Client) map[string]api.RequestSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(transport.WithLinearizable(context.Background()), 30*time.Second)
	defer cancel()
	out := map[string]api.RequestSummary{}
	args := api.QueryArgs{List: "L1", Limit: api.MaxPageSize}
	for {
		var snap api.ListSnapshot
		if err := admin.Call(ctx, api.QueryList, args, &snap); err != nil {
			t.Fatalf("get_list L1 after %q: %v", args.After, err)
		}
		for _, r := range snap.Requests {
			out[r.ID] = r
		}
		if !snap.More || len(snap.Requests) == 0 {
			return out
		}
		args.After = snap.Requests[len(snap.Requests)-1].ID
	}
}

// checkExactlyOnce checks every outcome against L1: each acknowledged
// write opened exactly one request, with exactly its one message; a write
// whose outcome was unknown applied at most once; nothing else is there.
func checkExactlyOnce(t *testing.T, admin *transport.Client, acks []ack, l1 map[string]api.RequestSummary) (acked int) {
	t.Helper()
	byCustomer := map[string][]string{}
	for id, r := range l1 {
		byCustomer[r.Customer.ID] = append(byCustomer[r.Customer.ID], id)
	}
	sent := map[string]bool{}
	var toCheck []string
	for _, a := range acks {
		sent[a.customer] = true
		reqs := byCustomer[a.customer]
		switch {
		case a.err == nil:
			acked++
			if len(reqs) != 1 || reqs[0] != a.request {
				t.Errorf("acknowledged write for %s (request %s): L1 holds %v", a.customer, a.request, reqs)
				continue
			}
			toCheck = append(toCheck, a.request)
		case len(reqs) > 1:
			t.Errorf("write for %s with unknown outcome (%v) applied %d times: %v", a.customer, a.err, len(reqs), reqs)
		case len(reqs) == 1:
			toCheck = append(toCheck, reqs[0])
		}
	}
	for cust, reqs := range byCustomer {
		if !sent[cust] {
			t.Errorf("L1 holds requests %v of customer %s that nobody wrote for", reqs, cust)
		}
	}
	// A write applied twice would have added a second message.
	var (
		mu   sync.Mutex
		bad  []string
		wg   sync.WaitGroup
		work = make(chan string)
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				var v api.ConversationView
				err := admin.Call(ctx, api.QueryRequest, api.QueryArgs{Request: id}, &v)
				cancel()
				if err != nil || len(v.Transcript) != 1 {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s: %d messages, err %v", id, len(v.Transcript), err))
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range toCheck {
		work <- id
	}
	close(work)
	wg.Wait()
	sort.Strings(bad)
	for _, b := range bad[:min(len(bad), 10)] {
		t.Errorf("request %s", b)
	}
	return acked
}

// checkWatchers checks that every agent ends with exactly L1's requests
// and saw no duplicate or out-of-order event.
func checkWatchers(t *testing.T, ws []*watcher, l1 map[string]api.RequestSummary, wantSyncs int) {
	t.Helper()
	ids := make([]string, 0, len(l1))
	for id := range l1 {
		ids = append(ids, id)
	}
	deadline := time.Now().Add(e2eWait)
	for _, w := range ws {
		for !w.has(ids) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		known := w.known()
		var missing, extra []string
		for id := range l1 {
			if !known[id] {
				missing = append(missing, id)
			}
		}
		for id := range known {
			if _, ok := l1[id]; !ok {
				extra = append(extra, id)
			}
		}
		w.mu.Lock()
		problems, syncs, events := slices.Clone(w.problems), w.syncs, w.events
		w.mu.Unlock()
		if len(missing) > 0 || len(extra) > 0 {
			t.Errorf("agent %s: %d requests missing (e.g. %v), %d unknown to L1 (e.g. %v)", w.name,
				len(missing), missing[:min(3, len(missing))], len(extra), extra[:min(3, len(extra))])
		}
		for _, p := range problems[:min(len(problems), 10)] {
			t.Errorf("agent %s: %s", w.name, p)
		}
		if wantSyncs >= 0 && syncs != wantSyncs {
			t.Errorf("agent %s: %d syncs, want %d (the history should cover every resume)", w.name, syncs, wantSyncs)
		}
		t.Logf("agent %s: %d events, %d syncs, on %s at the end", w.name, events, syncs, w.client.Welcome().Node)
	}
}

// heldPort is a loopback port the test process holds for a node process's
// whole life, restarts included: it is bound once, and each start of the
// node inherits the listening socket (serve --client-listener-fd and
// --raft-listener-fd), so no port is ever picked, released and bound
// again. While no node process runs, the test answers connections on it
// by closing them at once, as a port nobody listens on would refuse them.
type heldPort struct {
	ln   *net.TCPListener
	addr string
	stop chan struct{} // closes the refusing loop; nil while a node serves
	done chan struct{}
}

func holdPort(t *testing.T) *heldPort {
	t.Helper()
	return holdPortOn(t, "127.0.0.1")
}

// holdPortOn is holdPort on a loopback address of host's choosing.
func holdPortOn(t *testing.T, host string) *heldPort {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := &heldPort{ln: ln.(*net.TCPListener), addr: ln.Addr().String()}
	p.refuse()
	t.Cleanup(func() {
		p.pause()
		p.ln.Close()
	})
	return p
}

// file returns a duplicate of the listening socket for a child process.
func (p *heldPort) file(t *testing.T) *os.File {
	t.Helper()
	f, err := p.ln.File()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// rawFD returns a descriptor of the listening socket that no *os.File
// owns: what a serve run in this process takes over with
// --*-listener-fd (it closes it).
func (p *heldPort) rawFD(t *testing.T) int {
	t.Helper()
	f := p.file(t)
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// refuse starts closing every connection made to the port (no node runs).
func (p *heldPort) refuse() {
	if p.stop != nil {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	p.stop, p.done = stop, done
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = p.ln.SetDeadline(time.Now().Add(20 * time.Millisecond))
			if c, err := p.ln.AcceptTCP(); err == nil {
				_ = c.SetLinger(0)
				c.Close()
			} else if !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}()
}

// pause stops the refusing loop: a node process is about to serve.
func (p *heldPort) pause() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	<-p.done
	p.stop = nil
}
