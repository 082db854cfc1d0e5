package fsm_test

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// badIDs are identifiers checkID must refuse with CodeBadRequest.
var badIDs = map[string]string{
	"empty":          "",
	"oversized":      strings.Repeat("x", api.MaxIDBytes+1),
	"space":          "a b",
	"slash":          "a/b",
	"nul":            "a\x00b",
	"non-ascii":      "é",
	"invalid UTF-8":  "a\xff",
	"newline":        "a\n",
	"percent":        "a%b",
	"null separator": "C2\x00x",
}

// badNames are free-text names (limit MaxIDBytes) that must be refused.
var badNames = map[string]string{
	"oversized":     strings.Repeat("n", api.MaxIDBytes+1),
	"invalid UTF-8": "Ann\xc3",
}

// badIDCases makes one rejection case per bad identifier.
func badIDCases(prefix string, mk func(id string) *Command) []applyCase {
	var cs []applyCase
	for _, name := range slices.Sorted(maps.Keys(badIDs)) {
		cs = append(cs, applyCase{name: prefix + " " + name, c: mk(badIDs[name]), code: api.CodeBadRequest})
	}
	return cs
}

func badNameCases(prefix string, mk func(name string) *Command) []applyCase {
	var cs []applyCase
	for _, name := range slices.Sorted(maps.Keys(badNames)) {
		cs = append(cs, applyCase{name: prefix + " " + name, c: mk(badNames[name]), code: api.CodeBadRequest})
	}
	return cs
}

// forbiddenCases makes one CodeForbidden case per role in rs.
func forbiddenCases(mk func(by api.Principal) *Command, rs ...api.Principal) []applyCase {
	var cs []applyCase
	for _, p := range rs {
		cs = append(cs, applyCase{name: "forbidden for " + p.Role.String(), c: mk(p), code: api.CodeForbidden})
	}
	return cs
}

func created(id string) func(t *testing.T, s *State, res Result, evs []Event) {
	return func(t *testing.T, s *State, res Result, evs []Event) {
		t.Helper()
		if res.Data != (api.Created{ID: id}) {
			t.Errorf("result %+v, want Created{%s}", res.Data, id)
		}
		if len(evs) != 0 {
			t.Errorf("admin create emitted events: %s", kinds(evs))
		}
	}
}

func TestCreateMRD(t *testing.T) {
	mk := func(id string) *Command { return cmd(OpCreateMRD, admin, &api.CreateMRDArgs{ID: id, Name: "Email"}) }
	cases := []applyCase{
		{name: "creates", c: mk("email"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			created("email")(t, s, res, evs)
			if got := s.MRDs["email"]; !reflect.DeepEqual(got, &api.MRD{ID: "email", Name: "Email"}) {
				t.Errorf("mrd %+v", got)
			}
		}},
		{name: "longest id", c: mk(strings.Repeat("m", api.MaxIDBytes)), check: created(strings.Repeat("m", api.MaxIDBytes))},
		{name: "id of every allowed character", c: mk("aZ09._-:@"), check: created("aZ09._-:@")},
		{name: "duplicate", c: mk("social"), code: api.CodeAlreadyExists},
	}
	cases = append(cases, badIDCases("id", mk)...)
	cases = append(cases, badNameCases("name", func(n string) *Command {
		return cmd(OpCreateMRD, admin, &api.CreateMRDArgs{ID: "email", Name: n})
	})...)
	cases = append(cases, forbiddenCases(func(p api.Principal) *Command {
		return cmd(OpCreateMRD, p, &api.CreateMRDArgs{ID: "email"})
	}, a1, fb)...)
	runCases(t, cases)
}

func TestCreateChannelType(t *testing.T) {
	mk := func(id, mrd string) *Command {
		return cmd(OpCreateChannelType, admin, &api.CreateChannelTypeArgs{ID: id, MRD: mrd})
	}
	cases := []applyCase{
		{name: "creates", c: mk("whatsapp", "social"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			created("whatsapp")(t, s, res, evs)
			if got := s.ChannelTypes["whatsapp"]; !reflect.DeepEqual(got, &api.ChannelType{ID: "whatsapp", MRD: "social"}) {
				t.Errorf("channel type %+v", got)
			}
		}},
		{name: "duplicate", c: mk("facebook", "social"), code: api.CodeAlreadyExists},
		{name: "unknown mrd", c: mk("whatsapp", "voice"), code: api.CodeNotFound},
		{name: "no mrd", c: mk("whatsapp", ""), code: api.CodeNotFound},
	}
	cases = append(cases, badIDCases("id", func(id string) *Command { return mk(id, "social") })...)
	cases = append(cases, forbiddenCases(func(p api.Principal) *Command {
		return cmd(OpCreateChannelType, p, &api.CreateChannelTypeArgs{ID: "whatsapp", MRD: "social"})
	}, a1, fb)...)
	runCases(t, cases)
}

func TestCreateList(t *testing.T) {
	mk := func(id, name string) *Command {
		return cmd(OpCreateList, admin, &api.CreateListArgs{ID: id, Name: name})
	}
	cases := []applyCase{
		{name: "creates", c: mk("L3", "Third"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			created("L3")(t, s, res, evs)
			if got := s.Lists["L3"]; !reflect.DeepEqual(got, &List{ID: "L3", Name: "Third"}) {
				t.Errorf("list %+v", got)
			}
		}},
		{name: "duplicate", c: mk("L1", "again"), code: api.CodeAlreadyExists},
	}
	cases = append(cases, badIDCases("id", func(id string) *Command { return mk(id, "x") })...)
	cases = append(cases, badNameCases("name", func(n string) *Command { return mk("L3", n) })...)
	cases = append(cases, forbiddenCases(func(p api.Principal) *Command {
		return cmd(OpCreateList, p, &api.CreateListArgs{ID: "L3"})
	}, a1, fb)...)
	runCases(t, cases)
}

func TestCreateQueue(t *testing.T) {
	mk := func(a api.CreateQueueArgs) *Command { return cmd(OpCreateQueue, admin, &a) }
	cases := []applyCase{
		{name: "creates", c: mk(api.CreateQueueArgs{ID: "Q2", Name: "VIP", MRD: "chat", Priority: 9, OfferTimeoutMs: 15000}), check: func(t *testing.T, s *State, res Result, evs []Event) {
			created("Q2")(t, s, res, evs)
			want := &api.Queue{ID: "Q2", Name: "VIP", MRD: "chat", Priority: 9, OfferTimeoutMs: 15000}
			if got := s.Queues["Q2"]; !reflect.DeepEqual(got, want) {
				t.Errorf("queue %+v", got)
			}
		}},
		{name: "duplicate", c: mk(api.CreateQueueArgs{ID: "Q1", MRD: "chat"}), code: api.CodeAlreadyExists},
		{name: "unknown mrd", c: mk(api.CreateQueueArgs{ID: "Q2", MRD: "voice"}), code: api.CodeNotFound},
		{name: "negative offer timeout", c: mk(api.CreateQueueArgs{ID: "Q2", MRD: "chat", OfferTimeoutMs: -1}), code: api.CodeBadRequest},
	}
	cases = append(cases, badIDCases("id", func(id string) *Command { return mk(api.CreateQueueArgs{ID: id, MRD: "chat"}) })...)
	cases = append(cases, badNameCases("name", func(n string) *Command { return mk(api.CreateQueueArgs{ID: "Q2", Name: n, MRD: "chat"}) })...)
	cases = append(cases, forbiddenCases(func(p api.Principal) *Command {
		return cmd(OpCreateQueue, p, &api.CreateQueueArgs{ID: "Q2", MRD: "chat"})
	}, a1, fb)...)
	runCases(t, cases)
}

func TestCreateChannel(t *testing.T) {
	mk := func(a api.CreateChannelArgs) *Command { return cmd(OpCreateChannel, admin, &a) }
	cases := []applyCase{
		{name: "pull on a list", c: mk(api.CreateChannelArgs{ID: "C3", Type: "facebook", Mode: api.ModePull, List: "L2"}), check: func(t *testing.T, s *State, res Result, evs []Event) {
			created("C3")(t, s, res, evs)
			want := &api.Channel{ID: "C3", Type: "facebook", MRD: "social", Mode: api.ModePull, List: "L2"}
			if got := s.Channels["C3"]; !reflect.DeepEqual(got, want) {
				t.Errorf("channel %+v", got)
			}
		}},
		{name: "push on a queue", c: mk(api.CreateChannelArgs{ID: "W2", Type: "webchat", Mode: api.ModePush, Queue: "Q1"}), check: func(t *testing.T, s *State, res Result, evs []Event) {
			created("W2")(t, s, res, evs)
			want := &api.Channel{ID: "W2", Type: "webchat", MRD: "chat", Mode: api.ModePush, Queue: "Q1"}
			if got := s.Channels["W2"]; !reflect.DeepEqual(got, want) {
				t.Errorf("channel %+v", got)
			}
		}},
		{name: "duplicate", c: mk(api.CreateChannelArgs{ID: "C2", Type: "facebook", Mode: api.ModePull, List: "L1"}), code: api.CodeAlreadyExists},
		{name: "unknown type", c: mk(api.CreateChannelArgs{ID: "C3", Type: "telegram", Mode: api.ModePull, List: "L1"}), code: api.CodeNotFound},
		{name: "pull naming a queue", c: mk(api.CreateChannelArgs{ID: "C3", Type: "facebook", Mode: api.ModePull, List: "L1", Queue: "Q1"}), code: api.CodeBadRequest},
		{name: "pull on unknown list", c: mk(api.CreateChannelArgs{ID: "C3", Type: "facebook", Mode: api.ModePull, List: "L9"}), code: api.CodeNotFound},
		{name: "pull without list", c: mk(api.CreateChannelArgs{ID: "C3", Type: "facebook", Mode: api.ModePull}), code: api.CodeNotFound},
		{name: "push naming a list", c: mk(api.CreateChannelArgs{ID: "W2", Type: "webchat", Mode: api.ModePush, Queue: "Q1", List: "L1"}), code: api.CodeBadRequest},
		{name: "push on unknown queue", c: mk(api.CreateChannelArgs{ID: "W2", Type: "webchat", Mode: api.ModePush, Queue: "Q9"}), code: api.CodeNotFound},
		{name: "push on a queue of another mrd", c: mk(api.CreateChannelArgs{ID: "F2", Type: "facebook", Mode: api.ModePush, Queue: "Q1"}), code: api.CodeBadRequest},
		{name: "no mode", c: mk(api.CreateChannelArgs{ID: "C3", Type: "facebook", List: "L1"}), code: api.CodeBadRequest},
		{name: "unknown mode", c: mk(api.CreateChannelArgs{ID: "C3", Type: "facebook", Mode: "PULL", List: "L1"}), code: api.CodeBadRequest},
	}
	cases = append(cases, badIDCases("id", func(id string) *Command {
		return mk(api.CreateChannelArgs{ID: id, Type: "facebook", Mode: api.ModePull, List: "L1"})
	})...)
	cases = append(cases, forbiddenCases(func(p api.Principal) *Command {
		return cmd(OpCreateChannel, p, &api.CreateChannelArgs{ID: "C3", Type: "facebook", Mode: api.ModePull, List: "L1"})
	}, a1, fb)...)
	runCases(t, cases)
}

func TestCreateAgent(t *testing.T) {
	tok := []byte("h")
	mk := func(a api.CreateAgentArgs) *Command { return cmd(OpCreateAgent, admin, &a) }
	cases := []applyCase{
		{name: "creates", c: mk(api.CreateAgentArgs{ID: "A9", Name: "Zoe", Max: map[string]int{"social": 3, "chat": 1}, TokenHash: tok}), check: func(t *testing.T, s *State, res Result, evs []Event) {
			created("A9")(t, s, res, evs)
			want := &Agent{ID: "A9", Name: "Zoe", TokenHash: tok, Max: map[string]int{"social": 3, "chat": 1}}
			if got := s.Agents["A9"]; !reflect.DeepEqual(got, want) {
				t.Errorf("agent %+v", got)
			}
		}},
		{name: "without max is unlimited", c: mk(api.CreateAgentArgs{ID: "A9", TokenHash: tok}), check: func(t *testing.T, s *State, res Result, evs []Event) {
			created("A9")(t, s, res, evs)
			if s.Agents["A9"].Max != nil {
				t.Errorf("max %v, want nil", s.Agents["A9"].Max)
			}
		}},
		{name: "duplicate", c: mk(api.CreateAgentArgs{ID: "A1", TokenHash: tok}), code: api.CodeAlreadyExists},
		{name: "no token hash", c: mk(api.CreateAgentArgs{ID: "A9"}), code: api.CodeBadRequest},
		{name: "max of unknown mrd", c: mk(api.CreateAgentArgs{ID: "A9", TokenHash: tok, Max: map[string]int{"voice": 1}}), code: api.CodeNotFound},
		{name: "max of zero", c: mk(api.CreateAgentArgs{ID: "A9", TokenHash: tok, Max: map[string]int{"chat": 0}}), code: api.CodeBadRequest},
		{name: "negative max", c: mk(api.CreateAgentArgs{ID: "A9", TokenHash: tok, Max: map[string]int{"chat": -2}}), code: api.CodeBadRequest},
	}
	cases = append(cases, badIDCases("id", func(id string) *Command { return mk(api.CreateAgentArgs{ID: id, TokenHash: tok}) })...)
	cases = append(cases, badNameCases("name", func(n string) *Command { return mk(api.CreateAgentArgs{ID: "A9", Name: n, TokenHash: tok}) })...)
	cases = append(cases, forbiddenCases(func(p api.Principal) *Command {
		return cmd(OpCreateAgent, p, &api.CreateAgentArgs{ID: "A9", TokenHash: tok})
	}, a1, fb)...)
	runCases(t, cases)
}

// With several bad Max entries, the error must not depend on map iteration
// order: replicas would record different results for the same command.
func TestCreateAgentErrorIsDeterministic(t *testing.T) {
	args := api.CreateAgentArgs{ID: "A9", TokenHash: []byte("h"), Max: map[string]int{"chat": 0, "nope": 1, "zz": 2, "social": -1}}
	s := walkthrough(t)
	first, _ := s.Apply(cmd(OpCreateAgent, admin, &args))
	if first.Err == nil {
		t.Fatal("create_agent with bad max succeeded")
	}
	for range 200 {
		res, _ := s.Apply(cmd(OpCreateAgent, admin, &args))
		if !reflect.DeepEqual(res, first) {
			t.Fatalf("same command answered %v, then %v", first.Err, res.Err)
		}
	}
	// Keys are checked in sorted order: "chat" (max 0) comes first.
	if first.Err.Code != api.CodeBadRequest || !strings.Contains(first.Err.Msg, `"chat"`) {
		t.Errorf("error %v, want bad_request on chat", first.Err)
	}
}

func TestCreateConnector(t *testing.T) {
	tok := []byte("h")
	mk := func(a api.CreateConnectorArgs) *Command { return cmd(OpCreateConnector, admin, &a) }
	cases := []applyCase{
		{name: "creates, channels sorted and deduplicated", c: mk(api.CreateConnectorArgs{ID: "both", Name: "Both", Channels: []string{"W1", "C2", "W1"}, TokenHash: tok}), check: func(t *testing.T, s *State, res Result, evs []Event) {
			created("both")(t, s, res, evs)
			want := &Connector{ID: "both", Name: "Both", TokenHash: tok, Channels: []string{"C2", "W1"}}
			if got := s.Connectors["both"]; !reflect.DeepEqual(got, want) {
				t.Errorf("connector %+v", got)
			}
			if got, want := s.Channels["C2"].Connectors, []string{C("both"), C("fb")}; !reflect.DeepEqual(got, want) {
				t.Errorf("C2 connectors %v, want %v", got, want)
			}
			if got, want := s.Channels["W1"].Connectors, []string{C("both"), C("web")}; !reflect.DeepEqual(got, want) {
				t.Errorf("W1 connectors %v, want %v", got, want)
			}
		}},
		{name: "duplicate", c: mk(api.CreateConnectorArgs{ID: "fb", Channels: []string{"C2"}, TokenHash: tok}), code: api.CodeAlreadyExists},
		{name: "no token hash", c: mk(api.CreateConnectorArgs{ID: "x", Channels: []string{"C2"}}), code: api.CodeBadRequest},
		{name: "no channels", c: mk(api.CreateConnectorArgs{ID: "x", TokenHash: tok}), code: api.CodeBadRequest},
		{name: "unknown channel after a known one", c: mk(api.CreateConnectorArgs{ID: "x", Channels: []string{"C2", "C9"}, TokenHash: tok}), code: api.CodeNotFound},
	}
	cases = append(cases, badIDCases("id", func(id string) *Command {
		return mk(api.CreateConnectorArgs{ID: id, Channels: []string{"C2"}, TokenHash: tok})
	})...)
	cases = append(cases, badNameCases("name", func(n string) *Command {
		return mk(api.CreateConnectorArgs{ID: "x", Name: n, Channels: []string{"C2"}, TokenHash: tok})
	})...)
	cases = append(cases, forbiddenCases(func(p api.Principal) *Command {
		return cmd(OpCreateConnector, p, &api.CreateConnectorArgs{ID: "x", Channels: []string{"C2"}, TokenHash: tok})
	}, a1, fb)...)
	runCases(t, cases)
}

func TestDeleteList(t *testing.T) {
	mk := func(id string) *Command { return cmd(OpDeleteList, admin, &api.IDArgs{ID: id}) }
	cases := []applyCase{
		{name: "deletes and unsubscribes its agents", c: mk("L2"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if res.Data != nil || len(evs) != 1 || evs[0].Kind != api.EvListUnsubscribed {
				t.Fatalf("result %+v events %s, want one list.unsubscribed", res.Data, kinds(evs))
			}
			if ref, ok := evs[0].Data.(api.ListRef); !ok || ref.List != "L2" || !slices.Equal(evs[0].To, []string{api.AgentKey("A3")}) {
				t.Errorf("event %+v to %v, want L2 to A3", evs[0].Data, evs[0].To)
			}
			if s.Lists["L2"] != nil {
				t.Error("L2 still exists")
			}
			if got := s.Agents["A3"].Lists; len(got) != 0 {
				t.Errorf("A3 lists %v, want none", got)
			}
		}},
		{name: "unknown", c: mk("L9"), code: api.CodeNotFound},
		{name: "used by a channel", prep: func(tb testing.TB, s *State) {
			mustApply(tb, s, cmd(OpCreateChannel, admin, &api.CreateChannelArgs{ID: "C3", Type: "facebook", Mode: api.ModePull, List: "L2"}))
		}, c: mk("L2"), code: api.CodeWrongState},
		{name: "with open requests", prep: func(tb testing.TB, s *State) {
			customerMessage(tb, s, "u1", "hi")
		}, c: mk("L1"), code: api.CodeWrongState},
	}
	cases = append(cases, forbiddenCases(func(p api.Principal) *Command { return cmd(OpDeleteList, p, &api.IDArgs{ID: "L2"}) }, a1, fb)...)
	runCases(t, cases)
}

func TestDeleteAgent(t *testing.T) {
	mk := func(id string) *Command { return cmd(OpDeleteAgent, admin, &api.IDArgs{ID: id}) }
	cases := []applyCase{
		{name: "deletes and leaves its lists", c: mk("A1"), check: func(t *testing.T, s *State, res Result, evs []Event) {
			if res.Data != nil || len(evs) != 0 {
				t.Errorf("result %+v events %s", res.Data, kinds(evs))
			}
			if s.Agents["A1"] != nil {
				t.Error("A1 still exists")
			}
			if got, want := s.Lists["L1"].Subscribers, []string{A("A2")}; !reflect.DeepEqual(got, want) {
				t.Errorf("L1 subscribers %v, want %v", got, want)
			}
		}},
		{name: "unknown", c: mk("A9"), code: api.CodeNotFound},
		{name: "in a conversation", prep: func(tb testing.TB, s *State) {
			r := customerMessage(tb, s, "u1", "hi")
			mustApply(tb, s, cmd(OpJoin, a1, &api.RequestArgs{Request: r}))
		}, c: mk("A1"), code: api.CodeWrongState},
	}
	cases = append(cases, forbiddenCases(func(p api.Principal) *Command { return cmd(OpDeleteAgent, p, &api.IDArgs{ID: "A1"}) }, a1, a2, fb)...)
	runCases(t, cases)
}

func TestNoop(t *testing.T) {
	noop := func(p api.Principal) *Command { return cmd(OpNoop, p, &api.NoopArgs{Pad: []byte("xx")}) }
	var cases []applyCase
	for _, p := range []api.Principal{admin, a1, fb} {
		cases = append(cases, applyCase{name: "allowed for " + p.Role.String(), c: noop(p),
			check: func(t *testing.T, s *State, res Result, evs []Event) {
				if res != (Result{}) || len(evs) != 0 {
					t.Errorf("noop answered %+v with %d events", res, len(evs))
				}
			}})
	}
	cases = append(cases, forbiddenCases(noop, api.Principal{Role: api.RoleNone, ID: "x"}, api.Principal{Role: api.RoleSystem, ID: "timer"}, api.Principal{Role: 200, ID: "x"})...)
	runCases(t, cases)
}

// Every op refuses exactly the roles it was not registered for, before
// looking at its arguments. The admin and pull ops have a fixed matrix; ops
// registered elsewhere are held to their own registration.
func TestRoleMatrix(t *testing.T) {
	allowed := map[Op][]api.Role{
		OpCreateMRD: {api.RoleAdmin}, OpCreateChannelType: {api.RoleAdmin}, OpCreateList: {api.RoleAdmin},
		OpCreateQueue: {api.RoleAdmin}, OpCreateChannel: {api.RoleAdmin}, OpCreateAgent: {api.RoleAdmin},
		OpCreateConnector: {api.RoleAdmin}, OpDeleteList: {api.RoleAdmin}, OpDeleteAgent: {api.RoleAdmin},
		OpNoop:      {api.RoleAdmin, api.RoleAgent, api.RoleConnector},
		OpSubscribe: {api.RoleAdmin, api.RoleAgent}, OpUnsubscribe: {api.RoleAdmin, api.RoleAgent},
		OpCustomerMessage: {api.RoleAdmin, api.RoleConnector}, OpRequestAgent: {api.RoleAdmin, api.RoleConnector},
		OpJoin: {api.RoleAdmin, api.RoleAgent}, OpLeave: {api.RoleAdmin, api.RoleAgent},
		OpClose: {api.RoleAdmin, api.RoleAgent, api.RoleConnector, api.RoleSupervisor}, OpSend: {api.RoleAdmin, api.RoleAgent},
	}
	for op := range allowed {
		if Commands.Lookup(op) == nil {
			t.Errorf("op %d is not registered", op)
		}
	}
	s := walkthrough(t)
	for _, info := range Commands.Ops() {
		want, fixed := allowed[info.Op]
		for r := api.RoleNone; r <= api.RoleSupervisor+1; r++ {
			if fixed && info.Allowed(r) != slices.Contains(want, r) {
				t.Errorf("%s allowed for %s = %v", info.Name, r, info.Allowed(r))
			}
			if info.Allowed(r) {
				continue
			}
			assertRejected(t, s, cmd(info.Op, api.Principal{Role: r, ID: "A1"}, info.NewArgs()), api.CodeForbidden)
		}
	}
}

func TestUnknownOp(t *testing.T) {
	s := walkthrough(t)
	for _, op := range []Op{OpUnknown, 11, 19, 28, 99, 255} {
		assertRejected(t, s, cmd(op, admin, &api.IDArgs{ID: "x"}), api.CodeUnknownOp)
	}
}

// Args of the wrong type (or none) are a bad request, not a panic.
func TestWrongArgsType(t *testing.T) {
	s := walkthrough(t)
	for _, info := range Commands.Ops() {
		other := any(&api.NoopArgs{})
		if info.Op == OpNoop {
			other = &api.IDArgs{}
		}
		wrong := []any{
			nil,
			other,
			reflect.New(info.Args).Elem().Interface(),              // a value, not a pointer
			reflect.Zero(reflect.PointerTo(info.Args)).Interface(), // a typed nil pointer
		}
		by := admin
		for _, p := range []api.Principal{admin, a1, fb, {Role: api.RoleSystem, ID: "leader"}} {
			if info.Allowed(p.Role) {
				by = p
				break
			}
		}
		for _, args := range wrong {
			assertRejected(t, s, cmd(info.Op, by, args), api.CodeBadRequest)
		}
	}
}

func TestRegistry(t *testing.T) {
	for _, info := range Commands.Ops() {
		if Commands.LookupName(info.Name) != info || Commands.Lookup(info.Op) != info {
			t.Errorf("lookup of %s (%d) does not find it", info.Name, info.Op)
		}
		if got := reflect.TypeOf(info.NewArgs()); got != reflect.PointerTo(info.Args) {
			t.Errorf("%s NewArgs is %v", info.Name, got)
		}
	}
	if Commands.Lookup(OpUnknown) != nil || Commands.LookupName("nope") != nil {
		t.Error("lookup of unknown op found something")
	}
}

func TestRegistryDecodeArgs(t *testing.T) {
	info, args, err := Commands.DecodeArgs("join", mustMsgpack(t, api.RequestArgs{Request: "R1", Agent: "A1"}))
	if err != nil || info.Op != OpJoin || !reflect.DeepEqual(args, &api.RequestArgs{Request: "R1", Agent: "A1"}) {
		t.Errorf("decode join: %v %+v %v", info, args, err)
	}
	if _, args, err := Commands.DecodeArgs("join", nil); err != nil || !reflect.DeepEqual(args, &api.RequestArgs{}) {
		t.Errorf("empty args: %+v %v", args, err)
	}
	if _, _, err := Commands.DecodeArgs("nope", nil); err == nil || err.Code != api.CodeUnknownOp {
		t.Errorf("unknown op: %v", err)
	}
	if _, _, err := Commands.DecodeArgs("join", []byte{0xc1}); err == nil || err.Code != api.CodeBadRequest {
		t.Errorf("garbage args: %v", err)
	}
}
