package bench

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// realisticReport is a report with figures like docs/PERFORMANCE.md's
// 3-node run, widened where a column can grow (10,000 connectors, millions
// of notifications per second, faults and errors, a long command line).
func realisticReport() *Report {
	on, off := true, false
	cfg := DefaultConfig()
	cfg.Embedded = 3
	cfg.Scenarios = []string{ScenarioRaw, ScenarioPull, ScenarioMixed, ScenarioPush, ScenarioMemory}
	cfg.Connectors = []int{1, 256, 10000}
	cfg.GroupCommit = []bool{false, true}
	cfg.Think = 250 * time.Millisecond
	lat := Latency{Count: 123456, Mean: 40.1, P50: 56.4, P99: 175, P999: 187, Max: 1205}
	rep := &Report{
		Command: "switchboard bench --embedded 3 --scenario raw,pull,mixed,push,memory --connectors 1,256,10000 " +
			"--group-commit both --duration 20s --warmup 2s --agents 1000 --lists 100 --subs 10 --json /tmp/a/very/long/path/commit3.json",
		Config:  cfg,
		Machine: Machine{CPUs: 64, GOMAXPROCS: 64, CPUModel: "AMD EPYC 7B13 64-Core Processor with a long marketing name", Memory: "251.7 GiB", GoVersion: "go1.26.8"},
		Started: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), Finished: time.Date(2026, 12, 3, 12, 9, 12, 0, time.UTC),
		PlannedSeconds: 540,
	}
	for _, s := range []string{ScenarioRaw, ScenarioPull, ScenarioMixed, ScenarioPush} {
		for _, gc := range []*bool{&off, &on} {
			for _, n := range []int{1, 256, 10000} {
				c := CaseResult{Case: Case{Scenario: s, Connectors: n, GroupCommit: gc}, Nodes: 3, LoadBefore: 12.3, LoadAfter: 14.5,
					WindowSeconds: 20, Commands: 498000, CommandsPerSec: 24900, CPUPerCommand: 1095, CommandsPerEntry: 226.6,
					Latency: lat, Agents: 1000, NotificationsPerSec: 1.25e6, NotifLatency: lat,
					Correctness: Correctness{Missed: 12345, Duplicated: 3}, Errors: 123456}
				if s == ScenarioRaw {
					c.Agents = 0
				}
				rep.Cases = append(rep.Cases, c)
			}
		}
	}
	rep.Cases = append(rep.Cases, CaseResult{Case: Case{Scenario: ScenarioMemory, Connectors: 10000, GroupCommit: &on},
		Agents: 1000, RequestsOpened: 1000000, Memory: &Memory{HeapBytes: 742 << 20, RSSBytes: 1 << 30, HeapPerRequest: 740,
			RSSPerRequest: 1065, HeapPerAgent: 40000, RSSPerAgent: 50000, OpenSeconds: 120, SnapshotSeconds: 3.3,
			SnapshotEncodeSec: 1.26, SnapshotBytes: 314 << 20}})
	rep.compare()
	return rep
}

func TestTableFitsIn120Columns(t *testing.T) {
	var b bytes.Buffer
	realisticReport().WriteTable(&b)
	out := b.String()
	t.Log("\n" + out)
	for i, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > TableWidth {
			t.Errorf("line %d is %d columns wide, want ≤ %d:\n%s", i+1, n, TableWidth, line)
		}
	}
	// Every column of the header is explained in the legend under it.
	lines := strings.Split(out, "\n")
	var header string
	for _, l := range lines {
		if strings.Contains(l, "case") && strings.Contains(l, "cmd/s") && strings.Contains(l, "errors") {
			header = l
			break
		}
	}
	if header == "" {
		t.Fatal("no table header")
	}
	legend := map[string]bool{} // the words labelling legend lines
	after := false
	for _, l := range lines {
		if l == header {
			after = true
			continue
		}
		if after && strings.HasPrefix(l, "  ") && len(l) > 15 {
			for _, word := range strings.Fields(l[:15]) {
				legend[word] = true
			}
		}
	}
	for _, col := range strings.Fields(header) {
		if !legend[col] {
			t.Errorf("column %q is not explained in the legend", col)
		}
	}
}

func TestJSONReportKeysAreSnakeCaseWithUnits(t *testing.T) {
	rep := realisticReport()
	rep.Config.Duration, rep.Config.Warmup, rep.Config.Think = 20*time.Second, 1500*time.Millisecond, 250*time.Millisecond
	rep.Cases[0].ErrorKinds = map[string]int64{"customer_message: no_leader": 3}
	rep.Cases[1].Ops = map[string]Latency{"customer_message": {Count: 1}}
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				// error_kinds and ops are keyed by data (an op and an
				// error message), not by the report's own names.
				if !strings.HasSuffix(path, ".error_kinds") && !strings.HasSuffix(path, ".ops") && !snake.MatchString(k) {
					t.Errorf("%s.%s: key not snake_case", path, k)
				}
				walk(path+"."+k, x)
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		case float64:
			// A nanosecond duration is a huge number; no figure here
			// but a byte count comes near.
			if v >= 1e9 && !strings.HasSuffix(path, "_bytes") {
				t.Errorf("%s = %v: a nanosecond duration?", path, v)
			}
		}
	}
	walk("", doc)
	cfg := doc["config"].(map[string]any)
	for k, want := range map[string]float64{"duration_seconds": 20, "warmup_seconds": 1.5, "think_ms": 250} {
		if cfg[k] != want {
			t.Errorf("config.%s = %v, want %v", k, cfg[k], want)
		}
	}
	for _, k := range []string{"Duration", "duration", "warmup", "think", "token"} {
		if _, ok := cfg[k]; ok {
			t.Errorf("config has %q: a duration without its unit, or the token", k)
		}
	}
}

func TestPlanCountsSetupWarmupAndMeasurementPerCase(t *testing.T) {
	cfg := DefaultConfig() // raw and pull at 1, 16 and 256 connectors: 6 cases
	cfg.Duration, cfg.Warmup, cfg.Agents = 10*time.Second, time.Second, 0
	p := cfg.Plan()
	if p.Cases != 6 || p.Setup != setupPerCase || p.Total != 6*(setupPerCase+11*time.Second) {
		t.Errorf("plan %+v, want 6 cases of %v setup + 11s", p, setupPerCase)
	}
	// More nodes and agents take longer to set up; group commit both
	// doubles the cases; the memory scenario runs once, as long as
	// opening its requests takes.
	cfg.Embedded, cfg.Agents, cfg.GroupCommit = 3, 1000, []bool{false, true}
	cfg.Scenarios = append(cfg.Scenarios, ScenarioMemory)
	cfg.OpenRequests = 80000
	p = cfg.Plan()
	setup := setupPerCase + 2*setupPerNode + setupPer1000
	want := 12*(setup+11*time.Second) + setup + 10*time.Second
	if p.Cases != 13 || p.Setup != setup || p.Total != want {
		t.Errorf("plan %+v, want 13 cases, %v setup, %v in all", p, setup, want)
	}
	if s := p.String(); !strings.Contains(s, "13 case") || !strings.Contains(s, want.Round(time.Second).String()) {
		t.Errorf("plan prints %q", s)
	}
}

func TestProgressLineSaysThePhaseAndHowFarIntoIt(t *testing.T) {
	cfg := DefaultConfig()
	var from time.Time
	now := time.Now()
	if l := progressLine(ScenarioPull, &cfg, 700*time.Millisecond, false, &from, now, 1234, 5.5, 40000, 0); !strings.Contains(l, "warm-up") || !strings.Contains(l, "/1s") {
		t.Errorf("warm-up line %q", l)
	}
	progressLine(ScenarioPull, &cfg, 2*time.Second, true, &from, now, 1234, 5.5, 40000, 0)
	l := progressLine(ScenarioPull, &cfg, 6*time.Second, true, &from, now.Add(4*time.Second), 1234, 5.5, 40000, 2)
	for _, want := range []string{"measuring", "4/10s", "1234 cmd/s", "5.50 ms", "40.0k notif/s", "errors 2"} {
		if !strings.Contains(l, want) {
			t.Errorf("measuring line %q lacks %q", l, want)
		}
	}
}
