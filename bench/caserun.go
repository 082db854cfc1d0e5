package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// caseRun is the state of one case while it runs.
type caseRun struct {
	cfg    *Config
	k      Case
	handle float64 // fraction of requests agents handle (0 in memory)
	addrs  []string
	token  string
	emb    *embedded // nil against a running cluster
	topo   *topology
	admin  *transport.Client
	agents []*agentConn
	conns  []*agentConn // connectors
	supers []*agentConn // supervisors of everything

	// load is cancelled when the load stops; workers check it between
	// commands (commands in flight finish under their own timeout).
	load       context.Context
	stopLoad   context.CancelFunc
	measuring  atomic.Bool // inside the measurement window
	windowFrom time.Time
	windowTo   time.Time

	cmdLat   *Recorder
	opLat    map[string]*Recorder // fixed before the load starts
	notifLat *Recorder
	acks     ackTable

	committed atomic.Int64 // commands answered in the window
	done      atomic.Int64 // commands answered, any time (progress)
	errs      atomic.Int64
	errMu     sync.Mutex
	errKinds  map[string]int64 // error text → count
	early     atomic.Int64     // notifications read before their ack
	// rewriteUpdates says the cluster announces a customer's new message
	// on an UNREAD or INACTIVE request to the list (feature level 2).
	rewriteUpdates bool

	// Expected list events per list: each goes to all its subscribers.
	listEvents []atomic.Int64
	opened     atomic.Int64 // requests opened (any time)
	closed     atomic.Int64 // requests closed by their agent (push)
	// convs counts conversations in progress. Not a WaitGroup: in push,
	// offers keep starting conversations while settle waits.
	convs atomic.Int64
}

func newCaseRun(cfg *Config, k Case) *caseRun {
	r := &caseRun{cfg: cfg, k: k, handle: cfg.Handle, cmdLat: NewRecorder(), notifLat: NewRecorder(), opLat: map[string]*Recorder{}}
	if k.Scenario == ScenarioMemory {
		r.handle = 0 // every request stays open
	}
	for _, op := range []string{"noop", "customer_message", "join", "leave", "send", "close", "accept_offer"} {
		r.opLat[op] = NewRecorder()
	}
	r.load, r.stopLoad = context.WithCancel(context.Background())
	return r
}

// fail counts a failed command and, by kind, why: the op and the error
// with request ids and agent names taken out (at most maxErrorKinds kinds).
func (r *caseRun) fail(op string, err error) {
	r.errs.Add(1)
	kind := op + ": " + errorKind(err.Error())
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.errKinds == nil {
		r.errKinds = map[string]int64{}
	}
	if _, ok := r.errKinds[kind]; ok || len(r.errKinds) < maxErrorKinds {
		r.errKinds[kind]++
	}
}

const maxErrorKinds = 20

// errorKinds returns a copy of the error counts.
func (r *caseRun) errorKinds() map[string]int64 {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if len(r.errKinds) == 0 {
		return nil
	}
	return maps.Clone(r.errKinds)
}

// errorKind drops the "agent X on R123: " prefix the bench adds, so that
// errors of one kind count together.
func errorKind(msg string) string {
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "agent ") {
		return msg[i+2:]
	}
	return msg
}

// answered records a command's outcome: its latency from start (the time
// it was due, under a rate) if it succeeded inside the window.
func (r *caseRun) answered(op string, shard int, start, end time.Time, err error) bool {
	if err != nil {
		r.fail(op, err)
		return false
	}
	r.done.Add(1)
	if r.measuring.Load() {
		r.committed.Add(1)
		d := end.Sub(start)
		r.cmdLat.Record(shard, d)
		r.opLat[op].Record(shard, d)
	}
	return true
}

// connect dials the admin client.
func (r *caseRun) connect(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := transport.Dial(dctx, transport.ClientConfig{Addrs: r.addrs, Role: "admin", Token: r.token, RequestTimeout: callTimeout})
	if err != nil {
		return fmt.Errorf("bench: admin connection: %w", err)
	}
	r.admin = c
	st, err := c.Status(dctx)
	if err != nil {
		return fmt.Errorf("bench: status: %w", err)
	}
	// From level 2 a customer's new message on a request nobody is in
	// tells the list (request.updated): the correctness count owes it.
	r.rewriteUpdates = st.FeatureLevel >= 2
	return nil
}

// dialConnectors opens one connection per connector, spread over the
// nodes; each reads (and checks) its own event stream.
func (r *caseRun) dialConnectors(ctx context.Context) error {
	t := r.topo
	r.conns = make([]*agentConn, len(t.connectors))
	return parallel(ctx, len(t.connectors), setupConcurrency, func(ctx context.Context, i int) error {
		c, err := dialAgent(ctx, r.addrs[i%len(r.addrs)], "connector", i, t.connectors[i], t.connTokens[i], nil)
		r.conns[i] = c
		return err
	})
}

// dialAgents connects every agent (spread over the nodes) and subscribes
// it to its lists itself.
func (r *caseRun) dialAgents(ctx context.Context, handler func(*agentConn, *eventHead)) error {
	t := r.topo
	r.agents = make([]*agentConn, len(t.agents))
	return parallel(ctx, len(t.agents), setupConcurrency, func(ctx context.Context, i int) error {
		a, err := dialAgent(ctx, r.addrs[i%len(r.addrs)], "agent", i, t.agents[i], t.agentToks[i], handler)
		if err != nil {
			return err
		}
		r.agents[i] = a
		if t.push {
			// Log in and be READY in the MRD: the route pass then offers
			// queued requests (auto mode is the default).
			for _, step := range []struct {
				op   string
				args any
			}{
				{"login", api.AgentArgs{}},
				{"set_agent_state", api.SetAgentStateArgs{MRD: t.mrd, State: api.AgentReady}},
			} {
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				_, err := a.call(cctx, step.op, step.args, nil)
				cancel()
				if err != nil {
					return fmt.Errorf("bench: agent %s %s: %w", a.id, step.op, err)
				}
			}
			return nil
		}
		for _, l := range t.agentLists[i] {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			_, err := a.call(cctx, "subscribe", api.SubscribeArgs{List: t.lists[l]}, nil)
			cancel()
			if err != nil {
				return fmt.Errorf("bench: agent %s subscribe %s: %w", a.id, t.lists[l], err)
			}
		}
		return nil
	})
}

// dialSupervisors connects every supervisor (spread over the nodes); each
// reads (and checks) its stream, which carries every list's events.
func (r *caseRun) dialSupervisors(ctx context.Context) error {
	t := r.topo
	r.supers = make([]*agentConn, len(t.supers))
	return parallel(ctx, len(t.supers), setupConcurrency, func(ctx context.Context, i int) error {
		s, err := dialAgent(ctx, r.addrs[i%len(r.addrs)], "supervisor", i, t.supers[i], t.superToks[i], nil)
		r.supers[i] = s
		return err
	})
}

// allListEvents is what a supervisor of everything is owed: every list
// event of every list, once.
func (r *caseRun) allListEvents() int64 {
	var n int64
	for i := range r.listEvents {
		n += r.listEvents[i].Load()
	}
	return n
}

// close releases the case's connections.
func (r *caseRun) close() {
	for _, a := range r.supers {
		if a != nil {
			a.close()
		}
	}
	for _, a := range r.agents {
		if a != nil {
			a.close()
		}
	}
	for _, c := range r.conns {
		if c != nil {
			c.close()
		}
	}
	if r.admin != nil {
		r.admin.Close()
	}
}

// connectorEvents returns the events all connectors have read.
func (r *caseRun) connectorEvents() int64 {
	var n int64
	for _, c := range r.conns {
		if c != nil {
			n += c.events.Load()
		}
	}
	return n
}

// agentEvents returns the events all agents have read.
func (r *caseRun) agentEvents() int64 {
	var n int64
	for _, a := range r.agents {
		if a != nil {
			n += a.events.Load()
		}
	}
	return n
}

// expectedListEvents returns the list events agent i must have received.
func (r *caseRun) expectedListEvents(i int) int64 {
	var n int64
	for _, l := range r.topo.agentLists[i] {
		n += r.listEvents[l].Load()
	}
	return n
}

// waitConversations waits until no conversation is in progress, for at
// most limit; false if some still are.
func (r *caseRun) waitConversations(ctx context.Context, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for r.convs.Load() > 0 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// settle waits, after the load, for conversations to finish and for every
// agent to have received every list event it is owed (or for nothing more
// to arrive for a while).
func (r *caseRun) settle(ctx context.Context) {
	if !r.waitConversations(ctx, 2*time.Minute) {
		r.fail("settle", errors.New("conversations still running 2 minutes after the load stopped"))
		return
	}
	var last int64 = -1
	quiet := time.Now()
	for {
		if r.k.Scenario == ScenarioPush {
			// Every request opened must be offered, accepted and closed;
			// conversations still start as capacity frees.
			n := r.closed.Load()
			if n >= r.opened.Load() {
				r.waitConversations(ctx, time.Minute)
				return
			}
			if n != last {
				last, quiet = n, time.Now()
			}
			if time.Since(quiet) > 10*time.Second || ctx.Err() != nil {
				r.waitConversations(ctx, time.Minute)
				return
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		owed := false
		for i, a := range r.agents {
			if a.listEvents.Load() < r.expectedListEvents(i) {
				owed = true
				break
			}
		}
		for _, s := range r.supers {
			if s.listEvents.Load() < r.allListEvents() {
				owed = true
			}
		}
		if !owed {
			return
		}
		n := r.agentEvents()
		if n != last {
			last, quiet = n, time.Now()
		}
		if time.Since(quiet) > 10*time.Second || ctx.Err() != nil {
			return // the rest is missed
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// correctness totals the agents', supervisors' and connectors' counters.
func (r *caseRun) correctness() Correctness {
	var c Correctness
	pull := r.k.Scenario != ScenarioPush
	for i, a := range r.agents {
		c.add(a, pull, r.expectedListEvents(i))
	}
	if !pull {
		// Push owes each request one offer taken to the end: one never
		// closed was never offered (or its offer lost).
		c.Expected = r.opened.Load()
		c.Missed = max(c.Expected-r.closed.Load(), 0)
	}
	for _, s := range r.supers {
		c.add(s, pull, r.allListEvents())
	}
	for _, a := range r.conns {
		c.add(a, false, 0)
	}
	return c
}

// add counts one stream's faults; with lists, also the list events it
// read against the want it was owed.
func (c *Correctness) add(a *agentConn, lists bool, want int64) {
	c.Duplicated += a.dups.Load()
	c.OutOfOrder += a.outOfOrder.Load()
	if lists {
		got := a.listEvents.Load()
		c.Expected += want
		if got < want {
			c.Missed += want - got
		} else {
			c.Unexpected += got - want
		}
	}
	select {
	case <-a.done: // the bench has not closed it yet
		c.CutOff++
	default:
	}
}
