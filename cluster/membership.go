package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// Membership timings.
const (
	// membershipTimeout bounds one configuration change (AddVoter,
	// RemoveServer) on the leader.
	membershipTimeout = 10 * time.Second
	// joinBackoffMax caps the pause between join attempts.
	joinBackoffMax = 5 * time.Second
	// maintainEvery is how often a node checks its registry entry;
	// maintainSoon while the entry is not right yet.
	maintainEvery = time.Second
	maintainSoon  = 100 * time.Millisecond
)

// systemPrincipal is the principal of commands a node proposes itself.
func (s *Service) systemPrincipal() api.Principal {
	return api.Principal{Role: api.RoleSystem, ID: "node:" + s.node.ID()}
}

// handleInfo answers rpcInfo: who this node is and the leader it knows.
func (s *Service) handleInfo(context.Context, msgpack.RawMessage) (any, error) {
	self := s.Self()
	info := nodeInfo{ID: self.ID, RaftAddr: self.RaftAddr, ClientAddr: self.ClientAddr, HasState: s.node.HasState(),
		MaxLevel: s.node.FSM().MaxLevel()}
	info.Leader, info.LeaderClient = s.leaderClient()
	if r := s.node.Raft(); r != nil && r.LastIndex() > 0 {
		info.HasState = true
	}
	return info, nil
}

// handleJoin is the leader's side of rpcJoin: it makes the node a voter
// (a no-op if it already is one with this address; a node known under the
// same id or the same Raft address is replaced) and records it in the
// registry.
func (s *Service) handleJoin(ctx context.Context, raw msgpack.RawMessage) (any, error) {
	var n fsm.NodeInfo
	if err := msgpack.Unmarshal(raw, &n); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "join: arguments: %v", err)
	}
	if n.ID == "" || n.RaftAddr == "" || n.ClientAddr == "" {
		return nil, api.Errorf(api.CodeBadRequest, "join: id, raft_addr and client_addr are required")
	}
	if !s.node.IsLeader() {
		return nil, s.notLeader("join")
	}
	if err := s.addVoter(ctx, n); err != nil {
		return nil, err
	}
	if err := s.Register(ctx, n); err != nil {
		return nil, err
	}
	return nil, nil
}

// addVoter makes n a voter, removing first any server with n's id or Raft
// address but not both.
func (s *Service) addVoter(ctx context.Context, n fsm.NodeInfo) error {
	r, err := s.node.current("join")
	if err != nil {
		return err
	}
	servers, err := s.node.configuration()
	if err != nil {
		return err
	}
	present := false
	for _, srv := range servers {
		sameID, sameAddr := string(srv.ID) == n.ID, string(srv.Address) == n.RaftAddr
		switch {
		case sameID && sameAddr:
			present = srv.Suffrage == raft.Voter
		case sameID || sameAddr:
			if string(srv.ID) == s.node.ID() {
				return api.Errorf(api.CodeBadRequest, "join: %s at %s would replace the leader itself (%s at %s); transfer leadership first",
					n.ID, n.RaftAddr, srv.ID, srv.Address)
			}
			s.log.Info("join: replacing server", "old_id", srv.ID, "old_addr", srv.Address, "id", n.ID, "addr", n.RaftAddr)
			if err := waitFuture(ctx, r.RemoveServer(srv.ID, 0, membershipTimeout)); err != nil {
				return s.leaderFailure("join", err)
			}
		}
	}
	if present {
		s.log.Debug("join: already a voter", "id", n.ID, "addr", n.RaftAddr)
		return nil
	}
	if err := waitFuture(ctx, r.AddVoter(raft.ServerID(n.ID), raft.ServerAddress(n.RaftAddr), 0, membershipTimeout)); err != nil {
		return s.leaderFailure("join", err)
	}
	s.log.Info("join: added voter", "id", n.ID, "addr", n.RaftAddr, "client", n.ClientAddr)
	return nil
}

// Register records n in the node registry unless local state already
// holds it (committed through the leader, like any command).
func (s *Service) Register(ctx context.Context, n fsm.NodeInfo) error {
	if have, ok := s.Registered(n.ID); ok && have == n {
		return nil
	}
	cmd := &fsm.Command{Op: fsm.OpRegisterNode, By: s.systemPrincipal(), Args: &fsm.RegisterNodeArgs{Node: n}}
	res, _, err := s.Commit(ctx, cmd)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	return nil
}

// deregister removes node id from the registry.
func (s *Service) deregister(ctx context.Context, id string) error {
	cmd := &fsm.Command{Op: fsm.OpDeregisterNode, By: s.systemPrincipal(), Args: &fsm.DeregisterNodeArgs{ID: id}}
	res, _, err := s.Commit(ctx, cmd)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	return nil
}

// handleRemove is the leader's side of RPCRemove.
func (s *Service) handleRemove(ctx context.Context, raw msgpack.RawMessage) (any, error) {
	var a NodeIDArgs
	if err := msgpack.Unmarshal(raw, &a); err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "remove: arguments: %v", err)
	}
	if a.Node == "" {
		return nil, api.Errorf(api.CodeBadRequest, "remove: node is required")
	}
	if !s.node.IsLeader() {
		return nil, s.notLeader("remove")
	}
	servers, err := s.node.configuration()
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(servers, func(srv raft.Server) bool { return string(srv.ID) == a.Node }) {
		return nil, api.Errorf(api.CodeNotFound, "node %q is not a member", a.Node)
	}
	// Registry first: once removed, a leader removing itself can no longer
	// commit anything.
	if err := s.deregister(ctx, a.Node); err != nil {
		return nil, err
	}
	r, err := s.node.current("remove")
	if err != nil {
		return nil, err
	}
	if err := waitFuture(ctx, r.RemoveServer(raft.ServerID(a.Node), 0, membershipTimeout)); err != nil {
		return nil, s.leaderFailure("remove", err)
	}
	s.log.Info("removed server", "id", a.Node)
	return nil, nil
}

// handleTransfer is the leader's side of RPCTransfer: it hands leadership
// to the named voter, or to the most up-to-date one, and waits (briefly)
// for the new leader to be known.
func (s *Service) handleTransfer(ctx context.Context, raw msgpack.RawMessage) (any, error) {
	var a NodeIDArgs
	if len(raw) > 0 {
		if err := msgpack.Unmarshal(raw, &a); err != nil {
			return nil, api.Errorf(api.CodeBadRequest, "transfer: arguments: %v", err)
		}
	}
	if !s.node.IsLeader() {
		return nil, s.notLeader("transfer leadership")
	}
	self := s.node.ID()
	if a.Node == self {
		return TransferResult{From: self, To: self}, nil
	}
	r, err := s.node.current("transfer leadership")
	if err != nil {
		return nil, err
	}
	var f raft.Future
	if a.Node == "" {
		f = r.LeadershipTransfer()
	} else {
		servers, err := s.node.configuration()
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(servers, func(srv raft.Server) bool { return string(srv.ID) == a.Node })
		if i < 0 || servers[i].Suffrage != raft.Voter {
			return nil, api.Errorf(api.CodeNotFound, "node %q is not a voter", a.Node)
		}
		f = r.LeadershipTransferToServer(servers[i].ID, servers[i].Address)
	}
	if err := waitFuture(ctx, f); err != nil {
		return nil, s.leaderFailure("transfer leadership", err)
	}
	out := TransferResult{From: self}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if id, _ := s.node.Leader(); id != "" && id != self {
			out.To = id
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.log.Info("leadership transferred", "to", out.To)
	return out, nil
}

// LeaderCall runs a leader-only node op (RPCRemove, RPCTransfer,
// RPCSnapshotRead...) with args and decodes its result into out: here
// when this node leads, else on the leader through node RPC. It waits out
// a leaderless stretch up to the no-leader wait and follows not_leader
// answers.
func (s *Service) LeaderCall(ctx context.Context, op string, args, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*s.node.cfg.ApplyTimeout)
		defer cancel()
	}
	raw, err := msgpack.Marshal(args)
	if err != nil {
		return err
	}
	var noLeaderSince time.Time
	backoff := 10 * time.Millisecond
	for {
		if s.node.IsLeader() {
			err := s.handlerCall(ctx, op, raw, out)
			if err == nil {
				return nil
			}
			if c := api.CodeOf(err); c != api.CodeNotLeader && c != api.CodeNoLeader {
				return err
			}
		} else if id, addr := s.leaderClient(); id != "" && addr != "" && id != s.node.ID() {
			err = s.peers.call(ctx, addr, op, msgpack.RawMessage(raw), out)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, errPeerLost):
				return failure(op, api.CodeTimeout, "connection to the leader lost; outcome unknown", err)
			case errors.Is(err, errPeerUnreachable):
			case api.CodeOf(err) == api.CodeNotLeader || api.CodeOf(err) == api.CodeNoLeader:
			default:
				return err
			}
		}
		if noLeaderSince.IsZero() {
			noLeaderSince = time.Now()
		} else if time.Since(noLeaderSince) >= s.noLeaderWait {
			return noLeader(op, noLeaderRetry)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return noLeader(op, noLeaderRetry)
		}
		backoff = min(2*backoff, forwardBackoffMax)
	}
}

// JoinCluster asks the nodes at addrs (client addresses) to add this node
// as a voter, trying them in turn (and the leader any of them names) with
// backoff until one succeeds or ctx ends. Joining again with the same id
// and addresses is a no-op.
func (s *Service) JoinCluster(ctx context.Context, addrs []string) error {
	self := s.Self()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var last error
		for _, addr := range addrs {
			if addr == self.ClientAddr {
				continue
			}
			err := s.peers.call(ctx, addr, rpcJoin, self, nil)
			var he *hintError
			if err != nil && errors.As(err, &he) && he.leader != "" && he.leader != addr {
				err = s.peers.call(ctx, he.leader, rpcJoin, self, nil)
			}
			if err == nil {
				s.log.Info("joined the cluster", "via", addr, "attempts", attempt)
				return nil
			}
			if c := api.CodeOf(err); c == api.CodeUnauthenticated || c == api.CodeBadRequest {
				return fmt.Errorf("cluster: join via %s: %w", addr, err)
			}
			last = err
		}
		if last == nil {
			return errors.New("cluster: join: no address to join other than this node's own")
		}
		s.log.Info("join failed; retrying", "err", last, "in", backoff)
		if err := sleepCtx(ctx, backoff); err != nil {
			return fmt.Errorf("cluster: join: %w (last attempt: %v)", err, last)
		}
		backoff = min(2*backoff, joinBackoffMax)
	}
}

// ExpectCluster forms a new cluster of at least n nodes with the nodes at
// addrs (client addresses), which must be started with the same list:
// each node polls the others until n of them (itself included), all
// without Raft state, have met; the one with the lowest id then
// bootstraps them all as voters, and the others wait to be contacted. If
// any of them already belongs to a cluster with a leader, this node joins
// it instead. It returns once this node knows a leader, or ctx ends.
func (s *Service) ExpectCluster(ctx context.Context, addrs []string, n int) error {
	self := s.Self()
	for {
		if id, _ := s.node.Leader(); id != "" {
			return nil
		}
		infos := s.gatherInfo(ctx, addrs)
		met := map[string]nodeInfo{self.ID: {ID: self.ID, RaftAddr: self.RaftAddr, ClientAddr: self.ClientAddr}}
		formed, stateful := false, false
		for _, in := range infos {
			switch {
			case in.ID == self.ID && in.ClientAddr != self.ClientAddr:
				return fmt.Errorf("cluster: node at %s has this node's id %q", in.ClientAddr, self.ID)
			case in.ID == self.ID:
				continue
			case in.Leader != "":
				formed = true
			case in.HasState:
				stateful = true
			}
			met[in.ID] = in
		}
		switch {
		case formed:
			s.log.Info("bootstrap-expect: a cluster already exists; joining it")
			return s.JoinCluster(ctx, addrs)
		case stateful:
			s.log.Info("bootstrap-expect: a peer has Raft state but no leader yet; waiting")
		case len(met) >= n:
			ids := make([]string, 0, len(met))
			for id := range met {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if ids[0] != self.ID {
				s.log.Info("bootstrap-expect: enough nodes met; waiting for the lowest id to bootstrap", "bootstrapper", ids[0], "nodes", ids)
				break
			}
			servers := make([]raft.Server, len(ids))
			for i, id := range ids {
				servers[i] = raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(met[id].RaftAddr)}
			}
			if err := s.node.BootstrapServers(servers); err != nil {
				return err
			}
			s.log.Info("bootstrap-expect: bootstrapped the cluster", "nodes", ids)
			return nil
		default:
			s.log.Info("bootstrap-expect: waiting for nodes", "met", len(met), "expect", n)
		}
		if err := sleepCtx(ctx, 300*time.Millisecond+rand.N(200*time.Millisecond)); err != nil {
			return fmt.Errorf("cluster: bootstrap-expect: %w", err)
		}
	}
}

// gatherInfo asks every address but this node's own for its info.
func (s *Service) gatherInfo(ctx context.Context, addrs []string) []nodeInfo {
	var (
		mu  sync.Mutex
		out []nodeInfo
		wg  sync.WaitGroup
	)
	for _, addr := range addrs {
		if addr == s.clientAddr {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var in nodeInfo
			if err := s.peers.call(cctx, addr, rpcInfo, nil, &in); err != nil {
				s.log.Debug("info", "addr", addr, "err", err)
				return
			}
			mu.Lock()
			out = append(out, in)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// Maintain keeps the registry right until ctx ends: a member whose entry
// is missing or stale registers itself (after a restore, an address
// change, a restart with a wiped data dir), and the leader drops the
// entries of nodes that are no longer members.
func (s *Service) Maintain(ctx context.Context) {
	for {
		wait := maintainEvery
		if !s.maintainOnce(ctx) {
			wait = maintainSoon
		}
		if sleepCtx(ctx, wait) != nil {
			return
		}
	}
}

// maintainOnce makes one pass; it reports whether this node's own entry
// is right (or it is not a member).
func (s *Service) maintainOnce(ctx context.Context) bool {
	if id, _ := s.node.Leader(); id == "" {
		return false
	}
	servers, err := s.node.configuration()
	if err != nil {
		return false
	}
	self := s.Self()
	member := slices.ContainsFunc(servers, func(srv raft.Server) bool { return string(srv.ID) == self.ID })
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ok := true
	if member {
		if have, found := s.Registered(self.ID); !found || have != self {
			if err := s.Register(cctx, self); err != nil {
				s.log.Debug("registering this node", "err", err)
				ok = false
			} else {
				s.log.Info("registered this node", "raft_addr", self.RaftAddr, "client_addr", self.ClientAddr)
			}
		}
	}
	if !s.node.IsLeader() {
		return ok
	}
	var stale []string
	s.node.FSM().Read(func(st *fsm.State, _ uint64) {
		for _, n := range st.NodeList() {
			if !slices.ContainsFunc(servers, func(srv raft.Server) bool { return string(srv.ID) == n.ID }) {
				stale = append(stale, n.ID)
			}
		}
	})
	for _, id := range stale {
		if err := s.deregister(cctx, id); err != nil {
			s.log.Debug("dropping a stale registry entry", "id", id, "err", err)
			return ok
		}
		s.log.Info("dropped the registry entry of a former member", "id", id)
	}
	s.raiseLevel(cctx, servers)
	return ok
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
