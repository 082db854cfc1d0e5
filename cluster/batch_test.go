package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// holdBatcher occupies every in-flight slot of b, so that commands queue
// up; release starts the committer that drains them.
func holdBatcher(b *Batcher) (release func()) {
	b.mu.Lock()
	b.inflight = b.cfg.MaxInFlight
	b.mu.Unlock()
	// The committer inherits the slot held here, as if it had found it
	// free.
	return func() { go b.commitLoop() }
}

func queued(b *Batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

type batchAnswer struct {
	resp *ApplyResponse
	err  error
}

// proposeAll proposes every command through b from its own goroutine, the
// i'th only once the i-1 before it are queued (so queue order is known),
// and returns the answers in command order once release has run.
func proposeAll(t *testing.T, b *Batcher, release func(), cmds []*fsm.Command) []batchAnswer {
	t.Helper()
	out := make([]batchAnswer, len(cmds))
	var wg sync.WaitGroup
	for i, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), applyWait)
			defer cancel()
			out[i].resp, out[i].err = b.Propose(ctx, c)
		}()
		waitFor(t, applyWait, func() bool { return queued(b) == i+1 })
	}
	release()
	wg.Wait()
	return out
}

func TestBatcherGroupsQueuedCommandsIntoEntries(t *testing.T) {
	n := openLeader(t, testConfig(t, t.TempDir()), NewFSM(nil, nil))
	b := NewBatcher(n, BatchConfig{MaxCommands: 4, MaxInFlight: 1})
	var cmds []*fsm.Command
	for i := range 10 {
		cmds = append(cmds, createMRD(fmt.Sprintf("m%d", i)))
	}
	answers := proposeAll(t, b, holdBatcher(b), cmds)

	entries := map[uint64][]int{}
	for i, a := range answers {
		if a.err != nil {
			t.Fatalf("command %d: %v", i, a.err)
		}
		if len(a.resp.Results) != 1 {
			t.Fatalf("command %d: %d results, want its own one", i, len(a.resp.Results))
		}
		if r := a.resp.Results[0]; r.Err != nil || r.Data != (api.Created{ID: fmt.Sprintf("m%d", i)}) {
			t.Fatalf("command %d: result %+v, want its own Created", i, r)
		}
		entries[a.resp.Index] = append(entries[a.resp.Index], i)
	}
	// 10 queued commands, at most 4 an entry, in queue order: 4+4+2.
	if len(entries) != 3 {
		t.Fatalf("10 commands went into %d entries (%v), want 3 of at most 4", len(entries), entries)
	}
	for idx, members := range entries {
		if len(members) > 4 {
			t.Errorf("entry %d carries %d commands, limit 4", idx, len(members))
		}
	}
}

func TestBatcherKeepsPerCommandResultsAndIdempotency(t *testing.T) {
	f := NewFSM(nil, nil)
	n := openLeader(t, testConfig(t, t.TempDir()), f)
	b := NewBatcher(n, BatchConfig{MaxInFlight: 1})

	withSeq := func(c *fsm.Command, client string, seq uint64) *fsm.Command {
		c.ClientID, c.Seq = client, seq
		return c
	}
	cmds := []*fsm.Command{
		createMRD("a"),
		createMRD("a"), // fails alone: already exists
		withSeq(createMRD("b"), "c1", 7),
		withSeq(createMRD("b"), "c1", 7), // a retry in the same entry
		admin(fsm.OpCreateChannelType, &api.CreateChannelTypeArgs{ID: "t", MRD: "nope"}),
		createMRD("c"),
	}
	answers := proposeAll(t, b, holdBatcher(b), cmds)
	index := answers[0].resp.Index
	for i, a := range answers {
		if a.err != nil {
			t.Fatalf("command %d: %v", i, a.err)
		}
		if a.resp.Index != index {
			t.Fatalf("command %d committed at %d, command 0 at %d: want one entry", i, a.resp.Index, index)
		}
	}
	code := func(i int) api.Code {
		if e := answers[i].resp.Results[0].Err; e != nil {
			return e.Code
		}
		return api.CodeOK
	}
	if code(0) != api.CodeOK || code(1) != api.CodeAlreadyExists || code(4) != api.CodeNotFound || code(5) != api.CodeOK {
		t.Fatalf("codes %v %v %v %v, want ok already_exists not_found ok", code(0), code(1), code(4), code(5))
	}
	// The retry is answered from the idempotency record: the same success,
	// not already_exists.
	for _, i := range []int{2, 3} {
		if r := answers[i].resp.Results[0]; r.Err != nil || r.Data != (api.Created{ID: "b"}) {
			t.Fatalf("command %d (client c1 seq 7): %+v, want Created b", i, r)
		}
	}
	f.Read(func(s *fsm.State, _ uint64) {
		if len(s.MRDs) != 3 {
			t.Errorf("state has %d MRDs, want a, b, c", len(s.MRDs))
		}
	})
}

func TestBatcherDropsCommandsWhoseCallerGaveUp(t *testing.T) {
	f := NewFSM(nil, nil)
	n := openLeader(t, testConfig(t, t.TempDir()), f)
	b := NewBatcher(n, BatchConfig{MaxInFlight: 1})
	release := holdBatcher(b)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Propose(ctx, createMRD("gone"))
		errc <- err
	}()
	waitFor(t, applyWait, func() bool { return queued(b) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled caller got %v, want CodeTimeout", err)
	}
	// The abandoned command stays queued until the committer drops it.
	keptErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), applyWait)
		defer cancel()
		_, err := b.Propose(ctx, createMRD("kept"))
		keptErr <- err
	}()
	waitFor(t, applyWait, func() bool { return queued(b) == 2 })
	release()
	if err := <-keptErr; err != nil {
		t.Fatal(err)
	}
	f.Read(func(s *fsm.State, _ uint64) {
		if s.MRDs["gone"] != nil || s.MRDs["kept"] == nil {
			t.Errorf("MRDs %v: want kept and not gone (its caller gave up before it was proposed)", s.MRDs)
		}
	})
}

func TestBatcherConcurrentCommittersKeepResults(t *testing.T) {
	f := NewFSM(nil, nil)
	n := openLeader(t, testConfig(t, t.TempDir()), f)
	b := NewBatcher(n, BatchConfig{MaxInFlight: 3, MaxCommands: 8})
	const cmds = 200
	var wg sync.WaitGroup
	entries := make([]uint64, cmds)
	for i := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), applyWait)
			defer cancel()
			resp, err := b.Propose(ctx, createMRD(fmt.Sprintf("m%d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			if r := resp.Results[0]; r.Err != nil || r.Data != (api.Created{ID: fmt.Sprintf("m%d", i)}) {
				t.Errorf("command %d got %+v", i, r)
			}
			entries[i] = resp.Index
		}()
	}
	wg.Wait()
	per := map[uint64]int{}
	for _, e := range entries {
		per[e]++
	}
	for e, k := range per {
		if k > 8 {
			t.Errorf("entry %d carries %d commands, limit 8", e, k)
		}
	}
	if st := b.Stats(); st.Commands != cmds || st.Entries != uint64(len(per)) {
		t.Errorf("stats %+v, want %d commands in %d entries", st, cmds, len(per))
	}
	f.Read(func(s *fsm.State, _ uint64) {
		if len(s.MRDs) != cmds {
			t.Errorf("%d MRDs, want %d", len(s.MRDs), cmds)
		}
	})
}

func TestBatcherLingerFillsAnEntry(t *testing.T) {
	n := openLeader(t, testConfig(t, t.TempDir()), NewFSM(nil, nil))
	// A long linger that a full batch cuts short: the first command waits
	// for the other two, and all three share one entry.
	b := NewBatcher(n, BatchConfig{MaxInFlight: 1, MaxCommands: 3, Linger: time.Minute})
	var wg sync.WaitGroup
	idx := make([]uint64, 3)
	start := time.Now()
	for i := range idx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), applyWait)
			defer cancel()
			resp, err := b.Propose(ctx, createMRD(fmt.Sprintf("m%d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			idx[i] = resp.Index
		}()
	}
	wg.Wait()
	if idx[0] != idx[1] || idx[1] != idx[2] {
		t.Fatalf("indexes %v: want one entry", idx)
	}
	if d := time.Since(start); d > applyWait {
		t.Fatalf("took %v: a full batch must end the linger", d)
	}
	// The committer gave its slot back at once (an empty queue ends the
	// linger): the next command is proposed by a new one.
	waitFor(t, applyWait, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.inflight == 0
	})
}

func TestBatcherDisabledProposesEachCommandAlone(t *testing.T) {
	n := openLeader(t, testConfig(t, t.TempDir()), NewFSM(nil, nil))
	b := NewBatcher(n, BatchConfig{Disabled: true})
	var wg sync.WaitGroup
	indexes := make([]uint64, 20)
	for i := range indexes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), applyWait)
			defer cancel()
			resp, err := b.Propose(ctx, createMRD(fmt.Sprintf("m%d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			indexes[i] = resp.Index
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, idx := range indexes {
		if seen[idx] {
			t.Fatalf("two commands share entry %d with batching disabled", idx)
		}
		seen[idx] = true
	}
}

func TestBatcherSharesCommitErrors(t *testing.T) {
	n := openLeader(t, testConfig(t, t.TempDir()), NewFSM(nil, nil))
	b := NewBatcher(n, BatchConfig{MaxInFlight: 1})
	release := holdBatcher(b)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), applyWait)
			defer cancel()
			_, errs[i] = b.Propose(ctx, createMRD(fmt.Sprintf("m%d", i)))
		}()
	}
	waitFor(t, applyWait, func() bool { return queued(b) == 3 })
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("command %d on a closed node: %v, want CodeUnavailable", i, err)
		}
	}
}

func TestServiceSubmitUsesGroupCommit(t *testing.T) {
	n := openLeader(t, testConfig(t, t.TempDir()), NewFSM(nil, nil))
	s := NewService(n, ServiceConfig{ClusterToken: "x"})
	if s.Batching().Disabled {
		t.Fatal("group commit is off by default")
	}
	s.SetBatch(BatchConfig{MaxInFlight: 1})
	b := s.batch.Load()
	release := holdBatcher(b)
	var wg sync.WaitGroup
	idx := make([]uint64, 5)
	for i := range idx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), applyWait)
			defer cancel()
			res, index, err := s.Commit(ctx, createMRD(fmt.Sprintf("m%d", i)))
			if err != nil || res.Err != nil {
				t.Errorf("submit %d: %v %v", i, err, res.Err)
			}
			idx[i] = index
		}()
	}
	waitFor(t, applyWait, func() bool { return queued(b) == 5 })
	release()
	wg.Wait()
	for i := range idx {
		if idx[i] != idx[0] {
			t.Fatalf("indexes %v: want the 5 queued commands in one entry", idx)
		}
	}
}

// BenchmarkSubmit commits no-op commands with a ~200-byte payload through
// Service.Commit, one command per entry (batch=off) or grouped (batch=on),
// on a real single-node Raft with fsync: from 64 concurrent callers (ns/op
// is wall time per command across them), and from one caller (ns/op is the
// commit latency, which group commit must not raise).
func BenchmarkSubmit(b *testing.B) {
	for _, callers := range []int{1, 64} {
		for _, on := range []bool{false, true} {
			name := fmt.Sprintf("callers=%d/batch=%s", callers, map[bool]string{false: "off", true: "on"}[on])
			b.Run(name, func(b *testing.B) {
				cfg := testConfig(b, b.TempDir())
				cfg.Logger = nil
				n := openLeader(b, cfg, NewFSM(nil, nil))
				s := NewService(n, ServiceConfig{ClusterToken: "x", Batch: BatchConfig{Disabled: !on}})
				pad := make([]byte, 200)
				submit := func() bool {
					cmd := &fsm.Command{Op: fsm.OpNoop, By: api.Principal{Role: api.RoleAdmin, ID: "admin"}, Args: &api.NoopArgs{Pad: pad}}
					if _, _, err := s.Commit(context.Background(), cmd); err != nil {
						b.Error(err)
						return false
					}
					return true
				}
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				if callers == 1 {
					for b.Loop() {
						if !submit() {
							return
						}
					}
				} else {
					b.SetParallelism(callers / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if !submit() {
								return
							}
						}
					})
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cmds/s")
			})
		}
	}
}
