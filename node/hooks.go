package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/actors"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

// actorsConfig is the hub's configuration for a node over cl: events
// encoded for the client protocol, stream views read from the state, and
// what the actors need to issue the node's own commands (offer timeouts,
// SLA and INACTIVE deadlines on the leader, logouts after the session
// grace): the cluster's write path,
// its leadership, reads of the state, and agent presence on the other
// nodes. The cluster service is made before the hub and touches no network
// until used, so every hook is bound here, at construction.
func actorsConfig(cl *cluster.Service, historySize int, grace time.Duration, logger *slog.Logger) actors.Config {
	node := cl.Node()
	f := node.FSM()
	return actors.Config{
		HistorySize: historySize,
		Encode:      func(ev fsm.Event) ([]byte, error) { return transport.EncodeEvent(ev.Seq, ev.Kind, ev.Data) },
		View: func(key string) (v api.StreamView, index uint64, ok bool) {
			f.Read(func(st *fsm.State, _ uint64) {
				v, ok = st.View(key)
				index = st.Index
			})
			return v, index, ok
		},
		Logger:      logger,
		NodeID:      node.ID(),
		LogoutGrace: grace,
		// Proposed on the leader, forwarded by a follower.
		Submit: func(ctx context.Context, cmd *fsm.Command) (fsm.Result, error) {
			res, _, err := cl.Commit(ctx, cmd)
			return res, err
		},
		IsLeader: node.IsLeader,
		PendingOffers: func() (offers []api.OfferInfo, index uint64) {
			f.Read(func(st *fsm.State, _ uint64) {
				offers = st.PendingOffers()
				index = st.Index
			})
			return offers, index
		},
		Deadlines: func(request string) (ds []fsm.Deadline, index uint64) {
			f.Read(func(st *fsm.State, _ uint64) {
				ds = st.Deadlines(request)
				index = st.Index
			})
			return ds, index
		},
		DeadlinesConfigured: func() (yes bool) {
			f.Read(func(st *fsm.State, _ uint64) { yes = st.DeadlinesConfigured() })
			return yes
		},
		ConnectedElsewhere: func(ctx context.Context, agent string) bool {
			return connectedElsewhere(cl, ctx, agent)
		},
		AgentPresence: func(agent string) (p fsm.Presence) {
			f.Read(func(st *fsm.State, _ uint64) { p = st.PresenceOf(agent) })
			return p
		},
	}
}
