package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// httpListener binds a loopback port for a node's HTTP listener.
func httpListener(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("bind HTTP port: %v", err)
	}
	return ln
}

// withHTTP gives a node an HTTP listener of its own.
func withHTTP(t testing.TB) func(*Config) {
	return func(cfg *Config) { cfg.HTTPListener = httpListener(t) }
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// httpGet GETs url with the bearer token (none if empty) and returns the
// status code and body.
func httpGet(t testing.TB, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, body
}

// readyz returns a node's /readyz answer.
func readyz(t testing.TB, s *Server) (int, Readiness) {
	t.Helper()
	code, body := httpGet(t, "http://"+s.HTTPAddr()+"/readyz", "")
	var rd Readiness
	if err := json.Unmarshal(body, &rd); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	return code, rd
}

// scrape GETs a node's /metrics and parses it with Prometheus's text
// parser.
func scrape(t testing.TB, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, "http://"+s.HTTPAddr()+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// sample returns the value of the sample of family name whose labels
// include want (a counter's, gauge's or untyped value; a histogram's
// count), and whether there is one.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// labels is shorthand for a label set.
func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// familyNames lists the families scraped, for failure messages.
func familyNames(fams map[string]*dto.MetricFamily) string {
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// cutNet isolates nodes of an in-process cluster from the others' Raft
// traffic: every node's Raft stream layer is wrapped (Config.Raft.
// StreamLayer), dials to or from a cut node fail, and the connections
// already open to or from it are closed, so Raft sees the cut at once. The
// client port (forwarding, node calls) is not affected.
type cutNet struct {
	mu    sync.Mutex
	ids   map[raft.ServerAddress]string // raft address → node id
	cut   map[string]bool
	conns map[*cutConn]struct{}
}

func newCutNet() *cutNet {
	return &cutNet{ids: map[raft.ServerAddress]string{}, cut: map[string]bool{}, conns: map[*cutConn]struct{}{}}
}

// tune registers a node and wraps its stream layer; use it as (part of)
// the node's Config tune function.
func (cn *cutNet) tune(n *haNode) func(*Config) {
	cn.mu.Lock()
	cn.ids[raft.ServerAddress(n.raft)] = n.id
	cn.mu.Unlock()
	return func(cfg *Config) {
		cfg.Raft.StreamLayer = func(inner raft.StreamLayer) raft.StreamLayer {
			return &cutStream{StreamLayer: inner, net: cn, self: n.id}
		}
	}
}

// isolate cuts node id off from every other node; heal undoes it.
func (cn *cutNet) isolate(id string) {
	cn.mu.Lock()
	cn.cut[id] = true
	var doomed []*cutConn
	for c := range cn.conns {
		if c.from == id || c.to == id {
			doomed = append(doomed, c)
		}
	}
	cn.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

func (cn *cutNet) heal(id string) {
	cn.mu.Lock()
	delete(cn.cut, id)
	cn.mu.Unlock()
}

func (cn *cutNet) blocked(a, b string) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.cut[a] || cn.cut[b]
}

var errCut = errors.New("cutnet: node isolated")

type cutStream struct {
	raft.StreamLayer
	net  *cutNet
	self string
}

func (s *cutStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	s.net.mu.Lock()
	to, known := s.net.ids[address]
	s.net.mu.Unlock()
	if known && s.net.blocked(s.self, to) {
		return nil, fmt.Errorf("dial %s: %w", address, errCut)
	}
	conn, err := s.StreamLayer.Dial(address, timeout)
	if err != nil || !known {
		return conn, err
	}
	c := &cutConn{Conn: conn, net: s.net, from: s.self, to: to}
	s.net.mu.Lock()
	s.net.conns[c] = struct{}{}
	s.net.mu.Unlock()
	if s.net.blocked(s.self, to) {
		c.Close()
		return nil, fmt.Errorf("dial %s: %w", address, errCut)
	}
	return c, nil
}

type cutConn struct {
	net.Conn
	net      *cutNet
	from, to string
	once     sync.Once
}

func (c *cutConn) Read(p []byte) (int, error) {
	if c.net.blocked(c.from, c.to) {
		c.Close()
		return 0, errCut
	}
	return c.Conn.Read(p)
}

func (c *cutConn) Write(p []byte) (int, error) {
	if c.net.blocked(c.from, c.to) {
		c.Close()
		return 0, errCut
	}
	return c.Conn.Write(p)
}

func (c *cutConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.net.mu.Lock()
		delete(c.net.conns, c)
		c.net.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}
