package node

import (
	"context"
	"log/slog"

	"github.com/switchboard/switchboard/actors"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/vmihailenco/msgpack/v5"
)

// Agent presence across nodes, for the logout grace: before a node logs out
// an agent whose last session on it closed, it asks the other registered
// nodes whether the agent has a session there (a client that reconnected
// to another node keeps its login). A node that does not answer in time
// counts as having none: if it is down, its sessions are gone too.

// rpcAgentSessions asks a node how many sessions an agent has on it.
const rpcAgentSessions = "agent_sessions"

// presence answers and asks the other nodes which agents have sessions
// where: the node ops agent_sessions and agents_present (registered on the
// cluster service), and the leader's orphan sweep (orphans.go).
type presence struct {
	cl  *cluster.Service
	hub *actors.Hub
	fsm *cluster.FSM
	log *slog.Logger
}

func newPresence(cl *cluster.Service, hub *actors.Hub, logger *slog.Logger) *presence {
	return &presence{cl: cl, hub: hub, fsm: cl.Node().FSM(), log: logger}
}

// register adds presence's node ops to the cluster service.
func (p *presence) register() {
	p.cl.Handle(rpcAgentSessions, p.handleAgentSessions)
	p.cl.Handle(rpcAgentsPresent, p.handleAgentsPresent)
}

type agentSessionsArgs struct {
	Agent string `msgpack:"agent"`
}

type agentSessionsResult struct {
	Sessions int `msgpack:"sessions"`
}

// handleAgentSessions answers rpcAgentSessions from this node's hub.
func (p *presence) handleAgentSessions(_ context.Context, raw msgpack.RawMessage) (any, error) {
	var a agentSessionsArgs
	if err := msgpack.Unmarshal(raw, &a); err != nil || a.Agent == "" {
		return nil, api.Errorf(api.CodeBadRequest, "agent_sessions: want {agent}")
	}
	n, err := p.hub.AgentSessions(a.Agent)
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "agent_sessions: %v", err)
	}
	return agentSessionsResult{Sessions: n}, nil
}

// connectedElsewhere reports whether any other registered node says agent
// has a session on it. It needs only the cluster service, so the actors'
// logout grace can use it before the hub (and presence) exist.
func connectedElsewhere(cl *cluster.Service, ctx context.Context, agent string) bool {
	found := false
	cluster.AskPeers(cl, ctx, rpcAgentSessions, agentSessionsArgs{Agent: agent}, func(r agentSessionsResult) {
		found = found || r.Sessions > 0
	})
	return found
}
