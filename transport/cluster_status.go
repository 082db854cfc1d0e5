package transport

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
