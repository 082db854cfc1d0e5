package cluster

import "strconv"

// Status is one node's view of itself and of the Raft cluster.
type Status struct {
	ID       string // this node's Raft server id
	RaftAddr string // the advertised Raft address, "" before Open
	// State is Follower, Candidate, Leader or Shutdown (raft.RaftState),
	// or NotOpen before Open.
	State      string
	Term       uint64
	LeaderID   string // "" when no leader is known
	LeaderAddr string
	// CommitIndex is the last index known committed.
	CommitIndex uint64
	// AppliedIndex is the last index the FSM has applied: local reads
	// reflect exactly this much of the log.
	AppliedIndex      uint64
	LastLogIndex      uint64
	LastSnapshotIndex uint64
	// Members is the latest Raft configuration, in its own order; nil
	// when it cannot be read (e.g. after shutdown).
	Members []Member
}

// Member is one server of the Raft configuration.
type Member struct {
	ID       string
	Address  string
	Suffrage string // Voter, Nonvoter or Staging
	Leader   bool
}

// Status returns this node's status, read from raft.Stats and the latest
// configuration.
func (n *Node) Status() Status {
	st := Status{ID: n.cfg.NodeID, RaftAddr: n.Addr(), State: "NotOpen", AppliedIndex: n.fsm.Applied()}
	r := n.Raft()
	if r == nil {
		return st
	}
	stats := r.Stats()
	num := func(k string) uint64 {
		v, _ := strconv.ParseUint(stats[k], 10, 64)
		return v
	}
	st.State = r.State().String()
	st.Term = num("term")
	st.CommitIndex = num("commit_index")
	st.LastLogIndex = num("last_log_index")
	st.LastSnapshotIndex = num("last_snapshot_index")
	addr, id := r.LeaderWithID()
	st.LeaderID, st.LeaderAddr = string(id), string(addr)
	if f := r.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Members = append(st.Members, Member{
				ID:       string(s.ID),
				Address:  string(s.Address),
				Suffrage: s.Suffrage.String(),
				Leader:   id != "" && s.ID == id,
			})
		}
	}
	st.AppliedIndex = n.fsm.Applied() // read last: as fresh as the other fields
	return st
}
