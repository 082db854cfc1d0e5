package cluster

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// The leader raises the cluster's feature level (fsm/levels.go) to the
// highest level every member's build applies, as etcd's leader raises its
// cluster version: it asks each member for its info (MaxLevel, learned
// live, so a member still running an older build holds the level down) and
// proposes set_feature_level once all answer with more than the active
// level. A member that does not answer, or is not in the registry, holds
// the raise until it does: an unknown build is assumed old.

// RaiseLevel makes one attempt on the leader (a no-op elsewhere): a node
// that bootstraps a cluster calls it before serving, so a new cluster (or
// one restored from a backup) starts at the level of its build.
func (s *Service) RaiseLevel(ctx context.Context) {
	if !s.node.IsLeader() {
		return
	}
	if members, err := s.node.configuration(); err == nil {
		s.raiseLevel(ctx, members)
	}
}

// raiseLevel makes one attempt; the leader's upkeep calls it every pass.
func (s *Service) raiseLevel(ctx context.Context, members []raft.Server) {
	var active uint32
	s.node.FSM().Read(func(st *fsm.State, _ uint64) { active = st.ActiveLevel() })
	target := s.node.FSM().MaxLevel()
	if target <= active {
		return
	}
	for _, m := range members {
		if string(m.ID) == s.node.ID() {
			continue
		}
		reg, ok := s.Registered(string(m.ID))
		if !ok {
			s.log.Debug("feature level: member not registered yet", "id", m.ID)
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var in nodeInfo
		err := s.peers.call(cctx, reg.ClientAddr, rpcInfo, nil, &in)
		cancel()
		if err != nil {
			s.log.Debug("feature level: member did not answer", "id", m.ID, "err", err)
			return
		}
		target = min(target, max(in.MaxLevel, fsm.Level1))
		if target <= active {
			return
		}
	}
	cmd := &fsm.Command{Op: fsm.OpSetFeatureLevel, By: s.systemPrincipal(), Args: &api.FeatureLevelArgs{Level: target}}
	res, _, err := s.Commit(ctx, cmd)
	if err == nil && res.Err != nil {
		err = res.Err
	}
	if err != nil {
		s.log.Warn("raising the cluster's feature level", "from", active, "to", target, "err", err)
		return
	}
	s.log.Info("raised the cluster's feature level: every member supports it", "from", active, "to", target)
}
