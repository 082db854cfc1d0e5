package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/fsm"
)

// Snapshots off the apply path (issue 11, item 7).
//
// Raft asks the FSM for a snapshot on its apply goroutine: nothing commits
// until FSM.Snapshot returns. Encoding the live state there cost about
// 1.4 s per million open requests, all of it a stall of every write. So
// Snapshot only notes the index the live state has reached and a
// fingerprint of it (a few counters and sizes), and Persist, which Raft
// runs beside Apply, builds that state a second time on its own: it reads
// the newest snapshot at or below the index from the snapshot store, then
// replays the log entries after it through the code Apply runs
// (decodeEntry, applyCommands), checks the fingerprint and encodes the
// result. The state machine is deterministic, so the rebuilt state is the
// live state at that index, byte for byte (TestReplaySnapshotEqualsLiveState).
// The entries it needs are on disk: Raft compacts the log only after a
// snapshot is persisted, and keeps the entries after the last one.
//
// The cost moves to Persist and to memory: a second copy of the state for
// the length of the snapshot (the first one of a node with nothing in its
// snapshot store replays the whole log). Where the rebuild cannot be done
// the snapshot is encoded under the lock as before (a direct capture):
// when no stores were given (an FSM outside a Node, or
// Config.SnapshotCapture "lock"), when nothing was applied since the state
// was restored (a state that came whole from a snapshot or a backup is not
// the replay of anything), and once after a rebuild failed.

// Snapshot capture modes (Config.SnapshotCapture).
const (
	// CaptureProcess rebuilds in Persist, in a child process at the
	// lowest CPU priority (snapshot_child.go): serve's default.
	CaptureProcess = "process"
	// CaptureReplay rebuilds in Persist, in the node's process: the
	// default of a cluster.Config.
	CaptureReplay = "replay"
	// CaptureLock encodes under the FSM lock, as before.
	CaptureLock = "lock"
)

// replaySource is what a rebuild reads: the node's snapshot store and its
// log store; command, if set, is the child process that rebuilds.
type replaySource struct {
	snaps   raft.SnapshotStore
	logs    raft.LogStore
	command []string
}

// SetReplaySource makes the FSM take snapshots off the apply path, reading
// the snapshot store and the log Raft writes, in a child process started
// with command if it is not empty (Node.Open calls it before Raft starts,
// unless Config.SnapshotCapture is "lock").
func (f *FSM) SetReplaySource(snaps raft.SnapshotStore, logs raft.LogStore, command []string) {
	f.replay = &replaySource{snaps: snaps, logs: logs, command: command}
}

// fingerprint is a cheap summary of a state, taken under the lock when a
// snapshot is captured and compared with the rebuilt state: a rebuild that
// differs from the live state in any of these is refused, not written.
type fingerprint struct {
	Index, NextRequest, NextOffer, NextPresence uint64
	Now, LastSweep                              int64
	Level                                       uint32
	Sizes                                       [13]int
}

func fingerprintOf(s *fsm.State) fingerprint {
	return fingerprint{
		Index: s.Index, NextRequest: s.NextRequest, NextOffer: s.NextOffer, NextPresence: s.NextPresence,
		Now: s.Now, LastSweep: s.LastSweep, Level: s.Level,
		Sizes: [13]int{len(s.MRDs), len(s.ChannelTypes), len(s.Channels), len(s.Lists), len(s.Queues),
			len(s.Agents), len(s.Connectors), len(s.Requests), s.Open.Len(), len(s.ClosedOrder),
			len(s.Sessions), len(s.Supervisors), len(s.Nodes)},
	}
}

// checkRebuilt refuses a state rebuilt from the snapshot at from and the
// log up to upTo whose fingerprint is not want, the live state's.
func checkRebuilt(st *fsm.State, from, upTo uint64, want fingerprint) error {
	if got := fingerprintOf(st); got != want {
		return fmt.Errorf("%w: the state rebuilt from the snapshot at %d and the log up to %d differs from the live one (%+v, want %+v)",
			errRebuild, from, upTo, got, want)
	}
	return nil
}

// replaySnapshot is a snapshot captured as an index: Persist rebuilds it.
type replaySnapshot struct {
	f     *FSM
	src   *replaySource
	index uint64 // the live state's Index when captured
	want  fingerprint
	max   uint32 // the feature level the node applied when captured
}

// errRebuild marks a rebuild that could not be made or did not match.
var errRebuild = errors.New("cluster: rebuild snapshot")

// Persist rebuilds the state at the captured index and writes it; any
// failure cancels the sink, and the next snapshot is encoded under the
// lock.
func (s *replaySnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	defer func() { s.f.persistNs.Store(int64(time.Since(start))) }()
	if len(s.src.command) > 0 && !s.f.inProcessNext.Swap(false) {
		ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
		defer cancel()
		go func() {
			select {
			case <-s.f.release: // the node is closing
				cancel()
			case <-ctx.Done():
			}
		}()
		from, n, ph, err := s.persistInChild(ctx, sink, start)
		if err != nil {
			s.f.inProcessNext.Store(true)
			s.f.log.Error("snapshot rebuild in a child process failed: the next one is rebuilt in this process", "index", s.index, "err", err)
			return err
		}
		s.f.rebuilt.Add(1)
		s.f.log.Info("snapshot rebuilt in a child process", append([]any{"index", s.index, "from_snapshot", from, "entries", s.index - from,
			"bytes", n, "took", time.Since(start).Round(time.Millisecond)}, ph.logAttrs()...)...)
		return nil
	}
	st, from, err := rebuildState(s.src, s.index, s.max)
	if err == nil {
		err = checkRebuilt(st, from, s.index, s.want)
	}
	if err != nil {
		s.f.directNext.Store(true)
		s.f.log.Error("snapshot rebuild failed: the next snapshot is encoded under the lock", "index", s.index, "err", err)
		_ = sink.Cancel()
		return err
	}
	rebuilt := time.Since(start)
	data, err := st.Marshal()
	st = nil //nolint:ineffassign // let the copy go before the write
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("cluster: encode snapshot: %w", err)
	}
	encoded := time.Since(start)
	s.f.rebuilt.Add(1)
	if err := writeSnapshot(sink, data); err != nil {
		return err
	}
	s.f.log.Info("snapshot rebuilt off the apply path", "index", s.index, "from_snapshot", from, "entries", s.index-from,
		"bytes", len(data), "rebuild", rebuilt.Round(time.Millisecond), "encode", (encoded - rebuilt).Round(time.Millisecond),
		"write", (time.Since(start) - encoded).Round(time.Millisecond))
	return nil
}

func (s *replaySnapshot) Release() {}

// rebuildState returns the state at log index upTo: the newest snapshot
// in src at or below it, with the log entries after it applied as Apply
// applies them (maxLevel as the live FSM had it). from is the snapshot's
// index (0 when it started from an empty state).
func rebuildState(src *replaySource, upTo uint64, maxLevel uint32) (st *fsm.State, from uint64, err error) {
	base, err := baseOf(src, upTo)
	if err != nil {
		return nil, 0, err
	}
	st = fsm.NewState()
	if base != nil {
		from = base.Index
		if st, err = readSnapshot(src.snaps, base); err != nil {
			return nil, 0, err
		}
	}
	if err := replayLog(st, from, upTo, maxLevel, src.logs.GetLog); err != nil {
		return nil, 0, err
	}
	return st, from, nil
}

// baseOf returns the meta of the newest snapshot in src at or below upTo
// (nil when there is none: the rebuild starts from an empty state), once
// it has checked that the log holds every entry after it up to upTo.
func baseOf(src *replaySource, upTo uint64) (*raft.SnapshotMeta, error) {
	metas, err := src.snaps.List()
	if err != nil {
		return nil, fmt.Errorf("%w: list snapshots: %w", errRebuild, err)
	}
	var best *raft.SnapshotMeta
	for _, m := range metas {
		if m.Index <= upTo && (best == nil || m.Index > best.Index) {
			best = m
		}
	}
	var from uint64
	if best != nil {
		from = best.Index
	}
	if from < upTo {
		first, err := src.logs.FirstIndex()
		if err != nil {
			return nil, fmt.Errorf("%w: read the log: %w", errRebuild, err)
		}
		if first > from+1 {
			return nil, fmt.Errorf("%w: the log starts at %d, after the snapshot at %d", errRebuild, first, from)
		}
	}
	return best, nil
}

// readSnapshot decodes the snapshot meta names.
func readSnapshot(snaps raft.SnapshotStore, meta *raft.SnapshotMeta) (*fsm.State, error) {
	_, rc, err := snaps.Open(meta.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: open snapshot %s: %w", errRebuild, meta.ID, err)
	}
	defer rc.Close()
	st, err := fsm.ReadState(bufio.NewReaderSize(rc, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: read snapshot %s: %w", errRebuild, meta.ID, err)
	}
	return st, nil
}

// replayLog applies the log entries after from, up to upTo, to st as
// Apply applies them, reading each with get.
func replayLog(st *fsm.State, from, upTo uint64, maxLevel uint32, get func(uint64, *raft.Log) error) error {
	var l raft.Log
	for idx := from + 1; idx <= upTo; idx++ {
		if err := get(idx, &l); err != nil {
			return fmt.Errorf("%w: log entry %d: %w", errRebuild, idx, err)
		}
		if l.Type != raft.LogCommand {
			continue // Raft hands only commands to the FSM (no ConfigurationStore)
		}
		cmds, bad, haltErr := decodeEntry(&l, maxLevel)
		switch {
		case haltErr != nil:
			return fmt.Errorf("%w: log entry %d: %w", errRebuild, idx, haltErr)
		case bad != nil:
			st.Index = idx // skipped by every replica, as Apply does
		default:
			applyCommands(st, idx, cmds)
		}
	}
	return nil
}
