package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/switchboard/switchboard/cluster"
	"slices"
	"strings"
	"time"
)

// Scenario names.
const (
	ScenarioRaw    = "raw"    // no-op commands: the consensus layer's limit
	ScenarioPull   = "pull"   // customers open requests on lists; agents join and close them
	ScenarioMixed  = "mixed"  // pull, plus conversation messages both ways
	ScenarioPush   = "push"   // customers queue requests; auto-mode agents accept offers and close
	ScenarioMemory = "memory" // open many requests, measure heap per request and snapshot time
)

// Scenarios lists every scenario name in the order they run.
var Scenarios = []string{ScenarioRaw, ScenarioPull, ScenarioMixed, ScenarioPush, ScenarioMemory}

// Config is one bench invocation. Every combination of Scenarios,
// Connectors and GroupCommit is one case; with Embedded each case gets a
// fresh cluster.
type Config struct {
	// Addrs and Token point at a running cluster (the admin token).
	// Ignored when Embedded > 0.
	Addrs []string
	Token string `json:"-"`
	// Embedded starts a cluster of this many nodes in this process on
	// loopback (real Raft, BoltDB with fsync, TCP) for each case.
	Embedded int
	// DataDir holds the embedded nodes' data (default: a temporary
	// directory, removed afterwards). Its disk is the one that fsyncs.
	DataDir string

	Scenarios []string
	// Connectors are the counts of concurrent connector connections to
	// try; each is a case.
	Connectors []int
	// GroupCommit values to try (embedded only; a running cluster uses
	// its own setting), and the group-commit tuning of embedded nodes (0:
	// cluster's defaults; see cluster.BatchConfig).
	GroupCommit      []bool
	BatchMaxInFlight int
	BatchMaxCommands int

	// Duration is how long each case offers load, after Warmup.
	Duration time.Duration
	Warmup   time.Duration
	// Rate is the customers' request-opening rate (pull, mixed) or the
	// command rate (raw), per second over all connectors; 0 means as fast
	// as the connectors can (each has one command in flight).
	Rate float64

	// Topology: Lists lists (push: queues), Agents agents each subscribed
	// to (push: a member of) Subs of them.
	Lists  int
	Agents int
	Subs   int
	// Supervisors connected, each a supervisor of everything: it hears
	// every event of every list and queue, and its stream is checked like
	// an agent's (nothing missed, duplicated or out of order).
	Supervisors int
	// Handle is the fraction of requests an agent joins and closes (the
	// rest stay open on their list).
	Handle float64
	// LeaveRatio is the fraction of handled requests the agent leaves and
	// re-joins once before closing (INACTIVE and back).
	LeaveRatio float64
	// Messages is how many messages each side sends in a handled
	// conversation (mixed; pull sends none).
	Messages int
	// Think is the agent's pause between its actions on a conversation
	// (in push, before accepting an offer and before closing).
	Think time.Duration
	// MaxPerAgent is each agent's capacity in push (its maximum of
	// concurrent conversations in the MRD).
	MaxPerAgent int

	// Pad is the size of a raw no-op command's payload in bytes.
	Pad int
	// OpenRequests is how many requests the memory scenario opens.
	OpenRequests int
	// SnapshotCapture is the embedded nodes' snapshot capture mode
	// (cluster.CaptureReplay or CaptureLock; "" is the node's default).
	SnapshotCapture string
	// RebuildCommand is the embedded nodes' cluster.Config.RebuildCommand
	// (for CaptureProcess).
	RebuildCommand []string `json:"-"`
	// NodeLog, if set, is a file the embedded nodes log to (info and
	// above); by default their logs are dropped.
	NodeLog string
	// ProbeTrace, if set, is a CSV file the memory scenario writes every
	// snapshot-probe write to: when it was due and how long it took, to
	// line the slow ones up with the node's log and a GC trace.
	ProbeTrace string

	// Prefix starts every id the bench creates, so runs against one
	// cluster do not collide (default: from the start time).
	Prefix string
}

// maxSupervisors bounds Config.Supervisors.
const maxSupervisors = 64

// configJSON is Config as the JSON report writes it: snake_case keys like
// the rest of the report, durations in seconds or milliseconds as the key
// says.
type configJSON struct {
	Addrs            []string `json:"addrs,omitempty"`
	Embedded         int      `json:"embedded"`
	DataDir          string   `json:"data_dir,omitempty"`
	Scenarios        []string `json:"scenarios"`
	Connectors       []int    `json:"connectors"`
	GroupCommit      []bool   `json:"group_commit"`
	BatchMaxInFlight int      `json:"batch_max_in_flight"`
	BatchMaxCommands int      `json:"batch_max_commands"`
	DurationSeconds  float64  `json:"duration_seconds"`
	WarmupSeconds    float64  `json:"warmup_seconds"`
	RatePerSecond    float64  `json:"rate_per_second"`
	Lists            int      `json:"lists"`
	Agents           int      `json:"agents"`
	Subs             int      `json:"subs"`
	Supervisors      int      `json:"supervisors"`
	Handle           float64  `json:"handle"`
	LeaveRatio       float64  `json:"leave_ratio"`
	Messages         int      `json:"messages"`
	ThinkMS          float64  `json:"think_ms"`
	MaxPerAgent      int      `json:"max_per_agent"`
	PadBytes         int      `json:"pad_bytes"`
	OpenRequests     int      `json:"open_requests"`
	SnapshotCapture  string   `json:"snapshot_capture,omitempty"`
	Prefix           string   `json:"prefix"`
}

// MarshalJSON writes the configuration with snake_case keys and
// durations in seconds (duration_seconds, warmup_seconds) or milliseconds
// (think_ms); the token is left out.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON{
		Addrs: c.Addrs, Embedded: c.Embedded, DataDir: c.DataDir, Scenarios: c.Scenarios,
		Connectors: c.Connectors, GroupCommit: c.GroupCommit,
		BatchMaxInFlight: c.BatchMaxInFlight, BatchMaxCommands: c.BatchMaxCommands,
		DurationSeconds: c.Duration.Seconds(), WarmupSeconds: c.Warmup.Seconds(), RatePerSecond: c.Rate,
		Lists: c.Lists, Agents: c.Agents, Subs: c.Subs, Supervisors: c.Supervisors, Handle: c.Handle, LeaveRatio: c.LeaveRatio,
		Messages: c.Messages, ThinkMS: float64(c.Think) / float64(time.Millisecond), MaxPerAgent: c.MaxPerAgent,
		PadBytes: c.Pad, OpenRequests: c.OpenRequests, SnapshotCapture: c.SnapshotCapture, Prefix: c.Prefix,
	})
}

// Setup and teardown time a case costs besides its warm-up and
// measurement, for the plan printed up front: starting an embedded
// cluster (per node) or connecting to a running one, creating the
// topology, connecting the agents, and letting the load settle.
const (
	setupPerCase = 2 * time.Second
	setupPerNode = time.Second // each embedded node beyond the first
	setupPer1000 = time.Second // each 1,000 agents to create and connect
	memoryOpenAt = 8000        // requests/s the memory scenario opens at, roughly (docs/PERFORMANCE.md)
)

// Plan is the bench's time budget, printed before it starts.
type Plan struct {
	Cases   int
	Setup   time.Duration // per case (estimated)
	Warmup  time.Duration // per case
	Measure time.Duration // per case (the memory scenario: estimated)
	Total   time.Duration
}

// Plan estimates how long the run takes: per case, setup + warm-up +
// measurement; the memory scenario has no warm-up and takes as long as
// opening its requests does.
func (c *Config) Plan() Plan {
	p := Plan{Warmup: c.Warmup, Measure: c.Duration}
	p.Setup = setupPerCase + time.Duration(c.Agents)*setupPer1000/1000
	if c.Embedded > 1 {
		p.Setup += time.Duration(c.Embedded-1) * setupPerNode
	}
	for _, k := range c.cases() {
		p.Cases++
		if k.Scenario == ScenarioMemory {
			p.Total += p.Setup + time.Duration(float64(c.OpenRequests)/memoryOpenAt*float64(time.Second))
			continue
		}
		p.Total += p.Setup + c.Warmup + c.Duration
	}
	return p
}

// String is the plan as the bench prints it.
func (p Plan) String() string {
	return fmt.Sprintf("%d case(s) × (≈%s setup + %s warm-up + %s measured) ≈ %s in all",
		p.Cases, p.Setup.Round(time.Second), p.Warmup, p.Measure, p.Total.Round(time.Second))
}

// DefaultConfig returns the defaults of `switchboard bench`.
func DefaultConfig() Config {
	return Config{
		Embedded:     1,
		Scenarios:    []string{ScenarioRaw, ScenarioPull},
		Connectors:   []int{1, 16, 256},
		GroupCommit:  []bool{true},
		Duration:     10 * time.Second,
		Warmup:       time.Second,
		Lists:        10,
		Agents:       100,
		Subs:         2,
		Handle:       1,
		LeaveRatio:   0.1,
		Messages:     2,
		MaxPerAgent:  3,
		Pad:          200,
		OpenRequests: 100_000,
	}
}

// ErrConfig marks a bad Config (a usage error).
var ErrConfig = errors.New("bench: bad configuration")

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if c.Embedded < 0 || c.Embedded > 7 {
		return bad("--embedded %d: want 1 to 7 nodes (or 0 with --addr)", c.Embedded)
	}
	if c.Embedded == 0 && len(c.Addrs) == 0 {
		return bad("give --addr of a running cluster (with --token) or --embedded N")
	}
	if c.Embedded == 0 && c.Token == "" {
		return bad("--addr needs the cluster's admin --token")
	}
	if c.Embedded == 0 && (len(c.GroupCommit) != 1 || !c.GroupCommit[0]) {
		return bad("--group-commit applies to --embedded clusters only: a running cluster uses its own setting")
	}
	if len(c.Scenarios) == 0 {
		return bad("no scenario")
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return bad("unknown scenario %q (have %s)", s, strings.Join(Scenarios, ", "))
		}
	}
	if slices.Contains(c.Scenarios, ScenarioMemory) && c.Embedded == 0 {
		return bad("the memory scenario measures this process: it needs --embedded")
	}
	if len(c.Connectors) == 0 || slices.ContainsFunc(c.Connectors, func(n int) bool { return n < 1 || n > 10000 }) {
		return bad("--connectors %v: want counts from 1 to 10000", c.Connectors)
	}
	if len(c.GroupCommit) == 0 {
		return bad("no --group-commit value")
	}
	if c.Duration <= 0 || c.Warmup < 0 {
		return bad("--duration must be positive and --warmup not negative")
	}
	if c.Rate < 0 {
		return bad("--rate must not be negative")
	}
	if c.Supervisors < 0 || c.Supervisors > maxSupervisors {
		return bad("--supervisors %d: want 0 to %d", c.Supervisors, maxSupervisors)
	}
	if c.Lists < 1 || c.Agents < 0 || c.Subs < 1 {
		return bad("want at least 1 list and 1 subscription per agent")
	}
	if c.Subs > c.Lists {
		c.Subs = c.Lists
	}
	if c.Handle < 0 || c.Handle > 1 || c.LeaveRatio < 0 || c.LeaveRatio > 1 {
		return bad("--handle and --leave are fractions from 0 to 1")
	}
	if c.MaxPerAgent < 1 {
		return bad("--max must be at least 1")
	}
	switch c.SnapshotCapture {
	case "", cluster.CaptureReplay, cluster.CaptureLock:
	case cluster.CaptureProcess:
		if len(c.RebuildCommand) == 0 {
			return bad("--snapshot-capture %s: no rebuild command", c.SnapshotCapture)
		}
	default:
		return bad("--snapshot-capture %q: want %s, %s or %s", c.SnapshotCapture, cluster.CaptureProcess, cluster.CaptureReplay, cluster.CaptureLock)
	}
	if c.Messages < 0 || c.Think < 0 || c.Pad < 0 || c.OpenRequests < 0 {
		return bad("negative count or time")
	}
	if c.Prefix == "" {
		c.Prefix = "b" + time.Now().UTC().Format("150405")
	}
	return nil
}

// Case is one measured run: a scenario at one connector count with group
// commit on or off.
type Case struct {
	Scenario    string `json:"scenario"`
	Connectors  int    `json:"connectors"`
	GroupCommit *bool  `json:"group_commit,omitempty"` // nil: the running cluster's own setting
}

func (k Case) String() string {
	gc := "server"
	if k.GroupCommit != nil {
		gc = map[bool]string{true: "on", false: "off"}[*k.GroupCommit]
	}
	return fmt.Sprintf("%s C=%d gc=%s", k.Scenario, k.Connectors, gc)
}

// cases expands the configuration into its cases, in run order. The
// memory scenario runs once, with the largest connector count.
func (c *Config) cases() []Case {
	var out []Case
	for _, s := range c.Scenarios {
		gcs := c.GroupCommit
		conns := c.Connectors
		if s == ScenarioMemory {
			gcs = gcs[len(gcs)-1:] // group commit on, when run
			conns = []int{slices.Max(conns)}
		}
		for _, gc := range gcs {
			for _, n := range conns {
				k := Case{Scenario: s, Connectors: n}
				if c.Embedded > 0 {
					k.GroupCommit = &gc
				}
				out = append(out, k)
			}
		}
	}
	return out
}
