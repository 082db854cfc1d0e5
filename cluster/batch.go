package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// Group commit defaults (see BatchConfig).
const (
	DefaultBatchMaxCommands = 256
	DefaultBatchMaxInFlight = 1
)

// BatchConfig configures application-level group commit on the leader:
// commands submitted concurrently are proposed together as one Raft log
// entry (one fsync, one replication round, one FSM Apply call), and each
// caller gets its own command's result and the entry's index.
//
// The batcher proposes as soon as it may: a command that arrives while
// fewer than MaxInFlight entries are being committed is proposed at once
// (alone, if nothing else is waiting), so a lone client pays no added
// latency. Commands that arrive while MaxInFlight entries are in flight
// wait and go out together in the next entry, up to MaxCommands of them.
type BatchConfig struct {
	// Disabled proposes every command as its own log entry (the behaviour
	// before group commit; kept for comparison).
	Disabled bool
	// MaxCommands bounds the commands of one entry (default 256).
	MaxCommands int
	// MaxInFlight is how many entries may be committing at once (default
	// 1: while one commits, the next batch fills). More lets the next
	// entry be written while one is applied and answered, at the price of
	// smaller entries; on a 3-node cluster on two loaded cores 1 gave the
	// largest entries and the most commands/s at 16 and 256 connectors
	// (docs/PERFORMANCE.md).
	MaxInFlight int
	// Linger, if positive, is how long a batch that is not full waits for
	// more commands before it is proposed. Zero (the default) waits only
	// for a free in-flight slot.
	Linger time.Duration
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.MaxCommands <= 0 {
		c.MaxCommands = DefaultBatchMaxCommands
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultBatchMaxInFlight
	}
	if c.Linger < 0 {
		c.Linger = 0
	}
	return c
}

// Batcher groups concurrently submitted commands into shared Node.Propose
// calls. It has no goroutine of its own: the caller that finds a free
// in-flight slot starts one committer, which keeps taking batches from the
// queue until it is empty. Its methods are safe for concurrent use.
type Batcher struct {
	node *Node
	cfg  BatchConfig

	mu       sync.Mutex
	queue    []*batchItem
	inflight int // committers running

	entries, commands atomic.Uint64 // proposed through the batcher
}

// BatchStats counts what a batcher has proposed: Commands in Entries log
// entries (commands dropped before proposing not included).
type BatchStats struct {
	Entries  uint64
	Commands uint64
}

// Stats returns the batcher's counters.
func (b *Batcher) Stats() BatchStats {
	return BatchStats{Entries: b.entries.Load(), Commands: b.commands.Load()}
}

// batchItem is one submitted command waiting for its outcome.
type batchItem struct {
	ctx  context.Context
	cmd  *fsm.Command
	done chan batchOutcome // capacity 1: the committer never blocks
}

type batchOutcome struct {
	resp *ApplyResponse
	err  error
}

// NewBatcher returns a batcher proposing through node.
func NewBatcher(node *Node, cfg BatchConfig) *Batcher {
	return &Batcher{node: node, cfg: cfg.withDefaults()}
}

// Config returns the batcher's configuration, defaults applied.
func (b *Batcher) Config() BatchConfig { return b.cfg }

// Propose commits cmd, grouped with whatever other commands are waiting,
// and returns a response holding cmd's result alone (Results has one
// element) and the index of the entry that carried it. Errors are those of
// Node.Propose, shared by every command of the entry. If ctx ends first
// the outcome is unknown (CodeTimeout), unless cmd had not been proposed
// yet, in which case it never will be.
func (b *Batcher) Propose(ctx context.Context, cmd *fsm.Command) (*ApplyResponse, error) {
	if b.cfg.Disabled {
		b.entries.Add(1)
		b.commands.Add(1)
		return b.node.Propose(ctx, cmd)
	}
	if cmd == nil {
		return nil, failure("propose", api.CodeBadRequest, "nil command", nil)
	}
	if err := ctx.Err(); err != nil {
		return nil, failure("propose", api.CodeTimeout, "context done before proposing; not applied", err)
	}
	it := &batchItem{ctx: ctx, cmd: cmd, done: make(chan batchOutcome, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, it)
	start := b.inflight < b.cfg.MaxInFlight
	if start {
		b.inflight++
	}
	b.mu.Unlock()
	if start {
		go b.commitLoop()
	}
	select {
	case out := <-it.done:
		return out.resp, out.err
	case <-ctx.Done():
		return nil, failure("propose", api.CodeTimeout, "gave up waiting for commit; outcome unknown", ctx.Err())
	}
}

// commitLoop proposes batches from the queue until it is empty, then gives
// its in-flight slot back.
func (b *Batcher) commitLoop() {
	for {
		if b.cfg.Linger > 0 {
			b.linger()
		}
		b.mu.Lock()
		n := min(len(b.queue), b.cfg.MaxCommands)
		if n == 0 {
			b.inflight--
			b.mu.Unlock()
			return
		}
		batch := make([]*batchItem, n)
		copy(batch, b.queue)
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
		b.mu.Unlock()
		b.commit(batch)
	}
}

// linger waits up to Linger for the queue to fill a whole batch. An empty
// queue ends it at once, so that the committer gives its slot back.
func (b *Batcher) linger() {
	deadline := time.Now().Add(b.cfg.Linger)
	for {
		b.mu.Lock()
		n := len(b.queue)
		b.mu.Unlock()
		if n == 0 || n >= b.cfg.MaxCommands || !time.Now().Before(deadline) {
			return
		}
		time.Sleep(min(time.Until(deadline), 100*time.Microsecond))
	}
}

// commit proposes the batch as one entry and hands each caller its result.
func (b *Batcher) commit(batch []*batchItem) {
	// A caller that gave up before its command was proposed is told so,
	// and its command is left out: it will never apply.
	live := batch[:0]
	var (
		latest  time.Time
		noLimit bool
	)
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.done <- batchOutcome{err: failure("propose", api.CodeTimeout, "context done before proposing; not applied", err)}
			continue
		}
		live = append(live, it)
		if d, ok := it.ctx.Deadline(); !ok {
			noLimit = true
		} else if d.After(latest) {
			latest = d
		}
	}
	if len(live) == 0 {
		return
	}
	// The entry is committed for all its callers, so no single caller's
	// context may abandon it: it is bounded by the latest deadline among
	// them (or Config.ApplyTimeout if one has none).
	ctx := context.Background()
	if !noLimit {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, latest)
		defer cancel()
	}
	cmds := make([]*fsm.Command, len(live))
	for i, it := range live {
		cmds[i] = it.cmd
	}
	b.entries.Add(1)
	b.commands.Add(uint64(len(cmds)))
	resp, err := b.node.Propose(ctx, cmds...)
	if err != nil {
		for _, it := range live {
			it.done <- batchOutcome{err: err}
		}
		return
	}
	// One allocation for every caller's response.
	resps := make([]ApplyResponse, len(live))
	for i, it := range live {
		resps[i] = ApplyResponse{Index: resp.Index, Results: resp.Results[i : i+1 : i+1]}
		it.done <- batchOutcome{resp: &resps[i]}
	}
}

// SetBatch replaces the service's group-commit configuration (see
// BatchConfig; ServiceConfig.Batch sets the first one). Commands already
// submitted finish under the configuration they were submitted under.
func (s *Service) SetBatch(cfg BatchConfig) { s.batch.Store(NewBatcher(s.node, cfg)) }

// Batching returns the service's group-commit configuration.
func (s *Service) Batching() BatchConfig { return s.batch.Load().Config() }

// BatchStats returns the counters of the service's current batcher.
func (s *Service) BatchStats() BatchStats { return s.batch.Load().Stats() }

// propose commits one command on this node through the service's batcher.
func (s *Service) propose(ctx context.Context, cmd *fsm.Command) (*ApplyResponse, error) {
	return s.batch.Load().Propose(ctx, cmd)
}
