package node

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

// A stranger who reaches the Raft port, without TLS, must not get a byte
// into Raft: a forged AppendEntries with a higher term (sent by raft's own
// client, so it is well-formed) is cut off before it is read, and the
// node's term and state stay as they were.
func TestRaftPortRefusesForgedAppendEntries(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	before := n.srv.Node.Status()
	stateBefore, _ := stateOf(t, n.srv.FSM)

	// A forged create_agent, as a leader of a later term would send it.
	entry, err := fsm.EncodeEntry(&fsm.Command{
		Op: fsm.OpCreateAgent, By: api.Principal{Role: api.RoleAdmin, ID: "admin"},
		Args: &api.CreateAgentArgs{ID: "mallory", TokenHash: make([]byte, 32)},
	})
	if err != nil {
		t.Fatal(err)
	}
	last := before.LastLogIndex
	req := &raft.AppendEntriesRequest{
		RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("mallory"), Addr: []byte("127.0.0.1:1")},
		Term:              before.Term + 10,
		PrevLogEntry:      last,
		PrevLogTerm:       before.Term,
		Entries:           []*raft.Log{{Index: last + 1, Term: before.Term + 10, Type: raft.LogCommand, Data: entry}},
		LeaderCommitIndex: last + 1,
	}
	trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	var resp raft.AppendEntriesResponse
	err = trans.AppendEntries("n1", raft.ServerAddress(n.raft), req, &resp)
	if err == nil {
		t.Fatalf("forged AppendEntries answered: %+v", resp)
	}

	// Raw bytes too: the node closes the connection without answering.
	c, err := net.DialTimeout("tcp", n.raft, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(append([]byte{1}, entry...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the node kept a stranger's connection open past the handshake deadline")
	}
	if len(got) != 0 {
		t.Fatalf("the node answered a stranger with %d bytes", len(got))
	}

	after := n.srv.Node.Status()
	if after.Term != before.Term || after.State != "Leader" || after.LastLogIndex != before.LastLogIndex {
		t.Fatalf("forged RPC changed the node: before %+v, after %+v", before, after)
	}
	if st, _ := stateOf(t, n.srv.FSM); string(st) != string(stateBefore) {
		t.Fatal("forged RPC changed the state")
	}
}

// Agents and connectors do not learn the Raft addresses from status;
// admins do.
func TestStatusHidesRaftAddressesFromNonAdmins(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, connTok := haSetup(t, admin, "a1")

	var st api.NodeStatus
	haCall(t, admin, "status", nil, &st)
	if st.RaftAddr == "" || len(st.Members) == 0 || st.LeaderAddr == "" {
		t.Fatalf("admin status lacks the Raft view: %+v", st)
	}
	for _, who := range []struct{ role, user, token string }{
		{"agent", "a1", tokens["a1"]},
		{"connector", "fb", connTok},
	} {
		c := haDial(t, []string{n.client}, who.role, who.user, who.token, false)
		var got api.NodeStatus
		haCall(t, c, "status", nil, &got)
		if got.RaftAddr != "" || got.LeaderAddr != "" || len(got.Members) != 0 {
			t.Errorf("%s sees Raft addresses in status: %+v", who.role, got)
		}
		if got.Node != "n1" || got.State != "Leader" {
			t.Errorf("%s's status lost its non-secret fields: %+v", who.role, got)
		}
	}
}

// nodeHello sends a node's hello with token to the client port at addr and
// returns the node's answer.
func nodeHello(t *testing.T, addr, token string) transport.Frame {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := transport.EncodeFrame(&transport.Frame{T: transport.TypeHello, V: transport.ProtocolVersion,
		Role: cluster.RoleNode, User: "n9", Token: token})
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var fr transport.Frame
	if err := transport.ReadFrame(bufio.NewReader(c), 1<<20, &fr); err != nil {
		t.Fatal(err)
	}
	return fr
}

// The admin token is not the cluster secret: an admin (every ctl user)
// cannot open a node session and forward entries as any principal.
func TestAdminTokenCannotActAsNode(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	if fr := nodeHello(t, n.client, haAdminToken); fr.T != transport.TypeBye || fr.Err == nil || fr.Err.Code != api.CodeUnauthenticated {
		t.Fatalf("node hello with the admin token: %+v, want bye unauthenticated", fr)
	}
	if fr := nodeHello(t, n.client, haClusterToken); fr.T != transport.TypeWelcome {
		t.Fatalf("node hello with the cluster token: %+v, want welcome", fr)
	}
}
