package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// Sink receives the events of every applied entry, in log order, from the
// Raft apply goroutine, which every commit waits for: it should hand them
// off rather than deliver them, and may block only to push back on a
// consumer that has fallen far behind (actors.Hub, which satisfies it,
// queues up to its Config.PublishQueue entries, then waits).
type Sink interface {
	// Publish hands over the events of log entry index (Seq already set).
	Publish(index uint64, evs []fsm.Event)
	// Reset says the state was replaced by a snapshot at index: every
	// stream must re-sync from the new state.
	Reset(index uint64)
}

// ApplyResponse is what FSM.Apply returns for a command entry: one Result
// per command, in order.
type ApplyResponse struct {
	Index   uint64
	Results []fsm.Result
	Err     error // set only when the entry was undecodable
}

// FSM adapts fsm.State to raft.FSM: it decodes entries, applies them under
// a lock, numbers the events by log position and hands them to the Sink.
// Snapshots use fsm's encoding (State.Marshal, fsm.ReadState).
type FSM struct {
	mu      sync.RWMutex
	state   *fsm.State
	applied atomic.Uint64 // last applied log index (also state.Index)
	sink    Sink
	log     *slog.Logger
	// revoked, if set, is told of credentials that entries removed
	// (SetRevoked).
	revoked func(index uint64, ps []api.Principal)
	// onApply, if set, is told of every applied command entry
	// (SetApplied).
	onApply AppliedFunc

	waitMu sync.Mutex
	waitCh chan struct{} // closed and replaced after each apply

	// maxLevel is the highest feature level this node applies (fsm.MaxLevel
	// unless lowered, as a test stands in for an older build).
	maxLevel atomic.Uint32
	// A halt (halt.go): the node met an entry it cannot apply faithfully.
	haltOnce sync.Once
	haltErr  atomic.Pointer[error]
	halted   chan struct{} // closed on halt
	release  chan struct{} // closed by Close: a halted apply returns
	closeMu  sync.Once

	// Snapshot figures for the metrics (SnapshotStats).
	snapshots, restores  atomic.Uint64
	captureNs, persistNs atomic.Int64 // the last snapshot's
	rebuilt, direct      atomic.Uint64

	// Snapshots off the apply path (snapshot_replay.go): replay is where a
	// snapshot is rebuilt from (nil: every snapshot is encoded under the
	// lock); sinceRestore says an entry was applied since the state was
	// created or restored (under mu); directNext asks for the next
	// snapshot to be encoded under the lock, after a failed rebuild.
	replay       *replaySource
	sinceRestore bool
	directNext   atomic.Bool
	// inProcessNext asks for the next rebuild to run in this process,
	// after one in a child process failed (snapshot_child.go).
	inProcessNext atomic.Bool
}

// NewFSM returns an FSM over an empty state. sink may be nil.
func NewFSM(sink Sink, logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &FSM{state: fsm.NewState(), sink: sink, log: logger, waitCh: make(chan struct{}),
		halted: make(chan struct{}), release: make(chan struct{})}
	f.maxLevel.Store(fsm.MaxLevel)
	return f
}

// SetSink sets the event sink; call before Raft starts.
func (f *FSM) SetSink(s Sink) { f.sink = s }

// SetRevoked sets fn, called once an entry that deleted agents,
// connectors or supervisors is applied, with the entry's index and their
// principals, and once a snapshot is installed, with 0 and nil (any
// credential may have changed): whoever holds sessions of those
// principals ends them. It runs on Raft's apply
// goroutine and must not block. Call before Raft starts.
func (f *FSM) SetRevoked(fn func(index uint64, ps []api.Principal)) { f.revoked = fn }

// SetApplied sets fn, told of every command entry applied, after the
// sink: its commands, their results and its events (see AppliedFunc).
// Entries replayed from the log when the node starts are told too. Call
// before Raft starts.
func (f *FSM) SetApplied(fn AppliedFunc) { f.onApply = fn }

// revokedBy returns the principals whose credential cmd removed.
func revokedBy(cmd *fsm.Command, res fsm.Result) (api.Principal, bool) {
	if res.Err != nil {
		return api.Principal{}, false
	}
	a, ok := cmd.Args.(*api.IDArgs)
	if !ok {
		return api.Principal{}, false
	}
	switch cmd.Op {
	case fsm.OpDeleteAgent:
		return api.Principal{Role: api.RoleAgent, ID: a.ID}, true
	case fsm.OpDeleteConnector:
		return api.Principal{Role: api.RoleConnector, ID: a.ID}, true
	case fsm.OpDeleteSupervisor:
		return api.Principal{Role: api.RoleSupervisor, ID: a.ID}, true
	}
	return api.Principal{}, false
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		f.mu.Lock()
		f.state.Index = l.Index
		f.mu.Unlock()
		f.markApplied(l.Index)
		return nil
	}
	cmds, bad, haltErr := decodeEntry(l, f.maxLevel.Load())
	if haltErr != nil {
		return f.halt(l.Index, haltErr)
	}
	if bad != nil {
		// Deterministic on every replica: the entry is skipped, state unchanged.
		f.log.Error("skipping undecodable log entry", "index", l.Index, "err", bad)
		f.mu.Lock()
		f.state.Index = l.Index
		f.sinceRestore = true
		f.mu.Unlock()
		f.markApplied(l.Index)
		return &ApplyResponse{Index: l.Index, Err: bad}
	}
	resp := &ApplyResponse{Index: l.Index}
	f.mu.Lock()
	var evs []fsm.Event
	resp.Results, evs = applyCommands(f.state, l.Index, cmds)
	f.sinceRestore = true
	f.mu.Unlock()
	for i := range evs {
		evs[i].Seq = api.SeqOf(l.Index, i)
	}
	f.markApplied(l.Index)
	if f.sink != nil && len(evs) > 0 {
		f.sink.Publish(l.Index, evs)
	}
	if f.onApply != nil {
		f.onApply(l.Index, cmds, resp.Results, evs)
	}
	if f.revoked != nil {
		var gone []api.Principal
		for i, c := range cmds {
			if p, ok := revokedBy(c, resp.Results[i]); ok {
				gone = append(gone, p)
			}
		}
		if len(gone) > 0 {
			f.revoked(l.Index, gone)
		}
	}
	return resp
}

// decodeEntry decodes a command entry for Apply and for a snapshot's
// replay (snapshot_replay.go), which must treat every entry alike: bad is
// set when the entry is undecodable (every replica skips it), haltErr when
// this build cannot apply it faithfully (newer encoding or feature level).
func decodeEntry(l *raft.Log, maxLevel uint32) (cmds []*fsm.Command, bad, haltErr error) {
	cmds, err := fsm.DecodeEntry(l.Data)
	if errors.Is(err, fsm.ErrNewerEntry) {
		return nil, nil, err
	}
	if err != nil {
		return nil, err, nil
	}
	for _, c := range cmds {
		if err := fsm.CanApply(c, maxLevel); err != nil {
			return nil, nil, err
		}
	}
	return cmds, nil, nil
}

// applyCommands applies the commands of entry index to st: the only
// change Apply makes to a state, shared with a snapshot's replay.
func applyCommands(st *fsm.State, index uint64, cmds []*fsm.Command) ([]fsm.Result, []fsm.Event) {
	results := make([]fsm.Result, len(cmds))
	var evs []fsm.Event
	st.Index = index
	for i, c := range cmds {
		res, e := st.Apply(c)
		results[i] = res
		evs = append(evs, e...)
	}
	return results, evs
}

func (f *FSM) markApplied(index uint64) {
	f.applied.Store(index)
	f.waitMu.Lock()
	close(f.waitCh)
	f.waitCh = make(chan struct{})
	f.waitMu.Unlock()
}

// Applied returns the index of the last applied log entry.
func (f *FSM) Applied() uint64 { return f.applied.Load() }

// WaitApplied blocks until the FSM has applied index, or done is closed.
func (f *FSM) WaitApplied(done <-chan struct{}, index uint64) error {
	for {
		f.waitMu.Lock()
		ch := f.waitCh
		f.waitMu.Unlock()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-done:
			return errors.New("cluster: gave up waiting for apply")
		}
	}
}

// Read runs fn with the state under a read lock, with the index of the last
// entry that state reflects. fn must not keep references into the state.
func (f *FSM) Read(fn func(s *fsm.State, applied uint64)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	// state.Index, not f.applied: Apply advances applied after releasing
	// the lock, so applied may still name the entry before this state.
	fn(f.state, f.state.Index)
}

// Snapshot implements raft.FSM, on Raft's apply goroutine: nothing
// commits until it returns. With a replay source (snapshot_replay.go) it
// only notes the state's index and fingerprint, and Persist rebuilds the
// state off the apply path; otherwise it encodes the state here, under the
// read lock, so the capture is consistent (Apply changes requests, agents
// and lists in place): about 1.4 s for a million open requests.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	start := time.Now()
	f.mu.RLock()
	defer f.mu.RUnlock()
	defer func() { f.captureNs.Store(int64(time.Since(start))) }()
	f.snapshots.Add(1)
	if f.replay != nil && f.sinceRestore && !f.directNext.Swap(false) {
		return &replaySnapshot{f: f, src: f.replay, index: f.state.Index,
			want: fingerprintOf(f.state), max: f.maxLevel.Load()}, nil
	}
	data, err := f.state.Marshal()
	if err != nil {
		return nil, fmt.Errorf("cluster: encode snapshot: %w", err)
	}
	f.direct.Add(1)
	return &snapshot{data: data, f: f}, nil
}

// Restore implements raft.FSM: it discards the current state for the
// snapshot's, then tells the sink to re-sync every stream.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := fsm.ReadState(bufio.NewReader(rc))
	if err != nil {
		return err
	}
	if max := f.maxLevel.Load(); st.ActiveLevel() > max {
		err := fmt.Errorf("the snapshot at index %d is at feature level %d, above the %d this node supports: upgrade this node", st.Index, st.ActiveLevel(), max)
		f.signalHalt(st.Index, err)
		return err
	}
	f.mu.Lock()
	f.state = st
	f.sinceRestore = false
	f.mu.Unlock()
	f.restores.Add(1)
	f.markApplied(st.Index)
	// Everything the sink knew is superseded: streams re-sync.
	if f.revoked != nil {
		f.revoked(0, nil)
	}
	if f.sink != nil {
		f.sink.Reset(st.Index)
	}
	return nil
}

type snapshot struct {
	data []byte
	f    *FSM
}

// Persist writes the encoded state; any failure cancels the sink.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	defer func() { s.f.persistNs.Store(int64(time.Since(start))) }()
	return writeSnapshot(sink, s.data)
}

// writeSnapshot writes data to sink and closes it, or cancels it.
func writeSnapshot(sink raft.SnapshotSink, data []byte) error {
	if _, err := sink.Write(data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("cluster: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("cluster: close snapshot: %w", err)
	}
	return nil
}

func (s *snapshot) Release() {}

// SnapshotStats are an FSM's snapshot figures since it was created.
type SnapshotStats struct {
	Taken    uint64 // snapshots captured (Raft's, and snapshot_take)
	Restored uint64 // snapshots installed (from the leader, or a restore)
	// Rebuilt counts snapshots written off the apply path, Direct those
	// encoded under the lock (snapshot_replay.go).
	Rebuilt, Direct uint64
	// LastCapture is how long the last snapshot held the apply goroutine
	// (and the read lock: applies wait); LastPersist how long it took to
	// write, a rebuild included.
	LastCapture, LastPersist time.Duration
}

// SnapshotStats returns the FSM's snapshot figures.
func (f *FSM) SnapshotStats() SnapshotStats {
	return SnapshotStats{
		Taken: f.snapshots.Load(), Restored: f.restores.Load(),
		Rebuilt: f.rebuilt.Load(), Direct: f.direct.Load(),
		LastCapture: time.Duration(f.captureNs.Load()), LastPersist: time.Duration(f.persistNs.Load()),
	}
}
