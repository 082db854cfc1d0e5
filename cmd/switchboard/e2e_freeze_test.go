package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"
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
// The 5 s freeze takes 9-15 s in all under -race on two cores, the 15 s
// one (longer than the Go client's default silence limit, 6 s, and than
// the 10 s a node waits on a forwarded write) 18-22 s: both run in the
// default suite, and -short skips the 15 s one unless SWITCHBOARD_SOAK=1.
//
// The partition variant, the leader cut off from the others while it
// keeps running and serving its clients, is e2e_partition_test.go: the
// nodes listen on loopback addresses of their own behind proxies of the
// test process, which cut the leader's node-to-node traffic by source
// address. The writers and the checks are shared (e2e_fault_test.go).

func TestClusterFreezeLeader5sE2E(t *testing.T) {
	freezeScenario(t, 5*time.Second)
}

func TestClusterFreezeLeader15sE2E(t *testing.T) {
	if testing.Short() && !soak() {
		t.Skip("a 15 s freeze of the leader: runs without -short, or with SWITCHBOARD_SOAK=1")
	}
	freezeScenario(t, 15*time.Second)
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
	w := startFaultWriters(t, c, leader, createFaultConnectors(t, admin))
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
	newLeader := waitNewLeader(t, c.others(leader), leader)
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

	// Every write's outcome is knowable; the state holds every
	// acknowledged write exactly once, and nothing of a refused one.
	acked := checkOutcomes(t, outcomes, frozeAt, "the SIGSTOP")
	checkStateHolds(t, c, admin, outcomes, acked)
}
