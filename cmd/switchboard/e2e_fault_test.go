package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/transport"
)

// What the leader-fault scenarios share (issue 11: a frozen leader,
// e2e_freeze_test.go; a partitioned one, e2e_partition_test.go): the
// connectors that write with several writes in flight each, the wait for
// the new leader, and the checks that every write's outcome is knowable
// and that the state holds each acknowledged write exactly once.

// Writers of the fault scenarios.
const (
	faultConnectors = 4
	faultInFlight   = 6 // writes in flight per connector
	// faultPause is each writer's pause between writes: about 100 writes
	// a second per connector, enough for its seqs to run far past the
	// idempotency window (128) during a fault, were the client not
	// holding them back behind a stuck write.
	faultPause = 50 * time.Millisecond
	// faultImpatient is the silence limit of the impatient connectors.
	faultImpatient = 2 * time.Second
	// faultCallWait bounds one write, retries included: well past the
	// longest fault, the election and the client's silence limit.
	faultCallWait = 90 * time.Second
)

// writeOutcome is how one write ended.
type writeOutcome struct {
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

// createFaultConnectors creates the connectors fw1... on channel C1 and
// returns their tokens.
func createFaultConnectors(t *testing.T, admin *transport.Client) map[string]string {
	t.Helper()
	tokens := map[string]string{}
	for i := range faultConnectors {
		id := fmt.Sprintf("fw%d", i+1)
		var cred node.Credential
		e2eCall(t, admin, "create_connector", api.CreateConnectorArgs{ID: id, Channels: []string{"C1"}}, &cred)
		tokens[id] = cred.Token
	}
	return tokens
}

// faultWriters are connectors writing customer_message to a new customer
// each time (so each write opens one request), faultInFlight at once per
// connector, until halted.
type faultWriters struct {
	*writerPool[writeOutcome]
	on map[string]*procNode // connector → the node it first connected to
}

// others returns the nodes of c but n.
func (c *procCluster) others(n *procNode) []*procNode {
	var out []*procNode
	for _, o := range c.nodes {
		if o != n {
			out = append(out, o)
		}
	}
	return out
}

// startFaultWriters starts the connectors, spread over every node: fw1
// and fw3 connected to the leader, fw2 to one follower and fw4 to the
// other; fw1 and fw2 with the Go client's defaults (a node silent for 6 s
// is taken for dead), fw3 and fw4 impatient (2 s), so that a connector
// on a silent leader leaves it and re-sends its writes elsewhere. Each
// has every node's address, starting with its own.
func startFaultWriters(t *testing.T, c *procCluster, leader *procNode, tokens map[string]string) *faultWriters {
	t.Helper()
	w := &faultWriters{writerPool: newWriterPool[writeOutcome](), on: map[string]*procNode{}}
	followers := c.others(leader)
	for i := range faultConnectors {
		id := fmt.Sprintf("fw%d", i+1)
		first := leader
		if i%2 == 1 {
			first = followers[(i/2)%len(followers)]
		}
		cfg := transport.ClientConfig{Addrs: c.addrs(first), Role: "connector", User: id, Token: tokens[id], Reconnect: true}
		if i >= 2 {
			cfg.DeadAfter = faultImpatient
		}
		w.on[id] = first
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cl, err := transport.Dial(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("dial connector %s: %v", id, err)
		}
		t.Cleanup(func() { cl.Close() })
		t.Logf("connector %s on %s, silence limit %v", id, first.id, cfg.DeadAfter)
		for k := range faultInFlight {
			w.loop(faultPause, func(n int) writeOutcome {
				cust := fmt.Sprintf("%s-%d-%d", id, k, n)
				o := writeOutcome{conn: id, customer: cust, sent: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), faultCallWait)
				defer cancel()
				var r api.CustomerMessageResult
				o.err = cl.Call(ctx, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: cust, Text: "hello " + cust}, &r)
				o.answered, o.request = time.Now(), r.Request
				return o
			})
		}
	}
	return w
}

// slowest returns the longest a write took to be answered among those of
// the connectors that first connected to a node of among (in) or to
// another node (!in), and the connector that sent it.
func (w *faultWriters) slowest(outcomes []writeOutcome, among []*procNode, in bool) (time.Duration, string) {
	var (
		worst time.Duration
		conn  string
	)
	for _, o := range outcomes {
		if slices.Contains(among, w.on[o.conn]) != in {
			continue
		}
		if d := o.answered.Sub(o.sent); d > worst {
			worst, conn = d, o.conn
		}
	}
	return worst, conn
}

// acked counts the writes acknowledged so far that were sent after t0.
func (w *faultWriters) acked(t0 time.Time) int {
	n := 0
	for _, o := range w.snapshot() {
		if o.err == nil && o.sent.After(t0) {
			n++
		}
	}
	return n
}

// waitNewLeader waits until every node of among names the same leader,
// other than old, and returns it.
func waitNewLeader(t *testing.T, among []*procNode, old *procNode) string {
	t.Helper()
	var leader string
	waitUntil(t, "a new leader among "+nodeIDs(among), func() bool {
		var ids []string
		for _, n := range among {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := n.status(ctx)
			cancel()
			if err != nil || st.Leader == "" || st.Leader == old.id {
				return false
			}
			ids = append(ids, st.Leader)
		}
		for _, id := range ids {
			if id != ids[0] {
				return false
			}
		}
		leader = ids[0]
		return true
	})
	return leader
}

func nodeIDs(ns []*procNode) string {
	s := ""
	for i, n := range ns {
		if i > 0 {
			s += ", "
		}
		s += n.id
	}
	return s
}

// checkOutcomes checks that every write ended acknowledged or refused
// with an answer that says it was not applied, and logs how long writes
// waited: fault names the event at t0 ("the SIGSTOP"). It returns how
// many were acknowledged.
func checkOutcomes(t *testing.T, outcomes []writeOutcome, t0 time.Time, fault string) (acked int) {
	t.Helper()
	var (
		refused    int
		latest     time.Duration
		slowest    writeOutcome
		unknowable []string
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
			unknowable = append(unknowable, fmt.Sprintf("%s (%s, sent %v after %s, answered after %v): %v",
				o.customer, o.conn, o.sent.Sub(t0).Round(time.Millisecond), fault, o.answered.Sub(o.sent).Round(time.Millisecond), o.err))
		}
	}
	t.Logf("%d writes: %d acknowledged, %d refused as not applied, %d unknowable; slowest answered after %v (%s, sent %v after %s)",
		len(outcomes), acked, refused, len(unknowable), latest.Round(time.Millisecond), slowest.conn, slowest.sent.Sub(t0).Round(time.Millisecond), fault)
	// How far each connector's other writes went while its slowest one
	// waited: the client keeps that below the window.
	for i := range faultConnectors {
		id := fmt.Sprintf("fw%d", i+1)
		var slow writeOutcome
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
		t.Logf("%s: slowest write answered after %v (sent %v after %s); %d other writes sent meanwhile",
			id, slow.answered.Sub(slow.sent).Round(time.Millisecond), slow.sent.Sub(t0).Round(time.Millisecond), fault, others)
	}
	for _, u := range unknowable[:min(len(unknowable), 10)] {
		t.Errorf("write with no knowable outcome: %s", u)
	}
	return acked
}

// checkStateHolds checks the state against the outcomes: every
// acknowledged write is there exactly once, nothing of a refused one, and
// every running node holds the same. It returns the state's L1.
func checkStateHolds(t *testing.T, c *procCluster, admin *transport.Client, outcomes []writeOutcome, acked int) map[string]api.RequestSummary {
	t.Helper()
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
	return l1
}
