package fsm

import "github.com/switchboard/switchboard/api"

// Replicated agent presence (feature level 3). A node logs out an agent
// that has had no session anywhere for the logout grace: the node that
// held its last session (actors/grace.go), or the leader's sweep
// (node/orphans.go). Both decide on what the nodes said at one moment and
// propose the logout later; an agent that attaches a session in between
// must keep its login. So presence goes through the log:
//
//   - agent_present: a node proposes it when the first session of a
//     logged-in agent attaches there; it stamps the agent with a new
//     presence value. login stamps one too, when it logs the agent in;
//   - logout_absent: a node's logout carries the presence value it read
//     before asking the nodes, and is refused (wrong_state, changing
//     nothing) if the agent's value differs: it attached or logged in
//     since the decision.
//
// Presence values come from one counter of the whole state
// (State.NextPresence), so a value is never reused, even by an agent
// deleted and created again. An agent's own logout, and an admin's, are
// unaffected. Below Level3 neither op exists, login stamps nothing and the
// nodes send a plain logout (AbsentLogout).

// Op numbers of the presence commands. Never renumber.
const (
	OpAgentPresent Op = 54 // AgentArgs; system (a node where the agent's first session attached)
	OpLogoutAbsent Op = 55 // LogoutAbsentArgs; system (the logout grace, the leader's orphan sweep)
)

// LogoutAbsentArgs logs out an agent found with no session anywhere, if its
// presence is still the one the node read before asking (Agent.Presence).
type LogoutAbsentArgs struct {
	Agent    string `msgpack:"agent"`
	Presence uint64 `msgpack:"presence"`
}

func registerPresence(r *Registry) {
	system := roles(api.RoleSystem)
	register(r, OpAgentPresent, api.OpAgentPresent, Level3, system, applyAgentPresent)
	register(r, OpLogoutAbsent, api.OpLogoutAbsent, Level3, system, applyLogoutAbsent)
}

// stampPresence gives the agent a presence value never used before.
func (s *State) stampPresence(ag *Agent) {
	s.NextPresence++
	ag.Presence = s.NextPresence
}

// applyAgentPresent stamps the agent with a new presence value, so that a
// logout_absent decided before cannot apply. It causes no event.
func applyAgentPresent(s *State, c *Command, a *api.AgentArgs, _ *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	s.stampPresence(ag)
	return nil, nil
}

// applyLogoutAbsent is logout by a node that found the agent absent,
// refused if the agent's presence changed since.
func applyLogoutAbsent(s *State, c *Command, a *LogoutAbsentArgs, out *events) (any, *api.Error) {
	ag, err := s.actingAgent(c, a.Agent)
	if err != nil {
		return nil, err
	}
	if !ag.LoggedIn {
		return nil, api.Errorf(api.CodeWrongState, "agent %q is not logged in", ag.ID)
	}
	if ag.Presence != a.Presence {
		return nil, api.Errorf(api.CodeWrongState, "agent %q attached or logged in since it was found absent (presence %d, now %d)",
			ag.ID, a.Presence, ag.Presence)
	}
	return s.logout(ag, out), nil
}

// Presence is what the state says of an agent for the logout grace.
type Presence struct {
	// LoggedIn says the agent exists and is logged in.
	LoggedIn bool
	// Value is the agent's presence value (Agent.Presence).
	Value uint64
	// Replicated says the cluster runs at Level3 or above: attaches are
	// announced (agent_present) and a node's logout carries Value
	// (logout_absent).
	Replicated bool
}

// PresenceOf returns the agent's presence; the zero Presence for an
// unknown agent.
func (s *State) PresenceOf(agent string) Presence {
	ag := s.Agents[agent]
	if ag == nil {
		return Presence{}
	}
	return Presence{LoggedIn: ag.LoggedIn, Value: ag.Presence, Replicated: s.ActiveLevel() >= Level3}
}

// AbsentLogout is the command by which a node logs out an agent that no
// node reported a session of, p being what the state said of the agent
// before the node asked: logout_absent carrying p.Value when presence is
// replicated, a plain logout below Level3.
func AbsentLogout(by api.Principal, agent string, p Presence) *Command {
	if p.Replicated {
		return &Command{Op: OpLogoutAbsent, By: by, Args: &LogoutAbsentArgs{Agent: agent, Presence: p.Value}}
	}
	return &Command{Op: OpLogout, By: by, Args: &api.AgentArgs{Agent: agent}}
}
