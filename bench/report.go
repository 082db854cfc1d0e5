package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Report is the outcome of one bench invocation; --json writes it.
type Report struct {
	// Command is the command line as given (set by the caller).
	Command  string    `json:"command,omitempty"`
	Config   Config    `json:"config"`
	Machine  Machine   `json:"machine"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// PlannedSeconds is the run's estimated length, printed up front;
	// Finished − Started is what it took.
	PlannedSeconds float64      `json:"planned_seconds"`
	Cases          []CaseResult `json:"cases"`
}

// CaseResult is one case's figures.
type CaseResult struct {
	Case
	Nodes int `json:"nodes"`
	// LoadBefore and LoadAfter are the machine's 1-minute load average
	// when the case started and ended: other work on the machine skews
	// every figure.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
	// WindowSeconds is the measurement window (Duration, after Warmup).
	WindowSeconds float64 `json:"window_seconds"`
	// Commands is how many commands were answered (committed) in the
	// window, all ops together; Latency their latency from send (or due
	// time, under a rate) to answer; Ops the same per op.
	Commands       int64   `json:"commands"`
	CommandsPerSec float64 `json:"commands_per_sec"`
	// CPUPerCommand is this process's CPU time (user+system) in the
	// window per command, in microseconds: with --embedded it covers the
	// node and the bench's own clients, and is less sensitive than
	// commands/s to other work on the machine.
	CPUPerCommand float64 `json:"cpu_us_per_command"`
	// CommandsPerEntry is how many commands each Raft log entry carried
	// (embedded: from the nodes' group-commit counters; 1 without).
	CommandsPerEntry float64            `json:"commands_per_entry,omitempty"`
	Latency          Latency            `json:"latency"`
	Ops              map[string]Latency `json:"ops,omitempty"`
	RequestsOpened   int64              `json:"requests_opened"`
	// Agents connected; Notifications the events they read in the
	// window, of every kind; NotifLatency is from the customer message's
	// acknowledgement to each subscribed agent reading request.created
	// (a notification read before the acknowledgement counts as 0, and
	// NotifBeforeAck counts those).
	Agents              int         `json:"agents"`
	Notifications       int64       `json:"notifications"`
	NotificationsPerSec float64     `json:"notifications_per_sec"`
	NotifLatency        Latency     `json:"notification_latency"`
	NotifBeforeAck      int64       `json:"notifications_before_ack"`
	ConnectorEvents     int64       `json:"connector_events"`
	Correctness         Correctness `json:"correctness"`
	Errors              int64       `json:"errors"`
	// ErrorKinds counts the errors by op and message.
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	Memory     *Memory          `json:"memory,omitempty"`
	// VsRaw compares with the raw case at the same connector count
	// (group commit off if that was run).
	VsRaw *Ratio `json:"vs_raw,omitempty"`
}

// Correctness counts notification faults; all must be zero. Expected and
// Missed cover the list events (request.created/updated/removed) every
// subscriber is owed; Duplicated and OutOfOrder cover every event by seq.
type Correctness struct {
	Expected   int64 `json:"expected_list_events"`
	Missed     int64 `json:"missed"`
	Duplicated int64 `json:"duplicated"`
	OutOfOrder int64 `json:"out_of_order"`
	// Unexpected list events beyond those owed (a command whose answer
	// was lost but which applied; counted as an error too).
	Unexpected int64 `json:"unexpected"`
	// CutOff counts agent connections the node ended (e.g. slow
	// consumer).
	CutOff int64 `json:"cut_off"`
}

// OK reports whether nothing was missed, duplicated or out of order.
func (c Correctness) OK() bool {
	return c.Missed == 0 && c.Duplicated == 0 && c.OutOfOrder == 0 && c.Unexpected == 0 && c.CutOff == 0
}

// Memory is measured in this process (embedded clusters only), after a
// garbage collection: heap is live Go heap, RSS from /proc/self/status.
// Both ends of every connection live in the process.
type Memory struct {
	HeapBytes uint64 `json:"heap_bytes"`
	RSSBytes  uint64 `json:"rss_bytes"`
	// Memory scenario: the growth per connected, subscribed agent and per
	// open request (with a one-message transcript), the time to open them
	// and to snapshot the state holding them.
	HeapPerAgent      float64 `json:"heap_per_agent_bytes,omitempty"`
	RSSPerAgent       float64 `json:"rss_per_agent_bytes,omitempty"`
	HeapPerRequest    float64 `json:"heap_per_request_bytes,omitempty"`
	RSSPerRequest     float64 `json:"rss_per_request_bytes,omitempty"`
	OpenSeconds       float64 `json:"open_seconds,omitempty"`
	SnapshotSeconds   float64 `json:"snapshot_seconds,omitempty"`
	SnapshotEncodeSec float64 `json:"snapshot_encode_seconds,omitempty"`
	SnapshotBytes     int     `json:"snapshot_bytes,omitempty"`
	// SnapshotCapture is the node's capture mode (cluster.CaptureReplay
	// or CaptureLock), SnapshotHold how long the snapshot held Raft's
	// apply goroutine, and DuringSnapshot the latency of the writes due
	// while it ran; BeforeSnapshot is the same trickle's in the seconds
	// before, AfterSnapshot for as long again after (snapprobe.go).
	SnapshotCapture string   `json:"snapshot_capture,omitempty"`
	SnapshotHold    float64  `json:"snapshot_hold_seconds,omitempty"`
	BeforeSnapshot  *Latency `json:"before_snapshot,omitempty"`
	DuringSnapshot  *Latency `json:"during_snapshot,omitempty"`
	AfterSnapshot   *Latency `json:"after_snapshot,omitempty"`
}

// Ratio compares a case with its raw baseline.
type Ratio struct {
	Baseline       string  `json:"baseline"`
	CommandsPerSec float64 `json:"commands_per_sec"` // this / raw
	P50            float64 `json:"p50"`              // this / raw
}

// Failed reports whether any case had an error or a notification fault.
func (r *Report) Failed() bool {
	for _, c := range r.Cases {
		if c.Errors > 0 || !c.Correctness.OK() {
			return true
		}
	}
	return false
}

// compare fills VsRaw for every non-raw case.
func (r *Report) compare() {
	for i := range r.Cases {
		c := &r.Cases[i]
		if c.Scenario == ScenarioRaw || c.Scenario == ScenarioMemory {
			continue
		}
		var base *CaseResult
		for j := range r.Cases {
			b := &r.Cases[j]
			if b.Scenario != ScenarioRaw || b.Connectors != c.Connectors || b.CommandsPerSec == 0 {
				continue
			}
			if base == nil || (b.GroupCommit != nil && !*b.GroupCommit) {
				base = b
			}
		}
		if base == nil {
			continue
		}
		c.VsRaw = &Ratio{Baseline: base.Case.String(), CommandsPerSec: c.CommandsPerSec / base.CommandsPerSec}
		if base.Latency.P50 > 0 {
			c.VsRaw.P50 = c.Latency.P50 / base.Latency.P50
		}
	}
}

// TableWidth is the widest line WriteTable prints (for realistic
// figures); the JSON report carries every figure the table leaves out.
const TableWidth = 120

// WriteTable prints the configuration, one row per case and a legend of
// the columns.
func (r *Report) WriteTable(w io.Writer) {
	cfg := r.Config
	target := "embedded " + fmt.Sprint(cfg.Embedded) + "-node cluster in this process (loopback, BoltDB with fsync)"
	if cfg.Embedded == 0 {
		target = "running cluster at " + strings.Join(cfg.Addrs, ",")
	}
	fmt.Fprintf(w, "\nswitchboard bench — %s\n", r.Started.UTC().Format(time.RFC3339))
	field := func(name, value string) { writeWrapped(w, fmt.Sprintf("  %-9s ", name+":"), value) }
	if r.Command != "" {
		field("command", r.Command)
	}
	field("target", target)
	field("machine", fmt.Sprintf("%d CPUs (GOMAXPROCS %d) %s, %s memory, %s %s/%s", r.Machine.CPUs, r.Machine.GOMAXPROCS,
		r.Machine.CPUModel, r.Machine.Memory, r.Machine.GoVersion, runtime.GOOS, runtime.GOARCH))
	rate := "as fast as possible (one command in flight per connector)"
	if cfg.Rate > 0 {
		rate = fmt.Sprintf("%g/s over all connectors", cfg.Rate)
	}
	field("load", fmt.Sprintf("%v per case after %v warm-up; rate %s", cfg.Duration, cfg.Warmup, rate))
	field("pull", fmt.Sprintf("%d lists (one channel each), %d agents × %d lists, handle %.0f%% (leave+rejoin %.0f%%), %d messages each way in mixed, think %v",
		cfg.Lists, cfg.Agents, cfg.Subs, cfg.Handle*100, cfg.LeaveRatio*100, cfg.Messages, cfg.Think))
	field("push", fmt.Sprintf("%d queues, agents of capacity %d in %d queues each, accepting and closing after %v", cfg.Lists, cfg.MaxPerAgent, cfg.Subs, cfg.Think))
	field("raw", fmt.Sprintf("no-op commands with a %d-byte payload", cfg.Pad))
	if n := len(r.Cases); n > 0 {
		field("load avg", fmt.Sprintf("%.1f → %.1f (1-minute average at the first case's start → the last one's end; per case in the JSON)",
			r.Cases[0].LoadBefore, r.Cases[n-1].LoadAfter))
	}
	if !r.Finished.IsZero() {
		field("took", fmt.Sprintf("%s (planned ≈%s)", r.Finished.Sub(r.Started).Round(time.Second), time.Duration(r.PlannedSeconds*float64(time.Second)).Round(time.Second)))
	}
	fmt.Fprintln(w)

	rows := 0
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tcmd/s\t×raw\tp50\tp99\tmax\tp50×raw\tµs/cmd\tcmd/entry\tnotif/s\tn-p50\tn-p99\tfaults\terrors\t")
	for _, c := range r.Cases {
		if c.Scenario == ScenarioMemory {
			continue
		}
		rows++
		ratio, p50r := "-", "-"
		if c.VsRaw != nil {
			ratio = fmt.Sprintf("%.2f", c.VsRaw.CommandsPerSec)
			p50r = fmt.Sprintf("%.2f", c.VsRaw.P50)
		}
		notif := []string{"-", "-", "-"}
		if c.Agents > 0 {
			notif = []string{count(c.NotificationsPerSec), ms(c.NotifLatency.P50), ms(c.NotifLatency.P99)}
		}
		perEntry := "-"
		if c.CommandsPerEntry > 0 {
			perEntry = fmt.Sprintf("%.1f", c.CommandsPerEntry)
		}
		k := c.Correctness
		faults := k.Missed + k.Duplicated + k.OutOfOrder + k.Unexpected + k.CutOff
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%d\t\n",
			c.Case.String(), count(c.CommandsPerSec), ratio, ms(c.Latency.P50), ms(c.Latency.P99), ms(c.Latency.Max), p50r,
			c.CPUPerCommand, perEntry, notif[0], notif[1], notif[2], faults, c.Errors)
	}
	tw.Flush()
	if rows > 0 {
		cpu := "this process (nodes and bench clients)"
		if cfg.Embedded == 0 {
			cpu = "this bench process only (the cluster's own CPU is not seen)"
		}
		fmt.Fprintln(w)
		for _, l := range [][2]string{
			{"case", "scenario, C = concurrent connectors, gc = group commit on/off (server: the cluster's own setting)"},
			{"cmd/s", "commands answered per second in the measured window (k = thousand, M = million)"},
			{"×raw", "cmd/s ÷ the raw case's at the same connector count (gc=off if run); - for raw itself or with no raw case"},
			{"p50 p99 max", "command latency in ms, send to answer (p999 and the mean are in the JSON, per op too)"},
			{"p50×raw", "p50 ÷ the raw case's p50 (- as for ×raw)"},
			{"µs/cmd", "CPU time of " + cpu + " per command, in µs"},
			{"cmd/entry", "commands per Raft log entry (group commit; embedded only, else -)"},
			{"notif/s", "events the agents read per second (- without agents, e.g. raw)"},
			{"n-p50 n-p99", "ms from a customer message's ack to each subscribed agent reading request.created (max in the JSON)"},
			{"faults", "notifications missed + duplicated + out of order + unexpected + agents cut off: must be 0"},
			{"errors", "commands that failed: must be 0 (both detailed below when not)"},
		} {
			writeWrapped(w, fmt.Sprintf("  %-13s", l[0]), l[1])
		}
	}
	for _, c := range r.Cases {
		if m := c.Memory; m != nil && c.Scenario == ScenarioMemory {
			fmt.Fprintf(w, "\nmemory (%s, %d agents, %d open requests, this process after GC):\n", c.Case.String(), c.Agents, c.RequestsOpened)
			fmt.Fprintf(w, "  per open request:  %s heap, %s RSS\n", bytesStr(m.HeapPerRequest), bytesStr(m.RSSPerRequest))
			fmt.Fprintf(w, "  per agent:         %s heap, %s RSS (both ends of its connection)\n", bytesStr(m.HeapPerAgent), bytesStr(m.RSSPerAgent))
			fmt.Fprintf(w, "  total:             %s heap, %s RSS\n", bytesStr(float64(m.HeapBytes)), bytesStr(float64(m.RSSBytes)))
			fmt.Fprintf(w, "  opening:           %.1f s (%s requests/s)\n", m.OpenSeconds, count(float64(c.RequestsOpened)/m.OpenSeconds))
			fmt.Fprintf(w, "  snapshot:          %.2f s (state encode %.2f s, %s)\n", m.SnapshotSeconds, m.SnapshotEncodeSec, bytesStr(float64(m.SnapshotBytes)))
			if d, b := m.DuringSnapshot, m.BeforeSnapshot; d != nil && b != nil {
				fmt.Fprintf(w, "  during snapshot:   capture %s, applies held %.3f s; %d writes p50 %.1f p99 %.1f p999 %.1f max %.1f ms\n",
					m.SnapshotCapture, m.SnapshotHold, d.Count, d.P50, d.P99, d.P999, d.Max)
				fmt.Fprintf(w, "  before it:         %d writes p50 %.1f p99 %.1f p999 %.1f max %.1f ms\n", b.Count, b.P50, b.P99, b.P999, b.Max)
				if a := m.AfterSnapshot; a != nil {
					fmt.Fprintf(w, "  after it:          %d writes p50 %.1f p99 %.1f p999 %.1f max %.1f ms\n", a.Count, a.P50, a.P99, a.P999, a.Max)
				}
			}
			fmt.Fprintf(w, "  missed %d, duplicated %d, out of order %d, errors %d\n", c.Correctness.Missed, c.Correctness.Duplicated, c.Correctness.OutOfOrder, c.Errors)
		}
	}
	for _, c := range r.Cases {
		if len(c.ErrorKinds) > 0 || !c.Correctness.OK() {
			k := c.Correctness
			fmt.Fprintln(w)
			writeWrapped(w, c.Case.String()+": ", fmt.Sprintf("%d errors; of %d list events owed, missed %d, duplicated %d, out of order %d, unexpected %d; %d agents cut off",
				c.Errors, k.Expected, k.Missed, k.Duplicated, k.OutOfOrder, k.Unexpected, k.CutOff))
			for _, k := range slices.Sorted(maps.Keys(c.ErrorKinds)) {
				fmt.Fprintf(w, "  %6d × %s\n", c.ErrorKinds[k], k)
			}
		}
	}
}

// writeWrapped writes prefix and text, wrapping text at spaces so no line
// is wider than TableWidth; continuation lines are indented under text.
func writeWrapped(w io.Writer, prefix, text string) {
	indent := strings.Repeat(" ", utf8.RuneCountInString(prefix))
	line, width := prefix, utf8.RuneCountInString(prefix)
	first := true
	for _, word := range strings.Fields(text) {
		n := utf8.RuneCountInString(word)
		if !first && width+1+n > TableWidth {
			fmt.Fprintln(w, line)
			line, width, first = indent, len(indent), true
		}
		if !first {
			line += " "
			width++
		}
		line += word
		width += n
		first = false
	}
	fmt.Fprintln(w, line)
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func ms(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func count(v float64) string {
	switch {
	case v >= 10e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 100e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 10e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func bytesStr(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.2f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

// Machine describes where the bench ran.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	Memory     string `json:"memory"`
	GoVersion  string `json:"go_version"`
	Kernel     string `json:"kernel"`
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n float64
		fmt.Sscanf(kb, "%f", &n)
		m.Memory = bytesStr(n * 1024)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// procField returns the value of the first "name: value" line of a /proc
// file, or "".
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAvg returns the 1-minute load average, or 0.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscanf(string(b), "%f", &l)
	return l
}

// cpuTime returns this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes returns this process's resident set size from /proc/self/status.
func rssBytes() uint64 {
	v := procField("/proc/self/status", "VmRSS")
	var kb uint64
	fmt.Sscanf(v, "%d", &kb)
	return kb * 1024
}
