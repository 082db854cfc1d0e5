package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/fsm"
)

// Run runs every case of cfg in turn, showing progress on progress (a live
// line), and returns the report. A case that cannot run (setup failed, the
// scenario is not available) ends the run with an error; errors and
// notification faults during a case are in the report (see
// Report.Failed).
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep := &Report{Config: cfg, Machine: describeMachine(), Started: time.Now()}
	plan := cfg.Plan()
	rep.PlannedSeconds = plan.Total.Seconds()
	fmt.Fprintf(progress, "bench: %s; the table follows at the end\n", plan)
	cases := cfg.cases()
	for ci, k := range cases {
		left := plan.Total - time.Since(rep.Started)
		fmt.Fprintf(progress, "[%d/%d] %s (≈%s left in the run)\n", ci+1, len(cases), k, max(left, 0).Round(time.Second))
		res, err := runCase(ctx, &cfg, k, ci, progress)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", k, err)
		}
		rep.Cases = append(rep.Cases, *res)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	rep.Finished = time.Now()
	rep.compare()
	return rep, nil
}

// runCase runs one case on a fresh embedded cluster (or the running one).
func runCase(ctx context.Context, cfg *Config, k Case, ci int, progress io.Writer) (res *CaseResult, err error) {
	r := newCaseRun(cfg, k)
	res = &CaseResult{Case: k, Nodes: cfg.Embedded, LoadBefore: loadAvg()}
	if cfg.Embedded > 0 {
		r.emb, err = startEmbedded(ctx, cfg.Embedded, cfg, cluster.BatchConfig{
			Disabled: !*k.GroupCommit, MaxInFlight: cfg.BatchMaxInFlight, MaxCommands: cfg.BatchMaxCommands})
		if err != nil {
			return nil, err
		}
		defer func() {
			if cerr := r.emb.close(); cerr != nil && err == nil {
				err = fmt.Errorf("stop embedded cluster: %w", cerr)
			}
		}()
		r.addrs, r.token = r.emb.addrs(), r.emb.token
	} else {
		r.addrs, r.token = cfg.Addrs, cfg.Token
		res.Nodes = len(cfg.Addrs)
	}
	defer r.close()
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	agents := cfg.Agents
	if k.Scenario == ScenarioRaw {
		agents = 0
	}
	lists := cfg.Lists
	if k.Scenario == ScenarioRaw {
		lists = 1
	}
	fmt.Fprintf(progress, "  setting up %d lists, %d connectors, %d agents...\n", lists, k.Connectors, agents)
	supers := cfg.Supervisors
	if k.Scenario == ScenarioRaw {
		supers = 0
	}
	r.topo = newTopology(fmt.Sprintf("%s-%d", cfg.Prefix, ci), lists, k.Connectors, agents, cfg.Subs, supers)
	r.topo.push, r.topo.max = k.Scenario == ScenarioPush, cfg.MaxPerAgent
	r.listEvents = make([]atomic.Int64, lists)
	if err := r.topo.create(ctx, r.admin); err != nil {
		return nil, err
	}
	if k.Scenario == ScenarioMemory {
		return r.runMemory(ctx, res, progress)
	}
	handler := r.onAgentEvent
	if k.Scenario == ScenarioPush {
		handler = r.onPushEvent
	}
	if err := r.dialAgents(ctx, handler); err != nil {
		return nil, err
	}
	if err := r.dialConnectors(ctx); err != nil {
		return nil, err
	}
	if err := r.dialSupervisors(ctx); err != nil {
		return nil, err
	}
	for _, a := range slices.Concat(r.agents, r.supers) {
		a.counting.Store(true)
	}

	// The load: workers run until stopLoad; the window opens after the
	// warm-up.
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		if k.Scenario == ScenarioRaw {
			r.runRaw()
		} else {
			r.runCustomers(0)
		}
	}()
	stopProgress := r.showProgress(progress)
	var evFrom int64
	select {
	case <-time.After(cfg.Warmup):
	case <-ctx.Done():
	}
	r.windowFrom, evFrom = time.Now(), r.agentEvents()
	cpuFrom := cpuTime()
	var batchFrom cluster.BatchStats
	if r.emb != nil {
		batchFrom = r.emb.batchStats()
	}
	r.measuring.Store(true)
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
	}
	r.measuring.Store(false)
	r.windowTo = time.Now()
	cpu := cpuTime() - cpuFrom
	if r.emb != nil {
		b := r.emb.batchStats()
		if e := b.Entries - batchFrom.Entries; e > 0 {
			res.CommandsPerEntry = float64(b.Commands-batchFrom.Commands) / float64(e)
		}
	}
	evTo := r.agentEvents()
	r.stopLoad()
	<-loadDone
	stopProgress()
	r.settle(ctx)

	window := r.windowTo.Sub(r.windowFrom).Seconds()
	res.WindowSeconds = window
	res.Commands = r.committed.Load()
	res.CommandsPerSec = float64(res.Commands) / window
	if res.Commands > 0 {
		res.CPUPerCommand = float64(cpu.Microseconds()) / float64(res.Commands)
	}
	res.Latency = r.cmdLat.Summary()
	res.Ops = map[string]Latency{}
	for op, rec := range r.opLat {
		if s := rec.Summary(); s.Count > 0 {
			res.Ops[op] = s
		}
	}
	res.RequestsOpened = r.opened.Load()
	res.Agents = len(r.agents)
	res.Notifications = evTo - evFrom
	res.NotificationsPerSec = float64(res.Notifications) / window
	res.NotifLatency = r.notifLat.Summary()
	res.NotifBeforeAck = r.early.Load()
	res.ConnectorEvents = r.connectorEvents()
	res.Correctness = r.correctness()
	res.Errors = r.errs.Load()
	res.ErrorKinds = r.errorKinds()
	if r.emb != nil {
		res.Memory = measureMemory()
	}
	res.LoadAfter = loadAvg()
	return res, nil
}

// showProgress prints a live line about the running case until the
// returned func is called: rewritten in place every second when w is a
// terminal, else one line every 5 seconds (a log stays readable).
func (r *caseRun) showProgress(w io.Writer) (stop func()) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		lastCmds, lastEv, lastT := r.done.Load(), r.agentEvents(), time.Now()
		var measureFrom time.Time
		for i := 1; ; i++ {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(w)
				}
				return
			case <-tick.C:
			}
			now := time.Now()
			cmds, ev := r.done.Load(), r.agentEvents()
			dt := now.Sub(lastT).Seconds()
			line := progressLine(r.k.Scenario, r.cfg, now.Sub(start), r.measuring.Load(), &measureFrom, now,
				float64(cmds-lastCmds)/dt, r.cmdLat.Summary().P99, float64(ev-lastEv)/dt, r.errs.Load())
			lastCmds, lastEv, lastT = cmds, ev, now
			switch {
			case tty:
				fmt.Fprintf(w, "\r\033[K%s", line) // \033[K: clear the rest of the line
			case i%5 == 0:
				fmt.Fprintln(w, line)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// progressLine is the live line: the phase and how far into it, the rate
// of commands and notifications over the last second, the p99 so far
// and the errors.
func progressLine(scenario string, cfg *Config, elapsed time.Duration, measuring bool, measureFrom *time.Time, now time.Time,
	cmdRate, p99 float64, notifRate float64, errs int64) string {
	var phase string
	switch {
	case scenario == ScenarioMemory:
		phase = fmt.Sprintf("opening %3.0fs", elapsed.Seconds())
	case measuring:
		if measureFrom.IsZero() {
			*measureFrom = now
		}
		phase = fmt.Sprintf("measuring %3.0f/%.0fs", now.Sub(*measureFrom).Seconds(), cfg.Duration.Seconds())
	default:
		phase = fmt.Sprintf("warm-up %3.0f/%.0fs", elapsed.Seconds(), cfg.Warmup.Seconds())
	}
	return fmt.Sprintf("  %-19s %7s cmd/s  p99 %6s ms  %7s notif/s  errors %d", phase, count(cmdRate), ms(p99), count(notifRate), errs)
}

// measureMemory collects garbage and reads the live heap and RSS.
func measureMemory() *Memory {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &Memory{HeapBytes: ms.HeapAlloc, RSSBytes: rssBytes()}
}

// runMemory opens OpenRequests requests (kept open) with the agents
// connected and measures this process's memory per agent and per request,
// then the time to snapshot the state.
func (r *caseRun) runMemory(ctx context.Context, res *CaseResult, progress io.Writer) (*CaseResult, error) {
	if r.emb == nil {
		return nil, errors.New("the memory scenario needs an embedded cluster")
	}
	base := measureMemory()
	if err := r.dialAgents(ctx, r.onAgentEvent); err != nil {
		return nil, err
	}
	withAgents := measureMemory()
	if err := r.dialConnectors(ctx); err != nil {
		return nil, err
	}
	for _, a := range r.agents {
		a.counting.Store(true)
	}
	before := measureMemory()
	fmt.Fprintf(progress, "  opening %d requests...\n", r.cfg.OpenRequests)
	stopProgress := r.showProgress(progress)
	r.measuring.Store(true)
	start := time.Now()
	r.runCustomers(int64(r.cfg.OpenRequests))
	r.measuring.Store(false)
	opened := time.Since(start)
	stopProgress()
	r.stopLoad()
	r.settle(ctx)
	after := measureMemory()

	m := &Memory{HeapBytes: after.HeapBytes, RSSBytes: after.RSSBytes, OpenSeconds: opened.Seconds()}
	if n := float64(len(r.agents)); n > 0 {
		m.HeapPerAgent = (float64(withAgents.HeapBytes) - float64(base.HeapBytes)) / n
		m.RSSPerAgent = (float64(withAgents.RSSBytes) - float64(base.RSSBytes)) / n
	}
	n := float64(r.opened.Load())
	if n > 0 {
		m.HeapPerRequest = (float64(after.HeapBytes) - float64(before.HeapBytes)) / n
		m.RSSPerRequest = (float64(after.RSSBytes) - float64(before.RSSBytes)) / n
	}
	leader := r.emb.leader()
	if leader == nil {
		return nil, errors.New("no leader to snapshot")
	}
	t0 := time.Now()
	var data []byte
	var err error
	leader.FSM.Read(func(s *fsm.State, _ uint64) { data, err = s.Marshal() })
	m.SnapshotEncodeSec = time.Since(t0).Seconds()
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	m.SnapshotBytes = len(data)
	// That encode left about twice the snapshot's size of garbage in this
	// process, which holds the node: collect it now, or the collection it
	// brings on lands in the snapshot probe's windows and charges the
	// node's writes for the bench's own garbage (a probe trace showed a
	// 4 s collection cycle of the ~1.2 GB heap there, and the writes due in
	// it as the slow ones).
	data = nil
	runtime.GC()
	// The correctness of the streams is judged before the snapshot, whose
	// trickle of writes opens requests the counts above do not expect.
	res.Correctness = r.correctness()
	lead, lat, tail, took, err := r.snapshotProbe(leader.Node.Snapshot) // snapprobe.go
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	m.SnapshotSeconds = took.Seconds()
	m.BeforeSnapshot, m.DuringSnapshot, m.AfterSnapshot = &lead, &lat, &tail
	m.SnapshotCapture = r.cfg.SnapshotCapture
	if m.SnapshotCapture == "" {
		m.SnapshotCapture = cluster.CaptureReplay
	}
	stats := leader.FSM.SnapshotStats()
	m.SnapshotHold = stats.LastCapture.Seconds()

	res.Memory = m
	res.WindowSeconds = opened.Seconds()
	res.Commands = r.committed.Load()
	res.CommandsPerSec = float64(res.Commands) / opened.Seconds()
	res.Latency = r.cmdLat.Summary()
	res.RequestsOpened = r.opened.Load()
	res.Agents = len(r.agents)
	res.NotifLatency = r.notifLat.Summary()
	res.Errors = r.errs.Load()
	res.ErrorKinds = r.errorKinds()
	res.LoadAfter = loadAvg()
	return res, nil
}
