package console

import (
	"crypto/sha256"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/vmihailenco/msgpack/v5"
)

// TestSessionCookie: a cookie verifies only with the key it was made with,
// unchanged and before its expiry; its CSRF token is the same on every
// node (same secret) and differs between sessions.
func TestSessionCookie(t *testing.T) {
	k := deriveKeys([]byte("secret"))
	now := time.Unix(1_800_000_000, 0)
	hash := sha256.Sum256([]byte("token"))
	v := k.mint("sam", hash, now.Add(time.Hour))
	s, err := k.parse(v, now)
	if err != nil || s.id != "sam" || s.hash != hash || !s.expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("parse(mint) = %+v, %v", s, err)
	}
	parts := strings.Split(v, ".")
	other := deriveKeys([]byte("other secret")).mint("sam", hash, now.Add(time.Hour))
	for _, tc := range []struct {
		what, value string
		want        error
	}{
		{"another cluster's cookie", other, errBadSession},
		{"another id", strings.Join([]string{parts[0], b64.EncodeToString([]byte("root")), parts[2], parts[3], parts[4]}, "."), errBadSession},
		{"a later expiry", strings.Join([]string{parts[0], parts[1], "9999999999", parts[3], parts[4]}, "."), errBadSession},
		{"a truncated MAC", v[:len(v)-2], errBadSession},
		{"another version", "v2" + v[2:], errBadSession},
		{"garbage", "not-a-cookie", errBadSession},
		{"an empty value", "", errBadSession},
		{"a huge value", strings.Repeat("a", 4096), errBadSession},
	} {
		if _, err := k.parse(tc.value, now); err != tc.want {
			t.Errorf("parse %s: %v, want %v", tc.what, err, tc.want)
		}
	}
	if _, err := k.parse(v, now.Add(time.Hour)); err != errExpired {
		t.Errorf("parse at its expiry: %v, want %v", err, errExpired)
	}
	if deriveKeys([]byte("secret")).csrfToken(s) != k.csrfToken(s) {
		t.Error("the CSRF token differs between two nodes of the same cluster")
	}
	s2, _ := k.parse(k.mint("sam", hash, now.Add(2*time.Hour)), now)
	if k.csrfToken(s2) == k.csrfToken(s) {
		t.Error("two sessions have the same CSRF token")
	}
}

// TestLoginAndRevocation: the login sets the cookie; each request checks
// the state still holds the token's hash, so a deleted supervisor is
// logged out.
func TestLoginAndRevocation(t *testing.T) {
	tc := newTestConsole(t, nil)
	b := tc.browser(t)
	if resp := b.login("sam", "wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad login: %d", resp.StatusCode)
	}
	resp := b.login("sam", "sam-token")
	if resp.StatusCode != http.StatusSeeOther || b.csrf == "" {
		t.Fatalf("login: %d, csrf %q", resp.StatusCode, b.csrf)
	}
	if resp, body := b.do(http.MethodGet, "/console/api/board", "", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"oldest_unread_at":7`) {
		t.Fatalf("board: %d %s (want the wire's field names)", resp.StatusCode, body)
	}
	if resp, body := b.do(http.MethodGet, "/console/api/request/R1", "", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"transcript":[{`) {
		t.Fatalf("request R1: %d %s", resp.StatusCode, body)
	}
	if resp, body := b.do(http.MethodGet, "/console/api/request/R9", "", nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("request R9: %d %s", resp.StatusCode, body)
	}
	// The token is replaced: the old cookie no longer holds.
	tc.be.addSupervisor("sam", "new-token")
	resp, body := b.do(http.MethodGet, "/console/api/board", "", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "unauthenticated") {
		t.Fatalf("board after the token was replaced: %d %s", resp.StatusCode, body)
	}
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Fatalf("the refused cookie was not cleared: %v", cs)
	}
}

// TestLoginRateLimit: failed logins per source address are limited; the
// limiter forgets an address once its bucket is full again.
func TestLoginRateLimit(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	tc := newTestConsole(t, func(c *Config) { c.LoginFailures = Rate{PerSec: 1, Burst: 3}; c.Now = clock })
	b := tc.browser(t)
	for i := range 3 {
		if resp := b.login("sam", "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed login %d: %d, want 401", i+1, resp.StatusCode)
		}
	}
	resp := b.login("sam", "sam-token")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("login after 3 failures: %d, want 429 with Retry-After", resp.StatusCode)
	}
	now = now.Add(1100 * time.Millisecond)
	if resp := b.login("sam", "sam-token"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login a second later: %d, want 303", resp.StatusCode)
	}

	l := newLimiter(Rate{PerSec: 1, Burst: 1}, 2)
	l.now = clock
	for _, k := range []string{"a", "b"} {
		if ok, _ := l.take(k); !ok {
			t.Fatalf("first take of %s refused", k)
		}
	}
	if ok, _ := l.take("c"); ok {
		t.Fatal("a third key was tracked past the limit of 2 while the others were empty")
	}
	now = now.Add(time.Second)
	if ok, _ := l.take("c"); !ok || len(l.buckets) > 2 {
		t.Fatalf("once the others refilled, c: %v, %d buckets", ok, len(l.buckets))
	}
}

// TestActions: an action needs the CSRF token and the same origin; it
// becomes one write with the supervisor as principal, its arguments in
// the op's msgpack form, and the page's idempotency key; errors map to
// HTTP statuses with {code, message}.
func TestActions(t *testing.T) {
	tc := newTestConsole(t, func(c *Config) { c.ActionRate = Rate{PerSec: 0.001, Burst: 10} })
	b := tc.browser(t)
	b.login("sam", "sam-token")

	if code, out := b.post("/console/api/close", map[string]string{"request": "R1"}, map[string]string{"X-CSRF-Token": ""}); code != http.StatusForbidden || out["code"] != "forbidden" {
		t.Fatalf("close without the CSRF token: %d %v", code, out)
	}
	if code, _ := b.post("/console/api/close", map[string]string{"request": "R1"}, map[string]string{"Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Fatalf("close from another origin: %d", code)
	}
	if n := len(tc.be.writes); n != 0 {
		t.Fatalf("%d writes committed by refused requests", n)
	}

	code, out := b.post("/console/api/close", map[string]string{"request": "R1"}, map[string]string{"X-Client-ID": "tab-7", "X-Seq": "12"})
	if code != http.StatusOK || out["ok"] != true || out["index"] != float64(42) {
		t.Fatalf("close: %d %v", code, out)
	}
	w := tc.be.lastWrite()
	var ra api.RequestArgs
	if err := msgpack.Unmarshal(w.Args, &ra); err != nil || w.Op != api.OpClose || ra.Request != "R1" ||
		w.By != (api.Principal{Role: api.RoleSupervisor, ID: "sam"}) || w.ClientID != "tab-7" || w.Seq != 12 {
		t.Fatalf("close committed %+v (%+v, %v)", w, ra, err)
	}
	if sum := sha256.Sum256([]byte("sam-token")); string(w.TokenHash) != string(sum[:]) {
		t.Fatal("the write does not carry the session's token hash")
	}

	// Without the page's key: not deduplicated (no client id, seq 0), so
	// that scripted calls hold none of the supervisor's idempotency
	// sessions.
	b.post("/console/api/not_ready", map[string]string{"agent": "a1", "mrd": "chat"}, nil)
	w = tc.be.lastWrite()
	var sa api.SetAgentStateArgs
	if err := msgpack.Unmarshal(w.Args, &sa); err != nil || w.Op != api.OpSetAgentState || sa.State != api.AgentNotReady ||
		sa.Agent != "a1" || sa.MRD != "chat" || w.ClientID != "" || w.Seq != 0 {
		t.Fatalf("not_ready committed %+v (%+v, %v)", w, sa, err)
	}
	b.post("/console/api/assign", map[string]string{"request": "R2", "to_agent": "a2"}, nil)
	var ta api.TransferArgs
	if w = tc.be.lastWrite(); w.Op != api.OpTransfer || msgpack.Unmarshal(w.Args, &ta) != nil || ta != (api.TransferArgs{Request: "R2", ToAgent: "a2"}) {
		t.Fatalf("assign committed %s %+v", w.Op, ta)
	}

	for _, bad := range []struct {
		path string
		body any
		hdr  map[string]string
		want int
	}{
		{"/console/api/close", map[string]any{}, nil, http.StatusBadRequest},
		{"/console/api/close", map[string]any{"request": "R1", "extra": "x"}, nil, http.StatusBadRequest},
		{"/console/api/close", map[string]any{"request": 7}, nil, http.StatusBadRequest},
		{"/console/api/close", map[string]any{"request": "R1"}, map[string]string{"X-Client-ID": "tab 1", "X-Seq": "1"}, http.StatusBadRequest},
		{"/console/api/close", map[string]any{"request": "R1"}, map[string]string{"X-Client-ID": "tab", "X-Seq": "0"}, http.StatusBadRequest},
		{"/console/api/close", map[string]any{"request": "R1"}, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"/console/api/explode", map[string]any{}, nil, http.StatusNotFound},
	} {
		if code, out := b.post(bad.path, bad.body, bad.hdr); code != bad.want {
			t.Errorf("POST %s %v %v: %d %v, want %d", bad.path, bad.body, bad.hdr, code, out, bad.want)
		}
	}

	tc.be.commitErr = api.Errorf(api.CodeWrongState, "agent a1 is LOGGED_OUT")
	if code, out := b.post("/console/api/logout", map[string]string{"agent": "a1"}, nil); code != http.StatusConflict || out["code"] != "wrong_state" || !strings.Contains(out["message"].(string), "LOGGED_OUT") {
		t.Fatalf("a refused logout: %d %v", code, out)
	}
	// The action rate: 10 at once; 9 were taken above (bad arguments
	// count, a refused CSRF token or an unknown action do not).
	limited := false
	for range 10 {
		if code, _ := b.post("/console/api/logout", map[string]string{"agent": "a1"}, nil); code == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("actions past the burst were never refused")
	}
}

// TestEventStream: the stream carries each event with its seq as id, its
// kind as event and its payload as JSON with the wire's names; the cursor
// comes from Last-Event-ID, else ?since; an idle stream gets keepalives;
// Close ends it.
func TestEventStream(t *testing.T) {
	tc := newTestConsole(t, func(c *Config) { c.KeepAlive = 50 * time.Millisecond; c.ReconnectDelay = 1500 * time.Millisecond })
	b := tc.browser(t)
	b.login("sam", "sam-token")

	syncSeq := api.SeqOf(10, 1<<api.SeqShift-1)
	tc.be.feed = [][]byte{
		frame(t, syncSeq, api.EvSync, api.StreamView{Supervisor: "sam", Board: &api.Board{Supervisor: "sam"}}),
		frame(t, api.SeqOf(11, 0), api.EvRequestCreated, api.RequestSummary{ID: "R1", State: api.StateUnread, CreatedAt: 5, Customer: api.Customer{ID: "john"}}),
	}
	s := b.events("/console/events", nil)
	if ct := s.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	if l, _ := s.line(t); l != "retry: 1500" {
		t.Fatalf("first line %q, want the retry", l)
	}
	at := tc.be.nextAttach(t)
	if at.key != api.SupervisorKey("sam") || at.resume {
		t.Fatalf("attached %+v, want sam's stream from a sync", at)
	}
	id, kind, data := s.event(t)
	if id != strconv.FormatUint(syncSeq, 10) || kind != "sync" || !strings.Contains(data, `"board":{`) {
		t.Fatalf("first event %s %s %s", id, kind, data)
	}
	id, kind, data = s.event(t)
	if id != "11534336" || kind != "request.created" || !strings.Contains(data, `"created_at":5`) || !strings.Contains(data, `"customer":{"id":"john"}`) {
		t.Fatalf("second event %s %s %s", id, kind, data)
	}
	// A live event, then silence: keepalives.
	at.out.Deliver(frame(t, api.SeqOf(12, 3), api.EvAgentState, api.AgentStateChange{Agent: "a1", MRD: "chat", State: api.AgentNotReady}))
	if id, kind, data := s.event(t); id != "12582915" || kind != "agent.state" || !strings.Contains(data, `"state":"NOT_READY"`) {
		t.Fatalf("live event %s %s %s", id, kind, data)
	}
	for {
		if l, _ := s.line(t); l == ": keepalive" {
			break
		}
	}
	tc.h.Close()
	s.ended(t)
	select {
	case <-at.detached:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not detach from the hub when it ended")
	}

	// Resume cursors.
	tc = newTestConsole(t, nil)
	b = tc.browser(t)
	b.login("sam", "sam-token")
	for _, c := range []struct {
		path, lastID string
		since        uint64
		resume       bool
	}{
		{"/console/events", "11534336", 11534336, true},
		{"/console/events?since=99", "", 99, true},
		{"/console/events?since=99", "11534336", 11534336, true},
		{"/console/events?since=nope", "", 0, false},
		{"/console/events", "-1", 0, false},
	} {
		hdr := map[string]string{}
		if c.lastID != "" {
			hdr["Last-Event-ID"] = c.lastID
		}
		s := b.events(c.path, hdr)
		if at := tc.be.nextAttach(t); at.since != c.since || at.resume != c.resume {
			t.Errorf("%s with Last-Event-ID %q: attached since %d resume %v, want %d %v", c.path, c.lastID, at.since, at.resume, c.since, c.resume)
		}
		s.close()
	}
}

// TestSlowStreamCutOff: a stream whose queue overflows is refused by the
// outbox (the hub never delivers to it again); what was queued is still
// sent, then the stream ends, for the browser to reconnect from the last
// id.
func TestSlowStreamCutOff(t *testing.T) {
	tc := newTestConsole(t, func(c *Config) { c.StreamFrames = 4 })
	b := tc.browser(t)
	b.login("sam", "sam-token")
	for i := range 10 {
		tc.be.feed = append(tc.be.feed, frame(t, api.SeqOf(uint64(20+i), 0), api.EvRequestUpdated, api.RequestSummary{ID: "R1"}))
	}
	s := b.events("/console/events", nil)
	if at := tc.be.nextAttach(t); !at.refused {
		t.Fatal("the outbox took 10 frames with room for 4")
	}
	for i := range 4 {
		if id, _, _ := s.event(t); id != strconv.FormatUint(api.SeqOf(uint64(20+i), 0), 10) {
			t.Fatalf("event %d: id %s", i, id)
		}
	}
	if comments := s.ended(t); len(comments) == 0 || !strings.Contains(comments[len(comments)-1], "slow consumer") {
		t.Fatalf("the cut-off stream ended with %v", comments)
	}

	o := newOutbox(10, 100)
	if !o.Deliver(make([]byte, 60)) || o.Deliver(make([]byte, 60)) || o.Deliver(make([]byte, 1)) {
		t.Fatal("the outbox's byte bound: want 60 taken, then 60 refused and every later frame too")
	}
	if frames, cut := o.take(nil); len(frames) != 1 || !cut {
		t.Fatalf("take: %d frames, cut %v", len(frames), cut)
	}
}

// TestStreamLimitsAndRevocation: streams are limited per supervisor and
// in total; a stream ends as soon as Revalidate finds its supervisor
// deleted.
func TestStreamLimitsAndRevocation(t *testing.T) {
	tc := newTestConsole(t, func(c *Config) { c.StreamsPerSupervisor = 1; c.MaxStreams = 2; c.Revalidate = time.Hour })
	tc.be.addSupervisor("ann", "ann-token")
	sam, sam2, ann, bob := tc.browser(t), tc.browser(t), tc.browser(t), tc.browser(t)
	sam.login("sam", "sam-token")
	sam2.login("sam", "sam-token")
	ann.login("ann", "ann-token")
	tc.be.addSupervisor("bob", "bob-token")
	bob.login("bob", "bob-token")

	s := sam.events("/console/events", nil)
	tc.be.nextAttach(t)
	if resp, _ := sam2.openEvents("/console/events", nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("sam's second stream: %d, want 429", resp.StatusCode)
	}
	sa := ann.events("/console/events", nil)
	tc.be.nextAttach(t)
	if resp, _ := bob.openEvents("/console/events", nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third stream on the node: %d, want 429", resp.StatusCode)
	}

	// sam is deleted: its stream ends on the revocation hook, ann's not.
	tc.be.deleteSupervisor("sam")
	tc.h.Revalidate([]api.Principal{{Role: api.RoleAgent, ID: "x"}})
	tc.h.Revalidate([]api.Principal{{Role: api.RoleSupervisor, ID: "sam"}})
	if comments := s.ended(t); len(comments) == 0 || !strings.Contains(comments[len(comments)-1], "logged out") {
		t.Fatalf("the deleted supervisor's stream ended with %v", comments)
	}
	// Its place is free again.
	testutil.WaitFor(t, 5*time.Second, func() bool {
		resp, s := bob.openEvents("/console/events", nil)
		s.close()
		return resp.StatusCode == http.StatusOK
	}, "the deleted supervisor's stream place to be free again")
	sa.close()
}

// TestPages: the page needs a session; the login page and the static files
// are served with their types and a strict content security policy.
func TestPages(t *testing.T) {
	tc := newTestConsole(t, nil)
	b := tc.browser(t)
	if resp, _ := b.do(http.MethodGet, "/console/", "", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("the console without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := b.do(http.MethodGet, "/console/login", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<form method="post" action="/console/login"`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("login page: %d %v", resp.StatusCode, resp.Header)
	}
	for file, typ := range map[string]string{"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"} {
		resp, body := b.do(http.MethodGet, "/console/static/"+file, "", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != typ || len(body) < 1000 {
			t.Errorf("%s: %d %s, %d bytes", file, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	for _, path := range []string{"/console/static/index.html", "/console/static/..%2fconsole.go", "/console/nope"} {
		if resp, _ := b.do(http.MethodGet, path, "", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	b.login("sam", "sam-token")
	resp, body = b.do(http.MethodGet, "/console/", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<meta name="supervisor" content="sam">`) || b.csrf == "" {
		t.Fatalf("the console logged in: %d %.300s", resp.StatusCode, body)
	}
	if resp, _ := b.do(http.MethodGet, "/console/login", "", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the login page logged in: %d, want a redirect to the console", resp.StatusCode)
	}
}

// TestMsgpackJSON: payloads keep the wire's field names, nested, with
// integers exact.
func TestMsgpackJSON(t *testing.T) {
	out, err := toJSON(api.OfferInfo{ID: "O1", Agent: "a1", Request: api.RequestSummary{ID: "R1", Participants: []string{"a2"}, SLA: api.SLAWarning},
		CreatedAt: 1_796_305_869_645_124_855, Priority: -3})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"id":"O1"`, `"agent":"a1"`, `"request":{`, `"participants":["a2"]`, `"sla":"warning"`, `"created_at":1796305869645124855`, `"priority":-3`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("JSON %s lacks %s", out, want)
		}
	}
	if _, err := msgpackJSON([]byte{0xdb, 0xff, 0xff, 0xff, 0xff}); err == nil {
		t.Error("a msgpack string claiming 4 GiB converted without error")
	}
	if _, _, _, err := frameJSON([]byte{0, 0, 0, 1, 0x80}); err == nil {
		t.Error("a frame that is not an event converted without error")
	}
}
