package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/api"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// auditLines returns the JSON log records with audit=true.
func (b *syncBuffer) auditLines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["audit"] == true {
			out = append(out, m)
		}
	}
	return out
}

// TestAuditLog: every admin command submitted through a node is logged
// there at INFO with audit=true, the principal, the op, the entity it
// names, its log index and outcome; an agent's commands are not; an admin
// cluster op is logged without an index.
func TestAuditLog(t *testing.T) {
	var logs syncBuffer
	n := newHANode(t, "n1", func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)

	var cred Credential
	idx := haCall(t, admin, "create_agent", api.CreateAgentArgs{ID: "alice"}, &cred)
	dupErr := admin.Call(t.Context(), "create_agent", api.CreateAgentArgs{ID: "alice"}, nil)
	if haCode(dupErr) != api.CodeAlreadyExists {
		t.Fatalf("duplicate create_agent: %v", dupErr)
	}
	alice := haDial(t, []string{n.client}, "agent", "alice", cred.Token, false)
	haCall(t, alice, "login", api.AgentArgs{}, nil) // not an admin: no audit line
	haCall(t, admin, OpSnapshotTake, nil, nil)

	lines := logs.auditLines(t)
	if len(lines) != 3 {
		t.Fatalf("%d audit lines, want 3 (create_agent twice, snapshot_take): %v", len(lines), lines)
	}
	first := lines[0]
	if first["level"] != "INFO" || first["op"] != "create_agent" || first["principal"] != "admin:admin" ||
		first["target"] != "alice" || first["index"] != float64(idx) || first["outcome"] != "ok" {
		t.Fatalf("audit line of create_agent: %v (index %d)", first, idx)
	}
	if dup := lines[1]; dup["op"] != "create_agent" || dup["outcome"] != "already_exists" || dup["index"].(float64) <= float64(idx) {
		t.Fatalf("audit line of the refused create_agent: %v", dup)
	}
	if snap := lines[2]; snap["op"] != OpSnapshotTake || snap["outcome"] != "ok" || snap["index"] != nil {
		t.Fatalf("audit line of snapshot_take: %v", snap)
	}
	for _, l := range lines {
		if b, _ := json.Marshal(l); strings.Contains(string(b), cred.Token) {
			t.Fatalf("an audit line shows the agent's token: %s", b)
		}
	}
}

// A supervisor's commands are on record too: who (the supervisor), what
// and on which request or agent.
func TestAuditLogOfSupervisors(t *testing.T) {
	var logs syncBuffer
	n := newHANode(t, "n1", func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, fbToken := haSetup(t, admin, "alice")
	var cred Credential
	haCall(t, admin, api.OpCreateSupervisor, api.CreateSupervisorArgs{ID: "sam"}, &cred)
	sam := haDial(t, []string{n.client}, "supervisor", "sam", cred.Token, false)
	alice := haDial(t, []string{n.client}, "agent", "alice", tokens["alice"], false)
	haCall(t, alice, api.OpLogin, api.AgentArgs{}, nil)
	fb := haDial(t, []string{n.client}, "connector", "fb", fbToken, false)
	var cm api.CustomerMessageResult
	haCall(t, fb, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: "john", Text: "hi"}, &cm)
	closeIdx := haCall(t, sam, api.OpClose, api.RequestArgs{Request: cm.Request}, nil)
	haCall(t, sam, api.OpLogout, api.AgentArgs{Agent: "alice"}, nil)

	var sup []map[string]any
	for _, l := range logs.auditLines(t) {
		if l["principal"] == "supervisor:sam" {
			sup = append(sup, l)
		}
	}
	if len(sup) != 2 {
		t.Fatalf("%d audit lines of supervisor sam, want 2 (close, logout): %v", len(sup), sup)
	}
	if c := sup[0]; c["msg"] != "supervisor command applied" || c["op"] != "close" || c["target"] != cm.Request ||
		c["index"] != float64(closeIdx) || c["outcome"] != "ok" {
		t.Fatalf("audit line of the supervisor's close: %v (index %d)", c, closeIdx)
	}
	if l := sup[1]; l["op"] != "logout" || l["target"] != "alice" || l["outcome"] != "ok" {
		t.Fatalf("audit line of the supervisor's logout: %v", l)
	}
}

// A supervisor's transfer_to_queue the node refuses before proposing it
// (its queue outside the supervisor's scope) is on record too: not
// committed, index 0, outcome forbidden.
func TestAuditLogOfRefusedSupervisorMove(t *testing.T) {
	var logs syncBuffer
	n := newHANode(t, "n1", func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	haCall(t, admin, api.OpCreateMRD, api.CreateMRDArgs{ID: "chat"}, nil)
	haCall(t, admin, api.OpCreateChannelType, api.CreateChannelTypeArgs{ID: "webchat", MRD: "chat"}, nil)
	haCall(t, admin, api.OpCreateQueue, api.CreateQueueArgs{ID: "QS", MRD: "chat"}, nil)
	haCall(t, admin, api.OpCreateQueue, api.CreateQueueArgs{ID: "QV", MRD: "chat"}, nil)
	haCall(t, admin, api.OpCreateChannel, api.CreateChannelArgs{ID: "WS", Type: "webchat", Mode: api.ModePush, Queue: "QS"}, nil)
	var cx, qs Credential
	haCall(t, admin, api.OpCreateConnector, api.CreateConnectorArgs{ID: "cx", Channels: []string{"WS"}}, &cx)
	haCall(t, admin, api.OpCreateSupervisor, api.CreateSupervisorArgs{ID: "qs", Queues: []string{"QS"}}, &qs)
	conn := haDial(t, []string{n.client}, "connector", "cx", cx.Token, false)
	var cm api.CustomerMessageResult
	haCall(t, conn, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "WS", CustomerID: "john", Text: "hi"}, &cm)
	sup := haDial(t, []string{n.client}, "supervisor", "qs", qs.Token, false)
	if err := sup.TransferToQueue(t.Context(), api.TransferToQueueArgs{Request: cm.Request, Queue: "QV"}); haCode(err) != api.CodeForbidden {
		t.Fatalf("supervisor of QS moving %s to QV: %v, want forbidden", cm.Request, err)
	}

	var sup0 []map[string]any
	for _, l := range logs.auditLines(t) {
		if l["principal"] == "supervisor:qs" {
			sup0 = append(sup0, l)
		}
	}
	if len(sup0) != 1 {
		t.Fatalf("%d audit lines of supervisor qs, want 1 (the refused move): %v", len(sup0), sup0)
	}
	if l := sup0[0]; l["msg"] != "supervisor command not committed" || l["op"] != api.OpTransferToQueue ||
		l["target"] != cm.Request || l["index"] != float64(0) || l["outcome"] != "forbidden" {
		t.Fatalf("audit line of the refused move: %v", l)
	}
}
