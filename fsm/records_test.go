package fsm

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// checkSessionIndex fails unless s.principals holds exactly s.Sessions,
// each under its principal, with the principal's record count.
func checkSessionIndex(tb ptTB, s *State) {
	tb.Helper()
	want := map[string]map[string]*ClientSession{}
	records := map[string]int{}
	for k, sess := range s.Sessions {
		p := principalOf(k)
		if want[p] == nil {
			want[p] = map[string]*ClientSession{}
		}
		want[p][k] = sess
		records[p] += len(sess.Results)
	}
	if len(want) != len(s.principals) {
		tb.Fatalf("session index has %d principals, Sessions %d", len(s.principals), len(want))
	}
	for p, sessions := range want {
		u := s.principals[p]
		if u == nil {
			tb.Fatalf("session index lacks principal %q", p)
		}
		if !reflect.DeepEqual(u.sessions, sessions) {
			tb.Fatalf("session index of %q: %d sessions, Sessions %d", p, len(u.sessions), len(sessions))
		}
		if u.records != records[p] {
			tb.Fatalf("session index of %q counts %d records, its sessions hold %d", p, u.records, records[p])
		}
	}
}

// recordSize is a record's size in the snapshot encoding.
func recordSize(r Result) int { return len(appendResult(nil, r)) }

// keyedPt gives c an idempotency key.
func keyedPt(client string, seq uint64, c *Command) *Command {
	c.ClientID, c.Seq = client, seq
	return c
}

// What a retry of each write gets from level 3 on (PROTOCOL.md §6): the
// original result where it is small by construction, otherwise the
// compact api.Applied record naming the entry that applied it and the ids
// the write was about. The first answer is always the whole result; the
// retry emits nothing and changes nothing, also after a snapshot restore.
func TestRetryGetsTheDocumentedRecord(t *testing.T) {
	const index = 4242
	applied := func(a api.Applied) any { a.Retry, a.Index = true, index; return a }
	same := func(first any) any { return first }
	type tc struct {
		name  string
		setup func(t *testing.T, s *State)
		cmd   func() *Command
		want  func(first any) any // the retry's data, from the first answer's
	}
	agent := func(op Op, args any) func() *Command { return func() *Command { return ptCmd(op, ptAgent("X"), args) } }
	pushed := func(t *testing.T, s *State) { // R1 offered to X, then accepted
		ptReady(t, s, "chat", "X", "Y")
		ptArrive(t, s, "WS", "c1", 0)
		ptAccept(t, s, "X", "R1")
	}
	cases := []tc{
		{"create_list", nil, func() *Command { return ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "LK"}) }, same},
		{"noop", nil, agent(OpNoop, &api.NoopArgs{}), same},
		{"customer_message", nil, func() *Command {
			return ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: "f1", Text: strings.Repeat("long ", 800)})
		}, same},
		{"request_agent", func(t *testing.T, s *State) {
			ptApply(t, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: "f1", Text: "hi"}))
		}, func() *Command { return ptCmd(OpRequestAgent, ptConn, &api.RequestAgentArgs{Request: "R1"}) }, same},
		{"subscribe", func(t *testing.T, s *State) {
			ptApply(t, s, ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "LK"}))
		}, agent(OpSubscribe, &api.SubscribeArgs{List: "LK"}), func(any) any { return applied(api.Applied{List: "LK"}) }},
		{"join", func(t *testing.T, s *State) {
			ptApply(t, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: "f1", Text: strings.Repeat("long ", 800)}))
		}, agent(OpJoin, &api.RequestArgs{Request: "R1"}), func(any) any { return applied(api.Applied{Request: "R1"}) }},
		{"accept_offer", func(t *testing.T, s *State) {
			ptReady(t, s, "chat", "X")
			ptArrive(t, s, "WS", "c1", 0)
		}, agent(OpAcceptOffer, &api.OfferArgs{Request: "R1"}), func(any) any { return applied(api.Applied{Request: "R1"}) }},
		{"login", nil, agent(OpLogin, &api.AgentArgs{}), func(any) any { return applied(api.Applied{Agent: "X"}) }},
		{"logout", func(t *testing.T, s *State) { ptReady(t, s, "chat", "X") },
			agent(OpLogout, &api.AgentArgs{}), func(any) any { return applied(api.Applied{Agent: "X"}) }},
		{"set_agent_state", func(t *testing.T, s *State) { ptApply(t, s, ptCmd(OpLogin, ptAgent("X"), &api.AgentArgs{})) },
			agent(OpSetAgentState, &api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}), func(any) any { return applied(api.Applied{Agent: "X"}) }},
		{"set_agent_mode", nil, agent(OpSetAgentMode, &api.SetAgentModeArgs{Mode: api.AgentModePull}),
			func(any) any { return applied(api.Applied{Agent: "X"}) }},
		{"request_chat pending", func(t *testing.T, s *State) {
			ptApply(t, s, ptCmd(OpSetAgentMode, ptAgent("X"), &api.SetAgentModeArgs{Mode: api.AgentModePull}))
			ptReady(t, s, "chat", "X")
		}, agent(OpRequestChat, &api.AgentArgs{}), same},
		{"request_chat served", func(t *testing.T, s *State) {
			ptApply(t, s, ptCmd(OpSetAgentMode, ptAgent("X"), &api.SetAgentModeArgs{Mode: api.AgentModePull}))
			ptReady(t, s, "chat", "X")
			ptArrive(t, s, "WS", "c1", 0)
		}, agent(OpRequestChat, &api.AgentArgs{}), func(first any) any {
			return applied(api.Applied{Request: "R1", Offer: first.(api.RequestChatResult).Offer.ID})
		}},
		{"transfer", pushed, agent(OpTransfer, &api.TransferArgs{Request: "R1", ToAgent: "Y"}), func(first any) any {
			return applied(api.Applied{Request: "R1", Offer: first.(api.OfferInfo).ID})
		}},
		{"invite", pushed, agent(OpInvite, &api.TransferArgs{Request: "R1", ToAgent: "Y"}), func(first any) any {
			return applied(api.Applied{Request: "R1", Offer: first.(api.OfferInfo).ID})
		}},
		{"transfer_to_queue", pushed, agent(OpTransferToQueue, &api.TransferToQueueArgs{Request: "R1", Queue: "QV"}), same},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ptWorld(t)
			if c.setup != nil {
				c.setup(t, s)
			}
			s.Index = index
			first, _ := ptApply(t, s, keyedPt("app", 1, c.cmd()))
			if _, ok := first.Data.(api.Applied); ok {
				t.Fatalf("the first answer is a record: %+v", first.Data)
			}
			want := c.want(first.Data)
			before := ptMarshal(t, s)
			s.Index = index + 10
			retry, evs := s.Apply(keyedPt("app", 1, c.cmd()))
			if retry.Err != nil || !reflect.DeepEqual(retry.Data, want) || len(evs) != 0 {
				t.Fatalf("retry answered %+v with %d events, want data %+v", retry, len(evs), want)
			}
			if size := recordSize(retry); size > MaxRecordBytes {
				t.Errorf("record of %d bytes", size)
			}
			s.Index = index
			if !bytes.Equal(before, ptMarshal(t, s)) {
				t.Error("the retry changed the state")
			}
			back, err := ReadState(bufio.NewReader(bytes.NewReader(before)))
			if err != nil {
				t.Fatal(err)
			}
			again, evs := back.Apply(keyedPt("app", 1, c.cmd()))
			if len(evs) != 0 || !reflect.DeepEqual(ptWire(t, again), ptWire(t, Result{Data: want})) {
				t.Errorf("retry after a restore answered %+v, want %+v", again, want)
			}
		})
	}
}

func ptWire(tb ptTB, v any) any {
	tb.Helper()
	var out any
	if err := msgpack.Unmarshal(ptMsgpack(tb, v), &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// A rejection is kept with its code; a long message is cut to
// api.MaxRecordErrBytes at a character boundary.
func TestRetryOfRejectionKeepsCodeAndShortMessage(t *testing.T) {
	s := ptWorld(t)
	long := strings.Repeat("é", 300) // %q keeps it: 600 bytes in the message
	first, _ := s.Apply(keyedPt("app", 1, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: long})))
	if api.CodeOf(first.Err) != api.CodeNotFound || len(first.Err.Msg) < 600 {
		t.Fatalf("first answer %+v", first.Err)
	}
	retry, _ := s.Apply(keyedPt("app", 1, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: long})))
	if api.CodeOf(retry.Err) != api.CodeNotFound || retry.Data != nil {
		t.Fatalf("retry answered %+v", retry)
	}
	msg := retry.Err.Msg
	if len(msg) > api.MaxRecordErrBytes || !strings.HasSuffix(msg, "…") || !strings.HasPrefix(first.Err.Msg, strings.TrimSuffix(msg, "…")) {
		t.Errorf("kept message %q (%d bytes)", msg, len(msg))
	}
	if size := recordSize(retry); size > MaxRecordBytes {
		t.Errorf("record of %d bytes", size)
	}
	short, _ := s.Apply(keyedPt("app", 2, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: "R9"})))
	if again, _ := s.Apply(keyedPt("app", 2, ptCmd(OpJoin, ptAgent("X"), &api.RequestArgs{Request: "R9"}))); !reflect.DeepEqual(again, short) {
		t.Errorf("a short rejection came back as %+v, first %+v", again, short)
	}
}

// The records of the longest ids every op can carry still fit.
func TestRecordsOfLongestIDsFit(t *testing.T) {
	id := func(c byte) string { return strings.Repeat(string(c), api.MaxIDBytes) }
	agent, list := ptAgent(id('a')), id('l')
	s := ptWorld(t)
	var seq uint64
	apply := func(c *Command) Result {
		t.Helper()
		seq++
		res, _ := ptApply(t, s, keyedPt(id('c'), seq, c))
		rec := s.Sessions[sessionKey(c)].Results[seq]
		if size := recordSize(rec); size > MaxRecordBytes {
			t.Errorf("%s: record of %d bytes: %+v", ptOpName(c.Op), size, rec)
		}
		return res
	}
	apply(ptCmd(OpCreateAgent, ptAdmin, &api.CreateAgentArgs{ID: agent.ID, Name: id('n'), Max: map[string]int{"chat": 3}, TokenHash: []byte("h")}))
	apply(ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: list, Name: id('n')}))
	apply(ptCmd(OpCreateMRD, ptAdmin, &api.CreateMRDArgs{ID: id('m'), Name: id('n')}))
	apply(ptCmd(OpCreateChannelType, ptAdmin, &api.CreateChannelTypeArgs{ID: id('t'), MRD: "chat"}))
	apply(ptCmd(OpCreateChannel, ptAdmin, &api.CreateChannelArgs{ID: id('h'), Type: id('t'), Mode: api.ModePull, List: list}))
	apply(ptCmd(OpCreateQueue, ptAdmin, &api.CreateQueueArgs{ID: id('q'), Name: id('n'), MRD: "chat"}))
	apply(ptCmd(OpCreateConnector, ptAdmin, &api.CreateConnectorArgs{ID: id('k'), Name: id('n'), Channels: []string{id('h'), "WS"}, TokenHash: []byte("h")}))
	apply(ptCmd(OpAddQueueMember, ptAdmin, &api.QueueMemberArgs{Agent: agent.ID, Queue: "QS"}))
	apply(ptCmd(OpSubscribe, agent, &api.SubscribeArgs{List: list}))
	conn := api.Principal{Role: api.RoleConnector, ID: id('k')}
	apply(ptCmd(OpCustomerMessage, conn, &api.CustomerMessageArgs{Channel: id('h'), CustomerID: id('u'), CustomerName: id('n'), Text: strings.Repeat("x", api.MaxTextBytes)}))
	apply(ptCmd(OpRequestAgent, conn, &api.RequestAgentArgs{Channel: id('h'), CustomerID: id('u')}))
	apply(ptCmd(OpJoin, agent, &api.RequestArgs{Request: "R1"}))
	apply(ptCmd(OpLogin, agent, &api.AgentArgs{}))
	apply(ptCmd(OpSetAgentState, agent, &api.SetAgentStateArgs{MRD: "chat", State: api.AgentNotReady, Reason: id('r')}))
	apply(ptCmd(OpSetAgentMode, agent, &api.SetAgentModeArgs{Mode: api.AgentModePull}))
	apply(ptCmd(OpSetAgentState, agent, &api.SetAgentStateArgs{MRD: "chat", State: api.AgentReady}))
	apply(ptCmd(OpCustomerMessage, conn, &api.CustomerMessageArgs{Channel: "WS", CustomerID: id('v'), Text: strings.Repeat("y", api.MaxTextBytes)}))
	rc := apply(ptCmd(OpRequestChat, agent, &api.AgentArgs{}))
	if rc.Data.(api.RequestChatResult).Offer == nil {
		t.Fatal("request_chat served nothing")
	}
	apply(ptCmd(OpAcceptOffer, agent, &api.OfferArgs{Request: "R2"}))
	ptReady(t, s, "chat", "Y")
	apply(ptCmd(OpInvite, agent, &api.TransferArgs{Request: "R2", ToAgent: "Y"}))
	apply(ptCmd(OpRejectOffer, ptAgent("Y"), &api.OfferArgs{Request: "R2"}))
	apply(ptCmd(OpTransfer, agent, &api.TransferArgs{Request: "R2", ToAgent: "Y"}))
	apply(ptCmd(OpLogout, agent, &api.AgentArgs{}))
	checkSessionIndex(t, s)
}

// Whatever op, principal and arguments (drawn at random: existing and
// unknown ids, the longest ids, long and invalid text), the record a
// session keeps is at most MaxRecordBytes encoded, and the per-principal
// index stays in step with the sessions.
func TestRecordSizeProperty(t *testing.T) {
	ops := Commands.Ops()
	viewOps := []Op{OpSubscribe, OpJoin, OpAcceptOffer, OpLogin, OpLogout, OpSetAgentState, OpSetAgentMode,
		OpRequestChat, OpTransfer, OpInvite}
	long := strings.Repeat("i", api.MaxIDBytes)
	// Mostly "" and existing ids, so that many draws succeed.
	strs := []string{"", "", "", "", "", "", "X", "Y", "Z", long, "LC", "LK", "QS", "QV", "QE", "WS", "WV", "FC", "ME", "chat", "email",
		"R1", "R2", "R3", "O1", "O2", "cx", "pull", "push", "auto", "READY", "NOT_READY", "first_due",
		strings.Repeat("é", 700), "bad \xff id", strings.Repeat("w", api.MaxTextBytes)}
	ints := []int64{0, 1, 2, 3, -1, 50, 1000, 30_000, 1 << 40}
	principals := []api.Principal{ptAdmin, ptConn, ptAgent("X"), ptAgent("Y"), ptAgent(long), ptSystem,
		{Role: api.RoleConnector, ID: "ghost"}}
	kept := map[string]int{}
	defer func() {
		t.Logf("records kept: %v", kept)
		if !t.Failed() && (kept["compact"] == 0 || kept["whole"] == 0) {
			t.Errorf("the draws kept no compact or no whole record: %v", kept)
		}
	}()
	rapid.Check(t, func(rt *rapid.T) {
		s := ptWorld(rt)
		ptApply(rt, s, ptCmd(OpCreateAgent, ptAdmin, &api.CreateAgentArgs{ID: long, TokenHash: []byte("h")}))
		ptApply(rt, s, ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "LK"}))
		ptReady(rt, s, "chat", "X", "Y", long)
		for i := range 3 {
			ptApply(rt, s, ptCmd(OpCustomerMessage, ptConn, &api.CustomerMessageArgs{Channel: "FC", CustomerID: fmt.Sprint("f", i), Text: strings.Repeat("t", api.MaxTextBytes)}))
			ptArrive(rt, s, "WS", fmt.Sprint("w", i), 0)
		}
		var fill func(v reflect.Value, label string)
		fill = func(v reflect.Value, label string) {
			switch v.Kind() {
			case reflect.String:
				v.SetString(rapid.SampledFrom(strs).Draw(rt, label))
			case reflect.Bool:
				v.SetBool(rapid.Bool().Draw(rt, label))
			case reflect.Int, reflect.Int64, reflect.Int32:
				v.SetInt(rapid.SampledFrom(ints).Draw(rt, label))
			case reflect.Uint32, reflect.Uint64:
				v.SetUint(rapid.Uint64Range(0, 4).Draw(rt, label))
			case reflect.Slice:
				if v.Type().Elem().Kind() == reflect.Uint8 {
					v.SetBytes(make([]byte, rapid.IntRange(0, 300).Draw(rt, label)))
					return
				}
				n := rapid.IntRange(0, 2).Draw(rt, label+".len")
				sl := reflect.MakeSlice(v.Type(), n, n)
				for i := range n {
					fill(sl.Index(i), fmt.Sprint(label, "[", i, "]"))
				}
				v.Set(sl)
			case reflect.Map:
				m := reflect.MakeMap(v.Type())
				for i := range rapid.IntRange(0, 2).Draw(rt, label+".len") {
					k := reflect.New(v.Type().Key()).Elem()
					fill(k, fmt.Sprint(label, ".k", i))
					e := reflect.New(v.Type().Elem()).Elem()
					fill(e, fmt.Sprint(label, ".v", i))
					m.SetMapIndex(k, e)
				}
				v.Set(m)
			case reflect.Struct:
				for i := range v.NumField() {
					if v.Type().Field(i).IsExported() {
						fill(v.Field(i), label+"."+v.Type().Field(i).Name)
					}
				}
			case reflect.Pointer:
				if rapid.Bool().Draw(rt, label+".nil") {
					return
				}
				p := reflect.New(v.Type().Elem())
				fill(p.Elem(), label)
				v.Set(p)
			}
		}
		seqs := map[string]uint64{}
		for step := range rapid.IntRange(1, 60).Draw(rt, "steps") {
			info := rapid.SampledFrom(ops).Draw(rt, "op")
			if rapid.Bool().Draw(rt, "view op") { // half of them: an op that returns a view
				info = Commands.Lookup(rapid.SampledFrom(viewOps).Draw(rt, "view"))
			}
			if info.Op == OpSetFeatureLevel {
				continue // lowering is refused, raising is past this build
			}
			args := info.NewArgs()
			fill(reflect.ValueOf(args).Elem(), info.Name)
			by := rapid.SampledFrom(principals).Draw(rt, "by")
			client := rapid.SampledFrom([]string{"a", "b", long}).Draw(rt, "client")
			c := &Command{Op: info.Op, By: by, Args: args, ClientID: client}
			key := sessionKey(c)
			seqs[key]++
			c.Seq = seqs[key]
			s.Index = uint64(1000 + step)
			first, _ := s.Apply(c)
			var rec Result
			if sess := s.Sessions[key]; sess != nil {
				var ok bool
				if rec, ok = sess.Results[c.Seq]; !ok {
					switch api.CodeOf(first.Err) {
					case api.CodeForbidden, api.CodeFeatureNotEnabled:
						continue // refused before the session is looked at
					}
					rt.Fatalf("step %d %s: no record kept of %+v", step, info.Name, first)
				}
			} else {
				continue
			}
			if size := recordSize(rec); size > MaxRecordBytes {
				rt.Fatalf("step %d %s: record of %d bytes: %+v", step, info.Name, size, rec)
			}
			if api.CodeOf(rec.Err) != api.CodeOf(first.Err) {
				rt.Fatalf("step %d %s: record code %v, answer %v", step, info.Name, rec.Err, first.Err)
			}
			switch rec.Data.(type) {
			case api.Applied:
				kept["compact"]++
			case nil:
				kept["error or none"]++
			default:
				kept["whole"]++
			}
		}
		checkSessionIndex(rt, s)
		checkSessionIndex(rt, readStateOf(rt, s))
	})
}

func readStateOf(tb ptTB, s *State) *State {
	tb.Helper()
	back, err := ReadState(bufio.NewReader(bytes.NewReader(ptMarshal(tb, s))))
	if err != nil {
		tb.Fatal(err)
	}
	return back
}

// Below level 3 a session keeps each result whole, as before.
func TestLevel2KeepsWholeResults(t *testing.T) {
	cs := ptWorldCommands()
	cs[0].Args = &api.FeatureLevelArgs{Level: Level2}
	s := NewState()
	for _, c := range cs {
		ptApply(t, s, c)
	}
	ptApply(t, s, ptCmd(OpCreateList, ptAdmin, &api.CreateListArgs{ID: "LK"}))
	first, _ := ptApply(t, s, keyedPt("app", 1, ptCmd(OpSubscribe, ptAgent("X"), &api.SubscribeArgs{List: "LK"})))
	retry, _ := s.Apply(keyedPt("app", 1, ptCmd(OpSubscribe, ptAgent("X"), &api.SubscribeArgs{List: "LK"})))
	if !reflect.DeepEqual(retry, first) {
		t.Fatalf("retry at level 2 answered %+v, first %+v", retry, first)
	}
}
