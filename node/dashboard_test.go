package node

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/switchboard/switchboard/api"
)

// dashboardFile is the Grafana dashboard shipped for these metrics.
const dashboardFile = "../deploy/grafana/switchboard.json"

// metricRef matches a metric name the dashboard's queries use: ours, and
// the Go and process collectors'.
var metricRef = regexp.MustCompile(`\b(?:switchboard|go|process)_[a-zA-Z0-9_]+`)

// dashboardQueries returns every query string of the dashboard: panel
// targets' expr and the template variables' queries.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					out = append(out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return out
}

// TestDashboardUsesExportedMetrics: every metric the Grafana dashboard
// queries is one a real node exports, checked against a scrape of a node
// that has seen commands, lists, queues and agents (families with labels
// appear only once they have a sample).
func TestDashboardUsesExportedMetrics(t *testing.T) {
	queries := dashboardQueries(t)
	if len(queries) < 20 {
		t.Fatalf("only %d queries in %s", len(queries), dashboardFile)
	}

	n := startHTTPNode(t, nil)
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, _ := haSetup(t, admin, "a1")
	haCall(t, admin, "create_queue", api.CreateQueueArgs{ID: "Q", MRD: "social"}, nil)
	_ = admin.Call(t.Context(), "create_list", api.CreateListArgs{ID: "L1"}, nil) // an error outcome
	a1 := haDial(t, []string{n.client}, "agent", "a1", tokens["a1"], false)
	haCall(t, a1, "login", api.AgentArgs{}, nil)
	if err := a1.Call(t.Context(), "create_list", api.CreateListArgs{ID: "L2"}, nil); haCode(err) != api.CodeForbidden {
		t.Fatalf("an agent's create_list: %v", err) // refused before proposing
	}
	fams := scrape(t, n.srv)

	used := map[string]bool{}
	for _, q := range queries {
		for _, name := range metricRef.FindAllString(q, -1) {
			used[name] = true
		}
	}
	for name := range used {
		if !exported(fams, name) {
			t.Errorf("the dashboard queries %s, which the node does not export (it exports: %s)", name, familyNames(fams))
		}
	}
	// And the other way round: every family of ours is on the dashboard,
	// and in the operations guide's table of metrics.
	doc, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	for name := range fams {
		if !strings.HasPrefix(name, "switchboard_") {
			continue
		}
		if !used[name] && !used[name+"_bucket"] {
			t.Errorf("%s is exported but on no dashboard panel", name)
		}
		if !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("%s is exported but not in %s's table of metrics", name, operationsDoc)
		}
	}
}

// operationsDoc documents every metric (Monitoring).
const operationsDoc = "../docs/OPERATIONS.md"

// exported reports whether name is a family of the scrape, or a series of
// a histogram family (_bucket, _sum, _count).
func exported(fams map[string]*dto.MetricFamily, name string) bool {
	if fams[name] != nil {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f := fams[base]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
				return true
			}
		}
	}
	return false
}
