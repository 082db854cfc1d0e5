package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// Outbox is a session's bounded outbound buffer of encoded frames. It has
// the method of transport.Outbox, so a transport session satisfies both
// without this package importing transport.
type Outbox interface {
	// Deliver queues one complete encoded frame without blocking. It
	// returns false when the buffer is full: the session is then cut off
	// and is never delivered to again.
	Deliver(frame []byte) bool
}

// BatchOutbox is an Outbox that also takes several frames at once, so
// that frames delivered together can leave in one write. The hub uses
// DeliverBatch when the session's outbox has it.
type BatchOutbox interface {
	Outbox
	// DeliverBatch queues frames, in order, without blocking; like
	// Deliver it returns false (and the session is cut off) when they do
	// not fit. It must not keep frames (the slice) after it returns.
	DeliverBatch(frames [][]byte) bool
}

// CaughtUpOutbox is an Outbox that is told when its stream has caught up
// after Attach. The transport session implements it (the hello's
// opt-in caught_up frame), and the node's metrics count resumes and
// syncs through it.
type CaughtUpOutbox interface {
	Outbox
	// CaughtUp is called once per Attach, from the stream's actor, right
	// after the frames that brought the session up to date were handed to
	// the outbox and before any later event: mode is api.CaughtUpReplay
	// (events after the cursor were replayed), api.CaughtUpNone (there was
	// nothing to replay) or api.CaughtUpSync (a sync, then the events
	// after it); seq is the seq of the last frame delivered (the cursor
	// itself when nothing was). It is not called for a session dropped
	// before it caught up, nor for the syncs that follow a snapshot
	// install (Reset). It must not block.
	CaughtUp(mode string, seq uint64)
}

// Defaults for Config's zero fields.
const (
	DefaultHistorySize  = 65536
	DefaultQueryTimeout = 2 * time.Second
	DefaultPublishQueue = 4096
	DefaultInlineGap    = 20 * time.Millisecond
)

// Errors returned by the hub's queries.
var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("actors: hub closed")
	// ErrNoView means this node holds no live view of the list or
	// conversation asked about: it has seen no event for it (or the
	// conversation closed).
	ErrNoView = errors.New("actors: no live view on this node")
	// ErrTimeout means the actor did not answer within QueryTimeout.
	ErrTimeout = errors.New("actors: actor did not answer in time")
)

// Config configures a Hub.
type Config struct {
	// HistorySize is how many recent events are kept for resume
	// (DefaultHistorySize if zero).
	HistorySize int
	// Encode encodes one event as one complete wire frame
	// (transport.EncodeEvent). Required.
	Encode func(fsm.Event) ([]byte, error)
	// View returns the stream view for a recipient key and the log index X
	// that view reflects (fsm.State.Index, read under the FSM's read lock);
	// ok is false if the key names nobody. Required. It is called from
	// actor goroutines, never under the hub's lock.
	View func(key string) (view api.StreamView, index uint64, ok bool)
	// Logger receives the hub's logs (discarded if nil).
	Logger *slog.Logger
	// QueryTimeout bounds ListView and Conversation (DefaultQueryTimeout
	// if zero).
	QueryTimeout time.Duration
	// PublishQueue bounds how many log entries (and resets) Publish and
	// Reset queue for the hub's fan-out goroutine (DefaultPublishQueue if
	// zero). When the fan-out falls that far behind, Publish waits for
	// room: the apply goroutine slows down rather than memory growing
	// without bound.
	PublishQueue int
	// InlineGap: when entries come on average at least this far apart
	// and the fan-out has nothing queued, Publish fans out on the
	// caller's goroutine (DefaultInlineGap if zero; negative:
	// never). A quiet node then gets notifications out before the
	// command's answer, as the apply goroutine has time to spare; under
	// load the fan-out runs on its own goroutine, and merges entries.
	InlineGap time.Duration

	// The commands this node issues itself (timers.go, grace.go). With
	// Submit and PendingOffers set, the hub runs the offer timers while
	// SetLeader says this node leads; with Submit set, it logs out agents
	// whose last session here stayed closed for LogoutGrace.

	// Submit commits a command of this node (RoleSystem) through the
	// node's write path: proposed on the leader, forwarded by a follower
	// (cluster.Service.Commit). A business failure is in Result.Err. It is
	// called from its own goroutine with a bounded context.
	Submit func(ctx context.Context, cmd *fsm.Command) (fsm.Result, error)
	// IsLeader reports whether this node leads right now; an offer timer
	// that fires proposes only if it does (nil: trust SetLeader alone).
	IsLeader func() bool
	// PendingOffers returns every pending offer (fsm.State.PendingOffers)
	// and the log index the state reflects, read under the FSM's read
	// lock. Called from the timer actor on gaining leadership and after a
	// Reset.
	PendingOffers func() (offers []api.OfferInfo, index uint64)
	// Deadlines returns the pending deadlines (fsm.State.Deadlines) of
	// request, or of every request when request is "", and the log index
	// the state reflects, read under the FSM's read lock. With Submit and
	// Deadlines set, the hub runs the deadline timers (deadlines.go)
	// while SetLeader says this node leads.
	Deadlines func(request string) (ds []fsm.Deadline, index uint64)
	// DeadlineRescan is how often the leader re-reads every deadline
	// (DefaultDeadlineRescan if zero; negative: never).
	DeadlineRescan time.Duration
	// DeadlinesConfigured reports whether any list or queue sets a
	// deadline (fsm.State.DeadlinesConfigured): the periodic re-read,
	// which walks every request under the FSM's read lock, is skipped
	// while none does (nil: never skipped).
	DeadlinesConfigured func() bool
	// AgentPresence reads the agent's login and presence in local state
	// (fsm.State.PresenceOf; nil: assume it is logged in, and presence is
	// not replicated). With presence replicated, the first session of a
	// logged-in agent to attach here is announced (agent_present) and the
	// grace's logout carries the presence read before asking the other
	// nodes (grace.go).
	AgentPresence func(agent string) fsm.Presence
	// ConnectedElsewhere reports whether the agent has a session on
	// another node; if so the grace does not log it out (nil: never).
	ConnectedElsewhere func(ctx context.Context, agent string) bool
	// LogoutGrace is how long an agent whose last session on this node
	// closed may take to reconnect before this node proposes its logout
	// (DefaultLogoutGrace if zero; negative turns it off).
	LogoutGrace time.Duration
	// NodeID names this node in the commands it issues (principal
	// "node:<NodeID>", role system).
	NodeID string
}

// Hub fans the FSM's events out to this node's sessions and keeps the
// per-node history used for resume. It implements cluster.Sink. Its methods
// are safe for concurrent use.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	engine *actor.Engine

	mu     sync.Mutex
	closed bool
	hist   *history
	// floors holds, for a key whose principal was deleted (Forget), the
	// seq a resume cursor must reach to replay: the history before it
	// was the old principal's, which a re-created id must not read.
	floors  map[string]uint64
	agents  map[string]*actor.PID // by recipient key; kept until Close
	lists   map[string]*actor.PID // by list id; kept until Close
	convs   map[string]*actor.PID // by request id; dropped on close/reset
	spawned uint64                // numbers conversation actor incarnations
	timers  *actor.PID            // the offer timers (timers.go); nil if off
	// deadlines are the SLA and INACTIVE timers (deadlines.go); nil if off
	deadlines *actor.PID

	// queue carries Publish's entries and Reset's resets, in log order, to
	// the fan-out goroutine (publish.go); done is closed by Close, and
	// loopDone when that goroutine has returned.
	queue    chan pubItem
	done     chan struct{}
	loopDone chan struct{}
	// fanMu is held while fanning out, by the goroutine or by an inline
	// Publish; queued counts items enqueued and not yet fanned out;
	// lastPub is when Publish was last called (unix nanoseconds), gap the
	// moving average of the time between calls.
	fanMu   sync.Mutex
	queued  atomic.Int64
	lastPub atomic.Int64
	gap     atomic.Int64

	// ctx bounds the commands the hub submits (system.go); cancelled by
	// Close, which then waits for jobs.
	ctx    context.Context
	cancel context.CancelFunc
	jobs   sync.WaitGroup
}

// NewHub returns a hub with its own hollywood engine.
func NewHub(cfg Config) (*Hub, error) {
	if cfg.Encode == nil {
		return nil, errors.New("actors: Config.Encode is required")
	}
	if cfg.View == nil {
		return nil, errors.New("actors: Config.View is required")
	}
	if cfg.HistorySize < 0 {
		return nil, fmt.Errorf("actors: negative HistorySize %d", cfg.HistorySize)
	}
	if cfg.HistorySize == 0 {
		cfg.HistorySize = DefaultHistorySize
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.PublishQueue <= 0 {
		cfg.PublishQueue = DefaultPublishQueue
	}
	if cfg.InlineGap == 0 {
		cfg.InlineGap = DefaultInlineGap
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		return nil, fmt.Errorf("actors: start engine: %w", err)
	}
	if cfg.DeadlineRescan == 0 {
		cfg.DeadlineRescan = DefaultDeadlineRescan
	}
	if cfg.LogoutGrace == 0 {
		cfg.LogoutGrace = DefaultLogoutGrace
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		cfg:      cfg,
		log:      cfg.Logger,
		engine:   e,
		hist:     newHistory(cfg.HistorySize),
		agents:   map[string]*actor.PID{},
		lists:    map[string]*actor.PID{},
		convs:    map[string]*actor.PID{},
		ctx:      ctx,
		cancel:   cancel,
		queue:    make(chan pubItem, cfg.PublishQueue),
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	h.startTimers()
	go h.fanOutLoop()
	return h, nil
}

// spawn starts an actor whose producer always returns the same receiver,
// so a restart after a panic keeps its state. Restarts are immediate and
// practically unlimited: in hollywood v1.0.5 reaching MaxRestarts calls a
// nil cancel func and crashes the process, and each restart drops only the
// message that panicked. Call with h.mu held.
func (h *Hub) spawn(r actor.Receiver, kind, id string) *actor.PID {
	return h.engine.Spawn(func() actor.Receiver { return r }, kind,
		actor.WithID(id),
		actor.WithInboxSize(actorInbox),
		actor.WithRestartDelay(0),
		actor.WithMaxRestarts(math.MaxInt32))
}

// actorInbox is the initial inbox of every actor the hub spawns. Hollywood's
// default (1,024 envelopes, 24 KiB) was allocated for each conversation of
// each request and each agent; the inbox doubles when it fills, and
// mostly holds one or two messages.
const actorInbox = 16

// Publish hands over the events of log entry index, in log order. It
// queues them for the hub's fan-out goroutine (publish.go) and returns; it
// waits only when PublishQueue entries are already queued. On a quiet
// node (see Config.InlineGap) it fans out itself instead. The fan-out
// encodes each event once, appends it to the history, sends each agent
// actor one message with all of its events, then feeds the list and
// conversation actors. It never waits for a session. It implements
// cluster.Sink. evs must not be changed after the call.
func (h *Hub) Publish(index uint64, evs []fsm.Event) {
	if len(evs) == 0 {
		return
	}
	// gap is a moving average of the time between entries (1/8 weight
	// to the newest): a burst after a lull, or an fsync stall, does not
	// flip a busy node inline.
	now := time.Now().UnixNano()
	prev := h.lastPub.Swap(now)
	gap := h.gap.Load()
	gap += (now - prev - gap) / 8
	if prev == 0 {
		gap = math.MaxInt64 / 2
	}
	h.gap.Store(gap)
	if h.cfg.InlineGap > 0 && gap >= int64(h.cfg.InlineGap) && h.inline(index, evs) {
		return
	}
	h.enqueue(pubItem{index: index, evs: evs})
}

// Reset says the state was replaced by a snapshot at index: it clears the
// history (a cursor at or before the snapshot can no longer resume), and
// every attached session gets a fresh sync computed after the reset. List
// views are cleared and conversation actors stopped; they are rebuilt from
// later events and from the syncs. It goes through Publish's queue, so it
// takes effect after the entries published before it and before those
// published after. It implements cluster.Sink.
func (h *Hub) Reset(index uint64) {
	h.enqueue(pubItem{index: index, reset: true})
}

// reset is Reset, run by the fan-out goroutine.
func (h *Hub) reset(index uint64) {
	seq := syncSeq(index)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.hist.reset(seq)
	for _, pid := range h.agents {
		h.engine.Send(pid, resyncMsg{})
	}
	for _, pid := range h.lists {
		h.engine.Send(pid, listReset{seq: seq})
	}
	for _, pid := range h.convs {
		h.engine.Poison(pid)
	}
	clear(h.convs)
	for _, pid := range []*actor.PID{h.timers, h.deadlines} {
		if pid != nil {
			h.engine.Send(pid, timersReset{})
		}
	}
}

// Attach starts delivering key's events to out. With resume and a since
// still covered by the history, the events after since are replayed, then
// live ones follow; otherwise a sync event comes first, then every event
// after it. Each event is delivered once, in log order. The returned
// detach stops delivery: once it returns, out.Deliver is not called again.
// A session whose Deliver refuses a frame (or panics) is dropped and never
// delivered to again. If View does not know key when a sync is due,
// nothing is delivered to the session and that is logged.
func (h *Hub) Attach(key string, since uint64, resume bool, out Outbox) (detach func()) {
	s := &session{out: out}
	s.batch, _ = out.(BatchOutbox)
	s.caught, _ = out.(CaughtUpOutbox)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return func() {}
	}
	pid := h.agents[key]
	if pid == nil {
		pid = h.spawn(&agent{hub: h, key: key}, "agent", key)
		h.agents[key] = pid
	}
	h.engine.Send(pid, attachMsg{s: s, since: since, resume: resume})
	h.mu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			s.detach()
			h.engine.Send(pid, detachMsg{s: s})
		})
	}
}

// Close stops every actor, waiting a bounded time for them to finish, and
// makes the hub inert: Publish and Reset do nothing (what they queued
// before is dropped), Attach delivers
// nothing and the queries return ErrClosed. Sessions get nothing more.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	var pids []*actor.PID
	for _, m := range []map[string]*actor.PID{h.agents, h.lists, h.convs} {
		for _, pid := range m {
			pids = append(pids, pid)
		}
		clear(m)
	}
	for _, pid := range []*actor.PID{h.timers, h.deadlines} {
		if pid != nil {
			pids = append(pids, pid)
		}
	}
	h.timers, h.deadlines = nil, nil
	h.hist.reset(0)
	h.mu.Unlock()
	// The fan-out goroutine drops what is still queued; Publish and Reset
	// no longer wait for room.
	close(h.done)
	<-h.loopDone
	// No job starts once closed is set; the running ones see ctx end.
	h.cancel()
	h.jobs.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, pid := range pids {
		select {
		case <-h.engine.PoisonCtx(ctx, pid).Done():
		case <-ctx.Done():
			h.log.Warn("actors did not stop in time", "actors", len(pids))
			return
		}
	}
}

// HistoryStats returns how many events the history holds for resume
// and the size of their encoded frames in bytes.
func (h *Hub) HistoryStats() (entries, bytes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hist.n, h.hist.bytes
}

// Forget says the principals of keys were deleted by log entry index: a
// session of a key re-created later that resumes from a cursor before
// that entry gets a sync, not a replay of the events the deleted
// principal was sent. Ordered with Publish, like Reset.
func (h *Hub) Forget(index uint64, keys []string) {
	if len(keys) > 0 {
		h.enqueue(pubItem{index: index, forget: keys})
	}
}

// forget is Forget, run by the fan-out goroutine. Floors the history no
// longer covers are dropped: no cursor below them can replay anyway.
func (h *Hub) forget(index uint64, keys []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if h.floors == nil {
		h.floors = map[string]uint64{}
	}
	for k, floor := range h.floors {
		if floor <= h.hist.covered {
			delete(h.floors, k)
		}
	}
	for _, k := range keys {
		h.floors[k] = syncSeq(index)
	}
}

// resumeFrom returns the history's entries after since for key's session,
// or ok false when the history does not hold them all or since is before
// the key's principal was last deleted (forget).
func (h *Hub) resumeFrom(key string, since uint64) (entries []*entry, ok bool) {
	h.mu.Lock()
	floor := h.floors[key]
	h.mu.Unlock()
	if since < floor {
		return nil, false
	}
	return h.replay(since)
}

// replay returns the history's entries after seq, or ok false (and no
// entries) when the history no longer holds every event after seq.
func (h *Hub) replay(seq uint64) (entries []*entry, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.hist.covers(seq) {
		return nil, false
	}
	return h.hist.after(seq, nil), true
}

// syncSeq is the seq of a sync reflecting log index: after every event of
// that entry and before every event of the next.
func syncSeq(index uint64) uint64 { return api.SeqOf(index, 1<<api.SeqShift-1) }

// ask sends a query to pid and waits for its answer.
func (h *Hub) ask(pid *actor.PID, q any) (any, error) {
	res, err := h.engine.Request(pid, q, h.cfg.QueryTimeout).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return res, nil
}

// lookup returns the actor registered under id in m (one of the hub's
// maps, which are only read or changed under h.mu).
func (h *Hub) lookup(m map[string]*actor.PID, id string) (*actor.PID, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	pid := m[id]
	if pid == nil {
		return nil, ErrNoView
	}
	return pid, nil
}
