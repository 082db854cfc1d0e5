package fsm

import (
	"net"
	"slices"

	"github.com/switchboard/switchboard/api"
)

// Op numbers of the cluster registry commands. Never renumber.
const (
	OpRegisterNode   Op = 60
	OpDeregisterNode Op = 61
	// OpSetFeatureLevel raises the active feature level (levels.go).
	OpSetFeatureLevel Op = 62
)

// maxAddrBytes bounds a node address in the registry.
const maxAddrBytes = 256

// NodeInfo is one node of the replicated node registry: how the other
// nodes and the tools reach it. ID is its Raft server id.
type NodeInfo struct {
	ID         string `msgpack:"id"`
	RaftAddr   string `msgpack:"raft_addr"`
	ClientAddr string `msgpack:"client_addr"`
}

// RegisterNodeArgs adds a node to the registry or replaces its addresses.
// Registering the same id with the same addresses again changes nothing.
type RegisterNodeArgs struct {
	Node NodeInfo `msgpack:"node"`
}

// DeregisterNodeArgs removes a node from the registry (no-op if absent).
type DeregisterNodeArgs struct {
	ID string `msgpack:"id"`
}

// RegisterNodeResult says whether register_node changed the registry.
type RegisterNodeResult struct {
	Changed bool `msgpack:"changed"`
}

func registerNodes(r *Registry) {
	// Only the nodes themselves propose registry changes (RoleSystem):
	// clients, even admins, change membership through the cluster ops.
	system := roles(api.RoleSystem)
	register(r, OpRegisterNode, api.OpRegisterNode, Level1, system, applyRegisterNode)
	register(r, OpDeregisterNode, api.OpDeregisterNode, Level1, system, applyDeregisterNode)
}

func applyRegisterNode(s *State, _ *Command, a *RegisterNodeArgs, _ *events) (any, *api.Error) {
	n := a.Node
	if err := checkID("node.id", n.ID); err != nil {
		return nil, err
	}
	if err := checkAddr("node.raft_addr", n.RaftAddr); err != nil {
		return nil, err
	}
	if err := checkAddr("node.client_addr", n.ClientAddr); err != nil {
		return nil, err
	}
	if old := s.Nodes[n.ID]; old != nil && *old == n {
		return RegisterNodeResult{}, nil
	}
	if s.Nodes == nil {
		s.Nodes = map[string]*NodeInfo{}
	}
	s.Nodes[n.ID] = &n
	return RegisterNodeResult{Changed: true}, nil
}

func applyDeregisterNode(s *State, _ *Command, a *DeregisterNodeArgs, _ *events) (any, *api.Error) {
	if err := checkID("id", a.ID); err != nil {
		return nil, err
	}
	_, had := s.Nodes[a.ID]
	delete(s.Nodes, a.ID)
	return RegisterNodeResult{Changed: had}, nil
}

// checkAddr validates a host:port address.
func checkAddr(field, addr string) *api.Error {
	if addr == "" {
		return api.Errorf(api.CodeBadRequest, "%s is required", field)
	}
	if len(addr) > maxAddrBytes {
		return api.Errorf(api.CodeBadRequest, "%s is longer than %d bytes", field, maxAddrBytes)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return api.Errorf(api.CodeBadRequest, "%s %q is not host:port", field, addr)
	}
	return nil
}

// Node returns the registry entry of node id.
func (s *State) Node(id string) (NodeInfo, bool) {
	if n := s.Nodes[id]; n != nil {
		return *n, true
	}
	return NodeInfo{}, false
}

// NodeList returns the registry sorted by id.
func (s *State) NodeList() []NodeInfo {
	out := make([]NodeInfo, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}
