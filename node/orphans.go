package node

import (
	"context"
	"slices"
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

// loggedInAgents returns the ids of the agents logged in, sorted.
func (p *presence) loggedInAgents() []string {
	var ids []string
	p.fsm.Read(func(st *fsm.State, _ uint64) {
		for id, ag := range st.Agents {
			if ag.LoggedIn {
				ids = append(ids, id)
			}
		}
	})
	slices.Sort(ids)
	return ids
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
// has reported a session for. Its clock is the caller's: since is when an
// agent was first found absent, cleared when it is seen again, when it
// logs out, and whenever this node stops leading.
type orphanSweeper struct {
	grace time.Duration
	since map[string]time.Time
}

// observe records one sweep at now of the logged-in agents and those of
// them present somewhere, and returns the agents absent for at least the
// grace, sorted.
func (o *orphanSweeper) observe(now time.Time, loggedIn []string, present map[string]bool) []string {
	if o.since == nil {
		o.since = map[string]time.Time{}
	}
	var due []string
	in := make(map[string]bool, len(loggedIn))
	for _, id := range loggedIn {
		in[id] = true
		if present[id] {
			delete(o.since, id)
			continue
		}
		first, seen := o.since[id]
		if !seen {
			o.since[id] = now
			continue
		}
		if now.Sub(first) >= o.grace {
			due = append(due, id)
		}
	}
	for id := range o.since {
		if !in[id] {
			delete(o.since, id)
		}
	}
	slices.Sort(due)
	return due
}

// reset forgets every absence (this node stopped leading).
func (o *orphanSweeper) reset() { clear(o.since) }

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
		ids := p.loggedInAgents()
		present, conclusive := p.presentAnywhere(ctx, ids)
		if !conclusive {
			// A node that is up could not say (or is of a version without
			// agents_present, in a rolling upgrade): count nobody absent.
			continue
		}
		due := o.observe(time.Now(), ids, present)
		for _, id := range due {
			p.logoutOrphan(ctx, id, grace)
		}
	}
}

// logoutOrphan logs out an agent no node has a session of.
func (p *presence) logoutOrphan(ctx context.Context, agent string, grace time.Duration) {
	log := p.log.With("agent", agent, "grace", grace)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := &fsm.Command{Op: fsm.OpLogout, By: api.Principal{Role: api.RoleSystem, ID: "node:" + p.cl.Node().ID()},
		Args: &api.AgentArgs{Agent: agent}}
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
