package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// desc is a shorthand for a metric description without constant labels.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// raftStates are the values of switchboard_raft_state's state label.
var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

// nodeCollector reads the node's Raft figures, readiness and feature
// levels at scrape time.
type nodeCollector struct{ s *Server }

var (
	descRaftState     = desc("switchboard_raft_state", "1 for this node's current Raft state, 0 for the others.", "state")
	descRaftTerm      = desc("switchboard_raft_term", "This node's current Raft term.")
	descCommitIndex   = desc("switchboard_raft_commit_index", "The last log index this node knows committed.")
	descAppliedIndex  = desc("switchboard_raft_applied_index", "The last log index Raft has handed to the state machine (no-ops and configuration entries included).")
	descFSMApplied    = desc("switchboard_fsm_applied_index", "The log index of the last command this node's state applied: local reads reflect exactly this much.")
	descLastLogIndex  = desc("switchboard_raft_last_log_index", "The last index in this node's log.")
	descSnapIndex     = desc("switchboard_raft_last_snapshot_index", "The log index of this node's latest snapshot.")
	descLastContact   = desc("switchboard_raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader; absent before any contact).")
	descMembers       = desc("switchboard_raft_members", "Servers in the Raft configuration, by suffrage.", "suffrage")
	descSnapshots     = desc("switchboard_raft_snapshots_total", "Snapshots this node's state machine captured since it started.")
	descRestores      = desc("switchboard_raft_snapshot_restores_total", "Snapshots this node installed since it started (sent by the leader, or a restored backup).")
	descSnapCapture   = desc("switchboard_raft_snapshot_capture_seconds", "How long the last snapshot held the apply goroutine (and the state's read lock): applies waited that long.")
	descSnapPersist   = desc("switchboard_raft_snapshot_persist_seconds", "How long the last snapshot took to write to disk, its rebuild off the apply path included.")
	descSnapLocked    = desc("switchboard_raft_snapshots_locked_total", "Snapshots encoded under the state's lock, applies waiting: all of them with --snapshot-capture lock, else only those after a rebuild failed.")
	descReady         = desc("switchboard_node_ready", "1 when /readyz answers 200: the node knows a leader, has applied what it learned committed, and serves clients.")
	descRemoved       = desc("switchboard_node_removed", "1 once this node has learned it was removed from the cluster's configuration.")
	descHalted        = desc("switchboard_node_halted", "1 once this node has met a log entry its build cannot apply, and applies nothing more.")
	descSessions      = desc("switchboard_transport_sessions", "Open client connections on this node (every role, and connections that have not said hello yet).")
	descLevelActive   = desc("switchboard_fsm_feature_level", "The cluster's active feature level, as this node's state holds it.")
	descLevelSupports = desc("switchboard_node_max_feature_level", "The highest feature level this node's build applies.")
	descHistEntries   = desc("switchboard_events_history_entries", "Events this node's history holds for resume (bounded by serve --history).")
	descHistBytes     = desc("switchboard_events_history_bytes", "Size of the encoded event frames this node's history holds for resume.")
	descRateLimited   = desc("switchboard_transport_rate_limited_total", "Refusals for a rate limit, by kind (write: a write over its principal's rate; login_addr, login_user: a hello refused by the failed-login throttle) and role (for a hello, the role it claimed).", "kind", "role")
	descConnRefused   = desc("switchboard_transport_connections_refused_total", "Client connections closed on accept over a cap, by cap (total, per_address).", "cap")
)

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descRaftTerm, descCommitIndex, descAppliedIndex,
		descFSMApplied, descLastLogIndex, descSnapIndex, descLastContact, descMembers, descSnapshots,
		descRestores, descSnapCapture, descSnapPersist, descReady, descRemoved, descHalted, descSessions,
		descLevelActive, descLevelSupports, descHistEntries, descHistBytes, descRateLimited, descConnRefused} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	st := s.Node.Status()
	for _, state := range raftStates {
		gauge(descRaftState, b2f(st.State == state), state)
	}
	gauge(descRaftTerm, float64(st.Term))
	gauge(descCommitIndex, float64(st.CommitIndex))
	gauge(descFSMApplied, float64(st.AppliedIndex))
	gauge(descLastLogIndex, float64(st.LastLogIndex))
	gauge(descSnapIndex, float64(st.LastSnapshotIndex))
	if r := s.Node.Raft(); r != nil {
		gauge(descAppliedIndex, float64(r.AppliedIndex()))
		switch lc := r.LastContact(); {
		case st.State == "Leader":
			gauge(descLastContact, 0)
		case !lc.IsZero():
			gauge(descLastContact, time.Since(lc).Seconds())
		}
	}
	suffrage := map[string]int{"Voter": 0, "Nonvoter": 0, "Staging": 0}
	for _, m := range st.Members {
		suffrage[m.Suffrage]++
	}
	for k, n := range suffrage {
		gauge(descMembers, float64(n), k)
	}
	ss := s.FSM.SnapshotStats()
	counter(descSnapshots, float64(ss.Taken))
	counter(descRestores, float64(ss.Restored))
	gauge(descSnapCapture, ss.LastCapture.Seconds())
	gauge(descSnapPersist, ss.LastPersist.Seconds())
	counter(descSnapLocked, float64(ss.Direct))
	ready, _ := s.readiness(nil)
	gauge(descReady, b2f(ready))
	gauge(descRemoved, b2f(s.Removed()))
	gauge(descHalted, b2f(s.HaltErr() != nil))
	gauge(descSessions, float64(s.Transport.Sessions()))
	var level uint32
	s.FSM.Read(func(st *fsm.State, _ uint64) { level = st.ActiveLevel() })
	gauge(descLevelActive, float64(level))
	gauge(descLevelSupports, float64(s.FSM.MaxLevel()))
	entries, bytes := s.Hub.HistoryStats()
	gauge(descHistEntries, float64(entries))
	gauge(descHistBytes, float64(bytes))
	s.Transport.RateLimited(func(kind string, role api.Role, n uint64) {
		counter(descRateLimited, float64(n), kind, role.String())
	})
	total, perAddr := s.capped.Refused()
	counter(descConnRefused, float64(total), "total")
	counter(descConnRefused, float64(perAddr), "per_address")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// domainCollector computes the domain's live numbers from the state at
// scrape time, under the FSM's read lock. Ages are measured against this
// node's clock from the times the leader stamped into the state.
type domainCollector struct {
	s   *Server
	now func() time.Time
}

var (
	descRequestsOpen   = desc("switchboard_requests_open", "Requests not closed, by state (UNREAD, ACTIVE, INACTIVE).", "state")
	descListRequests   = desc("switchboard_list_requests", "Requests on a list, by list and state (UNREAD, INACTIVE).", "list", "state")
	descListOldest     = desc("switchboard_list_oldest_request_age_seconds", "Age (since it was created) of the oldest request on a list in the state (UNREAD, INACTIVE); 0 when there is none.", "list", "state")
	descQueueWaiting   = desc("switchboard_queue_waiting_requests", "Requests waiting in a queue for an agent (not offered).", "queue")
	descQueueOffered   = desc("switchboard_queue_offered_requests", "Requests of a queue offered to an agent and not yet answered.", "queue")
	descQueueLongest   = desc("switchboard_queue_longest_wait_seconds", "How long the longest-waiting request of a queue has waited (since it was queued); 0 when none waits.", "queue")
	descAgents         = desc("switchboard_agents", "Agents by MRD and state (READY, NOT_READY, LOGGED_OUT).", "mrd", "state")
	descAgentsLoggedIn = desc("switchboard_agents_logged_in", "Agents logged in.")
	descQueueSLToday   = desc("switchboard_queue_service_level_today", "Requests of a queue whose service level was decided today (UTC, leader time), by outcome (met, breached); met/(met+breached) is the queue's service level.", "queue", "outcome")
)

func (c domainCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequestsOpen, descListRequests, descListOldest, descQueueWaiting,
		descQueueOffered, descQueueLongest, descAgents, descAgentsLoggedIn, descQueueSLToday} {
		ch <- d
	}
}

// listStates are the request states counted per list.
var listStates = []api.RequestState{api.StateUnread, api.StateInactive}

// agentStates are the values of switchboard_agents's state label.
var agentStates = []api.AgentState{api.AgentReady, api.AgentNotReady, api.AgentLoggedOut}

func (c domainCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now().UnixNano()
	age := func(at int64) float64 {
		if at <= 0 || at > now {
			return 0
		}
		return float64(now-at) / 1e9
	}
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	// Only counting under the lock; the metrics go out after it.
	c.s.FSM.Read(func(st *fsm.State, _ uint64) {
		open := map[api.RequestState]int{api.StateUnread: 0, api.StateActive: 0, api.StateInactive: 0}
		for _, r := range st.Requests {
			if r.State != api.StateClosed {
				open[r.State]++
			}
		}
		for state, n := range open {
			gauge(descRequestsOpen, float64(n), string(state))
		}
		for id, l := range st.Lists {
			count := map[api.RequestState]int{}
			oldest := map[api.RequestState]int64{}
			for _, rid := range l.Requests {
				r := st.Requests[rid]
				if r == nil {
					continue
				}
				count[r.State]++
				if o, ok := oldest[r.State]; !ok || r.CreatedAt < o {
					oldest[r.State] = r.CreatedAt
				}
			}
			for _, state := range listStates {
				gauge(descListRequests, float64(count[state]), id, string(state))
				gauge(descListOldest, age(oldest[state]), id, string(state))
			}
		}
		for id, q := range st.Queues {
			var first int64
			for _, rid := range q.Waiting {
				if r := st.Requests[rid]; r != nil && r.QueuedAt > 0 && (first == 0 || r.QueuedAt < first) {
					first = r.QueuedAt
				}
			}
			met, breached := st.ServiceLevelToday(q)
			gauge(descQueueSLToday, float64(met), id, "met")
			gauge(descQueueSLToday, float64(breached), id, "breached")
			gauge(descQueueWaiting, float64(len(q.Waiting)), id)
			gauge(descQueueOffered, float64(len(q.Offered)), id)
			gauge(descQueueLongest, age(first), id)
		}
		byMRD := map[string]map[api.AgentState]int{}
		for mrd := range st.MRDs {
			byMRD[mrd] = map[api.AgentState]int{}
		}
		loggedIn := 0
		for _, a := range st.Agents {
			if a.LoggedIn {
				loggedIn++
			}
			for mrd, counts := range byMRD {
				counts[agentStateIn(a, mrd)]++
			}
		}
		for mrd, counts := range byMRD {
			for _, state := range agentStates {
				gauge(descAgents, float64(counts[state]), mrd, string(state))
			}
		}
		gauge(descAgentsLoggedIn, float64(loggedIn))
	})
	for _, m := range out {
		ch <- m
	}
}

// agentStateIn is an agent's effective state in an MRD, as the state
// machine routes by it: logged out, else its state there, else NOT_READY.
func agentStateIn(a *fsm.Agent, mrd string) api.AgentState {
	if !a.LoggedIn {
		return api.AgentLoggedOut
	}
	if st, ok := a.States[mrd]; ok {
		return st.State
	}
	return api.AgentNotReady
}
