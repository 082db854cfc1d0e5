package transport

// NodeStatus is the result of the "status" query: one node's view of itself
// and of the Raft cluster.
type NodeStatus struct {
	Node              string   `msgpack:"node"`
	ClientAddr        string   `msgpack:"client_addr"`
	RaftAddr          string   `msgpack:"raft_addr"`
	State             string   `msgpack:"state"` // Leader, Follower, Candidate, Shutdown
	Term              uint64   `msgpack:"term"`
	Leader            string   `msgpack:"leader"`      // leader node id, "" if none known
	LeaderAddr        string   `msgpack:"leader_addr"` // leader raft address
	CommitIndex       uint64   `msgpack:"commit_index"`
	AppliedIndex      uint64   `msgpack:"applied_index"`
	LastLogIndex      uint64   `msgpack:"last_log_index"`
	LastSnapshotIndex uint64   `msgpack:"last_snapshot_index"`
	Members           []Member `msgpack:"members"`
	Sessions          int      `msgpack:"sessions"` // open client connections on this node
	Version           string   `msgpack:"version"`

	// RaftAppliedIndex counts every entry Raft has applied, including the
	// no-ops and configuration changes that never reach the state:
	// CommitIndex minus it is how far this node lags.
	RaftAppliedIndex uint64 `msgpack:"raft_applied_index"`
}

// Member is one voter or non-voter of the Raft configuration.
type Member struct {
	ID       string `msgpack:"id"`
	RaftAddr string `msgpack:"raft_addr"`
	Suffrage string `msgpack:"suffrage"` // Voter, Nonvoter
	Leader   bool   `msgpack:"leader"`
}
