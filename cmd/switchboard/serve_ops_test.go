package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/transport"
)

// backupOf streams a fresh snapshot of the node through snapshot_read, as
// `ctl snapshot save` does, into a file, and returns its path.
func backupOf(t *testing.T, admin *transport.Client) string {
	t.Helper()
	var (
		out  []byte
		args = cluster.SnapshotReadArgs{Fresh: true}
	)
	for {
		var ch cluster.SnapshotChunk
		call(t, admin, node.OpSnapshotRead, args, &ch)
		out = append(out, ch.Data...)
		if ch.Done {
			break
		}
		args = cluster.SnapshotReadArgs{ID: ch.ID, Offset: int64(len(out))}
	}
	path := filepath.Join(t.TempDir(), "backup.snap")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSnapshotInspect: `snapshot inspect` reads a backup offline and
// reports its index, checksum, feature level and counts, as a table and
// with -o json; a Raft snapshot directory of the data dir also has its
// term; a file that is not a snapshot exits non-zero.
func TestSnapshotInspect(t *testing.T) {
	n := newTestNode(t)
	admin := n.dial(t, "admin", "", testAdminToken, false)
	call(t, admin, "create_mrd", api.CreateMRDArgs{ID: "social"}, nil)
	call(t, admin, "create_channel_type", api.CreateChannelTypeArgs{ID: "fb", MRD: "social"}, nil)
	call(t, admin, "create_list", api.CreateListArgs{ID: "L1"}, nil)
	call(t, admin, "create_queue", api.CreateQueueArgs{ID: "Q", MRD: "social"}, nil)
	call(t, admin, "create_channel", api.CreateChannelArgs{ID: "C1", Type: "fb", Mode: api.ModePull, List: "L1"}, nil)
	for _, a := range []string{"a1", "a2", "a3"} {
		call(t, admin, "create_agent", api.CreateAgentArgs{ID: a}, nil)
	}
	call(t, admin, "create_connector", api.CreateConnectorArgs{ID: "fb", Channels: []string{"C1"}}, nil)
	call(t, admin, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: "c1", Text: "hi"}, nil)
	call(t, admin, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: "c2", Text: "hi"}, nil)
	backup := backupOf(t, admin)
	raw, _ := os.ReadFile(backup)
	sum := sha256.Sum256(raw)

	out := mustRun(t, "snapshot", "inspect", backup, "-o", "json")
	var info snapshotInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	c := info.Counts
	if info.SHA256 != hex.EncodeToString(sum[:]) || info.Size != int64(len(raw)) || info.Version != 1 ||
		info.Index == 0 || info.Term != 0 || info.FeatureLevel == 0 ||
		c.Agents != 3 || c.Lists != 1 || c.Queues != 1 || c.OpenRequests != 2 || c.Connectors != 1 ||
		c.Channels != 1 || c.MRDs != 1 || c.Sessions == 0 || c.Nodes != 1 {
		t.Fatalf("inspect %s: %+v (sha256 %x, %d bytes)", backup, info, sum, len(raw))
	}
	var st api.NodeStatus
	call(t, admin, node.QueryStatus, nil, &st)
	if info.Index > st.AppliedIndex || info.FeatureLevel != st.FeatureLevel {
		t.Fatalf("backup at index %d level %d, node applied %d level %d", info.Index, info.FeatureLevel, st.AppliedIndex, st.FeatureLevel)
	}

	table := mustRun(t, "snapshot", "inspect", backup)
	for _, want := range []string{"sha256:", hex.EncodeToString(sum[:]), "agents:", "open requests:", "term:", "unknown", "feature level:"} {
		if !strings.Contains(table, want) {
			t.Fatalf("table output lacks %q:\n%s", want, table)
		}
	}

	// A Raft snapshot of the data dir has its term.
	call(t, admin, node.OpSnapshotTake, nil, nil)
	dirs, _ := filepath.Glob(filepath.Join(n.dir, "snapshots", "*"))
	if len(dirs) == 0 {
		t.Fatalf("no snapshot in %s", n.dir)
	}
	out = mustRun(t, "snapshot", "inspect", dirs[len(dirs)-1], "-o", "json")
	info = snapshotInfo{}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.Term == 0 || info.Format != "raft snapshot" || info.Counts.Agents != 3 {
		t.Fatalf("inspect a raft snapshot dir: %+v", info)
	}

	bad := filepath.Join(t.TempDir(), "bad.snap")
	_ = os.WriteFile(bad, []byte("\x01not msgpack at all"), 0o600)
	if code, _, errOut := runCLI(t, "snapshot", "inspect", bad); code != 1 || !strings.Contains(errOut, "not a Switchboard snapshot") {
		t.Fatalf("inspect a bad file: exit %d, %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "snapshot", "list"); code != 2 {
		t.Fatalf("snapshot list: exit %d, want 2 (usage)", code)
	}
}

// TestServeFailedFirstStartLeavesNoDataDir: serve on a client port in use
// fails, and removes the data dir it created; a data dir that existed
// before is left as it was.
func TestServeFailedFirstStartLeavesNoDataDir(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"serve", "--data", dir, "--client-addr", busy.Addr().String(),
		"--raft-addr", "127.0.0.1:0", "--http-addr", "off", "--admin-token", testAdminToken}
	code, _, errOut := runCLI(t, args...)
	if code != 1 || !strings.Contains(errOut, "listen for clients") {
		t.Fatalf("serve on a busy port: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a failed first start left %s behind (%v)", dir, err)
	}

	// An existing data dir stays, with what it held.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "keep-me")
	_ = os.WriteFile(marker, []byte("x"), 0o600)
	if code, _, _ := runCLI(t, args...); code != 1 {
		t.Fatalf("serve on a busy port: exit %d", code)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("a failed start removed an existing data dir's content: %v", err)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while serve writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serveRun is a `serve` running in this process.
type serveRun struct {
	cancel         context.CancelFunc
	done           chan int
	stdout, stderr *lockedBuffer
}

func startServe(t *testing.T, args ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &serveRun{cancel: cancel, done: make(chan int, 1), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	go func() { r.done <- run(ctx, append([]string{"serve"}, args...), r.stdout, r.stderr) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels serve (as SIGTERM does) and returns its exit code.
func (r *serveRun) stop(t *testing.T) int {
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30s")
		return -1
	}
}

// TestServeRestoreAgainIsNoOp: the command line that restored a backup
// into a new data dir restarts the node unchanged: the second time the
// backup is not restored (a log line says so) and what was written after
// the restore is kept. Logs are JSON with --log-format json.
func TestServeRestoreAgainIsNoOp(t *testing.T) {
	src := newTestNode(t)
	admin := src.dial(t, "admin", "", testAdminToken, false)
	call(t, admin, "create_list", api.CreateListArgs{ID: "from-backup"}, nil)
	backup := backupOf(t, admin)

	dir := filepath.Join(t.TempDir(), "restored")
	client, raft := holdPort(t), holdPort(t) // the same ports for both runs
	client.pause()
	raft.pause()
	withPorts := func() []string {
		return []string{"--bootstrap", "--restore", backup, "--data", dir, "--node-id", "r1",
			"--client-addr", client.addr, "--raft-addr", raft.addr, "--http-addr", "off",
			"--client-listener-fd", fmt.Sprint(client.rawFD(t)), "--raft-listener-fd", fmt.Sprint(raft.rawFD(t)),
			"--admin-token", testAdminToken, "--log-format", "json"}
	}
	s1 := startServe(t, withPorts()...)
	addr := waitServing(t, s1)
	c1 := dialAddr(t, addr)
	var lists []map[string]any
	call(t, c1, "get_lists", nil, &lists)
	if !strings.Contains(listIDs(lists), "from-backup") {
		t.Fatalf("restored lists: %v", listIDs(lists))
	}
	call(t, c1, "create_list", api.CreateListArgs{ID: "after-restore"}, nil)
	c1.Close()
	if code := s1.stop(t); code != 0 {
		t.Fatalf("first serve exited %d: %s", code, s1.stderr)
	}

	s2 := startServe(t, withPorts()...)
	addr = waitServing(t, s2)
	c2 := dialAddr(t, addr)
	lists = nil
	call(t, c2, "get_lists", nil, &lists)
	if got := listIDs(lists); !strings.Contains(got, "from-backup") || !strings.Contains(got, "after-restore") {
		t.Fatalf("lists after restarting with the same --restore: %s", got)
	}
	var found bool
	for line := range strings.Lines(s2.stderr.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("--log-format json wrote a line that is not JSON: %q", line)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "not restored again") && rec["level"] == "INFO" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no log line saying the backup was not restored again:\n%s", s2.stderr)
	}
}

// waitServing waits until serve has printed its banner and returns the
// client address it printed.
func waitServing(t *testing.T, r *serveRun) string {
	t.Helper()
	var addr string
	testutil.WaitFor(t, 60*time.Second, func() bool {
		select {
		case code := <-r.done:
			r.done <- code
			t.Fatalf("serve exited %d: %s", code, r.stderr)
		default:
		}
		for line := range strings.Lines(r.stdout.String()) {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "clients:"); ok {
				addr = strings.TrimSpace(rest)
				return true
			}
		}
		return false
	}, "serve printed no client address: %s", testutil.Lazy(r.stderr.String))
	return addr
}

func dialAddr(t *testing.T, addr string) *transport.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, transport.ClientConfig{Addrs: []string{addr}, Role: "admin", Token: testAdminToken,
		RequestTimeout: 10 * time.Second, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func listIDs(lists []map[string]any) string {
	var ids []string
	for _, l := range lists {
		id, _ := l["id"].(string)
		ids = append(ids, id)
	}
	return strings.Join(ids, ",")
}

// TestServeRemovedNodeExits: three serve processes; a node removed from
// the cluster exits non-zero saying so, unless started with
// --stay-after-removal, in which case it keeps running and its /readyz
// answers 503 "removed".
func TestServeRemovedNodeExits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	c := startProcCluster(t, 3)
	n2, n3 := c.nodes[1], c.nodes[2]
	// n3 restarts with --stay-after-removal.
	n3.stop()
	n3.args = append(n3.args, "--stay-after-removal")
	n3.start()
	c.waitHealthy(e2eWait)

	ctlRun(t, c.addrs(c.nodes[0]), "cluster", "remove", n3.id)
	ctlRun(t, c.addrs(c.nodes[0]), "cluster", "remove", n2.id)
	select {
	case <-n2.exited:
	case <-time.After(e2eWait):
		t.Fatalf("%s still running %v after its removal", n2.id, e2eWait)
	}
	if code := n2.cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("%s exited %d after its removal, want 1", n2.id, code)
	}
	n2.cmd = nil
	if b, _ := os.ReadFile(n2.log); !bytes.Contains(b, []byte("was removed from the cluster")) {
		t.Fatalf("%s's output does not say it was removed:\n%s", n2.id, tail(b, 2000))
	}

	var rd node.Readiness
	testutil.WaitFor(t, e2eWait, func() bool {
		resp, err := http.Get("http://" + n3.http + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(body, &rd)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.HasPrefix(rd.Reason, node.ReasonRemoved)
	}, "%s's /readyz never said removed: %+v", n3.id, &rd)
	select {
	case <-n3.exited:
		t.Fatalf("%s exited although started with --stay-after-removal", n3.id)
	default:
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
