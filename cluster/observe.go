package cluster

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/fsm"
)

// Observer is told how long this node's Raft work takes, for its metrics
// (node/metrics.go). Its methods are called on Raft's goroutines and on
// those of the commits in flight: they must be quick and must not block.
type Observer interface {
	// Committed says an entry of commands commands, proposed on this node
	// as the leader, was committed and applied here, took after it was
	// handed to Raft: the commit latency of group commit, fsync and a
	// quorum's acknowledgement included. It is told even when the proposer
	// had given up waiting.
	Committed(commands int, took time.Duration)
	// LogStored says entries log entries were written to the log store
	// (raft-boltdb: one bolt transaction, fsynced) in took; err is the
	// write's failure, if any. Leaders and followers both write their log.
	LogStored(entries int, took time.Duration, err error)
}

// timedLogStore is the log store Raft writes through when an Observer is
// set: every StoreLog and StoreLogs is timed. Reads and deletes pass
// through untouched.
type timedLogStore struct {
	raft.LogStore
	obs Observer
}

func (s timedLogStore) StoreLog(l *raft.Log) error {
	start := time.Now()
	err := s.LogStore.StoreLog(l)
	s.obs.LogStored(1, time.Since(start), err)
	return err
}

func (s timedLogStore) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	err := s.LogStore.StoreLogs(logs)
	s.obs.LogStored(len(logs), time.Since(start), err)
	return err
}

// AppliedFunc is told of every command entry this node's FSM applied:
// its commands, their results and the events they caused (numbered), in
// log order, on Raft's apply goroutine (see FSM.SetApplied). It must not
// block, and must not keep or change what it is given.
type AppliedFunc func(index uint64, cmds []*fsm.Command, results []fsm.Result, evs []fsm.Event)
