package cluster

import (
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/fsm"
)

// ErrHalted is the error of an entry a halted FSM did not apply.
var ErrHalted = errors.New("cluster: this node stopped applying the log")

// A node whose build cannot apply an entry exactly as its peers do (an op
// it does not know, an entry kind it may not skip, a feature level above
// its own) must not answer differently from them: it stops applying. The
// Raft apply goroutine blocks on the entry, so nothing after it is applied
// here, Halted is closed so that the process can exit with the reason, and
// Close lets the goroutine go. The rest of the cluster is untouched; the
// node resumes from the same entry once it runs a build that can apply it.

// SetMaxLevel lowers the highest feature level this node applies below
// fsm.MaxLevel: the node then acts as a build of that level (tests of
// mixed-version clusters). Call before Raft starts.
func (f *FSM) SetMaxLevel(level uint32) {
	f.maxLevel.Store(min(max(level, fsm.Level1), fsm.MaxLevel))
}

// MaxLevel is the highest feature level this node applies.
func (f *FSM) MaxLevel() uint32 { return f.maxLevel.Load() }

// Halted is closed once the node has met an entry it cannot apply.
func (f *FSM) Halted() <-chan struct{} { return f.halted }

// HaltErr says why the node halted, nil if it has not.
func (f *FSM) HaltErr() error {
	if p := f.haltErr.Load(); p != nil {
		return *p
	}
	return nil
}

// signalHalt records the first halt and closes Halted.
func (f *FSM) signalHalt(index uint64, err error) {
	f.haltOnce.Do(func() {
		err = fmt.Errorf("log entry %d: %w", index, err)
		f.haltErr.Store(&err)
		f.log.Error("cannot apply the log faithfully: this node stops; upgrade it to a build that can",
			"index", index, "err", err, "max_feature_level", f.maxLevel.Load())
		close(f.halted)
	})
}

// halt stops at entry index: it blocks the apply goroutine until Close.
func (f *FSM) halt(index uint64, err error) any {
	f.signalHalt(index, err)
	<-f.release
	return &ApplyResponse{Index: index, Err: ErrHalted}
}

// Close releases an apply goroutine blocked by a halt, so that Raft can
// shut down. Call it before Raft's Shutdown; it is idempotent.
func (f *FSM) Close() {
	f.closeMu.Do(func() { close(f.release) })
}
