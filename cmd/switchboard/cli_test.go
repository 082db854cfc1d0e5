package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The command line of ctl, agent and customer, driven through run() as
// main does, against a real node (newTestNode) where one is needed.

// cleanEnv unsets every variable the client commands read, so that the
// environment of the machine running the tests does not leak in, and
// points the default --data at an empty dir.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{"SWITCHBOARD_TOKEN", "SWITCHBOARD_ADMIN_TOKEN", "SWITCHBOARD_AGENT_TOKEN",
		"SWITCHBOARD_CONNECTOR_TOKEN", "SWITCHBOARD_ADDR", "SWITCHBOARD_USER", "SWITCHBOARD_TLS_CA",
		"SWITCHBOARD_TLS_CLIENT_CERT", "SWITCHBOARD_TLS_CLIENT_KEY"} {
		t.Setenv(v, "")
	}
	t.Setenv("SWITCHBOARD_DATA", filepath.Join(t.TempDir(), "no-data"))
}

// deadAddr is a loopback address where nothing listens: a port the
// kernel gave and that was released at once (nothing binds it again).
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCtlFlagsAnywhere: flags after the verb and among its arguments are
// obeyed, not ignored: with the default address pointing nowhere, only
// an --addr given after the verb can reach the node.
func TestCtlFlagsAnywhere(t *testing.T) {
	cleanEnv(t)
	n := newTestNode(t)
	t.Setenv("SWITCHBOARD_ADDR", deadAddr(t))
	out := mustRun(t, "ctl", "status", "--addr", n.clientAddr, "--token", testAdminToken)
	if !strings.Contains(out, "node1") {
		t.Fatalf("ctl status with flags after the verb:\n%s", out)
	}
	mustRun(t, "ctl", "--token", testAdminToken, "create", "mrd", "--addr", n.clientAddr, "social", "--name", "Social media")
	out = mustRun(t, "ctl", "get", "mrds", "--addr="+n.clientAddr, "--token", testAdminToken)
	if !strings.Contains(out, "Social media") {
		t.Fatalf("get mrds:\n%s", out)
	}
	// "--" ends the flags.
	code, _, errOut := runCLI(t, "ctl", "--addr", n.clientAddr, "--token", testAdminToken, "create", "list", "--", "--name")
	if code != 0 {
		t.Fatalf("create list -- --name: exit %d: %s", code, errOut)
	}

	// A flag that does not apply is an error, not ignored.
	for _, args := range [][]string{
		{"ctl", "status", "--addr", n.clientAddr, "--token", testAdminToken, "--bogus"},
		{"ctl", "get", "lists", "--addr", n.clientAddr, "--token", testAdminToken, "--name", "x"},
		{"ctl", "create", "list", "L9", "--addr", n.clientAddr, "--token", testAdminToken, "--mrd", "chat"},
		{"ctl", "status", "extra", "--addr", n.clientAddr, "--token", testAdminToken},
		{"ctl", "create", "list", "L9", "extra", "--addr", n.clientAddr, "--token", testAdminToken},
		{"ctl", "status", "-o", "yaml", "--addr", n.clientAddr, "--token", testAdminToken},
	} {
		if code, out, errOut := runCLI(t, args...); code != 2 || !strings.Contains(errOut, "usage error") {
			t.Errorf("%q: exit %d, want 2 with a usage error\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
		}
	}
}

// TestCtlTokenLookupOrder: --token, --token-file, SWITCHBOARD_ADMIN_TOKEN,
// SWITCHBOARD_TOKEN, <data>/admin-token — the first found wins.
func TestCtlTokenLookupOrder(t *testing.T) {
	cleanEnv(t)
	n := newTestNode(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	writeFile(t, good, testAdminToken+"\n")
	writeFile(t, bad, "wrong")
	dataDir := filepath.Join(dir, "data")
	writeFile(t, filepath.Join(dataDir, "admin-token"), testAdminToken+"\n")
	badData := filepath.Join(dir, "bad-data")
	writeFile(t, filepath.Join(badData, "admin-token"), "wrong\n")

	status := []string{"ctl", "--addr", n.clientAddr, "status"}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		flags []string
		ok    bool
	}{
		{"--token beats everything", map[string]string{"SWITCHBOARD_ADMIN_TOKEN": "wrong", "SWITCHBOARD_TOKEN": "wrong"}, []string{"--token", testAdminToken, "--data", badData}, true},
		{"--token-file beats the environment", map[string]string{"SWITCHBOARD_ADMIN_TOKEN": "wrong"}, []string{"--token-file", good}, true},
		{"a wrong --token-file is used", map[string]string{"SWITCHBOARD_ADMIN_TOKEN": testAdminToken}, []string{"--token-file", bad}, false},
		{"SWITCHBOARD_ADMIN_TOKEN", map[string]string{"SWITCHBOARD_ADMIN_TOKEN": testAdminToken}, []string{"--data", badData}, true},
		{"SWITCHBOARD_ADMIN_TOKEN beats SWITCHBOARD_TOKEN", map[string]string{"SWITCHBOARD_ADMIN_TOKEN": testAdminToken, "SWITCHBOARD_TOKEN": "wrong"}, nil, true},
		{"SWITCHBOARD_TOKEN still works", map[string]string{"SWITCHBOARD_TOKEN": testAdminToken}, []string{"--data", badData}, true},
		{"the data dir last", nil, []string{"--data", dataDir}, true},
		{"SWITCHBOARD_DATA picks the data dir", map[string]string{"SWITCHBOARD_DATA": dataDir}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, out, errOut := runCLI(t, append(status, tc.flags...)...)
			if (code == 0) != tc.ok {
				t.Fatalf("exit %d, want success %v\nstdout:\n%s\nstderr:\n%s", code, tc.ok, out, errOut)
			}
		})
	}

	if code, _, errOut := runCLI(t, append(status, "--token", "x", "--token-file", good)...); code != 2 {
		t.Errorf("--token with --token-file: exit %d, want 2: %s", code, errOut)
	}
}

// TestCtlNoTokenSaysWhereItLooked: the error names every place in order,
// and no longer sends a cluster's operator to a token serve never printed.
func TestCtlNoTokenSaysWhereItLooked(t *testing.T) {
	cleanEnv(t)
	dataDir := filepath.Join(t.TempDir(), "nodata")
	code, _, errOut := runCLI(t, "ctl", "--addr", deadAddr(t), "--data", dataDir, "status")
	if code == 0 {
		t.Fatal("ctl without any token succeeded")
	}
	want := []string{"--token (not given)", "--token-file (not given)", "$SWITCHBOARD_ADMIN_TOKEN (not set)",
		"$SWITCHBOARD_TOKEN (not set)", filepath.Join(dataDir, "admin-token") + " (no such file)"}
	last := -1
	for _, w := range want {
		i := strings.Index(errOut, w)
		if i < 0 || i < last {
			t.Fatalf("the error does not name %q in order:\n%s", w, errOut)
		}
		last = i
	}
	if strings.Contains(errOut, "printed by 'switchboard serve'") {
		t.Errorf("the error still points at a token serve does not print in cluster mode:\n%s", errOut)
	}
	if !strings.Contains(errOut, "SWITCHBOARD_ADMIN_TOKEN its nodes were started with") {
		t.Errorf("the error does not say where a cluster's token comes from:\n%s", errOut)
	}
}

// TestCtlJSONOnEveryVerb runs every verb a single node can answer with
// -o json and checks the output is one JSON document with the documented
// snake_case keys.
func TestCtlJSONOnEveryVerb(t *testing.T) {
	cleanEnv(t)
	n := newTestNode(t)
	t.Setenv("SWITCHBOARD_ADDR", n.clientAddr)
	t.Setenv("SWITCHBOARD_ADMIN_TOKEN", testAdminToken)
	j := func(args ...string) map[string]any {
		t.Helper()
		out := mustRun(t, append(append([]string{"ctl"}, args...), "-o", "json")...)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("ctl %q -o json: %v\n%s", args, err, out)
		}
		m, _ := v.(map[string]any)
		if m == nil {
			m = map[string]any{"": v}
		}
		return m
	}
	// hasKeys checks m (or, for an array, its first element) has keys.
	hasKeys := func(what string, m map[string]any, keys ...string) {
		t.Helper()
		if arr, ok := m[""].([]any); ok {
			if len(arr) == 0 {
				t.Fatalf("%s: empty array", what)
			}
			m, _ = arr[0].(map[string]any)
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no key %q in %v", what, k, m)
			}
		}
	}
	change := func(what string, m map[string]any, op string) map[string]any {
		t.Helper()
		hasKeys(what, m, "op", "args", "result")
		if m["op"] != op {
			t.Errorf("%s: op %v, want %s", what, m["op"], op)
		}
		res, _ := m["result"].(map[string]any)
		return res
	}

	change("create mrd", j("create", "mrd", "social", "--name", "Social"), "create_mrd")
	change("create channel-type", j("create", "channel-type", "facebook", "--mrd", "social"), "create_channel_type")
	change("create list", j("create", "list", "L1"), "create_list")
	change("create list L2", j("create", "list", "L2", "--name", "spare"), "create_list")
	change("create channel", j("create", "channel", "C2", "--type", "facebook", "--list", "L1"), "create_channel")
	change("create mrd chat", j("create", "mrd", "chat"), "create_mrd")
	change("create channel-type webchat", j("create", "channel-type", "webchat", "--mrd", "chat"), "create_channel_type")
	change("create queue", j("create", "queue", "support", "--mrd", "chat", "--priority", "2", "--offer-timeout", "20s"), "create_queue")
	change("create push channel", j("create", "channel", "web", "--type", "webchat", "--queue", "support"), "create_channel")
	agent := change("create agent", j("create", "agent", "alice", "--max", "chat=2"), "create_agent")
	if agent["id"] != "alice" || agent["token"] == "" || agent["token"] == nil {
		t.Fatalf("create agent result: %v", agent)
	}
	conn := change("create connector", j("create", "connector", "fb", "--channels", "C2,web"), "create_connector")
	connToken, _ := conn["token"].(string)
	if connToken == "" {
		t.Fatalf("create connector result: %v", conn)
	}
	m := j("subscribe", "alice", "L1")
	change("subscribe", m, "subscribe")
	if args, _ := m["args"].(map[string]any); args["agent"] != "alice" || args["list"] != "L1" {
		t.Errorf("subscribe args: %v", m["args"])
	}
	change("create restricted list", j("create", "list", "L4", "--access", "restricted"), "create_list")
	change("grant-list", j("grant-list", "alice", "L4"), "grant_list")
	change("revoke-list", j("revoke-list", "alice", "L4"), "revoke_list")
	change("set-list-access", j("set-list-access", "L2", "restricted"), "set_list_access")
	change("queue add-member", j("queue", "add-member", "support", "alice"), "add_queue_member")
	change("pull-policy", j("pull-policy", "first_due"), "set_pull_policy")

	// A request, through the customer command with its token in a file.
	tokFile := filepath.Join(t.TempDir(), "fb-token")
	writeFile(t, tokFile, connToken)
	out := mustRun(t, "customer", "--connector", "fb", "--token-file", tokFile, "--channel", "C2", "--customer", "john", "--say", "Where is my order?")
	req := strings.Fields(out)[2] // "opened request R1 (UNREAD)"

	hasKeys("get mrds", j("get", "mrds"), "id", "name")
	hasKeys("get channel-types", j("get", "channel-types"), "id", "mrd")
	hasKeys("get channels", j("get", "channels"), "id", "type", "mrd", "mode")
	hasKeys("get lists", j("get", "lists"), "id", "open", "access", "granted")
	hasKeys("get queues", j("get", "queues"), "id", "mrd", "priority", "offer_timeout_ms")
	hasKeys("get agents", j("get", "agents"), "id")
	hasKeys("get connectors", j("get", "connectors"), "id", "channels")
	hasKeys("get agent-states", j("get", "agent-states"), "agent")
	hasKeys("get list", j("get", "list", "L1"), "list", "requests")
	hasKeys("get request", j("get", "request", req), "request", "transcript")
	hasKeys("get queue", j("get", "queue", "support"), "id", "members")
	st := j("status")
	hasKeys("status", st, "node", "state", "term", "leader", "commit_index", "applied_index", "raft_applied_index", "version", "members")
	cs := j("cluster", "status")
	hasKeys("cluster status", cs, "leader", "term", "commit_index", "nodes")
	nodes, _ := cs["nodes"].([]any)
	if len(nodes) != 1 {
		t.Fatalf("cluster status nodes: %v", cs["nodes"])
	}
	hasKeys("cluster status node", nodes[0].(map[string]any), "id", "reachable", "error", "applied", "lag", "status")
	snap := change("snapshot take", j("snapshot", "take"), "snapshot_take")
	if snap["node"] != "node1" || snap["index"] == nil {
		t.Errorf("snapshot take result: %v", snap)
	}
	hasKeys("snapshot save", j("snapshot", "save", filepath.Join(t.TempDir(), "b.snap")), "file", "id", "index", "term", "size")
	change("close", j("close", req), "close")
	change("unsubscribe", j("unsubscribe", "alice", "L1"), "unsubscribe")
	change("queue remove-member", j("queue", "remove-member", "support", "alice"), "remove_queue_member")
	// delete_connector needs feature level 2, which a fresh node may not
	// have raised yet: a typed refusal is fine, a usage error is not.
	if code, out, errOut := runCLI(t, "ctl", "delete", "connector", "fb", "-o", "json"); code != 0 && !strings.Contains(errOut, "feature_not_enabled") {
		t.Errorf("delete connector: exit %d\n%s%s", code, out, errOut)
	}
	// Service levels are feature level 2 too.
	for _, args := range [][]string{
		{"set-service-level", "list", "L1", "--sla", "30s", "--sla-warn", "80"},
		{"create", "list", "L3", "--sla", "1m", "--sla-warn", "50", "--remind-inactive", "10m", "--close-inactive", "1h"},
	} {
		if code, out, errOut := runCLI(t, append(append([]string{"ctl"}, args...), "-o", "json")...); code != 0 && !strings.Contains(errOut, "feature_not_enabled") {
			t.Errorf("%q: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	change("delete agent", j("delete", "agent", "alice"), "delete_agent")
	change("delete list", j("delete", "list", "L2"), "delete_list")
}

// TestHelpListsEverything: `switchboard help` and `switchboard ctl --help`
// print, on stdout and with exit 0, every ctl verb and the agent and
// customer console commands.
func TestHelpListsEverything(t *testing.T) {
	want := []string{
		// ctl verbs
		"status", "cluster status", "cluster remove NODE", "cluster transfer-leadership", "snapshot take",
		"snapshot save FILE", "create mrd", "create channel-type", "create list", "create queue", "create channel",
		"create agent", "create connector", "delete list|agent|connector", "subscribe AGENT LIST", "unsubscribe AGENT LIST",
		"get mrds", "get list ID", "get request ID", "close REQUEST", "queue add-member", "pull-policy",
		"get queue ID", "get agent-states", "set-service-level list|queue ID", "--remind-inactive", "--close-inactive",
		"create supervisor", "get supervisors", "board", "assign REQUEST AGENT", "transfer REQUEST FROM TO",
		"requeue REQUEST QUEUE", "not-ready AGENT MRD", "logout AGENT", "--supervisor ID",
		"grant-list AGENT LIST", "revoke-list AGENT LIST", "set-list-access LIST open|restricted", "--access open|restricted",
		// agent console
		"join REQUEST", "leave REQUEST", "send REQUEST TEXT", "view", "request REQUEST", "login | logout",
		"ready MRD", "mode auto|pull", "request-chat", "accept REQUEST | reject REQUEST", "transfer REQUEST AGENT",
		"transfer-queue REQUEST QUEUE",
		// customer console
		"/agent", "/close", "/quit",
		// output and credentials
		"-o json", "SWITCHBOARD_ADMIN_TOKEN",
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"ctl", "--help"}, {"ctl", "-h"}, {"ctl", "help"}, {"help", "ctl"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 {
			t.Errorf("%q: exit %d: %s", args, code, errOut)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%q: stdout lacks %q", args, w)
			}
		}
	}
	for _, args := range [][]string{{"agent", "--help"}, {"customer", "--help"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "request-chat") || !strings.Contains(out, "/agent") || !strings.Contains(out, "--token-file") {
			t.Errorf("%q: exit %d, stdout:\n%s", args, code, out)
		}
	}
}

// TestAgentCustomerArguments: a stray argument is a usage error, not a
// reason to stop reading flags; flags after it still count.
func TestAgentCustomerArguments(t *testing.T) {
	cleanEnv(t)
	for _, args := range [][]string{
		{"agent", "--user", "alice", "--token", "x", "stray"},
		{"agent", "stray", "--user", "alice", "--token", "x"},
		{"customer", "--connector", "fb", "--token", "x", "--channel", "C2", "--customer", "john", "hello there"},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, "takes no arguments") {
			t.Errorf("%q: exit %d, want 2 saying it takes no arguments: %s", args, code, errOut)
		}
	}
	// No token anywhere: the error says where it looked.
	code, _, errOut := runCLI(t, "agent", "--user", "alice", "--addr", deadAddr(t))
	if code == 0 || !strings.Contains(errOut, "$SWITCHBOARD_AGENT_TOKEN (not set)") {
		t.Errorf("agent without a token: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "customer", "--connector", "fb", "--channel", "C2", "--customer", "john", "--say", "hi", "--addr", deadAddr(t))
	if code == 0 || !strings.Contains(errOut, "$SWITCHBOARD_CONNECTOR_TOKEN (not set)") {
		t.Errorf("customer without a token: exit %d: %s", code, errOut)
	}
}

// TestCustomerTokenFromEnvironment: SWITCHBOARD_CONNECTOR_TOKEN keeps the
// connector's secret out of argv, with flags after --say still read.
func TestCustomerTokenFromEnvironment(t *testing.T) {
	cleanEnv(t)
	n := newTestNode(t)
	t.Setenv("SWITCHBOARD_ADMIN_TOKEN", testAdminToken)
	ctl := func(args ...string) string {
		t.Helper()
		return mustRun(t, append([]string{"ctl", "--addr", n.clientAddr}, args...)...)
	}
	ctl("create", "mrd", "social")
	ctl("create", "channel-type", "facebook", "--mrd", "social")
	ctl("create", "list", "L1")
	ctl("create", "channel", "C2", "--type", "facebook", "--list", "L1")
	out := ctl("create", "connector", "fb", "--channels", "C2")
	tok := strings.TrimSpace(out[strings.Index(out, "token: ")+len("token: "):])
	t.Setenv("SWITCHBOARD_CONNECTOR_TOKEN", tok)
	t.Setenv("SWITCHBOARD_TOKEN", "wrong")
	out = mustRun(t, "customer", "--say", "hello", "--connector", "fb", "--channel", "C2", "--customer", "john", "--addr", n.clientAddr)
	if !strings.HasPrefix(out, "opened request ") {
		t.Fatalf("customer: %q", out)
	}
}
