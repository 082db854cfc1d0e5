package node

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
)

// TestConsoleLogin: the login form sets an HttpOnly, SameSite=Strict
// session cookie (Secure behind TLS), never puts the token in a URL or the
// cookie, refuses bad tokens and a token passed in the query string, and
// rate-limits failed logins per source address.
func TestConsoleLogin(t *testing.T) {
	n := startHTTPNode(t, nil)
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	_, _, supToken := consoleSetup(t, admin)
	base := "http://" + n.srv.HTTPAddr()
	c := newConsoleClient(t, base)

	// Not logged in: the page sends the browser to the login form; the API
	// answers 401.
	resp, _ := c.do(http.MethodGet, "/console/", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("GET /console/ without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := c.do(http.MethodGet, "/console/api/board", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /console/api/board without a session: %d %s", resp.StatusCode, body)
	}
	resp, body := c.do(http.MethodGet, "/console/login", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `method="post"`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("GET /console/login: %d %q\n%.300s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
	}

	// Bad credentials, and the right ones in the URL instead of the body.
	for _, tc := range []struct{ what, id, token string }{
		{"a wrong token", "sam", supToken + "x"},
		{"an unknown supervisor", "nobody", supToken},
		{"an empty token", "sam", ""},
	} {
		resp, _ := c.login(tc.id, tc.token)
		if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
			t.Errorf("login with %s: %d, cookies %v; want 401 and no cookie", tc.what, resp.StatusCode, resp.Cookies())
		}
	}
	resp, _ = c.do(http.MethodPost, "/console/login?id=sam&token="+supToken, nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("login with the token in the query string: %d %v, want 401", resp.StatusCode, resp.Cookies())
	}

	// The right ones: a session cookie, and back to the console.
	resp, _ = c.login("sam", supToken)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies: %v", len(cookies), cookies)
	}
	ck := cookies[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/console/" || ck.MaxAge <= 0 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP, Path /console/, a lifetime", ck)
	}
	if strings.Contains(ck.Value, supToken) || strings.Contains(resp.Header.Get("Location"), supToken) {
		t.Fatal("the token shows in the cookie or the redirect")
	}
	page := c.loadPage()
	if strings.Contains(page, supToken) {
		t.Fatal("the console's page carries the token")
	}
	if resp, body := c.do(http.MethodGet, "/console/api/board", nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"supervisor":"sam"`) {
		t.Fatalf("GET /console/api/board logged in: %d %.200s", resp.StatusCode, body)
	}

	// Behind a TLS-terminating proxy the cookie is Secure.
	form := "id=sam&token=" + supToken
	resp, _ = newConsoleClient(t, base).do(http.MethodPost, "/console/login", strings.NewReader(form),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-Proto": "https"})
	if cs := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || !cs[0].Secure {
		t.Fatalf("login through https: %d %v, want a Secure cookie", resp.StatusCode, cs)
	}

	// Logout clears the cookie (with the CSRF token).
	other := newConsoleClient(t, base)
	other.mustLogin("sam", supToken)
	if code := other.post("/console/logout", nil, nil); code != http.StatusOK {
		t.Fatalf("logout: %d", code)
	}
	if resp, _ := other.do(http.MethodGet, "/console/api/board", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after logout: %d, want 401", resp.StatusCode)
	}

	// Failed logins from one address are limited: 10 at once, then 429.
	limited := false
	for i := 0; i < 30 && !limited; i++ {
		resp, _ := c.login("sam", "wrong")
		limited = resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != ""
	}
	if !limited {
		t.Fatal("30 failed logins from one address were never refused with 429")
	}
	if resp, _ := c.login("sam", supToken); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a good login from a blocked address: %d, want 429", resp.StatusCode)
	}
}

// TestConsoleCSRF: a state-changing request needs the page's CSRF token
// in a header and must come from the console's own origin.
func TestConsoleCSRF(t *testing.T) {
	n := startHTTPNode(t, nil)
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	_, _, supToken := consoleSetup(t, admin)
	c := newConsoleClient(t, "http://"+n.srv.HTTPAddr())
	c.mustLogin("sam", supToken)
	body := `{"request":"R404"}`
	for _, tc := range []struct {
		what   string
		header map[string]string
	}{
		{"no token", map[string]string{"Content-Type": "application/json"}},
		{"a wrong token", map[string]string{"Content-Type": "application/json", "X-CSRF-Token": c.csrf + "x"}},
		{"the token from another site", map[string]string{"Content-Type": "application/json", "X-CSRF-Token": c.csrf, "Sec-Fetch-Site": "cross-site"}},
		{"the token with a foreign Origin", map[string]string{"Content-Type": "application/json", "X-CSRF-Token": c.csrf, "Origin": "http://evil.example"}},
	} {
		resp, b := c.do(http.MethodPost, "/console/api/close", strings.NewReader(body), tc.header)
		var e struct{ Code, Message string }
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode != http.StatusForbidden || e.Code != "forbidden" {
			t.Errorf("POST close with %s: %d %s, want 403 forbidden", tc.what, resp.StatusCode, b)
		}
	}
	// With it, the request reaches the state machine, which knows no R404.
	var e struct{ Code, Message string }
	if code := c.post("/console/api/close", map[string]string{"request": "R404"}, &e); code != http.StatusNotFound || e.Code != "not_found" {
		t.Fatalf("POST close R404 with the token: %d %+v, want 404 not_found", code, e)
	}
	// Bad arguments are refused before anything is proposed.
	if code := c.post("/console/api/close", map[string]any{"request": "R1", "bogus": 1}, &e); code != http.StatusBadRequest {
		t.Fatalf("POST close with an unknown field: %d %+v, want 400", code, e)
	}
	if code := c.post("/console/api/nope", map[string]string{}, &e); code != http.StatusNotFound || e.Code != "unknown_op" {
		t.Fatalf("POST an unknown action: %d %+v", code, e)
	}
}

// TestConsoleStreamAndActions: the event stream starts with a sync that
// carries the board, then events arrive live with their seqs as ids; a
// close posted from the console reaches the agent over TCP; a resume with
// Last-Event-ID gets exactly the events missed; a deleted supervisor's
// cookie is refused and its stream ends.
func TestConsoleStreamAndActions(t *testing.T) {
	n := startHTTPNode(t, nil)
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	agentToken, fbToken, supToken := consoleSetup(t, admin)
	c := newConsoleClient(t, "http://"+n.srv.HTTPAddr())
	c.mustLogin("sam", supToken)

	st := c.events("")
	sync := st.next()
	var view struct {
		Supervisor string `json:"supervisor"`
		Board      *struct {
			Supervisor string `json:"supervisor"`
			Lists      []struct {
				ID string `json:"id"`
			} `json:"lists"`
		} `json:"board"`
	}
	if err := json.Unmarshal([]byte(sync.Data), &view); err != nil || sync.Kind != "sync" || view.Board == nil ||
		view.Board.Supervisor != "sam" || len(view.Board.Lists) != 1 || view.Board.Lists[0].ID != "L1" {
		t.Fatalf("first event %s %s (%v), want a sync with sam's board", sync.Kind, sync.Data, err)
	}
	syncSeq := mustSeq(t, sync.ID)
	if syncSeq&(1<<api.SeqShift-1) != 1<<api.SeqShift-1 {
		t.Fatalf("sync id %d is not a sync's seq", syncSeq)
	}

	agent := haDial(t, []string{n.client}, "agent", "a1", agentToken, false)
	fb := haDial(t, []string{n.client}, "connector", "fb", fbToken, false)
	var cm api.CustomerMessageResult
	haCall(t, fb, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: "john", CustomerName: "John", Text: "hello"}, &cm)
	created := st.nextOf("request.created")
	var sum struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Customer struct {
			Name string `json:"name"`
		} `json:"customer"`
	}
	if err := json.Unmarshal([]byte(created.Data), &sum); err != nil || sum.ID != cm.Request || sum.State != "UNREAD" || sum.Customer.Name != "John" {
		t.Fatalf("request.created %s (%v), want %s UNREAD from John", created.Data, err, cm.Request)
	}
	if mustSeq(t, created.ID) <= syncSeq {
		t.Fatalf("request.created id %s is not after the sync's %d", created.ID, syncSeq)
	}
	haCall(t, agent, api.OpJoin, api.RequestArgs{Request: cm.Request}, nil)
	joined := st.nextOf("conversation.joined")
	if !strings.Contains(joined.Data, `"agent":"a1"`) || !strings.Contains(joined.Data, `"state":"ACTIVE"`) {
		t.Fatalf("conversation.joined %s", joined.Data)
	}

	// The transcript, through the supervisor's read.
	resp, b := c.do(http.MethodGet, "/console/api/request/"+cm.Request, nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"text":"hello"`) {
		t.Fatalf("GET request %s: %d %s", cm.Request, resp.StatusCode, b)
	}

	// A close from the console: the agent hears it over TCP, by sam. It
	// carries the page's idempotency key: sent again (a retry after a lost
	// answer), it is answered from the idempotency record, ok, not applied
	// twice (a new write would be refused: the request is closed).
	closeReq := func(seq string) (int, string) {
		hdr := map[string]string{"Content-Type": "application/json", "X-CSRF-Token": c.csrf, "X-Client-ID": "tab-1", "X-Seq": seq}
		resp, b := c.do(http.MethodPost, "/console/api/close", strings.NewReader(`{"request":"`+cm.Request+`"}`), hdr)
		return resp.StatusCode, string(b)
	}
	if code, b := closeReq("1"); code != http.StatusOK || !strings.Contains(b, `"ok":true`) {
		t.Fatalf("POST close: %d %s", code, b)
	}
	closed := nextOfKind(t, agent, api.EvConversationClosed)
	var cc api.ConversationClosed
	if err := closed.Decode(&cc); err != nil || cc.Request != cm.Request || cc.By != (api.Principal{Role: api.RoleSupervisor, ID: "sam"}) {
		t.Fatalf("the agent heard %+v (%v), want %s closed by supervisor sam", cc, err, cm.Request)
	}
	lastSeen := st.nextOf("conversation.closed")
	if !strings.Contains(lastSeen.Data, `"id":"sam"`) {
		t.Fatalf("the console's conversation.closed: %s", lastSeen.Data)
	}
	if code, b := closeReq("1"); code != http.StatusOK {
		t.Fatalf("the same close retried: %d %s, want the original answer", code, b)
	}
	if code, b := closeReq("2"); code != http.StatusConflict || !strings.Contains(b, `"code":"closed"`) {
		t.Fatalf("a new close of the closed request: %d %s, want 409 closed", code, b)
	}

	// The browser drops (the close's request.removed still in flight);
	// meanwhile two more requests come. It resumes from the last id it saw
	// and gets exactly what it missed, no sync, no duplicate.
	st.close()
	for _, who := range []string{"mary", "paul"} {
		haCall(t, fb, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: who, Text: "hi"}, nil)
	}
	st2 := c.events(lastSeen.ID)
	prev := mustSeq(t, lastSeen.ID)
	for _, want := range []struct{ kind, has string }{
		{"request.removed", `"id":"` + cm.Request + `"`},
		{"request.created", `"id":"mary"`},
		{"request.created", `"id":"paul"`},
	} {
		ev := st2.next()
		if ev.Kind != want.kind || !strings.Contains(ev.Data, want.has) {
			t.Fatalf("resumed stream: %s %s, want %s with %s", ev.Kind, ev.Data, want.kind, want.has)
		}
		if seq := mustSeq(t, ev.ID); seq <= prev {
			t.Fatalf("resumed stream: id %d after %d", seq, prev)
		} else {
			prev = seq
		}
	}

	// The supervisor is deleted: its cookie is refused at once, and its
	// stream ends.
	haCall(t, admin, api.OpDeleteSupervisor, api.IDArgs{ID: "sam"}, nil)
	if resp, b := c.do(http.MethodGet, "/console/api/board", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a deleted supervisor's cookie: %d %s, want 401", resp.StatusCode, b)
	}
	if code := c.post("/console/api/close", map[string]string{"request": cm.Request}, nil); code != http.StatusUnauthorized {
		t.Fatalf("a deleted supervisor's action: %d, want 401", code)
	}
	for {
		if _, ok := <-st2.events; !ok {
			break
		}
	}
}

// TestConsoleResumeOnAnotherNode: behind a load balancer the browser's
// reconnect lands on another node of the cluster: the same cookie works
// there, and Last-Event-ID resumes the stream with exactly the events the
// supervisor's TCP stream got after that id, no gap, no duplicate.
func TestConsoleResumeOnAnotherNode(t *testing.T) {
	c3 := startHACluster(t, 3, withHTTP(t))
	n1, n2 := c3.nodes[0], c3.nodes[1]
	admin := haDial(t, c3.addrs(0), "admin", "", haAdminToken, false)
	agentToken, fbToken, supToken := consoleSetup(t, admin)
	// The reference: the same supervisor's stream over TCP, from before
	// the browser's.
	ref := haDial(t, c3.addrs(2), "supervisor", "sam", supToken, false)
	if ev := haNextEvent(t, ref); ev.Kind != api.EvSync {
		t.Fatalf("the TCP stream began with %s", ev.Kind)
	}

	c := newConsoleClient(t, "http://"+n1.srv.HTTPAddr())
	c.mustLogin("sam", supToken)
	st := c.events("")
	if ev := st.next(); ev.Kind != "sync" {
		t.Fatalf("first event %s, want sync", ev.Kind)
	}
	fb := haDial(t, c3.addrs(1), "connector", "fb", fbToken, false)
	agent := haDial(t, c3.addrs(2), "agent", "a1", agentToken, false)
	var r1 api.CustomerMessageResult
	haCall(t, fb, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: "c1", Text: "one"}, &r1)
	seen := st.nextOf("request.created")
	st.close()

	// While no browser listens: a join, messages, a new request, a leave.
	haCall(t, agent, api.OpJoin, api.RequestArgs{Request: r1.Request}, nil)
	haCall(t, fb, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: "c1", Text: "two"}, nil)
	haCall(t, fb, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: "c2", Text: "three"}, nil)
	haCall(t, agent, api.OpLeave, api.RequestArgs{Request: r1.Request}, nil)

	// What the TCP stream got after the browser's last id, up to the leave.
	after := mustSeq(t, seen.ID)
	var want []string
	for {
		ev := haNextEvent(t, ref)
		if ev.Seq <= after {
			continue
		}
		want = append(want, strconv.FormatUint(ev.Seq, 10)+" "+string(ev.Kind))
		if ev.Kind == api.EvConversationLeft {
			break
		}
	}

	// The reconnect lands on n2, with the cookie n1 set.
	on2 := c.at("http://" + n2.srv.HTTPAddr())
	st2 := on2.events(seen.ID)
	var got []string
	for len(got) < len(want) {
		ev := st2.next()
		got = append(got, ev.ID+" "+ev.Kind)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("resumed on n2 after %d:\n%s\nthe TCP stream had:\n%s", after, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// An action through n2 works with n1's session: the CSRF token is the
	// same on every node.
	on2.loadPage()
	if on2.csrf != c.csrf {
		t.Fatal("the CSRF token differs between nodes")
	}
	if code := on2.post("/console/api/close", map[string]string{"request": r1.Request}, nil); code != http.StatusOK {
		t.Fatalf("close through n2: %d", code)
	}
	if ev := st2.nextOf("conversation.closed"); !strings.Contains(ev.Data, r1.Request) {
		t.Fatalf("conversation.closed on n2's stream: %s", ev.Data)
	}
}

func mustSeq(t testing.TB, id string) uint64 {
	t.Helper()
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		t.Fatalf("SSE id %q is not a seq: %v", id, err)
	}
	return seq
}
