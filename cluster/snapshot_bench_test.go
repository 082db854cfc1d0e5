package cluster_test

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/cluster"
	. "github.com/switchboard/switchboard/fsm"
)

// BenchmarkSnapshot measures a Raft snapshot of a large state built through
// FSM.Apply (group-committed entries of 256 commands, as a node applies
// them): Snapshot (what runs on Raft's FSM goroutine, under the FSM lock),
// Persist into memory, and Restore. The state has SNAPSHOT_BENCH_N open
// requests (default 200,000; 20,000 with -short), each with a one-message
// transcript, spread over 10 lists with 20 subscribed agents each; 1 in 50
// requests has an agent in it; connectors use idempotency keys, so client
// sessions hold full windows of results. For the 1M figure:
//
//	SNAPSHOT_BENCH_N=1000000 go test -run '^$' -bench BenchmarkSnapshot -benchtime 1x ./cluster/
func BenchmarkSnapshot(b *testing.B) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	if v := os.Getenv("SNAPSHOT_BENCH_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("SNAPSHOT_BENCH_N: %v", err)
		}
	}
	f := bigFSM(b, n)
	var size int
	b.Run("snapshot+persist", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			snap, err := f.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			sink := &memSink{}
			if err := snap.Persist(sink); err != nil {
				b.Fatal(err)
			}
			snap.Release()
			size = sink.Len()
		}
		b.SetBytes(int64(size))
	})
	b.Run("snapshot", func(b *testing.B) {
		// Only the part that holds the FSM lock and Raft's FSM goroutine.
		b.ReportAllocs()
		for b.Loop() {
			snap, err := f.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			snap.Release()
		}
	})
	snap, err := f.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		b.Fatal(err)
	}
	data := sink.Bytes()
	b.Run("restore", func(b *testing.B) {
		// heapB/req is the live heap the restored state holds (after a
		// GC, the source FSM and the snapshot's bytes excluded) per
		// request: what the node keeps from a restore. cpu-s/op is the
		// process's CPU time (user and system, every thread: the
		// garbage collector's too) during the restore: on a shared
		// machine it varies less than the time.
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var before, after runtime.MemStats
		var heap int64
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.StartTimer()
			c0 := cpuTime(b)
			g := NewFSM(nil, nil)
			if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
				b.Fatal(err)
			}
			cpu += cpuTime(b) - c0
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap = int64(after.HeapAlloc) - int64(before.HeapAlloc)
			runtime.KeepAlive(g)
			b.StartTimer()
		}
		b.ReportMetric(float64(heap)/float64(n), "heapB/req")
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	})
}

// cpuTime is the CPU time the process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bigFSM applies, through FSM.Apply, the setup of 10 lists (one pull
// channel each, one connector for all), 200 agents (20 per list), then n
// customer messages from distinct customers, round robin over the
// channels, with an agent joining every 50th request.
func bigFSM(tb testing.TB, n int) *FSM {
	tb.Helper()
	f := NewFSM(nil, nil)
	var index uint64
	now := t0
	var batch []*Command
	flush := func() {
		if len(batch) == 0 {
			return
		}
		data, err := EncodeEntry(batch...)
		if err != nil {
			tb.Fatal(err)
		}
		index++
		resp := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(*ApplyResponse)
		for i, r := range resp.Results {
			if r.Err != nil {
				tb.Fatalf("entry %d command %d (op %d): %v", index, i, batch[i].Op, r.Err)
			}
		}
		batch = batch[:0]
	}
	add := func(c *Command) {
		now++
		c.Time = now
		batch = append(batch, c)
		if len(batch) == 256 {
			flush()
		}
	}
	const lists, perList = 10, 20
	tok := []byte("0123456789abcdef0123456789abcdef")
	add(cmd(OpCreateMRD, admin, &api.CreateMRDArgs{ID: "chat", Name: "Chat"}))
	add(cmd(OpCreateChannelType, admin, &api.CreateChannelTypeArgs{ID: "web", MRD: "chat"}))
	chans := make([]string, lists)
	for l := range lists {
		ls := "L" + strconv.Itoa(l)
		chans[l] = "C" + strconv.Itoa(l)
		add(cmd(OpCreateList, admin, &api.CreateListArgs{ID: ls, Name: "List " + ls}))
		add(cmd(OpCreateChannel, admin, &api.CreateChannelArgs{ID: chans[l], Type: "web", Mode: api.ModePull, List: ls}))
	}
	add(cmd(OpCreateConnector, admin, &api.CreateConnectorArgs{ID: "web", Name: "Web", Channels: chans, TokenHash: tok}))
	for l := range lists {
		for a := range perList {
			id := "A" + strconv.Itoa(l*perList+a)
			add(cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: id, Name: "Agent " + id, Max: map[string]int{"chat": 1 << 20}, TokenHash: tok}))
			add(cmd(OpSubscribe, admin, &api.SubscribeArgs{Agent: id, List: "L" + strconv.Itoa(l)}))
		}
	}
	flush()
	conn := api.Principal{Role: api.RoleConnector, ID: "web"}
	var seq uint64
	for i := range n {
		l := i % lists
		seq++
		add(keyed("web-"+strconv.Itoa(l), seq, cmd(OpCustomerMessage, conn, &api.CustomerMessageArgs{
			Channel: chans[l], CustomerID: "cust-" + strconv.Itoa(i), CustomerName: "Customer " + strconv.Itoa(i),
			Text: "Hello, I need help with my order number " + strconv.Itoa(i)})))
		if i%50 == 49 {
			flush() // the request id is assigned on apply
			var id string
			f.Read(func(s *State, _ uint64) { id = "R" + strconv.FormatUint(s.NextRequest, 10) })
			ag := "A" + strconv.Itoa(l*perList+(i/50)%perList)
			add(cmd(OpJoin, api.Principal{Role: api.RoleAgent, ID: ag}, &api.RequestArgs{Request: id}))
		}
	}
	flush()
	return f
}

// Snapshot and Persist run while entries are applied (as Raft does:
// Persist on its own goroutine, Apply going on): under -race this shows
// Persist touches nothing Apply changes; every snapshot restores to a state
// that encodes to the snapshot's bytes, at an index that was applied.
func TestSnapshotConcurrentWithApply(t *testing.T) {
	f := bigFSM(t, 300)
	var start uint64
	f.Read(func(_ *State, applied uint64) { start = applied })
	const entries = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range uint64(entries) {
			c := &Command{Op: OpCustomerMessage, By: api.Principal{Role: api.RoleConnector, ID: "web"}, Time: t0 + 1e12 + int64(i),
				Args: &api.CustomerMessageArgs{Channel: "C1", CustomerID: "cust-1", Text: "more"}}
			data, err := EncodeEntry(c)
			if err != nil {
				t.Error(err)
				return
			}
			if r := f.Apply(&raft.Log{Index: start + 1 + i, Type: raft.LogCommand, Data: data}).(*ApplyResponse); r.Results[0].Err != nil {
				t.Error(r.Results[0].Err)
				return
			}
		}
	}()
	var snaps []*memSink
	var wg sync.WaitGroup
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		snap, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		sink := &memSink{}
		snaps = append(snaps, sink)
		wg.Add(1)
		go func() { // Persist runs while the loop above takes more snapshots
			defer wg.Done()
			if err := snap.Persist(sink); err != nil {
				t.Error(err)
			}
			snap.Release()
		}()
	}
	wg.Wait()
	for i, sink := range snaps {
		if !sink.closed {
			t.Fatalf("snapshot %d: sink not closed", i)
		}
		g := NewFSM(nil, nil)
		if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		var again []byte
		var at uint64
		g.Read(func(s *State, applied uint64) { again, at = marshal(t, s), applied })
		if !bytes.Equal(again, sink.Bytes()) || at < start || at > start+entries {
			t.Fatalf("snapshot %d (index %d): does not restore to itself", i, at)
		}
	}
	if len(snaps) < 2 {
		t.Logf("only %d snapshots taken during the applies", len(snaps))
	}
}
