package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
)

// Commands during a snapshot (issue 11, item 7): the memory scenario
// snapshots a state of OpenRequests open requests while a steady trickle
// of writes goes on, and reports the latency of the writes due while the
// snapshot ran. A snapshot encoded under the FSM lock holds every one of
// them back; one rebuilt off the apply path should not.
const (
	probeRate    = 400 // writes a second, over probeWorkers connectors
	probeWorkers = 8
	// probeLead is how long the trickle runs before the snapshot starts:
	// its latency then is the baseline.
	probeLead = 3 * time.Second
	// probeAfterMax bounds the window after the snapshot.
	probeAfterMax = time.Minute
)

// snapshotProbe writes for probeLead, then runs fn, then writes for as
// long again as fn took (at most probeAfterMax), and returns the latency
// of the writes due in the lead, of those due between fn's start and its
// end (from their due time: a write held back is charged for the whole
// wait) and of those due after: a baseline as long as the snapshot, over
// the same state. Then how long fn took, and its error.
func (r *caseRun) snapshotProbe(fn func() error) (before, during, after Latency, took time.Duration, err error) {
	lead, rec, tail := NewRecorder(), NewRecorder(), NewRecorder()
	traces := make([][]probeSample, probeWorkers) // with Config.ProbeTrace
	var from, to atomic.Int64                     // the window, unix nanoseconds; to 0 while open
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	conns := r.conns[:min(probeWorkers, len(r.conns))]
	for w, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPacer(probeRate, len(conns))
			channel := r.topo.channels[w]
			for i := 0; ctx.Err() == nil; i++ {
				due := p.wait(ctx, i)
				if ctx.Err() != nil {
					return
				}
				cctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				cust := "snap" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
				var res api.CustomerMessageResult
				_, err := c.call(cctx, "customer_message", api.CustomerMessageArgs{Channel: channel, CustomerID: cust, Text: "Are you there?"}, &res)
				cancel()
				end := time.Now()
				if err != nil {
					r.fail("customer_message", err)
				}
				f, t := from.Load(), to.Load()
				window := byte('a')
				switch at := due.UnixNano(); {
				case f == 0 || at < f:
					lead.Record(w, end.Sub(due))
					window = 'b'
				case t == 0 || at <= t:
					rec.Record(w, end.Sub(due))
					window = 'd'
				default:
					tail.Record(w, end.Sub(due))
				}
				if r.cfg.ProbeTrace != "" {
					traces[w] = append(traces[w], probeSample{due: due, took: end.Sub(due), window: window})
				}
			}
		}()
	}
	time.Sleep(probeLead) // the baseline's window, not a wait for anything
	start := time.Now()
	from.Store(start.UnixNano())
	err = fn()
	took = time.Since(start)
	to.Store(time.Now().UnixNano())
	if err == nil {
		time.Sleep(min(took, probeAfterMax)) // the after window, as long
	}
	stop()
	wg.Wait()
	if r.cfg.ProbeTrace != "" {
		if terr := writeProbeTrace(r.cfg.ProbeTrace, traces); terr != nil && err == nil {
			err = terr
		}
	}
	return lead.Summary(), rec.Summary(), tail.Summary(), took, err
}

// probeSample is one probe write: when it was due, how long it took from
// then, and its window (b before the snapshot, d during, a after).
type probeSample struct {
	due    time.Time
	took   time.Duration
	window byte
}

// writeProbeTrace writes the samples as CSV, ordered by due time.
func writeProbeTrace(path string, traces [][]probeSample) error {
	var all []probeSample
	for _, t := range traces {
		all = append(all, t...)
	}
	slices.SortFunc(all, func(a, b probeSample) int { return a.due.Compare(b.due) })
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("probe trace: %w", err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "due_unix_ms,latency_ms,window")
	for _, s := range all {
		fmt.Fprintf(w, "%.3f,%.3f,%c\n", float64(s.due.UnixMicro())/1e3, float64(s.took.Microseconds())/1e3, s.window)
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return fmt.Errorf("probe trace: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("probe trace: %w", err)
	}
	return nil
}
