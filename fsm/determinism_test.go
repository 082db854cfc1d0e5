package fsm_test

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/fsm/fsmtest"
)

// replica is one way of applying log entries.
type replica interface {
	apply(tb testing.TB, index uint64, cmds []*Command) ([]Result, []Event)
	other(tb testing.TB, index uint64) // a non-command log entry
	state(tb testing.TB) []byte
}

// direct applies commands to a State, numbering events as the FSM does.
type direct struct{ s *State }

func (d *direct) apply(_ testing.TB, index uint64, cmds []*Command) ([]Result, []Event) {
	d.s.Index = index
	var results []Result
	var evs []Event
	for _, c := range cmds {
		res, e := d.s.Apply(c)
		results = append(results, res)
		evs = append(evs, e...)
	}
	for i := range evs {
		evs[i].Seq = api.SeqOf(index, i)
	}
	return results, evs
}

func (d *direct) other(_ testing.TB, index uint64) { d.s.Index = index }
func (d *direct) state(tb testing.TB) []byte       { return marshal(tb, d.s) }

// viaEntry encodes each entry as a log entry (EncodeEntry), decodes it
// again (DecodeEntry) and applies the commands to its state, numbering the
// events by log position: what the Raft adapter (cluster.FSM) does, whose
// own tests are in package cluster.
type viaEntry struct {
	s *State
}

func newViaEntry() *viaEntry { return &viaEntry{s: NewState()} }

func (v *viaEntry) apply(tb testing.TB, index uint64, cmds []*Command) ([]Result, []Event) {
	tb.Helper()
	data, err := EncodeEntry(cmds...)
	if err != nil {
		tb.Fatal(err)
	}
	decoded, err := DecodeEntry(data)
	if err != nil || len(decoded) != len(cmds) {
		tb.Fatalf("entry %d: decoded %d commands of %d: %v", index, len(decoded), len(cmds), err)
	}
	v.s.Index = index
	var (
		results []Result
		evs     []Event
	)
	for _, c := range decoded {
		res, e := v.s.Apply(c)
		results = append(results, res)
		evs = append(evs, e...)
	}
	for i := range evs {
		evs[i].Seq = api.SeqOf(index, i)
	}
	return results, evs
}

func (v *viaEntry) other(_ testing.TB, index uint64) { v.s.Index = index }
func (v *viaEntry) state(tb testing.TB) []byte       { return marshal(tb, v.s) }

// restoreViaSnapshot encodes v's state as a snapshot (Marshal) and reads it
// back (ReadState) into a fresh replica.
func restoreViaSnapshot(tb testing.TB, v *viaEntry) *viaEntry {
	tb.Helper()
	st, err := ReadState(bufio.NewReader(bytes.NewReader(marshal(tb, v.s))))
	if err != nil {
		tb.Fatal(err)
	}
	return &viaEntry{s: st}
}

func TestDeterminism(t *testing.T) {
	steps := 600
	if testing.Short() || raceEnabled {
		steps = 200 // single goroutine: the race detector only slows it
	}
	var mu sync.Mutex
	allCodes := map[api.Code]int{}
	allKinds := map[api.EventKind]int{}
	t.Cleanup(func() {
		// The service-level timer ops must have applied, not only been
		// refused.
		if allKinds[api.EvRequestSLA] == 0 {
			t.Errorf("no request.sla event (events: %v)", allKinds)
		}
		// The streams must have exercised the machine, not just bounced.
		for _, c := range []api.Code{api.CodeOK, api.CodeNotFound, api.CodeForbidden, api.CodeBadRequest, api.CodeAlreadyExists,
			api.CodeNotParticipant, api.CodeNotSubscribed, api.CodeAlreadyParticipant, api.CodeClosed, api.CodeOverCapacity,
			api.CodeUnknownOp, api.CodeStaleSequence} {
			if allCodes[c] == 0 {
				t.Errorf("no command answered %s (answers: %v)", c, allCodes)
			}
		}
	})
	for _, seed := range []int64{1, 2, 3, 42, 2026} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			g := fsmtest.NewGen(seed)
			pending := fsmtest.SetupEntries()
			// Fresh replicas compare exactly (Go values); restored ones by
			// wire encoding, since a result replayed from a restored session
			// holds generic maps where the original held structs.
			fresh := []replica{&direct{NewState()}, &direct{NewState()}, newViaEntry(), newViaEntry()}
			var restored []replica
			codes := map[api.Code]int{}
			kinds := map[api.EventKind]int{}
			evCount := 0
			index := uint64(0)
			for i := range steps {
				var cmds []*Command
				if len(pending) > 0 {
					cmds, pending = pending[0], pending[1:]
				} else {
					g.Peek(fresh[0].(*direct).s)
					cmds = g.Entry()
				}
				if i == steps/2 {
					st, err := ReadState(bufio.NewReader(bytes.NewReader(fresh[0].state(t))))
					if err != nil {
						t.Fatal(err)
					}
					restored = []replica{&direct{st}, restoreViaSnapshot(t, fresh[2].(*viaEntry))}
				}
				if i%7 == 3 { // a non-command entry in between
					index++
					for _, r := range append(fresh, restored...) {
						r.other(t, index)
					}
				}
				index++
				var wantRes []Result
				var wantEvs []Event
				var wantState []byte
				for j, r := range append(fresh, restored...) {
					res, evs := r.apply(t, index, cmds)
					st := r.state(t)
					if j == 0 {
						wantRes, wantEvs, wantState = res, evs, st
						for _, x := range res {
							codes[api.CodeOf(x.Err)]++
						}
						evCount += len(evs)
						for _, e := range evs {
							kinds[e.Kind]++
						}
						continue
					}
					if j < len(fresh) && !reflect.DeepEqual(res, wantRes) {
						t.Fatalf("entry %d, replica %d: results differ:\n got  %+v\n want %+v", i, j, res, wantRes)
					}
					if j >= len(fresh) && !reflect.DeepEqual(wire(t, res), wire(t, wantRes)) {
						t.Fatalf("entry %d, restored replica %d: results differ:\n got  %+v\n want %+v", i, j, res, wantRes)
					}
					if !reflect.DeepEqual(evs, wantEvs) {
						t.Fatalf("entry %d, replica %d: events differ:\n got  %+v\n want %+v", i, j, evs, wantEvs)
					}
					if !bytes.Equal(st, wantState) {
						t.Fatalf("entry %d, replica %d: states differ", i, j)
					}
				}
			}
			if evCount < steps/4 {
				t.Errorf("only %d events in %d entries", evCount, steps)
			}
			t.Logf("%d entries, %d events, answers %v", steps, evCount, codes)
			mu.Lock()
			defer mu.Unlock()
			for c, n := range codes {
				allCodes[c] += n
			}
			for k, n := range kinds {
				allKinds[k] += n
			}
		})
	}
}
