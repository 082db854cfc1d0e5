package fsm

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/switchboard/switchboard/api"
)

func nodeCmd(args any) *Command {
	op := OpRegisterNode
	if _, ok := args.(*DeregisterNodeArgs); ok {
		op = OpDeregisterNode
	}
	return &Command{Op: op, By: api.Principal{Role: api.RoleSystem, ID: "node:n1"}, Args: args}
}

func TestNodeRegistry(t *testing.T) {
	s := NewState()
	n1 := NodeInfo{ID: "n1", RaftAddr: "10.0.0.1:7401", ClientAddr: "10.0.0.1:7400"}
	res, _ := s.Apply(nodeCmd(&RegisterNodeArgs{Node: n1}))
	if res.Err != nil || !res.Data.(RegisterNodeResult).Changed {
		t.Fatalf("register: %+v", res)
	}
	// The same again changes nothing.
	res, _ = s.Apply(nodeCmd(&RegisterNodeArgs{Node: n1}))
	if res.Err != nil || res.Data.(RegisterNodeResult).Changed {
		t.Fatalf("register again: %+v", res)
	}
	// A new address replaces the entry.
	n1b := n1
	n1b.ClientAddr = "10.0.0.9:7400"
	s.Apply(nodeCmd(&RegisterNodeArgs{Node: n1b}))
	if got, ok := s.Node("n1"); !ok || got != n1b {
		t.Fatalf("after re-register: %+v %v", got, ok)
	}
	s.Apply(nodeCmd(&RegisterNodeArgs{Node: NodeInfo{ID: "n0", RaftAddr: "h:1", ClientAddr: "h:2"}}))
	if l := s.NodeList(); len(l) != 2 || l[0].ID != "n0" || l[1].ID != "n1" {
		t.Fatalf("list: %+v", l)
	}
	// The registry survives a snapshot.
	raw, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadState(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := back.Node("n1"); got != n1b {
		t.Fatalf("after a snapshot round trip: %+v", got)
	}
	res, _ = s.Apply(nodeCmd(&DeregisterNodeArgs{ID: "n1"}))
	if res.Err != nil || !res.Data.(RegisterNodeResult).Changed {
		t.Fatalf("deregister: %+v", res)
	}
	if _, ok := s.Node("n1"); ok {
		t.Fatal("n1 still registered")
	}
}

func TestNodeRegistryRejects(t *testing.T) {
	s := NewState()
	for _, a := range []*RegisterNodeArgs{
		{Node: NodeInfo{ID: "", RaftAddr: "h:1", ClientAddr: "h:2"}},
		{Node: NodeInfo{ID: "bad id", RaftAddr: "h:1", ClientAddr: "h:2"}},
		{Node: NodeInfo{ID: "n1", RaftAddr: "nohost", ClientAddr: "h:2"}},
		{Node: NodeInfo{ID: "n1", RaftAddr: "h:1", ClientAddr: ""}},
	} {
		if res, _ := s.Apply(nodeCmd(a)); api.CodeOf(res.Err) != api.CodeBadRequest {
			t.Errorf("register %+v: %v, want bad_request", a.Node, res.Err)
		}
	}
	// Only nodes may change the registry.
	c := nodeCmd(&RegisterNodeArgs{Node: NodeInfo{ID: "n1", RaftAddr: "h:1", ClientAddr: "h:2"}})
	c.By = api.Principal{Role: api.RoleAdmin, ID: "admin"}
	if res, _ := s.Apply(c); api.CodeOf(res.Err) != api.CodeForbidden {
		t.Errorf("register by an admin: %v, want forbidden", res.Err)
	}
	if len(s.Nodes) != 0 {
		t.Fatalf("registry after rejections: %+v", s.Nodes)
	}
}

func TestNodeRegistryEncodesInLogEntries(t *testing.T) {
	c := nodeCmd(&RegisterNodeArgs{Node: NodeInfo{ID: "n1", RaftAddr: "h:1", ClientAddr: "h:2"}})
	b, err := EncodeEntry(c)
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := DecodeEntry(b)
	if err != nil || len(cmds) != 1 {
		t.Fatalf("decode: %v %v", cmds, err)
	}
	if a, ok := cmds[0].Args.(*RegisterNodeArgs); !ok || a.Node.ID != "n1" || cmds[0].By.Role != api.RoleSystem {
		t.Fatalf("decoded %+v", cmds[0])
	}
}
