package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/faultnet"
	"github.com/switchboard/switchboard/internal/testutil"
)

// Timing of the fault tests, sized for a slow two-core CI machine running
// the race detector with five nodes and their clients on it: elections take
// 0.8–1.6 s, and a leader cut off from its quorum steps down after 0.4 s.
const (
	faultHeartbeat  = 800 * time.Millisecond
	faultLease      = 400 * time.Millisecond
	faultRPCTimeout = 3 * time.Second
	attemptTimeout  = 2 * time.Second  // one Propose or read on one node
	opDeadline      = 20 * time.Second // one client operation, retries included
	// checkerDeadline is shorter, so that some checker writes straddling a
	// failover end with an unknown outcome, as a real client's would.
	checkerDeadline = 3 * time.Second
	// Generous bounds on waits that normally take a second or two: CI may
	// run these beside other packages' multi-process tests.
	electionWait     = 60 * time.Second // a leader that a majority follows
	progressWait     = 90 * time.Second // the cluster makes progress after a fault
	convergenceWait  = 90 * time.Second
	clientPauseMin   = 2 * time.Millisecond // pacing between a client's operations
	clientPauseRange = 15 * time.Millisecond
)

// soak reports whether the long variants run (SWITCHBOARD_SOAK=1).
func soak() bool { return os.Getenv("SWITCHBOARD_SOAK") != "" }

func nodeID(i int) string { return "n" + strconv.Itoa(i) }

// levelLogger returns a logger writing to t.Log at level.
func levelLogger(t testing.TB, level slog.Level) *slog.Logger { return testutil.LevelLogger(t, level) }

// testCluster is an in-process cluster of real Nodes (bolt stores in
// t.TempDir, TCP on 127.0.0.1) whose Raft traffic runs through a
// faultnet.Net of node indexes.
type testCluster struct {
	t     testing.TB
	net   *faultnet.Net[int]
	nodes []*Node
	sinks []*recordingSink // each node's FSM sink: counts snapshot restores
	// Each node's group-commit batcher and Service (for its read index),
	// as the client-facing server would use them.
	batchers []*Batcher
	svcs     []*Service
}

// newTestCluster starts n nodes, bootstraps node 0 and adds the others as
// voters. tune, if set, adjusts each node's config before it opens.
func newTestCluster(t testing.TB, n int, tune func(i int, cfg *Config)) *testCluster {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("faultnet seed %d", seed)
	c := &testCluster{t: t, net: faultnet.New[int](seed)}
	logger := levelLogger(t, slog.LevelInfo)
	for i := range n {
		cfg := Config{
			NodeID:             nodeID(i),
			RaftAddr:           "127.0.0.1:0",
			DataDir:            t.TempDir(),
			Bootstrap:          i == 0,
			HeartbeatTimeout:   faultHeartbeat,
			ElectionTimeout:    faultHeartbeat,
			LeaderLeaseTimeout: faultLease,
			TransportTimeout:   faultRPCTimeout,
			Logger:             logger,
			StreamLayer:        c.net.Wrap(i),
		}
		if tune != nil {
			tune(i, &cfg)
		}
		sink := &recordingSink{}
		node := openNode(t, cfg, NewFSM(sink, nil))
		c.net.Register(i, node.Addr())
		c.nodes = append(c.nodes, node)
		c.sinks = append(c.sinks, sink)
		c.batchers = append(c.batchers, NewBatcher(node, BatchConfig{}))
		c.svcs = append(c.svcs, NewService(node, ServiceConfig{}))
	}
	c.waitFor(electionWait, "node 0 to lead its one-node cluster", c.nodes[0].IsLeader)
	for i := 1; i < n; i++ {
		f := c.nodes[0].Raft().AddVoter(raft.ServerID(nodeID(i)), raft.ServerAddress(c.nodes[i].Addr()), 0, electionWait)
		if err := f.Error(); err != nil {
			t.Fatalf("add voter %s: %v", nodeID(i), err)
		}
	}
	c.waitFor(electionWait, fmt.Sprintf("every node to see %d voters and a leader", n), func() bool {
		for _, node := range c.nodes {
			if st := node.Status(); len(st.Members) != n || st.LeaderID == "" {
				return false
			}
		}
		return true
	})
	return c
}

// waitFor polls cond every 10ms until it holds, failing the test with what
// and the cluster's state after timeout.
func (c *testCluster) waitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("gave up after %v waiting for %s; cluster: %s", timeout, what, c.describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// describe is one line per node: role, term, leader, indexes.
func (c *testCluster) describe() string {
	var b strings.Builder
	for i, n := range c.nodes {
		st := n.Status()
		fmt.Fprintf(&b, "\n  %d %s %s term %d leader %q commit %d applied %d last %d snap %d",
			i, st.ID, st.State, st.Term, st.LeaderID, st.CommitIndex, st.AppliedIndex, st.LastLogIndex, st.LastSnapshotIndex)
	}
	return b.String()
}

// index returns the index of the node with Raft id, or -1.
func (c *testCluster) index(id string) int {
	for i, n := range c.nodes {
		if n.ID() == id {
			return i
		}
	}
	return -1
}

// agreedLeader returns the leader of the highest term if a majority of the
// nodes (itself included) name it as leader, else -1.
func (c *testCluster) agreedLeader() int {
	best, bestTerm := -1, uint64(0)
	for i, n := range c.nodes {
		r := n.Raft()
		if r == nil || r.State() != raft.Leader {
			continue
		}
		if term := r.CurrentTerm(); best < 0 || term > bestTerm {
			best, bestTerm = i, term
		}
	}
	if best < 0 {
		return -1
	}
	votes := 0
	for _, n := range c.nodes {
		if id, _ := n.Leader(); id == nodeID(best) {
			votes++
		}
	}
	if votes <= len(c.nodes)/2 {
		return -1
	}
	return best
}

// Leader waits for a leader that a majority follows and returns its index.
func (c *testCluster) Leader() int {
	c.t.Helper()
	leader := -1
	c.waitFor(electionWait, "a leader that a majority follows", func() bool {
		leader = c.agreedLeader()
		return leader >= 0
	})
	return leader
}

// WaitForNewLeader waits for a majority-backed leader other than old.
func (c *testCluster) WaitForNewLeader(old int) int {
	c.t.Helper()
	leader := -1
	c.waitFor(electionWait, fmt.Sprintf("a leader other than node %d", old), func() bool {
		leader = c.agreedLeader()
		return leader >= 0 && leader != old
	})
	return leader
}

// Followers returns every node but the current leader.
func (c *testCluster) Followers() []int {
	c.t.Helper()
	leader := c.Leader()
	var out []int
	for i := range c.nodes {
		if i != leader {
			out = append(out, i)
		}
	}
	return out
}

// others returns every node not in group.
func (c *testCluster) others(group ...int) []int {
	var out []int
	for i := range c.nodes {
		if !slices.Contains(group, i) {
			out = append(out, i)
		}
	}
	return out
}

// Partition cuts all traffic between the nodes of a and those of b.
func (c *testCluster) Partition(a, b []int) {
	c.t.Helper()
	c.t.Logf("partition %v | %v", a, b)
	c.net.Partition(a, b)
}

// Isolate cuts node i off from every other node.
func (c *testCluster) Isolate(i int) {
	c.t.Helper()
	c.Partition([]int{i}, c.others(i))
}

// Heal removes every network fault.
func (c *testCluster) Heal() {
	c.t.Helper()
	c.t.Logf("heal (%s)", c.net.Stats())
	c.net.Heal()
}

// WaitConverged commits a no-op through the leader, waits until every node
// has applied it, and checks that all nodes then hold byte-identical state
// (State.Marshal, with the Raft index zeroed). It returns that state. Call
// it with the network healed and the clients stopped.
func (c *testCluster) WaitConverged() *fsm.State {
	c.t.Helper()
	cl := newTestClient(c, "converge", 0)
	ctx, cancel := context.WithTimeout(context.Background(), convergenceWait)
	defer cancel()
	res, ok, err := cl.commit(ctx, admin(fsm.OpNoop, &api.NoopArgs{}))
	if err != nil || !ok || res.Err != nil {
		c.t.Fatalf("no-op through the leader: ok %v, err %v, result %v; cluster: %s", ok, err, res.Err, c.describe())
	}
	mark := cl.lastIndex
	c.waitFor(convergenceWait, fmt.Sprintf("every node to apply index %d", mark), func() bool {
		for _, n := range c.nodes {
			if n.FSM().Applied() < mark {
				return false
			}
		}
		return true
	})
	want, _ := stateOf(c.t, c.nodes[0].FSM())
	for i, n := range c.nodes[1:] {
		got, _ := stateOf(c.t, n.FSM())
		if !bytes.Equal(got, want) {
			c.t.Fatalf("node %d state differs from node 0 after convergence: %d bytes vs %d, first difference at byte %d: %s",
				i+1, len(got), len(want), firstDiff(got, want), diffStates(want, got))
		}
	}
	var st *fsm.State
	var err2 error
	c.nodes[0].FSM().Read(func(s *fsm.State, _ uint64) {
		raw, err := s.Marshal()
		if err != nil {
			err2 = err
			return
		}
		st, err2 = readState(raw)
	})
	if err2 != nil {
		c.t.Fatalf("copy state: %v", err2)
	}
	c.t.Logf("%d nodes converged at index %d (%d state bytes)", len(c.nodes), mark, len(want))
	return st
}

// diffStates names the top-level fields and map entries in which two
// stateOf encodings differ.
func diffStates(a, b []byte) string {
	sa, err := readState(a)
	if err != nil {
		return err.Error()
	}
	sb, err := readState(b)
	if err != nil {
		return err.Error()
	}
	va, vb := reflect.ValueOf(sa).Elem(), reflect.ValueOf(sb).Elem()
	var out []string
	for i := range va.NumField() {
		fa, fb := va.Field(i), vb.Field(i)
		if reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			continue
		}
		name := va.Type().Field(i).Name
		if fa.Kind() != reflect.Map {
			out = append(out, fmt.Sprintf("%s: %v vs %v", name, fa.Interface(), fb.Interface()))
			continue
		}
		for _, k := range fa.MapKeys() {
			ea, eb := fa.MapIndex(k), fb.MapIndex(k)
			if !eb.IsValid() {
				out = append(out, fmt.Sprintf("%s[%v] only on the first", name, k))
			} else if !reflect.DeepEqual(ea.Interface(), eb.Interface()) {
				out = append(out, fmt.Sprintf("%s[%v]: %+v vs %+v", name, k, fmtValue(ea), fmtValue(eb)))
			}
		}
		for _, k := range fb.MapKeys() {
			if !fa.MapIndex(k).IsValid() {
				out = append(out, fmt.Sprintf("%s[%v] only on the second", name, k))
			}
		}
	}
	if len(out) == 0 {
		i := firstDiff(a, b)
		lo, hi := max(0, i-48), min(len(a), len(b), i+48)
		out = append(out, fmt.Sprintf("equal when decoded; bytes %d..%d:\n%q\n%q", lo, hi, a[lo:hi], b[lo:hi]))
	}
	return strings.Join(out, "; ")
}

func fmtValue(v reflect.Value) any {
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		return v.Elem().Interface()
	}
	return v.Interface()
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// testClient commits commands through whichever node it believes leads,
// following leader hints and retrying with the same ClientID and Seq.
type testClient struct {
	c         *testCluster
	id        string
	seq       uint64
	guess     int
	rng       *rand.Rand
	lastIndex uint64 // log index of the last committed command
}

func newTestClient(c *testCluster, id string, seed uint64) *testClient {
	rng := rand.New(rand.NewPCG(seed, uint64(len(id))))
	return &testClient{c: c, id: id, guess: rng.IntN(len(c.nodes)), rng: rng}
}

// other moves the guess to another node at random.
func (cl *testClient) other() {
	n := len(cl.c.nodes)
	cl.guess = (cl.guess + 1 + cl.rng.IntN(n-1)) % n
}

// follow moves the guess to the leader that err (or the node) names.
func (cl *testClient) follow(err error) {
	id, _ := LeaderHint(err)
	if id == "" {
		id, _ = cl.c.nodes[cl.guess].Leader()
	}
	if i := cl.c.index(id); i >= 0 && i != cl.guess {
		cl.guess = i
		return
	}
	cl.other()
}

// pause sleeps a little between retries; false if ctx ended.
func (cl *testClient) pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// commit gives cmd the client's next sequence number and proposes it until
// a node commits it or ctx ends, retrying the same ClientID and Seq on
// not-leader, no-leader, timeout and unavailable errors. Each attempt goes
// either straight to Node.Propose or through the node's group-commit
// Batcher, at random. ok false with a nil err means the outcome is unknown:
// the command may yet apply. A non-nil err is an error no retry can fix.
func (cl *testClient) commit(ctx context.Context, cmd *fsm.Command) (res fsm.Result, ok bool, err error) {
	cl.seq++
	cmd.ClientID, cmd.Seq = cl.id, cl.seq
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !cl.pause(ctx, time.Duration(min(attempt, 10))*10*time.Millisecond) {
			return fsm.Result{}, false, nil
		}
		// A fresh copy per attempt: a batcher may still be proposing the
		// previous one after this client stopped waiting for it.
		attemptCmd := *cmd
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		var resp *ApplyResponse
		if cl.rng.IntN(2) == 0 {
			resp, err = cl.c.nodes[cl.guess].Propose(actx, &attemptCmd)
		} else {
			resp, err = cl.c.batchers[cl.guess].Propose(actx, &attemptCmd)
		}
		cancel()
		if err == nil {
			cl.lastIndex = resp.Index
			return resp.Results[0], true, nil
		}
		switch api.CodeOf(err) {
		case api.CodeNotLeader, api.CodeNoLeader:
			cl.follow(err)
		case api.CodeTimeout, api.CodeUnavailable:
			cl.other()
		default:
			return fsm.Result{}, false, err
		}
		if ctx.Err() != nil {
			return fsm.Result{}, false, nil
		}
	}
}

// read runs fn in a linearizable read, moving to another node on failure,
// until ctx ends. Half the reads are the test's own (linearizableRead on
// the node the client believes leads), half use the Service's read index:
// the leader's confirmed commit index, then Node.WaitIndex and the read on
// a random node, leader or follower.
func (cl *testClient) read(ctx context.Context, fn func(*fsm.State)) bool {
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !cl.pause(ctx, time.Duration(min(attempt, 10))*10*time.Millisecond) {
			return false
		}
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		var err error
		if cl.rng.IntN(2) == 0 {
			err = linearizableRead(actx, cl.c.nodes[cl.guess], fn)
		} else {
			err = readIndexRead(actx, cl.c.svcs[cl.guess], cl.c.nodes[cl.rng.IntN(len(cl.c.nodes))], fn)
		}
		cancel()
		if err == nil {
			return true
		}
		cl.follow(err)
	}
}

// mustCommit commits cmd and fails the test unless it succeeds.
func (cl *testClient) mustCommit(cmd *fsm.Command) fsm.Result {
	cl.c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
	defer cancel()
	res, ok, err := cl.commit(ctx, cmd)
	if err != nil || !ok {
		cl.c.t.Fatalf("commit %v: ok %v, err %v; cluster: %s", cmd.Op, ok, err, cl.c.describe())
	}
	if res.Err != nil {
		cl.c.t.Fatalf("commit %v: %v", cmd.Op, res.Err)
	}
	return res
}

// Fixture names: one pull channel "web" on list "main", agents a1..a3
// subscribed to it, and list "subs" whose membership the checkers change.
const (
	fixtureChannel = "web"
	fixtureList    = "main"
	membersList    = "subs"
)

var fixtureAgents = []string{"a1", "a2", "a3"}

// fixture is the state every fault test starts from.
type fixture struct {
	requests []string // open requests the checkers work on
}

// setupFixture creates the domain objects and nReq requests.
func setupFixture(t testing.TB, c *testCluster, nReq int) fixture {
	t.Helper()
	cl := newTestClient(c, "setup", 1)
	cl.mustCommit(admin(fsm.OpCreateMRD, &api.CreateMRDArgs{ID: "chat"}))
	cl.mustCommit(admin(fsm.OpCreateChannelType, &api.CreateChannelTypeArgs{ID: "webchat", MRD: "chat"}))
	cl.mustCommit(admin(fsm.OpCreateList, &api.CreateListArgs{ID: fixtureList}))
	cl.mustCommit(admin(fsm.OpCreateList, &api.CreateListArgs{ID: membersList}))
	cl.mustCommit(admin(fsm.OpCreateChannel, &api.CreateChannelArgs{ID: fixtureChannel, Type: "webchat", Mode: api.ModePull, List: fixtureList}))
	for _, a := range fixtureAgents {
		cl.mustCommit(admin(fsm.OpCreateAgent, &api.CreateAgentArgs{ID: a, TokenHash: []byte{1}}))
		cl.mustCommit(admin(fsm.OpSubscribe, &api.SubscribeArgs{Agent: a, List: fixtureList}))
	}
	var fx fixture
	for i := range nReq {
		res := cl.mustCommit(admin(fsm.OpCustomerMessage, &api.CustomerMessageArgs{
			Channel: fixtureChannel, CustomerID: fmt.Sprintf("seed-%d", i), Text: fmt.Sprintf("seed text %d", i),
		}))
		fx.requests = append(fx.requests, requestOf(res.Data))
	}
	c.waitFor(convergenceWait, "every node to apply the fixture", func() bool {
		for _, n := range c.nodes {
			if n.FSM().Applied() < cl.lastIndex {
				return false
			}
		}
		return true
	})
	return fx
}

// requestOf returns the request id of a customer_message result, which is a
// CustomerMessageResult when fresh and a decoded map when the result was
// answered from an idempotency session restored from a snapshot.
func requestOf(data any) string {
	switch d := data.(type) {
	case api.CustomerMessageResult:
		return d.Request
	case *api.CustomerMessageResult:
		return d.Request
	case map[string]any:
		s, _ := d["request"].(string)
		return s
	}
	return ""
}

// outcome is what a client learnt of one write.
type outcome uint8

const (
	acked   outcome = iota + 1 // committed, the client got the result
	unknown                    // the client gave up: it may or may not apply
)

// sentMessage is a customer_message a writer sent.
type sentMessage struct {
	customer string
	request  string // the request it went to, when acked
	outcome  outcome
}

// workload runs clients against a cluster: writers create lists and bring in
// customer messages with unique ids and texts (for the exactly-once check),
// checkers join, leave and close the fixture's requests, change list
// membership and read both linearizably, recording a history.
type workload struct {
	t    testing.TB
	c    *testCluster
	fx   fixture
	hist *history
	// ctx bounds every operation; it is cancelled only when a test ends
	// early, so the clients do not outlive it.
	ctx      context.Context
	cancel   context.CancelFunc
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	acks     atomic.Int64 // acknowledged writes, to wait for progress

	mu    sync.Mutex
	lists map[string]outcome      // create_list id → outcome
	msgs  map[string]*sentMessage // text → message
}

// startWorkload starts writers and checkers clients.
func startWorkload(t testing.TB, c *testCluster, fx fixture, writers, checkers int) *workload {
	w := &workload{
		t: t, c: c, fx: fx, hist: newHistory(), stop: make(chan struct{}),
		lists: map[string]outcome{}, msgs: map[string]*sentMessage{},
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() { // after a failure: stop the clients before the nodes close
		w.stopOnce.Do(func() { close(w.stop) })
		w.cancel()
		w.wg.Wait()
	})
	seed := uint64(time.Now().UnixNano())
	for i := range writers {
		cl := newTestClient(c, fmt.Sprintf("writer%d", i), seed+uint64(i))
		w.wg.Go(func() { w.runWriter(cl, i) })
	}
	for i := range checkers {
		cl := newTestClient(c, fmt.Sprintf("checker%d", i), seed+uint64(100+i))
		w.wg.Go(func() { w.runChecker(cl, i) })
	}
	return w
}

func (w *workload) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// pace sleeps between two operations of one client.
func (w *workload) pace(rng *rand.Rand) {
	time.Sleep(clientPauseMin + time.Duration(rng.Int64N(int64(clientPauseRange))))
}

// runWriter alternates create_list and customer_message, two messages per
// customer, every id and text unique.
func (w *workload) runWriter(cl *testClient, n int) {
	for k := 0; !w.stopped(); k++ {
		ctx, cancel := context.WithTimeout(w.ctx, opDeadline)
		if k%3 == 0 {
			id := fmt.Sprintf("wl-%d-%d", n, k)
			res, ok, err := cl.commit(ctx, admin(fsm.OpCreateList, &api.CreateListArgs{ID: id}))
			w.recordList(id, res, ok, err)
		} else {
			m := &sentMessage{customer: fmt.Sprintf("cw-%d-%d", n, k/3)}
			text := fmt.Sprintf("text-%d-%d", n, k)
			res, ok, err := cl.commit(ctx, admin(fsm.OpCustomerMessage, &api.CustomerMessageArgs{
				Channel: fixtureChannel, CustomerID: m.customer, Text: text,
			}))
			w.recordMessage(text, m, res, ok, err)
		}
		cancel()
		w.pace(cl.rng)
	}
}

func (w *workload) recordList(id string, res fsm.Result, ok bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err != nil:
		w.t.Errorf("create_list %s: %v", id, err)
	case !ok:
		w.lists[id] = unknown
	case res.Err != nil:
		w.t.Errorf("create_list %s failed: %v (a retry applied twice?)", id, res.Err)
	default:
		w.lists[id] = acked
		w.acks.Add(1)
	}
}

func (w *workload) recordMessage(text string, m *sentMessage, res fsm.Result, ok bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err != nil:
		w.t.Errorf("customer_message %s: %v", text, err)
	case !ok:
		m.outcome = unknown
		w.msgs[text] = m
	case res.Err != nil:
		w.t.Errorf("customer_message %s failed: %v", text, res.Err)
	default:
		m.outcome, m.request = acked, requestOf(res.Data)
		w.msgs[text] = m
		w.acks.Add(1)
	}
}

// runChecker performs random operations on the fixture's requests and on
// the membership of list "subs", recording each in the history.
func (w *workload) runChecker(cl *testClient, n int) {
	rng := cl.rng
	for !w.stopped() {
		agent := fixtureAgents[rng.IntN(len(fixtureAgents))]
		req := w.fx.requests[rng.IntN(len(w.fx.requests))]
		var in linInput
		switch k := rng.IntN(100); {
		case k < 20:
			in = linInput{Kind: opRead, Key: req}
		case k < 42:
			in = linInput{Kind: opJoin, Key: req, Agent: agent}
		case k < 64:
			in = linInput{Kind: opLeave, Key: req, Agent: agent}
		case k < 65 && rng.IntN(3) == 0:
			in = linInput{Kind: opClose, Key: req}
		case k < 76:
			in = linInput{Kind: opListRead, Key: listKey(membersList)}
		case k < 88:
			in = linInput{Kind: opSubscribe, Key: listKey(membersList), Agent: agent}
		default:
			in = linInput{Kind: opUnsubscribe, Key: listKey(membersList), Agent: agent}
		}
		w.do(cl, n, in)
		w.pace(rng)
	}
}

// do performs one checker operation and records it.
func (w *workload) do(cl *testClient, n int, in linInput) {
	ctx, cancel := context.WithTimeout(w.ctx, checkerDeadline)
	defer cancel()
	call := w.hist.now()
	if in.isRead() {
		// Half the reads start at a random node, as a client connected
		// anywhere would: only the leader may answer them.
		if cl.rng.IntN(2) == 0 {
			cl.guess = cl.rng.IntN(len(cl.c.nodes))
		}
		var out linOutput
		if cl.read(ctx, func(s *fsm.State) { out = observe(s, in) }) {
			w.hist.add(n, in, call, out, w.hist.now())
		} // a read that never answered changed nothing: leave it out
		return
	}
	res, ok, err := cl.commit(ctx, in.command())
	switch {
	case err != nil:
		w.t.Errorf("%v: %v", in, err)
		w.hist.addUnknown(n, in, call)
	case !ok:
		w.hist.addUnknown(n, in, call)
	default:
		w.hist.add(n, in, call, linOutput{Code: resultCode(res)}, w.hist.now())
		w.acks.Add(1)
	}
}

// waitAcks waits until n more writes than now have been acknowledged.
func (w *workload) waitAcks(n int64, why string) {
	w.t.Helper()
	target := w.acks.Load() + n
	w.c.waitFor(progressWait, fmt.Sprintf("%d acknowledged writes (%s; %s)", n, why, w.c.net.Stats()), func() bool {
		return w.acks.Load() >= target
	})
}

// Stop stops the clients, letting each finish its current operation.
func (w *workload) Stop() {
	w.t.Helper()
	w.stopOnce.Do(func() { close(w.stop) })
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	w.c.waitFor(opDeadline+10*time.Second, "the clients to stop", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}

// checkExactlyOnce checks the converged state against what the writers were
// told: every acknowledged create_list exists, every acknowledged message
// is in the request it was acknowledged with, and no message, customer or
// request appears twice.
func (w *workload) checkExactlyOnce(st *fsm.State) {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	nLists, nUnknownLists := 0, 0
	for id, o := range w.lists {
		if o == acked {
			nLists++
			if st.Lists[id] == nil {
				w.t.Errorf("acknowledged create_list %s is missing", id)
			}
		} else {
			nUnknownLists++
		}
	}
	// Every text is unique by construction: count where each one is.
	where := map[string][]string{}
	perCustomer := map[string][]string{}
	for id, r := range st.Requests {
		perCustomer[r.Customer.ID] = append(perCustomer[r.Customer.ID], id)
		for _, m := range r.Transcript {
			where[m.Text] = append(where[m.Text], id)
		}
	}
	nMsgs, nUnknownMsgs := 0, 0
	for text, m := range w.msgs {
		got := where[text]
		switch {
		case len(got) > 1:
			w.t.Errorf("message %q applied %d times: in requests %v", text, len(got), got)
		case m.outcome == unknown:
			nUnknownMsgs++
		case len(got) == 0:
			w.t.Errorf("acknowledged message %q (customer %s, request %s) is missing", text, m.customer, m.request)
		case got[0] != m.request:
			w.t.Errorf("acknowledged message %q is in request %s, but the client was told %s", text, got[0], m.request)
		default:
			nMsgs++
		}
		if len(perCustomer[m.customer]) > 1 {
			w.t.Errorf("customer %s has %d requests %v, want one", m.customer, len(perCustomer[m.customer]), perCustomer[m.customer])
		}
	}
	for text, ids := range where {
		if len(ids) > 1 {
			w.t.Errorf("text %q is in %d transcripts: %v", text, len(ids), ids)
		}
	}
	if l := st.Lists[fixtureList]; l != nil {
		seen := map[string]bool{}
		for _, id := range l.Requests {
			if seen[id] {
				w.t.Errorf("request %s listed twice on %s", id, fixtureList)
			}
			seen[id] = true
		}
	}
	w.t.Logf("exactly once: %d acknowledged lists (%d unknown), %d acknowledged messages (%d unknown), %d requests",
		nLists, nUnknownLists, nMsgs, nUnknownMsgs, len(st.Requests))
	if nLists == 0 || nMsgs == 0 {
		w.t.Errorf("the writers got nothing acknowledged")
	}
}

// finish stops the clients, waits for convergence and runs every check.
func (w *workload) finish() {
	w.t.Helper()
	w.Stop()
	st := w.c.WaitConverged()
	w.checkExactlyOnce(st)
	checkLinearizable(w.t, w.hist.operations())
}

// TestClusterIsolateLeader cuts the leader of a three-node cluster off under
// load: the old leader steps down, the others elect a new one that keeps
// committing, and after healing all nodes converge with every acknowledged
// command applied exactly once and a linearizable history.
func TestClusterIsolateLeader(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	fx := setupFixture(t, c, 4)
	w := startWorkload(t, c, fx, 2, 4)
	w.waitAcks(30, "before the fault")

	old := c.Leader()
	start := time.Now()
	c.Isolate(old)
	leader := c.WaitForNewLeader(old)
	t.Logf("node %d took over from isolated node %d in %v", leader, old, time.Since(start))
	c.waitFor(electionWait, "the isolated leader to step down", func() bool { return !c.nodes[old].IsLeader() })
	w.waitAcks(100, "with the old leader cut off")

	c.Heal()
	w.waitAcks(50, "after healing")
	w.finish()
}

// TestClusterSplitMinorityMajority splits a cluster into a minority and a
// majority under load, then heals it.
func TestClusterSplitMinorityMajority(t *testing.T) {
	// 1|2 in three nodes, the leader keeping its majority: the cut-off
	// follower falls so far behind that the leader has compacted its log
	// past it, so it catches up by installing a snapshot.
	t.Run("3nodes_follower_behind_snapshot", func(t *testing.T) {
		const trailing = 16
		c := newTestCluster(t, 3, func(_ int, cfg *Config) {
			cfg.SnapshotThreshold = 32
			cfg.SnapshotInterval = 100 * time.Millisecond
			cfg.TrailingLogs = trailing
		})
		fx := setupFixture(t, c, 4)
		w := startWorkload(t, c, fx, 2, 4)
		w.waitAcks(30, "before the fault")

		leader := c.Leader()
		f := c.others(leader)[0]
		c.Partition([]int{f}, c.others(f))
		behind := c.nodes[f].Status().LastLogIndex
		c.waitFor(progressWait, "the leader to compact its log past the cut-off follower", func() bool {
			st := c.nodes[c.Leader()].Status()
			return st.LastSnapshotIndex > behind+trailing+1
		})
		if c.agreedLeader() == f {
			t.Fatalf("cut-off follower %d leads", f)
		}
		c.Heal()
		w.waitAcks(50, "after healing")
		w.finish()
		if len(c.sinks[f].Resets()) == 0 {
			t.Errorf("node %d caught up without installing a snapshot", f)
		}
	})

	// 2|3 in five nodes, the leader on the minority side: the three elect
	// a new leader among themselves, the two cannot commit.
	t.Run("5nodes_leader_in_minority", func(t *testing.T) {
		c := newTestCluster(t, 5, nil)
		fx := setupFixture(t, c, 4)
		w := startWorkload(t, c, fx, 2, 4)
		w.waitAcks(30, "before the fault")

		old := c.Leader()
		minority := []int{old, c.others(old)[0]}
		majority := c.others(minority...)
		start := time.Now()
		c.Partition(minority, majority)
		leader := c.WaitForNewLeader(old)
		if !slices.Contains(majority, leader) {
			t.Fatalf("new leader %d is not in the majority %v", leader, majority)
		}
		t.Logf("node %d took over from node %d in %v", leader, old, time.Since(start))
		c.waitFor(electionWait, "the minority to have no leader", func() bool {
			return !c.nodes[minority[0]].IsLeader() && !c.nodes[minority[1]].IsLeader()
		})
		w.waitAcks(100, "with the minority cut off")

		c.Heal()
		w.waitAcks(50, "after healing")
		w.finish()
	})
}

// TestClusterChaos runs five nodes with lossy, slow links (every write may
// be dropped, every write is delayed) and a new partition every round —
// an isolated node or a 2|3 split, leader or not — then heals and checks
// convergence, exactly-once and linearizability. SWITCHBOARD_SOAK=1 runs
// many more rounds with more clients.
func TestClusterChaos(t *testing.T) {
	rounds, writers, checkers := 4, 2, 4
	if soak() {
		rounds, writers, checkers = 40, 3, 5
	}
	c := newTestCluster(t, 5, func(_ int, cfg *Config) {
		cfg.SnapshotThreshold = 256
		cfg.SnapshotInterval = 500 * time.Millisecond
		cfg.TrailingLogs = 64
	})
	fx := setupFixture(t, c, 6)
	w := startWorkload(t, c, fx, writers, checkers)
	lossy := faultnet.Fault{Drop: 0.02, Delay: time.Millisecond, Jitter: 10 * time.Millisecond}
	c.net.SetAll(lossy)
	t.Logf("all links: %v", lossy)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := range rounds {
		w.waitAcks(30, fmt.Sprintf("round %d, lossy links", round))
		var cut []int
		switch rng.IntN(3) {
		case 0:
			cut = []int{c.Leader()}
		case 1:
			cut = []int{rng.IntN(len(c.nodes))}
		default:
			cut = rand.Perm(len(c.nodes))[:2]
		}
		c.Partition(cut, c.others(cut...))
		w.waitAcks(60, fmt.Sprintf("round %d, %v cut off", round, cut))
		c.net.SetAll(lossy) // heal the partition, keep the loss
	}
	c.Heal()
	w.waitAcks(50, "after healing")
	w.finish()
}
