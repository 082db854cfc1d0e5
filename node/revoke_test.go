package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// Deleting an agent ends its sessions on every node, each with a bye
// unauthenticated: a deleted agent's open session must not keep working,
// nor become the session of an agent re-created under the same id.
func TestDeletingAnAgentEndsItsSessionsOnEveryNode(t *testing.T) {
	c := startHACluster(t, 3, nil)
	admin := haDial(t, c.addrs(0), "admin", "", haAdminToken, false)
	tokens, _ := haSetup(t, admin, "a1", "a2")
	var sessions []*transport.Client
	for i := range c.nodes {
		sessions = append(sessions, haDial(t, []string{c.nodes[i].client}, "agent", "a1", tokens["a1"], false))
	}
	bystander := haDial(t, []string{c.nodes[1].client}, "agent", "a2", tokens["a2"], false)

	haCall(t, admin, api.OpDeleteAgent, api.IDArgs{ID: "a1"}, nil)
	for i, s := range sessions {
		select {
		case <-s.Done():
		case <-time.After(applyWait):
			t.Fatalf("a1's session on %s still open after delete_agent", c.nodes[i].id)
		}
		if !errors.Is(s.Err(), &api.Error{Code: api.CodeUnauthenticated}) {
			t.Fatalf("a1's session on %s ended with %v, want bye unauthenticated", c.nodes[i].id, s.Err())
		}
	}
	var st api.NodeStatus
	haCall(t, bystander, "status", nil, &st) // another agent's session lives on

	// Re-created, a1 is a new principal: the new token logs in.
	var cred Credential
	haCall(t, admin, api.OpCreateAgent, api.CreateAgentArgs{ID: "a1"}, &cred)
	haDial(t, []string{c.nodes[2].client}, "agent", "a1", cred.Token, false)
}

// A session is bound to the credential it authenticated with: a write
// carrying the old token's hash is refused once the id was deleted and
// re-created, even if the session was not cut yet.
func TestOldCredentialCannotActAsRecreatedAgent(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, _ := haSetup(t, admin, "a1")
	haCall(t, admin, api.OpDeleteAgent, api.IDArgs{ID: "a1"}, nil)
	var cred Credential
	haCall(t, admin, api.OpCreateAgent, api.CreateAgentArgs{ID: "a1"}, &cred)

	write := func(token string) error {
		sum := sha256.Sum256([]byte(token))
		ctx, cancel := context.WithTimeout(context.Background(), applyWait)
		defer cancel()
		_, _, err := n.srv.Backend.Commit(ctx, transport.Write{By: api.Principal{Role: api.RoleAgent, ID: "a1"},
			TokenHash: sum[:], Op: api.OpLogin, Args: []byte{0x80}})
		return err
	}
	if err := write(tokens["a1"]); api.CodeOf(err) != api.CodeUnauthenticated {
		t.Fatalf("write with the deleted agent's credential: %v, want unauthenticated", err)
	}
	if err := write(cred.Token); err != nil {
		t.Fatalf("write with the new credential: %v", err)
	}
}
