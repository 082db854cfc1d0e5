package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/bench"
	"github.com/switchboard/switchboard/cluster"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d := bench.DefaultConfig()
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintf(stderr, `usage: switchboard bench [flags]

Load-tests a cluster and prints the configuration beside the figures:
commands/s, command latency p50/p99/p999/max, notifications/s and their
latency, memory, and missed/duplicated/out-of-order notifications (which
must be zero: the exit status is 1 otherwise). Each combination of
--scenario, --connectors and --group-commit is one case; with --embedded
each case runs on a fresh cluster started in this process.

Scenarios: raw (no-op commands: the consensus layer's limit), pull
(customers open requests on lists, subscribed agents are notified, one of
them joins and closes each), mixed (pull plus messages both ways), push
(customers queue requests, auto-mode agents of capacity --max are offered
them, accept after --think and close), memory (open --open-requests
requests; memory per request and per agent, snapshot time).

Flags:
`)
		flags.PrintDefaults()
	}
	addrs := flags.String("addr", "", "client addresses of a running cluster, comma-separated (with --token); default: --embedded")
	token := flags.String("token", os.Getenv("SWITCHBOARD_TOKEN"), "admin token of the running cluster (env SWITCHBOARD_TOKEN)")
	embedded := flags.Int("embedded", 0, "start a cluster of this many nodes in this process on loopback (default 1 without --addr)")
	dataDir := flags.String("data", "", "parent directory of the embedded nodes' data (default: a temporary directory; its disk is the one that fsyncs)")
	scenarios := flags.String("scenario", strings.Join(d.Scenarios, ","), "scenarios to run, comma-separated: raw, pull, mixed, push, memory")
	connectors := flags.String("connectors", joinInts(d.Connectors), "concurrent connector connections, comma-separated: one case each")
	groupCommit := flags.String("group-commit", "on", "group commit on the leader: on, off or both (embedded only)")
	flags.IntVar(&d.BatchMaxInFlight, "batch-inflight", 0, "group commit: log entries committing at once (embedded; 0: the cluster default)")
	flags.IntVar(&d.BatchMaxCommands, "batch-max", 0, "group commit: most commands in one log entry (embedded; 0: the cluster default)")
	flags.DurationVar(&d.Duration, "duration", d.Duration, "measured load per case")
	flags.DurationVar(&d.Warmup, "warmup", d.Warmup, "load before measuring, per case")
	flags.Float64Var(&d.Rate, "rate", 0, "requests opened (pull, mixed) or commands (raw) per second over all connectors; 0: as fast as possible")
	flags.IntVar(&d.Lists, "lists", d.Lists, "lists (push: queues); each connector has a channel on list i mod lists")
	flags.IntVar(&d.Agents, "agents", d.Agents, "agents connected")
	flags.IntVar(&d.Supervisors, "supervisors", d.Supervisors, "supervisors of everything connected, each hearing every event (its stream checked like an agent's)")
	flags.IntVar(&d.Subs, "subs", d.Subs, "lists each agent subscribes to (push: queues it is a member of)")
	flags.Float64Var(&d.Handle, "handle", d.Handle, "fraction of requests an agent joins and closes")
	flags.Float64Var(&d.LeaveRatio, "leave", d.LeaveRatio, "fraction of handled requests left and re-joined once before closing")
	flags.IntVar(&d.Messages, "messages", d.Messages, "messages each way per conversation (mixed)")
	flags.DurationVar(&d.Think, "think", 0, "agent pause before each action on a conversation (push: before accepting and before closing)")
	flags.IntVar(&d.MaxPerAgent, "max", d.MaxPerAgent, "push: each agent's maximum of concurrent conversations")
	flags.IntVar(&d.Pad, "pad", d.Pad, "payload bytes of a raw no-op command")
	flags.IntVar(&d.OpenRequests, "open-requests", d.OpenRequests, "requests the memory scenario opens")
	flags.StringVar(&d.NodeLog, "node-log", "", "append the embedded nodes' logs (info and above) to this file; default: dropped")
	flags.StringVar(&d.ProbeTrace, "probe-trace", "", "memory scenario: write each write timed around the snapshot to this CSV file (unix ms due, latency ms, window)")
	flags.StringVar(&d.SnapshotCapture, "snapshot-capture", cluster.CaptureProcess, "the embedded nodes' snapshot capture, as serve's: process, replay or lock; the memory scenario times writes during a snapshot")
	d.RebuildCommand = rebuildCommand()
	flags.StringVar(&d.Prefix, "prefix", "", "prefix of every id the bench creates (default: from the time)")
	jsonOut := flags.String("json", "", "also write the report as JSON to this file")
	cpuProfile := flags.String("cpuprofile", "", "write a CPU profile of the whole run (embedded: node and clients) to this file")
	memProfile := flags.String("memprofile", "", "write a heap profile at the end of the run (its alloc_space: everything the run allocated, node and clients) to this file")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: bench takes no arguments, got %q", errUsage, flags.Args())
	}
	if *addrs != "" {
		d.Addrs = strings.Split(*addrs, ",")
		d.Embedded = *embedded
	} else {
		d.Embedded = max(*embedded, 1)
	}
	d.Token = *token
	d.DataDir = *dataDir
	d.Scenarios = strings.Split(*scenarios, ",")
	var err error
	if d.Connectors, err = parseInts(*connectors); err != nil {
		return fmt.Errorf("%w: --connectors: %v", errUsage, err)
	}
	switch *groupCommit {
	case "on":
		d.GroupCommit = []bool{true}
	case "off":
		d.GroupCommit = []bool{false}
	case "both":
		d.GroupCommit = []bool{false, true}
	default:
		return fmt.Errorf("%w: --group-commit %q: want on, off or both", errUsage, *groupCommit)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		defer func() {
			if perr := writeHeapProfile(*memProfile); perr != nil {
				fmt.Fprintln(stderr, "bench:", perr)
			}
		}()
	}
	rep, err := bench.Run(ctx, d, stderr)
	if rep != nil && len(rep.Cases) > 0 {
		rep.Command = "switchboard bench " + strings.Join(args, " ")
		rep.WriteTable(stdout)
		if *jsonOut != "" {
			if jerr := writeJSONFile(*jsonOut, rep); jerr != nil && err == nil {
				err = jerr
			}
		}
	}
	if err != nil {
		if errors.Is(err, bench.ErrConfig) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	if rep.Failed() {
		return errors.New("errors or notification faults (missed, duplicated, out of order): see above")
	}
	return nil
}

func writeJSONFile(path string, rep *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// writeHeapProfile writes the heap profile (allocations since the start
// included) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}
