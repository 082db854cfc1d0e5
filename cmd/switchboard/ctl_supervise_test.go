package main

import (
	"path/filepath"

	"github.com/switchboard/switchboard/api"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testutil"
)

// TestCtlSupervisor: an admin creates a supervisor scoped to one queue;
// ctl --supervisor acts as it: the board shows its queue only, it assigns
// a waiting request, takes an agent off routing and logs one out, and it is
// refused outside its scope and for admin verbs.
func TestCtlSupervisor(t *testing.T) {
	cleanEnv(t)
	n := newTestNode(t)
	t.Setenv("SWITCHBOARD_ADDR", n.clientAddr)
	t.Setenv("SWITCHBOARD_ADMIN_TOKEN", testAdminToken)
	for _, args := range [][]string{
		{"create", "mrd", "chat"}, {"create", "mrd", "email"},
		{"create", "channel-type", "webchat", "--mrd", "chat"}, {"create", "channel-type", "mail", "--mrd", "email"},
		{"create", "queue", "support", "--mrd", "chat"}, {"create", "queue", "inbox", "--mrd", "email"},
		{"create", "channel", "web", "--type", "webchat", "--queue", "support"},
		{"create", "channel", "mail", "--type", "mail", "--queue", "inbox"},
	} {
		mustRun(t, append([]string{"ctl"}, args...)...)
	}
	cred := func(out string) string { return strings.TrimSpace(strings.SplitN(out, "token: ", 2)[1]) }
	aliceTok := cred(mustRun(t, "ctl", "create", "agent", "alice", "--max", "chat=2"))
	bobTok := cred(mustRun(t, "ctl", "create", "agent", "bob", "--max", "email=1"))
	mustRun(t, "ctl", "queue", "add-member", "support", "alice")
	mustRun(t, "ctl", "queue", "add-member", "inbox", "bob")
	// A fresh node raises its feature level right after it elects itself;
	// supervisors need level 3.
	var out string
	testutil.WaitFor(t, 10*time.Second, func() bool {
		code, o, errOut := runCLI(t, "ctl", "create", "supervisor", "sam", "--name", "Sam", "--queues", "support")
		if code != 0 && !strings.Contains(errOut, "feature_not_enabled") {
			t.Fatalf("create supervisor: exit %d\n%s%s", code, o, errOut)
		}
		out = o
		return code == 0
	}, "create supervisor to be enabled")
	token := cred(out)
	tokFile := filepath.Join(t.TempDir(), "sam-token")
	writeFile(t, tokFile, token)
	if got := mustRun(t, "ctl", "get", "supervisors"); !strings.Contains(got, "sam") || !strings.Contains(got, "queues=support") {
		t.Fatalf("get supervisors:\n%s", got)
	}
	sup := func(args ...string) (int, string, string) {
		return runCLI(t, append([]string{"ctl", "--supervisor", "sam", "--token-file", tokFile}, args...)...)
	}
	mustSup := func(args ...string) string {
		t.Helper()
		code, o, errOut := sup(args...)
		if code != 0 {
			t.Fatalf("ctl --supervisor sam %q: exit %d\n%s%s", args, code, o, errOut)
		}
		return o
	}

	// Agents and the connector act over the wire.
	addrs := []string{n.clientAddr}
	alice := e2eDial(t, addrs, "agent", "alice", aliceTok)
	bob := e2eDial(t, addrs, "agent", "bob", bobTok)
	cx := e2eDial(t, addrs, "connector", "cx", cred(mustRun(t, "ctl", "create", "connector", "cx", "--channels", "web,mail")))
	e2eCall(t, alice, api.OpLogin, api.AgentArgs{}, nil)
	e2eCall(t, alice, api.OpSetAgentMode, api.SetAgentModeArgs{Mode: api.AgentModePull}, nil)
	e2eCall(t, alice, api.OpSetAgentState, api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}, nil)
	e2eCall(t, bob, api.OpLogin, api.AgentArgs{}, nil)
	var web, mail api.CustomerMessageResult
	e2eCall(t, cx, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "web", CustomerID: "john", Text: "hi"}, &web)
	e2eCall(t, cx, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "mail", CustomerID: "mary", Text: "hello"}, &mail)

	board := mustSup("board")
	for _, want := range []string{"support", web.Request, "alice", "chat=READY"} {
		if !strings.Contains(board, want) {
			t.Errorf("board lacks %q:\n%s", want, board)
		}
	}
	if strings.Contains(board, "inbox") || strings.Contains(board, mail.Request+" ") || strings.Contains(board, "bob") {
		t.Errorf("board of a supervisor of queue support shows inbox, its request or bob:\n%s", board)
	}
	if got := mustSup("assign", web.Request, "alice"); !strings.Contains(got, "offered "+web.Request+" to alice") {
		t.Errorf("assign printed %q", got)
	}
	e2eCall(t, alice, api.OpAcceptOffer, api.OfferArgs{Request: web.Request}, nil)
	mustSup("not-ready", "alice", "chat", "coaching")
	var st api.AgentStatus
	e2eCall(t, alice, api.OpSetAgentMode, api.SetAgentModeArgs{Mode: api.AgentModePull}, &st)
	if st.MRDs[0].State != api.AgentNotReady || st.MRDs[0].Reason != "coaching" {
		t.Errorf("alice after not-ready: %+v", st.MRDs)
	}
	// Outside the scope, and admin verbs: refused.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"close", mail.Request}, "forbidden"},
		{[]string{"logout", "bob"}, "forbidden"},
		{[]string{"not-ready", "alice", "chat", "x", "extra"}, "not-ready AGENT MRD"},
		{[]string{"create", "mrd", "voice"}, "may not run"},
		{[]string{"get", "agents"}, "forbidden"},
	} {
		if code, o, errOut := sup(c.args...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("ctl --supervisor sam %q: exit %d, want %q in\n%s%s", c.args, code, c.want, o, errOut)
		}
	}
	mustSup("logout", "alice")
	e2eCall(t, alice, api.OpSetAgentMode, api.SetAgentModeArgs{Mode: api.AgentModePull}, &st)
	if st.LoggedIn {
		t.Error("alice still logged in after the supervisor's logout")
	}
	mustSup("close", web.Request)
	mustRun(t, "ctl", "delete", "supervisor", "sam")
	if code, _, errOut := sup("board"); code == 0 || !strings.Contains(errOut, "unauthenticated") {
		t.Errorf("deleted supervisor's board: exit %d, %s", code, errOut)
	}
}
