package actors

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// The logout grace. An agent's actor counts the sessions attached on this
// node; when the last one closes, it arms a timer of Config.LogoutGrace. A
// session attaching before it fires disarms it. When it fires, the node
// proposes logout for the agent (RoleSystem) through Config.Submit — on a
// follower that is forwarded to the leader — if local state says the agent
// is logged in; the FSM returns the agent's pending offers to their queues.
//
// The count is this node's. Before proposing, the node asks the others
// (Config.ConnectedElsewhere) whether the agent has a session there — a
// client that reconnected to another node keeps its login. An agent whose
// node dies is not logged out by this node: its timer died with the node
// (the leader's sweep does it, node/orphans.go).
//
// Between the question and the logout's apply, a session may attach here
// or elsewhere; it must keep the login. With presence replicated (feature
// level 3, fsm/presence.go) the first session of a logged-in agent to
// attach on a node proposes agent_present, which gives the agent a new
// presence value, and the grace's logout is logout_absent carrying the
// value read before asking: the state machine refuses it if the agent
// attached (its agent_present applied first) or logged in since. A
// further session on a node that already has one proposes nothing: that
// node answers "present" to any question asked meanwhile.

// graceDue is the grace timer of incarnation gen firing.
type graceDue struct{ gen uint64 }

// graceState is the agent actor's part of the logout grace.
type graceState struct {
	attached int         // sessions attached (attachMsg minus detachMsg)
	timer    *time.Timer // running grace timer, if any
	gen      uint64      // bumped whenever the timer is armed or disarmed
}

// sessionOpened counts an attached session and cancels a running grace.
// The agent's first session here is announced to the cluster.
func (a *agent) sessionOpened() {
	a.grace.attached++
	a.stopGrace()
	if a.grace.attached == 1 {
		a.announcePresence()
	}
}

// announcePresence proposes agent_present for a logged-in agent, when
// presence is replicated, so that a logout decided before this attach
// (here or on another node) is refused.
func (a *agent) announcePresence() {
	id, ok := strings.CutPrefix(a.key, api.AgentKey(""))
	h := a.hub
	if !ok || id == "" || h.cfg.Submit == nil || h.cfg.AgentPresence == nil || h.cfg.LogoutGrace < 0 {
		return
	}
	if p := h.cfg.AgentPresence(id); !p.LoggedIn || !p.Replicated {
		return
	}
	cmd := &fsm.Command{Op: fsm.OpAgentPresent, By: h.system(), Args: &api.AgentArgs{Agent: id}}
	h.submit(cmd, func(res fsm.Result, err error) {
		switch {
		case err != nil:
			h.log.Warn("could not announce an agent's session to the cluster", "agent", id, "err", err)
		case res.Err != nil:
			h.log.Debug("agent_present refused", "agent", id, "err", res.Err)
		}
	})
}

// sessionClosed counts a detached session; the last one arms the grace.
func (a *agent) sessionClosed(c *actor.Context) {
	if a.grace.attached > 0 {
		a.grace.attached--
	}
	if a.grace.attached > 0 {
		return
	}
	id, ok := strings.CutPrefix(a.key, api.AgentKey(""))
	if !ok || id == "" || a.hub.cfg.Submit == nil || a.hub.cfg.LogoutGrace < 0 {
		return
	}
	a.stopGrace()
	a.grace.timer = sendAfter(c.Engine(), c.PID(), a.hub.cfg.LogoutGrace, graceDue{gen: a.grace.gen})
}

// stopGrace disarms the grace timer; a firing already on its way is
// ignored by its stale gen.
func (a *agent) stopGrace() {
	if a.grace.timer != nil {
		a.grace.timer.Stop()
		a.grace.timer = nil
	}
	a.grace.gen++
}

// graceExpired logs the agent out if no session came back.
func (a *agent) graceExpired(m graceDue) {
	if m.gen != a.grace.gen || a.grace.attached > 0 {
		return
	}
	a.grace.timer = nil
	id, _ := strings.CutPrefix(a.key, api.AgentKey(""))
	h := a.hub
	// The presence is read before the other nodes are asked: a session
	// that attaches anywhere after this read changes it.
	p := fsm.Presence{LoggedIn: true}
	if h.cfg.AgentPresence != nil {
		p = h.cfg.AgentPresence(id)
	}
	if !p.LoggedIn || h.cfg.Submit == nil {
		return
	}
	log := h.log.With("agent", id, "grace", h.cfg.LogoutGrace)
	cmd := fsm.AbsentLogout(h.system(), id, p)
	h.job(func(ctx context.Context) {
		if h.cfg.ConnectedElsewhere != nil && h.cfg.ConnectedElsewhere(ctx, id) {
			log.Debug("not logging out an agent connected to another node")
			return
		}
		res, err := h.cfg.Submit(ctx, cmd)
		switch {
		case err != nil:
			log.Warn("could not log out an agent with no session", "err", err)
		case res.Err != nil:
			log.Debug("logout of an agent with no session refused", "err", res.Err)
		default:
			log.Info("logged out an agent whose last session closed")
		}
	})
}

// attachedQuery asks an agent actor how many sessions are attached.
type attachedQuery struct{}

// AgentSessions returns how many sessions of agent id are attached on
// this node.
func (h *Hub) AgentSessions(id string) (int, error) {
	pid, err := h.lookup(h.agents, api.AgentKey(id))
	if errors.Is(err, ErrNoView) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	res, err := h.ask(pid, attachedQuery{})
	if err != nil {
		return 0, err
	}
	n, _ := res.(int)
	return n, nil
}
