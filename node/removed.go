package node

import (
	"context"
	"slices"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
)

// A node removed from the cluster's configuration (`ctl cluster remove`)
// gets no more entries from the leader and starts no election: left alone
// it would go on serving stale reads and answering writes with no_leader.
// watchRemoval notices it, after which the node says so in its status and
// readiness (/readyz 503 "removed"), refuses clients with an unavailable
// error saying it was removed (the Go client moves on to another node), and
// closes Removed — `serve` then exits unless told to stay.

// removalCheckEvery is how often the node looks at the configuration;
// removalConfirm is how long it must have been left out of it before the
// node counts as removed. The leader's join replaces a server whose address
// changed by a remove and an add in quick succession: a moment outside the
// configuration is not a removal.
const (
	removalCheckEvery = 200 * time.Millisecond
	removalConfirm    = 2 * time.Second
)

// errRemoved is what a removed node answers clients.
func errRemoved(id string) *api.Error {
	return api.Errorf(api.CodeUnavailable, "node %s was removed from the cluster: connect to another node", id)
}

// Removed reports whether this node has learned it was removed from the
// cluster's configuration.
func (s *Server) Removed() bool { return isClosed(s.removed) }

// RemovedCh is closed once this node has learned it was removed from the
// cluster's configuration.
func (s *Server) RemovedCh() <-chan struct{} { return s.removed }

// watchRemoval polls the Raft configuration until ctx ends or the node
// has been left out of it for removalConfirm.
func (s *Server) watchRemoval(ctx context.Context) {
	t := time.NewTicker(removalCheckEvery)
	defer t.Stop()
	var outSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.leftOut() {
			outSince = time.Time{}
			continue
		}
		if outSince.IsZero() {
			outSince = time.Now()
			continue
		}
		if time.Since(outSince) >= removalConfirm {
			s.markRemoved()
			return
		}
	}
}

// leftOut reports whether the latest Raft configuration this node holds
// has servers but not this node. A new node waiting to join holds none.
func (s *Server) leftOut() bool {
	members, err := s.Node.Members()
	if err != nil || len(members) == 0 {
		return false
	}
	return !slices.ContainsFunc(members, func(m cluster.Member) bool { return m.ID == s.Node.ID() })
}

func (s *Server) markRemoved() {
	s.removedOnce.Do(func() {
		s.Backend.removed.Store(true)
		close(s.removed)
		s.log.Error("this node was removed from the cluster: it serves no clients",
			"node", s.Node.ID(), "hint", "give it a new data dir and --join to add it again")
	})
}
