package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/transport"
)

// A frozen leader (SIGSTOP), with real processes: issue 11's first test.
// Several connectors write at once, each with several writes in flight
// through one Go client (its seq window, its default keepalive and
// failover), spread over the three nodes, while the leader is stopped
// for a while and then continued. Every write must end acknowledged, or
// refused with an answer that says it was not applied; none may be
// answered stale_sequence or end with an outcome the client cannot know.
// Once the old leader is back, the state holds each acknowledged write
// exactly once and no other.
//
// The 5 s freeze takes about 12 s in all on two cores, the 15 s one
// (longer than the Go client's default silence limit, 6 s, and than the
// 10 s a node waits on a forwarded write) about 19 s: both run in the default
// suite, and -short skips the 15 s one unless SWITCHBOARD_SOAK=1.
//
// There is no partition variant: the fault-injecting network
// (cluster/faultnet_test.go) wraps Raft's stream layer inside one test
// process, and nothing equivalent reaches between processes without
// firewall rules on a shared machine.

func TestClusterFreezeLeader5sE2E(t *testing.T) {
	freezeScenario(t, 5*time.Second)
}

func TestClusterFreezeLeader15sE2E(t *testing.T) {
	if testing.Short() && !soak() {
		t.Skip("a 15 s freeze of the leader: runs without -short, or with SWITCHBOARD_SOAK=1")
	}
	freezeScenario(t, 15*time.Second)
}

// Writers of the freeze scenario.
const (
	freezeConnectors = 4
	freezeInFlight   = 6 // writes in flight per connector
	// freezePause is each writer's pause between writes: about 100 writes
	// a second per connector, enough for its seqs to run far past the
	// idempotency window (128) during a freeze, were the client not
	// holding them back behind a stuck write.
	freezePause = 50 * time.Millisecond
	// freezeImpatient is the silence limit of the impatient connectors.
	freezeImpatient = 2 * time.Second
	// freezeCallWait bounds one write, retries included: well past the
	// longest freeze, the election and the client's silence limit.
	freezeCallWait = 90 * time.Second
)

// freezeOutcome is how one write ended.
type freezeOutcome struct {
	conn     string // connector
	customer string
	request  string // when acknowledged
	err      error  // nil when acknowledged
	sent     time.Time
	answered time.Time
}

// notApplied reports whether err is an answer that says the write was not
// applied: a business refusal (committed as a refusal, it changed
// nothing), or refused before the log (rate_limited,
// feature_not_enabled). stale_sequence says nothing of the kind.
func notApplied(err error) bool {
	var eb *transport.ErrorBody
	if !errors.As(err, &eb) {
		return false
	}
	switch {
	case eb.Code == api.CodeStaleSequence:
		return false
	case eb.Code > api.CodeOK && eb.Code < api.CodeNotLeader:
		return true
	}
	return eb.Code == api.CodeRateLimited
}

// freezeWriters are connectors writing customer_message to a new customer
// each time (so each write opens one request), freezeInFlight at once per
// connector, until stopped.
type freezeWriters struct {
	mu       sync.Mutex
	outcomes []freezeOutcome
	stop     chan struct{}
	wg       sync.WaitGroup
}

// startFreezeWriters starts the connectors: fw1 and fw3 connected to the
// leader, fw2 and fw4 to a follower; fw1 and fw2 with the Go client's
// defaults (a node silent for 6 s is taken for dead), fw3 and fw4
// impatient (2 s), so that they leave the frozen leader and re-send its
// writes elsewhere while it is stopped.
func startFreezeWriters(t *testing.T, c *procCluster, leader *procNode, tokens map[string]string) *freezeWriters {
	t.Helper()
	w := &freezeWriters{stop: make(chan struct{})}
	var follower *procNode
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	for i := range freezeConnectors {
		id := fmt.Sprintf("fw%d", i+1)
		first := leader
		if i%2 == 1 {
			first = follower
		}
		cfg := transport.ClientConfig{Addrs: c.addrs(first), Role: "connector", User: id, Token: tokens[id], Reconnect: true}
		if i >= 2 {
			cfg.DeadAfter = freezeImpatient
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cl, err := transport.Dial(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("dial connector %s: %v", id, err)
		}
		t.Cleanup(func() { cl.Close() })
		for k := range freezeInFlight {
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				for n := 0; ; n++ {
					select {
					case <-w.stop:
						return
					default:
					}
					cust := fmt.Sprintf("%s-%d-%d", id, k, n)
					o := freezeOutcome{conn: id, customer: cust, sent: time.Now()}
					ctx, cancel := context.WithTimeout(context.Background(), freezeCallWait)
					var r api.CustomerMessageResult
					o.err = cl.Call(ctx, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: cust, Text: "hello " + cust}, &r)
					cancel()
					o.answered, o.request = time.Now(), r.Request
					w.mu.Lock()
					w.outcomes = append(w.outcomes, o)
					w.mu.Unlock()
					select {
					case <-w.stop:
					case <-time.After(freezePause):
					}
				}
			}()
		}
	}
	return w
}

// acked counts the writes acknowledged so far that were sent after t0.
func (w *freezeWriters) acked(t0 time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, o := range w.outcomes {
		if o.err == nil && o.sent.After(t0) {
			n++
		}
	}
	return n
}

// halt stops the writers once every write in flight has ended, and
// returns every outcome.
func (w *freezeWriters) halt() []freezeOutcome {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.outcomes)
}

// signal sends sig to the node's process.
func (n *procNode) signal(sig syscall.Signal) error {
	if n.cmd == nil {
		return fmt.Errorf("%s is not running", n.id)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %v: %w", n.id, sig, err)
	}
	return nil
}

func freezeScenario(t *testing.T, freeze time.Duration) {
	c := startProcCluster(t, 3)
	leader := c.waitHealthy(e2eWait)
	admin := e2eDial(t, c.addrs(leader), "admin", "", e2eAdminToken)
	e2eSetup(t, admin, nil)
	tokens := map[string]string{}
	for i := range freezeConnectors {
		id := fmt.Sprintf("fw%d", i+1)
		var cred node.Credential
		e2eCall(t, admin, "create_connector", api.CreateConnectorArgs{ID: id, Channels: []string{"C1"}}, &cred)
		tokens[id] = cred.Token
	}
	w := startFreezeWriters(t, c, leader, tokens)
	t0 := time.Now()
	waitUntil(t, "warm-up writes", func() bool { return w.acked(t0) >= 200 })

	// Freeze the leader.
	if err := leader.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozeAt := time.Now()
	thawed := false
	thaw := func() error {
		if thawed {
			return nil
		}
		thawed = true
		return leader.signal(syscall.SIGCONT)
	}
	t.Cleanup(func() { _ = thaw() }) // a failed test leaves no process stopped
	t.Logf("SIGSTOP of the leader %s for %v, after %d acknowledged writes", leader.id, freeze, w.acked(t0))

	// The others elect a leader among themselves and go on acknowledging
	// writes while the old one is stopped.
	var survivors []*procNode
	for _, n := range c.nodes {
		if n != leader {
			survivors = append(survivors, n)
		}
	}
	var newLeader string
	waitUntil(t, "a new leader among the survivors", func() bool {
		var ids []string
		for _, n := range survivors {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := n.status(ctx)
			cancel()
			if err != nil || st.Leader == "" || st.Leader == leader.id {
				return false
			}
			ids = append(ids, st.Leader)
		}
		newLeader = ids[0]
		return ids[0] == ids[1]
	})
	elected := time.Since(frozeAt)
	t.Logf("new leader %s known by both survivors %v after the SIGSTOP", newLeader, elected.Round(time.Millisecond))
	if elected >= freeze {
		t.Errorf("the survivors took %v to agree on a new leader: longer than the %v freeze", elected.Round(time.Millisecond), freeze)
	}
	waitUntil(t, "the freeze to last its time", func() bool { return time.Since(frozeAt) >= freeze })
	during := w.acked(frozeAt)
	if err := thaw(); err != nil {
		t.Fatal(err)
	}
	thawedAt := time.Now()
	t.Logf("SIGCONT after %v; %d writes sent since the SIGSTOP acknowledged meanwhile", thawedAt.Sub(frozeAt).Round(time.Millisecond), during)
	if during == 0 {
		t.Errorf("no write sent during the freeze was acknowledged before its end: the survivors did not serve")
	}

	// The old leader is back: it steps down and catches up, and the writes
	// go on.
	c.waitCaughtUp(leader, e2eWait)
	waitUntil(t, "writes after the thaw", func() bool { return w.acked(thawedAt) >= 200 })
	outcomes := w.halt()
	t.Logf("writers stopped %v after the SIGCONT", time.Since(thawedAt).Round(time.Millisecond))

	// Every write's outcome is knowable.
	var (
		acked, refused int
		latest         time.Duration
		slowest        freezeOutcome
		unknowable     []string
	)
	for _, o := range outcomes {
		if d := o.answered.Sub(o.sent); d > latest {
			latest, slowest = d, o
		}
		switch {
		case o.err == nil:
			acked++
		case notApplied(o.err):
			refused++
		default:
			unknowable = append(unknowable, fmt.Sprintf("%s (%s, sent %v after the SIGSTOP, answered after %v): %v",
				o.customer, o.conn, o.sent.Sub(frozeAt).Round(time.Millisecond), o.answered.Sub(o.sent).Round(time.Millisecond), o.err))
		}
	}
	t.Logf("%d writes: %d acknowledged, %d refused as not applied, %d unknowable; slowest answered after %v (%s, sent %v after the SIGSTOP)",
		len(outcomes), acked, refused, len(unknowable), latest.Round(time.Millisecond), slowest.conn, slowest.sent.Sub(frozeAt).Round(time.Millisecond))
	// How far each connector's other writes went while its slowest one
	// waited: the client keeps that below the window.
	for i := range freezeConnectors {
		id := fmt.Sprintf("fw%d", i+1)
		var slow freezeOutcome
		for _, o := range outcomes {
			if o.conn == id && o.answered.Sub(o.sent) > slow.answered.Sub(slow.sent) {
				slow = o
			}
		}
		others := 0
		for _, o := range outcomes {
			if o.conn == id && o.sent.After(slow.sent) && o.sent.Before(slow.answered) {
				others++
			}
		}
		t.Logf("%s: slowest write answered after %v (sent %v after the SIGSTOP); %d other writes sent meanwhile",
			id, slow.answered.Sub(slow.sent).Round(time.Millisecond), slow.sent.Sub(frozeAt).Round(time.Millisecond), others)
	}
	for _, u := range unknowable[:min(len(unknowable), 10)] {
		t.Errorf("write with no knowable outcome: %s", u)
	}

	// The state holds every acknowledged write exactly once, and nothing
	// of a refused one.
	l1 := listL1(t, admin)
	byCustomer := map[string]int{}
	for _, r := range l1 {
		byCustomer[r.Customer.ID]++
	}
	var acks []ack
	for _, o := range outcomes {
		if o.err != nil && notApplied(o.err) && byCustomer[o.customer] > 0 {
			t.Errorf("write for %s refused (%v) but applied", o.customer, o.err)
		}
		acks = append(acks, ack{customer: o.customer, request: o.request, err: o.err, at: o.answered})
	}
	if n := checkExactlyOnce(t, admin, acks, l1); n != acked {
		t.Errorf("%d writes acknowledged, checkExactlyOnce counted %d", acked, n)
	}
	checkNodesAgree(t, c, len(l1))
}
