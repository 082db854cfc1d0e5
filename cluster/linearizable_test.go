package cluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// linCheckTimeout bounds porcupine's search; a history it cannot decide in
// that time fails the test as undecided.
const linCheckTimeout = 60 * time.Second

// linKind is the kind of a recorded operation.
type linKind uint8

const (
	opJoin        linKind = iota + 1 // join(agent) on a request
	opLeave                          // leave(agent) on a request
	opClose                          // close of a request
	opRead                           // read of a request: state and participants
	opSubscribe                      // subscribe(agent) to a list
	opUnsubscribe                    // unsubscribe(agent) from a list
	opListRead                       // read of a list's subscribers
)

var linKindNames = [...]string{"?", "join", "leave", "close", "read", "subscribe", "unsubscribe", "list-read"}

func (k linKind) String() string { return linKindNames[k] }

// linInput is one operation on one key: a request id, or "list:" and a list
// id. The model is partitioned by key.
type linInput struct {
	Kind  linKind
	Key   string
	Agent string
}

func (in linInput) String() string {
	if in.Agent == "" {
		return fmt.Sprintf("%v(%s)", in.Kind, in.Key)
	}
	return fmt.Sprintf("%v(%s, %s)", in.Kind, in.Key, in.Agent)
}

func (in linInput) isRead() bool { return in.Kind == opRead || in.Kind == opListRead }

func listKey(id string) string { return "list:" + id }

// command returns the fsm command of a write.
func (in linInput) command() *fsm.Command {
	switch in.Kind {
	case opJoin:
		return admin(fsm.OpJoin, &api.RequestArgs{Request: in.Key, Agent: in.Agent})
	case opLeave:
		return admin(fsm.OpLeave, &api.RequestArgs{Request: in.Key, Agent: in.Agent})
	case opClose:
		return admin(fsm.OpClose, &api.RequestArgs{Request: in.Key})
	case opSubscribe:
		return admin(fsm.OpSubscribe, &api.SubscribeArgs{Agent: in.Agent, List: strings.TrimPrefix(in.Key, "list:")})
	case opUnsubscribe:
		return admin(fsm.OpUnsubscribe, &api.SubscribeArgs{Agent: in.Agent, List: strings.TrimPrefix(in.Key, "list:")})
	}
	panic(fmt.Sprintf("no command for %v", in))
}

// linOutput is what an operation returned: a result code for a write, the
// observed state for a read. Unknown marks a write whose outcome the client
// never learnt.
type linOutput struct {
	Unknown bool
	Code    api.Code
	State   api.RequestState // request reads
	Members string           // reads: participants or subscribers, sorted, comma-separated
}

func (o linOutput) String() string {
	if o.Unknown {
		return "unknown"
	}
	if o.State != "" || o.Members != "" {
		return fmt.Sprintf("%s[%s]", o.State, o.Members)
	}
	if o.Code == api.CodeOK {
		return "ok"
	}
	return fmt.Sprintf("code %d", o.Code)
}

// observe reads what in asks for from a state.
func observe(s *fsm.State, in linInput) linOutput {
	switch in.Kind {
	case opRead:
		r := s.Requests[in.Key]
		if r == nil {
			return linOutput{State: "MISSING"}
		}
		return linOutput{State: r.State, Members: strings.Join(r.Participants, ",")}
	case opListRead:
		l := s.Lists[strings.TrimPrefix(in.Key, "list:")]
		if l == nil {
			return linOutput{State: "MISSING"}
		}
		ids := make([]string, 0, len(l.Subscribers))
		for _, k := range l.Subscribers {
			ids = append(ids, strings.TrimPrefix(k, "agent:"))
		}
		return linOutput{Members: strings.Join(ids, ",")}
	}
	panic(fmt.Sprintf("%v is not a read", in))
}

// resultCode is the code of a command's result.
func resultCode(r fsm.Result) api.Code {
	if r.Err == nil {
		return api.CodeOK
	}
	return r.Err.Code
}

// linState is the model's state of one key: a request's state and
// participants, or a list's subscribers (State unused). It is comparable.
type linState struct {
	State   api.RequestState
	Members string // sorted, comma-separated
}

func (s linState) has(a string) bool {
	return s.Members != "" && slices.Contains(strings.Split(s.Members, ","), a)
}

func (s linState) with(a string) string {
	var m []string
	if s.Members != "" {
		m = strings.Split(s.Members, ",")
	}
	m = append(m, a)
	slices.Sort(m)
	return strings.Join(m, ",")
}

func (s linState) without(a string) string {
	m := slices.DeleteFunc(strings.Split(s.Members, ","), func(x string) bool { return x == a })
	return strings.Join(m, ",")
}

// step is the sequential specification, taken from fsm's pull-mode rules
// for an admin acting for agents that are subscribed to the request's list
// and have no capacity limit: the next state and the output a correct
// system gives.
func step(s linState, in linInput) (linState, linOutput) {
	if s.State == "" && !strings.HasPrefix(in.Key, "list:") {
		s.State = api.StateUnread // every request starts as a fresh one
	}
	switch in.Kind {
	case opRead, opListRead:
		return s, linOutput{State: s.State, Members: s.Members}
	case opJoin:
		switch {
		case s.State == api.StateClosed:
			return s, linOutput{Code: api.CodeClosed}
		case s.has(in.Agent):
			return s, linOutput{Code: api.CodeAlreadyParticipant}
		}
		return linState{State: api.StateActive, Members: s.with(in.Agent)}, linOutput{}
	case opLeave:
		switch {
		case s.State == api.StateClosed:
			return s, linOutput{Code: api.CodeClosed}
		case !s.has(in.Agent):
			return s, linOutput{Code: api.CodeNotParticipant}
		}
		next := linState{State: s.State, Members: s.without(in.Agent)}
		if next.Members == "" {
			next.State = api.StateInactive
		}
		return next, linOutput{}
	case opClose:
		if s.State == api.StateClosed {
			return s, linOutput{Code: api.CodeClosed}
		}
		return linState{State: api.StateClosed, Members: s.Members}, linOutput{}
	case opSubscribe:
		if s.has(in.Agent) {
			return s, linOutput{Code: api.CodeAlreadyExists}
		}
		return linState{Members: s.with(in.Agent)}, linOutput{}
	case opUnsubscribe:
		if !s.has(in.Agent) {
			return s, linOutput{Code: api.CodeNotSubscribed}
		}
		return linState{Members: s.without(in.Agent)}, linOutput{}
	}
	panic(fmt.Sprintf("unknown operation %v", in))
}

// switchboardModel is the porcupine model of request state and list
// membership, partitioned by key. A write with an unknown outcome may have
// applied or not: it matches any output, and its return time is infinite,
// so the checker may place it anywhere after its call, including after
// everything else (not applied).
var switchboardModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(linInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(linInput), output.(linOutput)
		next, want := step(state.(linState), in)
		switch {
		case out.Unknown:
			return true, next
		case in.isRead():
			return out.State == want.State && out.Members == want.Members, next
		}
		return out.Code == want.Code, next
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%v → %v", input, output)
	},
	DescribeState: func(state any) string {
		s := state.(linState)
		return fmt.Sprintf("%s[%s]", s.State, s.Members)
	},
}

// history records client operations with their call and return times.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func newHistory() *history { return &history{start: time.Now()} }

// now is the time since the history started, from the monotonic clock.
func (h *history) now() int64 { return int64(time.Since(h.start)) }

// add records a completed operation.
func (h *history) add(client int, in linInput, call int64, out linOutput, ret int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// addUnknown records a write whose outcome is unknown: it returns at
// infinity, with an output that matches anything.
func (h *history) addUnknown(client int, in linInput, call int64) {
	h.add(client, in, call, linOutput{Unknown: true}, math.MaxInt64)
}

func (h *history) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// checkHistory runs porcupine on ops.
func checkHistory(ops []porcupine.Operation) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	return porcupine.CheckOperationsVerbose(switchboardModel, ops, linCheckTimeout)
}

// checkLinearizable fails the test unless porcupine finds ops linearizable.
// On failure it writes porcupine's visualization to a file and logs where.
func checkLinearizable(t testing.TB, ops []porcupine.Operation) {
	t.Helper()
	counts := map[linKind]int{}
	unknowns := 0
	for _, op := range ops {
		counts[op.Input.(linInput).Kind]++
		if op.Output.(linOutput).Unknown {
			unknowns++
		}
	}
	start := time.Now()
	res, info := checkHistory(ops)
	t.Logf("porcupine: %v for %d operations (%d unknown outcome; %v) in %v", res, len(ops), unknowns, counts, time.Since(start))
	if res == porcupine.Ok {
		if len(ops) == 0 {
			t.Error("empty history")
		}
		return
	}
	if f, err := os.CreateTemp("", "switchboard-linearizability-*.html"); err == nil {
		if err := porcupine.Visualize(switchboardModel, info, f); err == nil {
			t.Logf("visualization of the history: %s", f.Name())
		}
		_ = f.Close()
	}
	t.Fatalf("history of %d operations is not linearizable (porcupine: %v)", len(ops), res)
}

// linearizableRead runs fn on n's state once n has confirmed it still leads
// (VerifyLeader: a quorum answers it in its term) and has applied every
// entry committed before the call (Barrier: an entry of its own term is
// committed and everything before it applied). It fails on a node that does
// not lead. The test client uses it beside the Service's read index
// (readIndexRead), so each is checked against the same history.
func linearizableRead(ctx context.Context, n *Node, fn func(*fsm.State)) error {
	r := n.Raft()
	if r == nil {
		return ErrUnavailable
	}
	done := make(chan error, 1)
	go func() {
		if err := r.VerifyLeader().Error(); err != nil {
			done <- err
			return
		}
		done <- r.Barrier(attemptTimeout).Error()
	}()
	select {
	case err := <-done:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	n.FSM().Read(func(s *fsm.State, _ uint64) { fn(s) })
	return nil
}

// readIndexRead is the Service's linearizable read split across nodes: the
// read index from leader's Service (a barrier once per term, its commit
// index, VerifyLeader), then Node.WaitIndex on reader, which may be a
// follower, and the read there.
func readIndexRead(ctx context.Context, leader *Service, reader *Node, fn func(*fsm.State)) error {
	index, err := leader.leaderReadIndex(ctx)
	if err != nil {
		return err
	}
	if err := reader.WaitIndex(ctx, index); err != nil {
		return err
	}
	reader.FSM().Read(func(s *fsm.State, _ uint64) { fn(s) })
	return nil
}

// readState decodes a State.Marshal encoding.
func readState(raw []byte) (*fsm.State, error) {
	return fsm.ReadState(bufio.NewReader(bytes.NewReader(raw)))
}

// TestLinearizabilityModel checks the model and the checker on small
// hand-made histories, so a passing fault test means something: histories a
// correct system could produce pass, and lost writes, stale reads, double
// applies and reads from the future are rejected.
func TestLinearizabilityModel(t *testing.T) {
	const inf = math.MaxInt64
	join := func(agent string) linInput { return linInput{Kind: opJoin, Key: "R1", Agent: agent} }
	leave := func(agent string) linInput { return linInput{Kind: opLeave, Key: "R1", Agent: agent} }
	read := linInput{Kind: opRead, Key: "R1"}
	closeR := linInput{Kind: opClose, Key: "R1"}
	sub := linInput{Kind: opSubscribe, Key: "list:L", Agent: "a1"}
	unsub := linInput{Kind: opUnsubscribe, Key: "list:L", Agent: "a1"}
	lread := linInput{Kind: opListRead, Key: "list:L"}
	ok := linOutput{}
	unread := linOutput{State: api.StateUnread}
	active1 := linOutput{State: api.StateActive, Members: "a1"}
	unk := linOutput{Unknown: true}
	op := func(client int, in linInput, call int64, out linOutput, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	tests := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"sequential join leave read", []porcupine.Operation{
			op(0, join("a1"), 0, ok, 10),
			op(0, join("a2"), 11, ok, 20),
			op(1, leave("a1"), 21, ok, 30),
			op(1, read, 31, linOutput{State: api.StateActive, Members: "a2"}, 40),
			op(0, leave("a2"), 41, ok, 50),
			op(1, read, 51, linOutput{State: api.StateInactive}, 60),
			op(0, leave("a2"), 61, linOutput{Code: api.CodeNotParticipant}, 70),
		}, porcupine.Ok},
		{"concurrent read sees the old state", []porcupine.Operation{
			op(0, join("a1"), 0, ok, 100),
			op(1, read, 10, unread, 20),
		}, porcupine.Ok},
		{"concurrent read sees the new state", []porcupine.Operation{
			op(0, join("a1"), 0, ok, 100),
			op(1, read, 10, active1, 20),
		}, porcupine.Ok},
		{"stale read after an acknowledged join", []porcupine.Operation{
			op(0, join("a1"), 0, ok, 10),
			op(1, read, 20, unread, 30),
		}, porcupine.Illegal},
		{"read from the future", []porcupine.Operation{
			op(1, read, 0, active1, 10),
			op(0, join("a1"), 20, ok, 30),
		}, porcupine.Illegal},
		{"one join applied twice", []porcupine.Operation{
			op(0, join("a1"), 0, ok, 10),
			op(1, join("a1"), 0, ok, 10),
		}, porcupine.Illegal},
		{"reads disagree on the order", []porcupine.Operation{
			op(0, join("a1"), 0, ok, 100),
			op(1, read, 10, active1, 20),
			op(2, read, 30, unread, 40),
		}, porcupine.Illegal},
		{"join acknowledged after close", []porcupine.Operation{
			op(0, closeR, 0, ok, 10),
			op(1, join("a1"), 20, ok, 30),
		}, porcupine.Illegal},
		{"unknown join seen later", []porcupine.Operation{
			op(0, join("a1"), 0, unk, inf),
			op(1, read, 50, active1, 60),
		}, porcupine.Ok},
		{"unknown join never seen", []porcupine.Operation{
			op(0, join("a1"), 0, unk, inf),
			op(1, read, 50, unread, 60),
		}, porcupine.Ok},
		{"unknown join seen then unseen", []porcupine.Operation{
			op(0, join("a1"), 0, unk, inf),
			op(1, read, 50, active1, 60),
			op(1, read, 70, unread, 80),
		}, porcupine.Illegal},
		{"lost unsubscribe", []porcupine.Operation{
			op(0, sub, 0, ok, 10),
			op(0, unsub, 11, ok, 20),
			op(1, lread, 30, linOutput{Members: "a1"}, 40),
		}, porcupine.Illegal},
		{"keys are independent", []porcupine.Operation{
			op(0, sub, 0, ok, 10),
			op(1, join("a1"), 5, ok, 15),
			op(0, lread, 20, linOutput{Members: "a1"}, 30),
			op(1, read, 20, active1, 30),
		}, porcupine.Ok},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			if got, _ := checkHistory(tc.ops); got != tc.want {
				t.Errorf("porcupine says %v, want %v", got, tc.want)
			}
		})
	}
}

// TestStaleFollowerReadNotLinearizable runs the real cluster into a state
// where a local read on a cut-off follower is stale, and checks that the
// history check rejects it, while the linearizable read refuses to answer
// on that follower and answers correctly on the leader.
func TestStaleFollowerReadNotLinearizable(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	fx := setupFixture(t, c, 1)
	req := fx.requests[0]
	h := newHistory()
	f := c.Followers()[0]
	c.Isolate(f)

	cl := newTestClient(c, "stale", 3)
	in := linInput{Kind: opJoin, Key: req, Agent: "a1"}
	call := h.now()
	res := cl.mustCommit(in.command())
	h.add(0, in, call, linOutput{Code: resultCode(res)}, h.now())

	// The cut-off follower's local state misses the acknowledged join.
	read := linInput{Kind: opRead, Key: req}
	call = h.now()
	var stale linOutput
	c.nodes[f].FSM().Read(func(s *fsm.State, _ uint64) { stale = observe(s, read) })
	staleOp := porcupine.Operation{ClientId: 1, Input: read, Call: call, Output: stale, Return: h.now()}
	if stale.State != api.StateUnread {
		t.Fatalf("cut-off follower reads %v; the test needs it stale", stale)
	}
	if got, _ := checkHistory(append(h.operations(), staleOp)); got != porcupine.Illegal {
		t.Fatalf("porcupine says %v for a stale follower read, want Illegal", got)
	}

	// The linearizable read refuses on the follower...
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := linearizableRead(ctx, c.nodes[f], func(*fsm.State) {}); err == nil {
		t.Fatal("linearizable read on a cut-off follower answered")
	}
	if _, err := c.svcs[f].leaderReadIndex(ctx); err == nil {
		t.Fatal("a cut-off follower gave a read index")
	}
	// ...and on the leader sees the join.
	call = h.now()
	var fresh linOutput
	if !cl.read(ctx, func(s *fsm.State) { fresh = observe(s, read) }) {
		t.Fatalf("linearizable read through the leader failed; cluster: %s", c.describe())
	}
	h.add(1, read, call, fresh, h.now())
	checkLinearizable(t, h.operations())

	c.Heal()
	c.WaitConverged()
}
