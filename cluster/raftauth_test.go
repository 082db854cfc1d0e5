package cluster

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/internal/testutil"
)

// lockedBuffer is a log sink a test can search while nodes write to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// hasLine reports whether one line holds every one of parts.
func (b *lockedBuffer) hasLine(parts ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for line := range strings.SplitSeq(b.buf.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// authConfig is a node config with a Raft secret whose logs also go to buf.
func authConfig(t *testing.T, id, secret string, bootstrap bool, buf io.Writer) Config {
	cfg := testConfig(t, t.TempDir())
	cfg.NodeID, cfg.Bootstrap, cfg.RaftSecret = id, bootstrap, []byte(secret)
	cfg.HeartbeatTimeout = 500 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(buf, testutil.LogWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return cfg
}

// Nodes with the same secret form a cluster over authenticated streams;
// a node with another secret, even once in the configuration, gets
// nothing: its streams are refused both ways, and it neither learns a
// leader nor applies an entry.
func TestRaftAuthSameSecretJoinsOtherSecretCannot(t *testing.T) {
	var logs lockedBuffer
	n1 := openLeader(t, authConfig(t, "n1", "right", true, &logs), NewFSM(nil, nil))
	n2 := openNode(t, authConfig(t, "n2", "right", false, &logs), NewFSM(nil, nil))
	n3 := openNode(t, authConfig(t, "n3", "wrong", false, &logs), NewFSM(nil, nil))

	if err := n1.Raft().AddVoter(raft.ServerID("n2"), raft.ServerAddress(n2.Addr()), 0, applyWait).Error(); err != nil {
		t.Fatalf("add n2: %v", err)
	}
	resp := propose(t, n1, createMRD("chat"))
	mustOK(t, resp)
	ctx, cancel := context.WithTimeout(context.Background(), applyWait)
	defer cancel()
	if err := n2.WaitIndex(ctx, resp.Index); err != nil {
		t.Fatalf("n2, same secret, did not replicate: %v", err)
	}

	// n3 is added as a non-voter so that the quorum stays n1 and n2.
	if err := n1.Raft().AddNonvoter(raft.ServerID("n3"), raft.ServerAddress(n3.Addr()), 0, applyWait).Error(); err != nil {
		t.Fatalf("add n3: %v", err)
	}
	waitFor(t, applyWait, func() bool {
		return logs.hasLine("node=n3", "raft stream refused: handshake failed")
	})
	waitFor(t, applyWait, func() bool { return logs.hasLine("node=n1", "raft stream to peer refused", n3.Addr()) })
	mustOK(t, propose(t, n1, createMRD("email")))
	if _, leader := n3.Leader(); leader != "" || n3.FSM().Applied() != 0 {
		t.Fatalf("n3, wrong secret, got in: leader %q, applied %d", leader, n3.FSM().Applied())
	}
}

// A handshake's two answers differ by role, so one side's cannot be
// replayed as the other's, and each depends on both nonces.
func TestRaftAuthMACBindsRoleAndNonces(t *testing.T) {
	k := []byte("secret")
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	base := raftAuthMAC(k, "acceptor", a, b)
	for name, other := range map[string][]byte{
		"role":    raftAuthMAC(k, "dialer", a, b),
		"nonce d": raftAuthMAC(k, "acceptor", b, b),
		"nonce a": raftAuthMAC(k, "acceptor", a, a),
		"secret":  raftAuthMAC([]byte("other"), "acceptor", a, b),
	} {
		if bytes.Equal(base, other) {
			t.Errorf("MAC does not depend on the %s", name)
		}
	}
}
