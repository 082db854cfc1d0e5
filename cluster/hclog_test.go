package cluster

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// records decodes the JSON log lines in buf.
func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("bad log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := newHCLogger(l, "raft")

	if h.IsDebug() || h.IsTrace() || !h.IsInfo() || !h.IsError() || h.GetLevel() != hclog.Info {
		t.Fatalf("levels: debug %v trace %v info %v level %v", h.IsDebug(), h.IsTrace(), h.IsInfo(), h.GetLevel())
	}
	h.Debug("hidden")
	h.Trace("hidden")
	sub := h.Named("snapshot").With("peer", "n2")
	if sub.Name() != "raft.snapshot" || len(sub.ImpliedArgs()) != 2 {
		t.Fatalf("Name %q, implied %v", sub.Name(), sub.ImpliedArgs())
	}
	sub.Warn("slow", "took", 3)
	h.ResetNamed("other").Error("boom")
	w := h.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true})
	if _, err := w.Write([]byte("[ERR] from stdlib\n")); err != nil {
		t.Fatal(err)
	}

	recs := records(t, &buf)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3: %s", len(recs), buf.String())
	}
	want := []map[string]any{
		{"level": "WARN", "msg": "slow", "logger": "raft.snapshot", "peer": "n2", "took": 3.0},
		{"level": "ERROR", "msg": "boom", "logger": "other"},
		{"level": "ERROR", "msg": "from stdlib", "logger": "raft"},
	}
	for i, w := range want {
		for k, v := range w {
			if recs[i][k] != v {
				t.Errorf("record %d: %s = %v, want %v (%v)", i, k, recs[i][k], v, recs[i])
			}
		}
	}
}

func TestHCLogAdapterRendersFmt(t *testing.T) {
	var buf bytes.Buffer
	h := newHCLogger(slog.New(slog.NewTextHandler(&buf, nil)), "")
	args := []any{"servers", hclog.Fmt("%+v", []int{1, 2})}
	h.Info("initial configuration", args...)
	if got := buf.String(); !strings.Contains(got, "servers=\"[1 2]\"") {
		t.Fatalf("log line %q does not render the hclog.Fmt value", got)
	}
	if _, ok := args[1].(hclog.Format); !ok {
		t.Fatal("the caller's args were modified")
	}
}
