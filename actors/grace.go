package actors

import (
	"strings"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/switchboard/switchboard/fsm"
)

// The logout grace. An agent's actor counts the sessions attached on this
// node; when the last one closes, it arms a timer of Config.LogoutGrace. A
// session attaching before it fires disarms it. When it fires, the node
// proposes logout for the agent (RoleSystem) through Config.Submit — on a
// follower that is forwarded to the leader — if local state says the agent
// is logged in; the FSM returns the agent's pending offers to their queues.
//
// The count is this node's: an agent with sessions on two nodes that
// closes the one here is logged out by this node, and an agent whose node
// dies is not logged out by anyone (its timer died with the node).

// graceDue is the grace timer of incarnation gen firing.
type graceDue struct{ gen uint64 }

// graceState is the agent actor's part of the logout grace.
type graceState struct {
	attached int         // sessions attached (attachMsg minus detachMsg)
	timer    *time.Timer // running grace timer, if any
	gen      uint64      // bumped whenever the timer is armed or disarmed
}

// sessionOpened counts an attached session and cancels a running grace.
func (a *agent) sessionOpened() {
	a.grace.attached++
	a.stopGrace()
}

// sessionClosed counts a detached session; the last one arms the grace.
func (a *agent) sessionClosed(c *actor.Context) {
	if a.grace.attached > 0 {
		a.grace.attached--
	}
	if a.grace.attached > 0 {
		return
	}
	id, ok := strings.CutPrefix(a.key, fsm.AgentKey(""))
	if !ok || id == "" || a.hub.cfg.Submit == nil || a.hub.cfg.LogoutGrace < 0 {
		return
	}
	a.stopGrace()
	gen, e, pid := a.grace.gen, c.Engine(), c.PID()
	a.grace.timer = time.AfterFunc(a.hub.cfg.LogoutGrace, func() { e.Send(pid, graceDue{gen: gen}) })
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
	id, _ := strings.CutPrefix(a.key, fsm.AgentKey(""))
	h := a.hub
	if h.cfg.AgentLoggedIn != nil && !h.cfg.AgentLoggedIn(id) {
		return
	}
	log := h.log.With("agent", id, "grace", h.cfg.LogoutGrace)
	cmd := &fsm.Command{Op: fsm.OpLogout, By: h.system(), Args: &fsm.AgentArgs{Agent: id}}
	h.submit(cmd, func(res fsm.Result, err error) {
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
