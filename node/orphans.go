package node

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// Orphaned logins. A node logs out an agent whose last session on it
// closed and stayed closed for the logout grace (actors/grace.go). That
// node must live to do so: if it dies, or is cut off, with agents
// connected, nobody would ever log them out, and the router would keep
// offering chats to consoles that are gone. So the leader also sweeps:
// every few seconds it asks every registered node which logged-in agents
// have a session there, and logs out those no node has reported for a
// whole grace. A node that does not answer counts as having no sessions.
//
// The sweep reads each agent's presence (fsm/presence.go) before asking
// the nodes, and an absence lasts only while the presence stays the same:
// with presence replicated (feature level 3), a session that attached and
// left again between two rounds starts the absence anew, and the logout
// (logout_absent) carries the presence of the absence, so the state
// machine refuses it if a session attached, or the agent logged in,
// between the last round and the apply.

// rpcAgentsPresent asks a node which of a list of agents have a session
// on it.
const rpcAgentsPresent = "agents_present"

// Bounds of the sweep's period: a quarter of the grace, within these.
const (
	minSweepEvery = 250 * time.Millisecond
	maxSweepEvery = 10 * time.Second
)

type agentsPresentArgs struct {
	Agents []string `msgpack:"agents"`
}

type agentsPresentResult struct {
	Present []string `msgpack:"present"`
}

// handleAgentsPresent answers rpcAgentsPresent from this node's hub.
func (p *presence) handleAgentsPresent(ctx context.Context, raw msgpack.RawMessage) (any, error) {
	var a agentsPresentArgs
	if err := msgpack.Unmarshal(raw, &a); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "agents_present: want {agents}")
	}
	present, err := p.localPresent(ctx, a.Agents)
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "agents_present: %v", err)
	}
	return agentsPresentResult{Present: present}, nil
}

// localPresent returns the agents of ids with a session on this node.
func (p *presence) localPresent(ctx context.Context, ids []string) ([]string, error) {
	var present []string
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := p.hub.AgentSessions(id)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			present = append(present, id)
		}
	}
	return present, nil
}

// loggedIn is a logged-in agent and its presence, as the state says.
type loggedIn struct {
	id string
	p  fsm.Presence
}

// loggedInAgents returns the agents logged in, sorted by id.
func (p *presence) loggedInAgents() []loggedIn {
	var in []loggedIn
	p.fsm.Read(func(st *fsm.State, _ uint64) {
		for id, ag := range st.Agents {
			if ag.LoggedIn {
				in = append(in, loggedIn{id: id, p: st.PresenceOf(id)})
			}
		}
	})
	slices.SortFunc(in, func(a, b loggedIn) int { return strings.Compare(a.id, b.id) })
	return in
}

// presentAnywhere asks this node and every other registered node which of
// ids have a session, and returns their union. It reports false if the
// answer is incomplete because a node answered with an error (askPeers);
// a node that cannot be reached counts as having no sessions.
func (p *presence) presentAnywhere(ctx context.Context, ids []string) (present map[string]bool, conclusive bool) {
	present = map[string]bool{}
	local, err := p.localPresent(ctx, ids)
	if err != nil {
		return nil, false
	}
	add := func(ps []string) {
		for _, id := range ps {
			present[id] = true
		}
	}
	add(local)
	conclusive = cluster.AskPeers(p.cl, ctx, rpcAgentsPresent, agentsPresentArgs{Agents: ids}, func(r agentsPresentResult) { add(r.Present) })
	return present, conclusive
}

// orphanSweeper is the leader's bookkeeping of logged-in agents no node
// has reported a session for. Its clock is the caller's: an absence
// starts when an agent is first found absent with a presence value, and
// is forgotten when the agent is seen again, when it logs out, when its
// presence changes, and whenever this node stops leading.
type orphanSweeper struct {
	grace  time.Duration
	absent map[string]absence
}

// absence is when an agent was first found absent, and its presence then.
type absence struct {
	since time.Time
	value uint64
}

// observe records one sweep at now of the logged-in agents (their
// presence read before the nodes were asked) and those of them present
// somewhere, and returns the agents absent with the same presence for at
// least the grace, sorted.
func (o *orphanSweeper) observe(now time.Time, in []loggedIn, present map[string]bool) []loggedIn {
	if o.absent == nil {
		o.absent = map[string]absence{}
	}
	var due []loggedIn
	ids := make(map[string]bool, len(in))
	for _, ag := range in {
		ids[ag.id] = true
		if present[ag.id] {
			delete(o.absent, ag.id)
			continue
		}
		first, seen := o.absent[ag.id]
		if !seen || first.value != ag.p.Value {
			o.absent[ag.id] = absence{since: now, value: ag.p.Value}
			continue
		}
		if now.Sub(first.since) >= o.grace {
			due = append(due, ag)
		}
	}
	for id := range o.absent {
		if !ids[id] {
			delete(o.absent, id)
		}
	}
	slices.SortFunc(due, func(a, b loggedIn) int { return strings.Compare(a.id, b.id) })
	return due
}

// reset forgets every absence (this node stopped leading).
func (o *orphanSweeper) reset() { clear(o.absent) }

// sweepOrphans runs the leader's sweep of orphaned logins until ctx ends;
// grace is the logout grace (not positive: it returns at once).
func (p *presence) sweepOrphans(ctx context.Context, grace time.Duration) {
	if grace <= 0 {
		return
	}
	every := min(max(grace/4, minSweepEvery), maxSweepEvery)
	o := &orphanSweeper{grace: grace}
	for sleepCtx(ctx, every) == nil {
		if !p.cl.Node().IsLeader() {
			o.reset()
			continue
		}
		in := p.loggedInAgents()
		ids := make([]string, len(in))
		for i, ag := range in {
			ids[i] = ag.id
		}
		present, conclusive := p.presentAnywhere(ctx, ids)
		if !conclusive {
			// A node that is up could not say (or is of a version without
			// agents_present, in a rolling upgrade): count nobody absent.
			continue
		}
		for _, ag := range o.observe(time.Now(), in, present) {
			p.logoutOrphan(ctx, ag, grace)
		}
	}
}

// logoutOrphan logs out an agent no node has a session of, unless its
// presence changed since it was found absent.
func (p *presence) logoutOrphan(ctx context.Context, ag loggedIn, grace time.Duration) {
	log := p.log.With("agent", ag.id, "grace", grace)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := fsm.AbsentLogout(api.Principal{Role: api.RoleSystem, ID: "node:" + p.cl.Node().ID()}, ag.id, ag.p)
	res, _, err := p.cl.Commit(ctx, cmd)
	switch {
	case err != nil:
		log.Warn("could not log out an agent no node has a session of", "err", err)
	case res.Err != nil:
		log.Debug("logout of an orphaned agent refused", "err", res.Err)
	default:
		log.Info("logged out an agent no node has had a session of for the grace")
	}
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
