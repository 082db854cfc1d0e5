package node

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/switchboard/switchboard/internal/faultnet"
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
// traffic (Isolate, Rejoin): every node's Raft stream layer is wrapped
// (Config.Raft.StreamLayer), dials to or from a cut node fail, and the
// connections already open to or from it are closed, so Raft sees the cut
// at once. The client port (forwarding, node calls) is not affected.
type cutNet struct{ *faultnet.Net[string] }

func newCutNet() *cutNet { return &cutNet{faultnet.New[string](0)} }

// tune registers a node and wraps its stream layer; use it as (part of)
// the node's Config tune function.
func (cn *cutNet) tune(n *haNode) func(*Config) {
	cn.Register(n.id, n.raft)
	return func(cfg *Config) { cfg.Raft.StreamLayer = cn.Wrap(n.id) }
}
