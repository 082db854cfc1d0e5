package cluster

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/actors"
	"github.com/switchboard/switchboard/fsm"
)

// systemHooks gives the actors what they need to issue the node's own
// commands (offer timeouts on the leader, logouts after the session grace):
// the node's write path, its leadership and reads of its state. The hub is
// made before the node and the service, so those are filled in once they
// exist; until then a submit fails with unavailable.
type systemHooks struct {
	node atomic.Pointer[Node]
	svc  atomic.Pointer[Service]
}

// configure sets the system-command fields of c for a node over f.
func (h *systemHooks) configure(c actors.Config, f *FSM, nodeID string, grace time.Duration) actors.Config {
	c.NodeID = nodeID
	c.LogoutGrace = grace
	c.Submit = h.submit
	c.IsLeader = func() bool {
		n := h.node.Load()
		return n != nil && n.IsLeader()
	}
	c.PendingOffers = func() (offers []fsm.OfferInfo, index uint64) {
		f.Read(func(st *fsm.State, _ uint64) {
			offers = st.PendingOffers()
			index = st.Index
		})
		return offers, index
	}
	c.ConnectedElsewhere = func(ctx context.Context, agent string) bool {
		svc := h.svc.Load()
		return svc != nil && svc.connectedElsewhere(ctx, agent)
	}
	c.AgentLoggedIn = func(agent string) (in bool) {
		f.Read(func(st *fsm.State, _ uint64) {
			if ag := st.Agents[agent]; ag != nil {
				in = ag.LoggedIn
			}
		})
		return in
	}
	return c
}

// submit commits a system command through the service: proposed on the
// leader, forwarded by a follower.
func (h *systemHooks) submit(ctx context.Context, cmd *fsm.Command) (fsm.Result, error) {
	svc := h.svc.Load()
	if svc == nil {
		return fsm.Result{}, failure("submit", fsm.CodeUnavailable, "node starting", nil)
	}
	res, _, err := svc.Submit(ctx, cmd)
	return res, err
}
