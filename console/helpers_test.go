package console

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// fakeBackend is the node as the console sees it: supervisors with
// tokens, writes and reads recorded, and streams the test feeds.
type fakeBackend struct {
	mu        sync.Mutex
	tokens    map[string][sha256.Size]byte // supervisor → SHA-256 of its token
	writes    []transport.Write
	commitErr error
	attaches  chan *fakeStream
	// feed, if set, is delivered to each new stream within Attach.
	feed [][]byte
}

// fakeStream is one Attach: its arguments and its outbox.
type fakeStream struct {
	key      string
	since    uint64
	resume   bool
	out      transport.Outbox
	refused  bool // a Deliver of the feed returned false
	detached chan struct{}
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{tokens: map[string][sha256.Size]byte{}, attaches: make(chan *fakeStream, 16)}
}

func (f *fakeBackend) addSupervisor(id, token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[id] = sha256.Sum256([]byte(token))
}

func (f *fakeBackend) deleteSupervisor(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, id)
}

func (f *fakeBackend) Authenticate(role api.Role, id, token string) (api.Principal, error) {
	sum := sha256.Sum256([]byte(token))
	if role == api.RoleSupervisor && token != "" && f.CredentialValid(api.Principal{Role: role, ID: id}, sum[:]) {
		return api.Principal{Role: role, ID: id}, nil
	}
	return api.Principal{}, &api.Error{Code: api.CodeUnauthenticated, Msg: "unknown principal or bad token"}
}

func (f *fakeBackend) CredentialValid(p api.Principal, hash []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	want, ok := f.tokens[p.ID]
	return ok && p.Role == api.RoleSupervisor && subtle.ConstantTimeCompare(want[:], hash) == 1
}

func (f *fakeBackend) Commit(_ context.Context, w transport.Write) (any, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, w)
	if f.commitErr != nil {
		return nil, 0, f.commitErr
	}
	return api.Created{ID: "done"}, 42, nil
}

func (f *fakeBackend) lastWrite() transport.Write {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes[len(f.writes)-1]
}

func (f *fakeBackend) Query(_ context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error) {
	switch op {
	case api.QueryBoard:
		return api.Board{Supervisor: p.ID, Lists: []api.BoardList{{ID: "L1", OldestUnreadAt: 7}}}, nil
	case api.QueryRequest:
		var a api.QueryArgs
		if err := msgpack.Unmarshal(args, &a); err != nil {
			return nil, err
		}
		if a.Request != "R1" {
			return nil, api.Errorf(api.CodeNotFound, "request %q not found", a.Request)
		}
		return api.ConversationView{Request: api.RequestSummary{ID: "R1", State: api.StateActive}, Transcript: []api.Message{{Text: "hi"}}}, nil
	}
	return nil, api.Errorf(api.CodeUnknownOp, "%s", op)
}

func (f *fakeBackend) Attach(key string, since uint64, resume bool, out transport.Outbox) func() {
	s := &fakeStream{key: key, since: since, resume: resume, out: out, detached: make(chan struct{})}
	f.mu.Lock()
	feed := f.feed
	f.mu.Unlock()
	for _, frame := range feed {
		if !out.Deliver(frame) {
			s.refused = true
			break
		}
	}
	f.attaches <- s
	var once sync.Once
	return func() { once.Do(func() { close(s.detached) }) }
}

// nextAttach returns the next stream attached.
func (f *fakeBackend) nextAttach(t *testing.T) *fakeStream {
	t.Helper()
	select {
	case s := <-f.attaches:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no stream attached")
	}
	return nil
}

// frame encodes an event as the hub delivers it.
func frame(t testing.TB, seq uint64, kind api.EventKind, data any) []byte {
	t.Helper()
	b, err := transport.EncodeEvent(seq, kind, data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testConsole is a Handler over a fake backend, served by httptest.
type testConsole struct {
	h   *Handler
	be  *fakeBackend
	srv *httptest.Server
}

func newTestConsole(t *testing.T, tune func(*Config)) *testConsole {
	t.Helper()
	be := newFakeBackend()
	be.addSupervisor("sam", "sam-token")
	cfg := Config{Backend: be, Secret: []byte("cluster-secret"), Node: "n1"}
	if tune != nil {
		tune(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	srv.Config.RegisterOnShutdown(h.Close)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return &testConsole{h: h, be: be, srv: srv}
}

// browser is a cookie jar that does not follow redirects, with the page's
// CSRF token once logged in.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func (tc *testConsole) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: tc.srv.URL, c: &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) do(method, path, body string, hdr map[string]string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

var csrfRE = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

func (b *browser) login(id, token string) *http.Response {
	b.t.Helper()
	resp, _ := b.do(http.MethodPost, "/console/login", url.Values{"id": {id}, "token": {token}}.Encode(),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode == http.StatusSeeOther {
		_, page := b.do(http.MethodGet, "/console/", "", nil)
		if m := csrfRE.FindStringSubmatch(page); m != nil {
			b.csrf = m[1]
		}
	}
	return resp
}

// post sends a JSON action with the CSRF token and more headers.
func (b *browser) post(path string, body any, hdr map[string]string) (int, map[string]any) {
	b.t.Helper()
	raw, _ := json.Marshal(body)
	h := map[string]string{"Content-Type": "application/json", "X-CSRF-Token": b.csrf}
	for k, v := range hdr {
		h[k] = v
	}
	resp, out := b.do(http.MethodPost, path, string(raw), h)
	var m map[string]any
	_ = json.Unmarshal([]byte(out), &m)
	return resp.StatusCode, m
}

// sse is an open event stream.
type sse struct {
	resp   *http.Response
	lines  chan string
	cancel context.CancelFunc
}

// events opens the stream with extra headers; it fails unless 200.
func (b *browser) events(path string, hdr map[string]string) *sse {
	b.t.Helper()
	resp, s := b.openEvents(path, hdr)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return s
}

func (b *browser) openEvents(path string, hdr map[string]string) (*http.Response, *sse) {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Jar: b.c.Jar}).Do(req)
	if err != nil {
		cancel()
		b.t.Fatalf("GET %s: %v", path, err)
	}
	s := &sse{resp: resp, lines: make(chan string, 256), cancel: cancel}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	b.t.Cleanup(s.close)
	return resp, s
}

func (s *sse) close() {
	s.cancel()
	s.resp.Body.Close()
}

// line returns the next line, or ok false when the stream ended.
func (s *sse) line(t *testing.T) (string, bool) {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		return l, ok
	case <-time.After(5 * time.Second):
		t.Fatal("nothing on the stream within 5s")
	}
	return "", false
}

// event returns the next event's id, kind and data, skipping comments and
// the retry line.
func (s *sse) event(t *testing.T) (id, kind, data string) {
	t.Helper()
	for {
		l, ok := s.line(t)
		if !ok {
			t.Fatal("the stream ended")
		}
		switch {
		case strings.HasPrefix(l, "id: "):
			id = l[4:]
		case strings.HasPrefix(l, "event: "):
			kind = l[7:]
		case strings.HasPrefix(l, "data: "):
			data = l[6:]
		case l == "" && kind != "":
			return id, kind, data
		}
	}
}

// ended waits for the stream to end and returns the comments it sent.
func (s *sse) ended(t *testing.T) []string {
	t.Helper()
	var comments []string
	for {
		l, ok := s.line(t)
		if !ok {
			return comments
		}
		if strings.HasPrefix(l, ": ") {
			comments = append(comments, l[2:])
		}
	}
}
