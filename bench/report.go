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
)

// Report is the outcome of one bench invocation; --json writes it.
type Report struct {
	// Command is the command line as given (set by the caller).
	Command  string       `json:"command,omitempty"`
	Config   Config       `json:"config"`
	Machine  Machine      `json:"machine"`
	Started  time.Time    `json:"started"`
	Finished time.Time    `json:"finished"`
	Cases    []CaseResult `json:"cases"`
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

// WriteTable prints the configuration and one row per case.
func (r *Report) WriteTable(w io.Writer) {
	cfg := r.Config
	target := "embedded " + fmt.Sprint(cfg.Embedded) + "-node cluster in this process (loopback, BoltDB with fsync)"
	if cfg.Embedded == 0 {
		target = "running cluster at " + strings.Join(cfg.Addrs, ",")
	}
	fmt.Fprintf(w, "\nswitchboard bench — %s\n", r.Started.UTC().Format(time.RFC3339))
	if r.Command != "" {
		fmt.Fprintf(w, "  command:  %s\n", r.Command)
	}
	fmt.Fprintf(w, "  target:   %s\n", target)
	fmt.Fprintf(w, "  machine:  %d CPUs (GOMAXPROCS %d) %s, %s memory, %s %s/%s\n", r.Machine.CPUs, r.Machine.GOMAXPROCS,
		r.Machine.CPUModel, r.Machine.Memory, r.Machine.GoVersion, runtime.GOOS, runtime.GOARCH)
	rate := "as fast as possible (one command in flight per connector)"
	if cfg.Rate > 0 {
		rate = fmt.Sprintf("%g/s over all connectors", cfg.Rate)
	}
	fmt.Fprintf(w, "  load:     %v per case after %v warm-up; rate %s\n", cfg.Duration, cfg.Warmup, rate)
	fmt.Fprintf(w, "  pull:     %d lists (one channel each), %d agents × %d lists, handle %.0f%% (leave+rejoin %.0f%%), %d messages each way in mixed, think %v\n",
		cfg.Lists, cfg.Agents, cfg.Subs, cfg.Handle*100, cfg.LeaveRatio*100, cfg.Messages, cfg.Think)
	fmt.Fprintf(w, "  push:     %d queues, agents of capacity %d in %d queues each, accepting and closing after %v\n", cfg.Lists, cfg.MaxPerAgent, cfg.Subs, cfg.Think)
	fmt.Fprintf(w, "  raw:      no-op commands with a %d-byte payload\n", cfg.Pad)
	cpu := "this process (nodes and bench clients)"
	if cfg.Embedded == 0 {
		cpu = "this bench process only (the cluster's own CPU is not seen)"
	}
	fmt.Fprintf(w, "  columns:  cpu µs/cmd = CPU time of %s per command; cmd/entry = commands per Raft entry; n-* = notification latency from the customer message's ack\n\n", cpu)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tload\tcmds/s\t×raw\tcpu µs/cmd\tcmd/entry\tp50 ms\tp99 ms\tp999 ms\tmax ms\tp50×raw\tnotif/s\tn-p50 ms\tn-p99 ms\tn-max ms\tmissed\tdup\tooo\terrors\t")
	for _, c := range r.Cases {
		if c.Scenario == ScenarioMemory {
			continue
		}
		ratio, p50r := "-", "-"
		if c.VsRaw != nil {
			ratio = fmt.Sprintf("%.2f", c.VsRaw.CommandsPerSec)
			p50r = fmt.Sprintf("%.2f", c.VsRaw.P50)
		}
		notif := []string{"-", "-", "-", "-"}
		if c.Agents > 0 {
			notif = []string{count(c.NotificationsPerSec), ms(c.NotifLatency.P50), ms(c.NotifLatency.P99), ms(c.NotifLatency.Max)}
		}
		perEntry := "-"
		if c.CommandsPerEntry > 0 {
			perEntry = fmt.Sprintf("%.1f", c.CommandsPerEntry)
		}
		fmt.Fprintf(tw, "%s\t%.1f→%.1f\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n",
			c.Case.String(), c.LoadBefore, c.LoadAfter, count(c.CommandsPerSec), ratio, c.CPUPerCommand, perEntry,
			ms(c.Latency.P50), ms(c.Latency.P99), ms(c.Latency.P999), ms(c.Latency.Max), p50r,
			notif[0], notif[1], notif[2], notif[3],
			c.Correctness.Missed, c.Correctness.Duplicated, c.Correctness.OutOfOrder, c.Errors)
	}
	tw.Flush()
	for _, c := range r.Cases {
		if m := c.Memory; m != nil && c.Scenario == ScenarioMemory {
			fmt.Fprintf(w, "\nmemory (%s, %d agents, %d open requests, this process after GC):\n", c.Case.String(), c.Agents, c.RequestsOpened)
			fmt.Fprintf(w, "  per open request:  %s heap, %s RSS\n", bytesStr(m.HeapPerRequest), bytesStr(m.RSSPerRequest))
			fmt.Fprintf(w, "  per agent:         %s heap, %s RSS (both ends of its connection)\n", bytesStr(m.HeapPerAgent), bytesStr(m.RSSPerAgent))
			fmt.Fprintf(w, "  total:             %s heap, %s RSS\n", bytesStr(float64(m.HeapBytes)), bytesStr(float64(m.RSSBytes)))
			fmt.Fprintf(w, "  opening:           %.1f s (%s requests/s)\n", m.OpenSeconds, count(float64(c.RequestsOpened)/m.OpenSeconds))
			fmt.Fprintf(w, "  snapshot:          %.2f s (state encode %.2f s, %s)\n", m.SnapshotSeconds, m.SnapshotEncodeSec, bytesStr(float64(m.SnapshotBytes)))
			fmt.Fprintf(w, "  missed %d, duplicated %d, out of order %d, errors %d\n", c.Correctness.Missed, c.Correctness.Duplicated, c.Correctness.OutOfOrder, c.Errors)
		}
	}
	for _, c := range r.Cases {
		if len(c.ErrorKinds) > 0 || !c.Correctness.OK() {
			fmt.Fprintf(w, "\n%s: %d errors, correctness %+v\n", c.Case.String(), c.Errors, c.Correctness)
			for _, k := range slices.Sorted(maps.Keys(c.ErrorKinds)) {
				fmt.Fprintf(w, "  %6d × %s\n", c.ErrorKinds[k], k)
			}
		}
	}
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
