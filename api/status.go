package api

// ClusterStatus is the result of the admin "cluster_status" query: every
// member of the Raft configuration as the node asked sees it, with each
// member's own status fetched from it.
type ClusterStatus struct {
	Leader      string        `msgpack:"leader"`       // leader node id, "" if none known
	Term        uint64        `msgpack:"term"`         // the leader's term
	CommitIndex uint64        `msgpack:"commit_index"` // the leader's commit index
	Nodes       []ClusterNode `msgpack:"nodes"`        // sorted by id
}

// ClusterNode is one member in ClusterStatus.
type ClusterNode struct {
	ID         string `msgpack:"id"`
	RaftAddr   string `msgpack:"raft_addr"`
	ClientAddr string `msgpack:"client_addr"` // from the node registry
	Suffrage   string `msgpack:"suffrage"`    // Voter, Nonvoter
	Leader     bool   `msgpack:"leader"`
	// Reachable says Status was fetched; Error says why not.
	Reachable bool        `msgpack:"reachable"`
	Error     string      `msgpack:"error,omitempty"`
	Status    *NodeStatus `msgpack:"status,omitempty"`
	// Lag is the leader's commit index minus the last entry this node has
	// applied (NodeStatus.RaftAppliedIndex).
	Lag uint64 `msgpack:"lag"`
}

// NodeStatus is the result of the "status" query: one node's view of itself
// and of the Raft cluster.
type NodeStatus struct {
	Node              string   `msgpack:"node"`
	ClientAddr        string   `msgpack:"client_addr"`
	RaftAddr          string   `msgpack:"raft_addr"`
	State             string   `msgpack:"state"` // Leader, Follower, Candidate, Shutdown
	Term              uint64   `msgpack:"term"`
	Leader            string   `msgpack:"leader"`      // leader node id, "" if none known
	LeaderAddr        string   `msgpack:"leader_addr"` // the leader's Raft address (not a client address)
	CommitIndex       uint64   `msgpack:"commit_index"`
	AppliedIndex      uint64   `msgpack:"applied_index"`
	LastLogIndex      uint64   `msgpack:"last_log_index"`
	LastSnapshotIndex uint64   `msgpack:"last_snapshot_index"`
	Members           []Member `msgpack:"members"`
	Sessions          int      `msgpack:"sessions"` // open client connections on this node
	Version           string   `msgpack:"version"`
	// FeatureLevel is the cluster's active feature level as this node's
	// state holds it; MaxFeatureLevel the highest its build applies. The
	// leader raises the first to the lowest of every member's second.
	FeatureLevel    uint32 `msgpack:"feature_level"`
	MaxFeatureLevel uint32 `msgpack:"max_feature_level"`

	// RaftAppliedIndex counts every entry Raft has applied, including the
	// no-ops and configuration changes that never reach the state:
	// CommitIndex minus it is how far this node lags.
	RaftAppliedIndex uint64 `msgpack:"raft_applied_index"`
	// Removed is true once this node has learned it was removed from the
	// cluster's configuration: it serves no clients any more.
	Removed bool `msgpack:"removed,omitempty"`
}

// Member is one voter or non-voter of the Raft configuration.
type Member struct {
	ID       string `msgpack:"id"`
	RaftAddr string `msgpack:"raft_addr"`
	Suffrage string `msgpack:"suffrage"` // Voter, Nonvoter
	Leader   bool   `msgpack:"leader"`
}
