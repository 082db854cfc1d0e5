package fsm

import (
	"github.com/switchboard/switchboard/api"
)

// Who may see a list (level 3). A list is open (any agent may subscribe
// itself, as before level 3) or restricted: only the agents an admin
// granted it may be subscribed to it, whoever sends the subscribe. The
// invariant every apply function keeps: every subscriber of a restricted
// list holds a grant. Revoking a grant, restricting a list and deleting an
// agent keep it by unsubscribing (list.unsubscribed) or dropping the
// grant. What an agent may read of a list follows from its subscription
// (get_list, get_request, join, close from the list), and a transfer or
// invitation into a restricted list's conversation needs a grant too, so
// only granted agents (and admins) see its requests.

// Op numbers of list access. Never renumber.
const (
	OpGrantList     Op = 80 // ListGrantArgs; admin
	OpRevokeList    Op = 81 // ListGrantArgs; admin
	OpSetListAccess Op = 82 // ListAccessArgs; admin
)

func registerListAccess(r *Registry) {
	admin := roles(api.RoleAdmin)
	register(r, OpGrantList, api.OpGrantList, Level3, admin, applyGrantList)
	register(r, OpRevokeList, api.OpRevokeList, Level3, admin, applyRevokeList)
	register(r, OpSetListAccess, api.OpSetListAccess, Level3, admin, applySetListAccess)
}

// restricted reports whether only granted agents may subscribe to l.
func (l *List) restricted() bool { return l.Access == api.ListRestricted }

// mayAccess reports whether agent id may be subscribed to l (and see its
// requests): l is open, or id holds a grant of it.
func (l *List) mayAccess(id string) bool {
	return !l.restricted() || containsSorted(l.Granted, id)
}

// checkAccess validates an access mode given in arguments ("" is open).
func checkAccess(a api.ListAccess) *api.Error {
	switch a {
	case "", api.ListOpen, api.ListRestricted:
		return nil
	}
	return api.Errorf(api.CodeBadRequest, "access must be %q or %q, not %q", api.ListOpen, api.ListRestricted, a)
}

// storedAccess is the stored form of an access mode: open is "" (the
// zero value: lists created before level 3 are open).
func storedAccess(a api.ListAccess) api.ListAccess {
	if a == api.ListOpen {
		return ""
	}
	return a
}

// accessOf is the wire form of a list's access mode.
func (l *List) accessOf() api.ListAccess {
	if l.restricted() {
		return api.ListRestricted
	}
	return api.ListOpen
}

// grantTarget finds the list and the agent of a grant_list or revoke_list.
func (s *State) grantTarget(a *api.ListGrantArgs) (*List, *Agent, *api.Error) {
	l := s.Lists[a.List]
	if l == nil {
		return nil, nil, api.Errorf(api.CodeNotFound, "list %q not found", a.List)
	}
	if a.Agent == "" {
		return nil, nil, api.Errorf(api.CodeBadRequest, "agent is required")
	}
	ag := s.Agents[a.Agent]
	if ag == nil {
		return nil, nil, api.Errorf(api.CodeNotFound, "agent %q not found", a.Agent)
	}
	return l, ag, nil
}

// applyGrantList lets an agent subscribe to a list once it is restricted.
// A grant on an open list is kept for when it is restricted: grant first,
// then restrict, and nobody granted loses the list.
func applyGrantList(s *State, _ *Command, a *api.ListGrantArgs, _ *events) (any, *api.Error) {
	l, ag, err := s.grantTarget(a)
	if err != nil {
		return nil, err
	}
	granted, added := insertSorted(l.Granted, ag.ID)
	if !added {
		return nil, api.Errorf(api.CodeAlreadyExists, "agent %q already holds a grant of list %q", ag.ID, l.ID)
	}
	l.Granted = granted
	return nil, nil
}

// applyRevokeList takes a grant back. On a restricted list the agent, if
// subscribed, is unsubscribed and told so (list.unsubscribed); the
// conversations it is in stay its own.
func applyRevokeList(s *State, _ *Command, a *api.ListGrantArgs, out *events) (any, *api.Error) {
	l, ag, err := s.grantTarget(a)
	if err != nil {
		return nil, err
	}
	granted, removed := removeSorted(l.Granted, ag.ID)
	if !removed {
		return nil, api.Errorf(api.CodeNotFound, "agent %q holds no grant of list %q", ag.ID, l.ID)
	}
	l.Granted = granted
	if l.restricted() {
		s.dropSubscribers(l, []string{api.AgentKey(ag.ID)}, out)
	}
	return nil, nil
}

// applySetListAccess opens or restricts a list. Restricting it
// unsubscribes every subscriber without a grant (one list.unsubscribed to
// them all). Setting the mode it has changes nothing.
func applySetListAccess(s *State, _ *Command, a *api.ListAccessArgs, out *events) (any, *api.Error) {
	l := s.Lists[a.List]
	if l == nil {
		return nil, api.Errorf(api.CodeNotFound, "list %q not found", a.List)
	}
	if a.Access == "" {
		return nil, api.Errorf(api.CodeBadRequest, "access is required: %q or %q", api.ListOpen, api.ListRestricted)
	}
	if err := checkAccess(a.Access); err != nil {
		return nil, err
	}
	l.Access = storedAccess(a.Access)
	if !l.restricted() {
		return nil, nil
	}
	var drop []string
	for _, key := range l.Subscribers {
		if !containsSorted(l.Granted, agentIDOf(key)) {
			drop = append(drop, key)
		}
	}
	s.dropSubscribers(l, drop, out)
	return nil, nil
}

// dropSubscribers unsubscribes the agents keys (sorted recipient keys) that
// are subscribed to l, and tells them with one list.unsubscribed. One pass
// over the subscribers, whatever the number dropped.
func (s *State) dropSubscribers(l *List, keys []string, out *events) {
	if len(keys) == 0 {
		return
	}
	var told []string
	kept := make([]string, 0, len(l.Subscribers))
	for _, key := range l.Subscribers {
		if !containsSorted(keys, key) {
			kept = append(kept, key)
			continue
		}
		if ag := s.Agents[agentIDOf(key)]; ag != nil {
			ag.Lists, _ = removeSorted(ag.Lists, l.ID)
		}
		told = append(told, key)
	}
	if len(told) == 0 {
		return
	}
	l.Subscribers = kept
	out.add(api.EvListUnsubscribed, told, api.ListRef{List: l.ID})
}

// dropGrants removes agent id's grants, when the agent is deleted: an agent
// created again with the same id is another person and starts with none.
// Each list is edited on its own, so map order does not matter.
func (s *State) dropGrants(id string) {
	for _, l := range s.Lists {
		if len(l.Granted) > 0 {
			l.Granted, _ = removeSorted(l.Granted, id)
		}
	}
}
