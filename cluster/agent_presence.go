package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// Agent presence across nodes, for the logout grace: before a node logs out
// an agent whose last session on it closed, it asks the other registered
// nodes whether the agent has a session there (a client that reconnected
// to another node keeps its login). A node that does not answer in time
// counts as having none: if it is down, its sessions are gone too.

// rpcAgentSessions asks a node how many sessions an agent has on it.
const rpcAgentSessions = "agent_sessions"

// presenceTimeout bounds the whole round of questions.
const presenceTimeout = 2 * time.Second

type agentSessionsArgs struct {
	Agent string `msgpack:"agent"`
}

type agentSessionsResult struct {
	Sessions int `msgpack:"sessions"`
}

func init() {
	if nodeHandlers[rpcAgentSessions] != nil {
		panic("cluster: node op " + rpcAgentSessions + " registered twice")
	}
	nodeHandlers[rpcAgentSessions] = (*Service).handleAgentSessions
}

// handleAgentSessions answers rpcAgentSessions from this node's hub.
func (s *Service) handleAgentSessions(_ context.Context, raw msgpack.RawMessage) (any, error) {
	var a agentSessionsArgs
	if err := msgpack.Unmarshal(raw, &a); err != nil || a.Agent == "" {
		return nil, api.Errorf(api.CodeBadRequest, "agent_sessions: want {agent}")
	}
	n, err := s.hub.AgentSessions(a.Agent)
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "agent_sessions: %v", err)
	}
	return agentSessionsResult{Sessions: n}, nil
}

// connectedElsewhere reports whether any other registered node says agent
// has a session on it.
func (s *Service) connectedElsewhere(ctx context.Context, agent string) bool {
	found := false
	askPeers(s, ctx, rpcAgentSessions, agentSessionsArgs{Agent: agent}, func(r agentSessionsResult) {
		found = found || r.Sessions > 0
	})
	return found
}

// askPeers calls op with args on every other registered node, all at once
// and within presenceTimeout, and hands each answer to got (one call at a
// time). It reports false if a node answered with an error (it is up but
// could not tell, or does not know op); a node that cannot be reached, or
// does not answer in time, is skipped as if it had nothing to tell: if it
// is down, its sessions are gone too.
func askPeers[R any](s *Service, ctx context.Context, op string, args any, got func(R)) (conclusive bool) {
	var nodes []fsm.NodeInfo
	s.node.FSM().Read(func(st *fsm.State, _ uint64) { nodes = st.NodeList() })
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	conclusive = true
	for _, n := range nodes {
		if n.ID == s.node.ID() || n.ClientAddr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r R
			err := s.cl.peers.call(ctx, n.ClientAddr, op, args, &r)
			mu.Lock()
			defer mu.Unlock()
			var answered *api.Error
			switch {
			case err == nil:
				got(r)
			case errors.As(err, &answered):
				s.cl.log.Debug("a node could not answer", "op", op, "node", n.ID, "err", err)
				conclusive = false
			default:
				s.cl.log.Debug("a node did not answer", "op", op, "node", n.ID, "err", err)
			}
		}()
	}
	wg.Wait()
	return conclusive
}
