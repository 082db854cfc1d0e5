package cluster_test

import (
	"bufio"
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/fsm/fsmtest"
)

// Helpers of the FSM adapter's tests, after fsm's own test helpers: the
// walkthrough setup, principals, encoding shorthands and a recording sink.

// t0 is the leader time of the walkthrough setup (unix nanoseconds).
const t0 = fsmtest.T0

// Principals of the walkthrough (fsmtest).
var (
	admin = fsmtest.Admin
	fb    = fsmtest.FB
	a1    = fsmtest.A1
	a2    = fsmtest.A2
	a3    = fsmtest.A3
)

// cmd builds a command with no idempotency key and no time of its own.
func cmd(op Op, by api.Principal, args any) *Command { return fsmtest.Cmd(op, by, args) }

// keyed gives c an idempotency key.
func keyed(client string, seq uint64, c *Command) *Command { return fsmtest.Keyed(client, seq, c) }

// walkthroughCommands is the walkthrough setup (fsmtest.WalkthroughCommands).
func walkthroughCommands() []*Command { return fsmtest.WalkthroughCommands() }

// restore decodes a state written by Marshal, or fails.
func restore(tb testing.TB, data []byte) *State {
	tb.Helper()
	s, err := ReadState(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		tb.Fatalf("read state: %v", err)
	}
	return s
}

// marshal returns s.Marshal() or fails.
func marshal(tb testing.TB, s *State) []byte {
	tb.Helper()
	b, err := s.Marshal()
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return b
}

func kinds(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(string(e.Kind))
		b.WriteString("→")
		b.WriteString(strings.Join(e.To, ","))
		b.WriteString(" ")
	}
	return b.String()
}

// recordingSink keeps what an FSM publishes.
type recordingSink struct {
	mu        sync.Mutex
	published map[uint64][]Event
	order     []uint64
	resets    []uint64
}

func (r *recordingSink) Publish(index uint64, evs []Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.published == nil {
		r.published = map[uint64][]Event{}
	}
	r.published[index] = evs
	r.order = append(r.order, index)
}

func (r *recordingSink) Reset(index uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resets = append(r.resets, index)
}

func (r *recordingSink) take(index uint64) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.published[index]
	delete(r.published, index)
	return evs
}
