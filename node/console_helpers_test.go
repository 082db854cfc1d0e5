package node

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// The console's tests drive a real node over real HTTP: a browser-like
// client with a cookie jar that does not follow redirects, an SSE reader,
// and the setup of a supervisor with its token.

// consoleClient is one browser: its cookies and the page's CSRF token.
type consoleClient struct {
	t    testing.TB
	base string // http://host:port of the node (or of a proxy in front)
	http *http.Client
	csrf string
}

func newConsoleClient(t testing.TB, base string) *consoleClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleClient{t: t, base: base, http: &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// at returns a client of the same browser (its cookies) aimed at another
// node.
func (c *consoleClient) at(base string) *consoleClient {
	cp := *c
	cp.base = base
	u, _ := url.Parse(c.base + "/console/")
	v, _ := url.Parse(base + "/console/")
	cp.http = &http.Client{Timeout: c.http.Timeout, CheckRedirect: c.http.CheckRedirect}
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(v, c.http.Jar.Cookies(u))
	cp.http.Jar = jar
	return &cp
}

// do sends a request and returns the response with its body read.
func (c *consoleClient) do(method, path string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// login posts the form and returns the answer.
func (c *consoleClient) login(id, token string) (*http.Response, []byte) {
	c.t.Helper()
	form := url.Values{"id": {id}, "token": {token}}
	return c.do(http.MethodPost, "/console/login", strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// mustLogin logs in and reads the CSRF token from the console's page.
func (c *consoleClient) mustLogin(id, token string) {
	c.t.Helper()
	resp, body := c.login(id, token)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		c.t.Fatalf("login: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	c.loadPage()
}

// loadPage GETs the console's page and keeps its CSRF token.
func (c *consoleClient) loadPage() string {
	c.t.Helper()
	resp, body := c.do(http.MethodGet, "/console/", nil, nil)
	m := csrfMeta.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		c.t.Fatalf("GET /console/: %d, csrf %v\n%.300s", resp.StatusCode, m != nil, body)
	}
	c.csrf = string(m[1])
	return string(body)
}

// post sends an action with the CSRF token; out, if not nil, receives the
// answer's JSON.
func (c *consoleClient) post(path string, args any, out any) int {
	c.t.Helper()
	b, _ := json.Marshal(args)
	resp, body := c.do(http.MethodPost, path, strings.NewReader(string(b)),
		map[string]string{"Content-Type": "application/json", "X-CSRF-Token": c.csrf})
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			c.t.Fatalf("POST %s: %d %q: %v", path, resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	ID   string
	Kind string
	Data string
}

// sseStream reads an event stream.
type sseStream struct {
	t      testing.TB
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
	ended  chan struct{}
}

// events opens GET /console/events, resuming after lastID if it is set.
func (c *consoleClient) events(lastID string) *sseStream {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/console/events", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	streamer := &http.Client{Jar: c.http.Jar}
	resp, err := streamer.Do(req)
	if err != nil {
		cancel()
		c.t.Fatalf("GET /console/events: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		c.t.Fatalf("GET /console/events: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sseStream{t: c.t, resp: resp, cancel: cancel, events: make(chan sseEvent, 1024), ended: make(chan struct{})}
	go s.read()
	c.t.Cleanup(s.close)
	return s
}

func (s *sseStream) read() {
	defer close(s.ended)
	defer close(s.events)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Kind != "" {
				s.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.ID = line[len("id: "):]
		case strings.HasPrefix(line, "event: "):
			ev.Kind = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.Data = line[len("data: "):]
		}
	}
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.ended
}

// next returns the next event, failing the test after applyWait.
func (s *sseStream) next() sseEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("the event stream ended")
		}
		return ev
	case <-time.After(applyWait):
		s.t.Fatal("no event on the stream within the wait")
	}
	return sseEvent{}
}

// nextOf skips events until one of kind.
func (s *sseStream) nextOf(kind string) sseEvent {
	s.t.Helper()
	for {
		if ev := s.next(); ev.Kind == kind {
			return ev
		}
	}
}

// consoleSetup creates the pull domain of haSetup with agent a1 and a
// supervisor sam of everything, and returns a1's token, the connector's
// and sam's.
func consoleSetup(t testing.TB, admin *transport.Client) (agentToken, fbToken, supToken string) {
	t.Helper()
	tokens, fb := haSetup(t, admin, "a1")
	var cred Credential
	haCall(t, admin, api.OpCreateSupervisor, api.CreateSupervisorArgs{ID: "sam", Name: "Sam"}, &cred)
	if cred.Token == "" {
		t.Fatal("create_supervisor showed no token")
	}
	return tokens["a1"], fb, cred.Token
}
