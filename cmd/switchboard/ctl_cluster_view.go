package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/switchboard/switchboard/api"
)

// clusterView is what `ctl cluster status` shows, computed from the
// node's answer so that every figure agrees with the others shown: LAG is
// the commit index of the header minus the APPLIED of the row.
type clusterView struct {
	// Leader is the leader's id, "" when the node asked knows none.
	Leader string `json:"leader"`
	// LeaderReachable says the leader answered with its status.
	LeaderReachable bool   `json:"leader_reachable"`
	Term            uint64 `json:"term"` // the highest term any member reports
	// CommitIndex is the highest commit index any reachable member
	// reports: the leader's when it answered (followers only learn
	// commits from it), else the most that is known to be committed.
	CommitIndex uint64 `json:"commit_index"`
	// FeatureLevel is the cluster's active feature level: the highest any
	// reachable member's state holds (the leader raises it once every
	// member's build supports it: MAX LEVEL).
	FeatureLevel uint32            `json:"feature_level"`
	Nodes        []clusterNodeView `json:"nodes"` // sorted by id
}

// clusterNodeView is one member in clusterView.
type clusterNodeView struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	ClientAddr string `json:"client_addr"` // "" when not registered yet
	Suffrage   string `json:"suffrage"`
	Leader     bool   `json:"leader"`
	Reachable  bool   `json:"reachable"`
	Error      string `json:"error"` // why it is not reachable; "" when it is
	// Applied is the last log index the member has applied (its Raft
	// applied index, which also counts no-op and configuration entries);
	// Lag is the view's CommitIndex minus Applied. Both are null when the
	// member is unreachable.
	Applied *uint64 `json:"applied"`
	Lag     *uint64 `json:"lag"`
	// Status is the member's own status (the keys of `ctl status -o
	// json`), null when it is unreachable.
	Status any `json:"status"`

	st *api.NodeStatus
}

func (clusterView) jsonTagged() {}

// newClusterView computes the view from a cluster_status answer. It does
// not trust the answer's commit index and lags, which are 0 when the
// leader is unknown or unreachable.
func newClusterView(cs api.ClusterStatus) (clusterView, error) {
	v := clusterView{Leader: cs.Leader, Term: cs.Term, CommitIndex: cs.CommitIndex, Nodes: []clusterNodeView{}}
	for _, n := range cs.Nodes {
		if st := n.Status; st != nil {
			v.Term = max(v.Term, st.Term)
			v.CommitIndex = max(v.CommitIndex, st.CommitIndex)
			v.FeatureLevel = max(v.FeatureLevel, st.FeatureLevel)
			if n.ID == cs.Leader {
				v.LeaderReachable = true
			}
		}
	}
	for _, n := range cs.Nodes {
		nv := clusterNodeView{ID: n.ID, RaftAddr: n.RaftAddr, ClientAddr: n.ClientAddr, Suffrage: n.Suffrage,
			Leader: n.Leader || (n.ID != "" && n.ID == cs.Leader), Reachable: n.Status != nil, Error: n.Error, st: n.Status}
		if n.Status != nil {
			applied := appliedIndex(*n.Status)
			lag := v.CommitIndex - min(applied, v.CommitIndex)
			nv.Applied, nv.Lag = &applied, &lag
			status, err := jsonValue(n.Status)
			if err != nil {
				return v, err
			}
			nv.Status = status
			nv.Error = ""
		} else if nv.Error == "" {
			nv.Error = "no status (no reason given)"
		}
		v.Nodes = append(v.Nodes, nv)
	}
	return v, nil
}

// render prints the view as a header line and a table.
func (v clusterView) render(out io.Writer) {
	leader := orUnknown(v.Leader)
	if v.Leader != "" && !v.LeaderReachable {
		leader += " (unreachable)"
	}
	fmt.Fprintf(out, "leader %s, term %d, commit index %d, %d members, feature level %d\n\n", leader, v.Term, v.CommitIndex, len(v.Nodes), v.FeatureLevel)
	writeTable(out, "NODE\tSTATE\tSUFFRAGE\tTERM\tCOMMIT\tAPPLIED\tLAG\tLAST LOG\tSNAPSHOT\tSESSIONS\tCLIENTS\tRAFT\tVERSION\tMAX LEVEL\tERROR", func(w io.Writer) {
		for _, n := range v.Nodes {
			st := n.st
			if st == nil {
				fmt.Fprintf(w, "%s\tunreachable\t%s\t-\t-\t-\t-\t-\t-\t-\t%s\t%s\t-\t-\t%s\n",
					n.ID, n.Suffrage, dash(n.ClientAddr), n.RaftAddr, oneLine(n.Error))
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t-\n", n.ID, st.State, n.Suffrage, st.Term,
				st.CommitIndex, *n.Applied, *n.Lag, st.LastLogIndex, st.LastSnapshotIndex, st.Sessions,
				dash(n.ClientAddr), n.RaftAddr, dash(st.Version), st.MaxFeatureLevel)
		}
	})
}

// oneLine keeps a message on one table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
