package fsm_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// queryState is the walkthrough with R1 (A1 in it) and R2 (UNREAD) on L1.
func queryState(t *testing.T) *State {
	t.Helper()
	s := walkthrough(t)
	activeR1(t, s)
	customerMessage(t, s, "u2", "Hello")
	return s
}

func query(t *testing.T, s *State, p api.Principal, op string, args any) (any, *api.Error) {
	t.Helper()
	var raw []byte
	if args != nil {
		raw = mustMsgpack(t, args)
	}
	return s.Query(p, op, raw)
}

func TestQueryAdminListings(t *testing.T) {
	s := queryState(t)
	cases := []struct {
		op   string
		want any
	}{
		{api.QueryMRDs, []api.MRD{{ID: "chat", Name: "Chat"}, {ID: "social", Name: "Social"}}},
		{api.QueryChannelTypes, []api.ChannelType{{ID: "facebook", MRD: "social"}, {ID: "webchat", MRD: "chat"}}},
		{api.QueryChannels, []api.Channel{
			{ID: "C2", Type: "facebook", MRD: "social", Mode: api.ModePull, List: "L1", Connectors: []string{C("fb")}},
			{ID: "W1", Type: "webchat", MRD: "chat", Mode: api.ModePush, Queue: "Q1", Connectors: []string{C("web")}},
		}},
		{api.QueryQueues, []api.Queue{{ID: "Q1", Name: "Web", MRD: "chat", Priority: 1, OfferTimeoutMs: 30000}}},
		{api.QueryLists, []api.ListInfo{
			{ID: "L1", Name: "Facebook", Subscribers: []string{"A1", "A2"}, Open: 2, Access: api.ListOpen, Granted: []string{}},
			{ID: "L2", Name: "Other", Subscribers: []string{"A3"}, Open: 0, Access: api.ListOpen, Granted: []string{}},
		}},
		{api.QueryAgents, []api.AgentInfo{
			{ID: "A1", Name: "Ann", Max: map[string]int{"social": 2}, Lists: []string{"L1"}, Conversations: []string{"R1"}},
			{ID: "A2", Name: "Bob", Max: map[string]int{}, Lists: []string{"L1"}, Conversations: []string{}},
			{ID: "A3", Name: "Cid", Max: map[string]int{}, Lists: []string{"L2"}, Conversations: []string{}},
		}},
		{api.QueryConnectors, []api.ConnectorInfo{{ID: "fb", Name: "Facebook", Channels: []string{"C2"}}, {ID: "web", Name: "Web", Channels: []string{"W1"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.op, func(t *testing.T) {
			if !IsQuery(tc.op) {
				t.Errorf("IsQuery(%q) is false", tc.op)
			}
			got, err := query(t, s, admin, tc.op, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n got  %+v\n want %+v", got, tc.want)
			}
			for _, p := range []api.Principal{a1, fb} {
				if _, err := query(t, s, p, tc.op, nil); err == nil || err.Code != api.CodeForbidden {
					t.Errorf("%s: %v, want forbidden", p.Role, err)
				}
			}
		})
	}
}

// Listings are copies: changing one does not change the state.
func TestQueryResultsDoNotAliasState(t *testing.T) {
	s := queryState(t)
	before := marshal(t, s)
	got, _ := query(t, s, admin, api.QueryAgents, nil)
	ag := got.([]api.AgentInfo)[0]
	ag.Max["social"] = 99
	ag.Lists[0] = "changed"
	ag.Conversations[0] = "changed"
	got, _ = query(t, s, admin, api.QueryConnectors, nil)
	got.([]api.ConnectorInfo)[0].Channels[0] = "changed"
	if !reflect.DeepEqual(before, marshal(t, s)) {
		t.Error("changing a query result changed the state")
	}
}

func TestQueryList(t *testing.T) {
	s := queryState(t)
	want := s.ListSnapshot(s.Lists["L1"])
	want.Seq = api.SyncSeq(s.Index)
	if len(want.Requests) != 2 || want.Requests[0].ID != "R1" || want.Requests[1].ID != "R2" || want.Total != 2 || want.More {
		t.Fatalf("L1 snapshot %+v", want)
	}
	cases := []struct {
		name string
		by   api.Principal
		list string
		code api.Code
	}{
		{"admin", admin, "L1", api.CodeOK},
		{"subscribed agent", a2, "L1", api.CodeOK},
		{"agent not subscribed", a3, "L1", api.CodeNotSubscribed},
		{"connector", fb, "L1", api.CodeForbidden},
		{"unknown list", admin, "L9", api.CodeNotFound},
		{"no list", a1, "", api.CodeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := query(t, s, tc.by, api.QueryList, api.QueryArgs{List: tc.list})
			if api.CodeOf(err) != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
			if tc.code == api.CodeOK && !reflect.DeepEqual(got, want) {
				t.Errorf("\n got  %+v\n want %+v", got, want)
			}
		})
	}
}

func TestQueryRequest(t *testing.T) {
	s := queryState(t)
	r1 := s.Requests["R1"]
	want := api.ConversationView{Request: s.Summary(r1), Transcript: r1.Transcript}
	cases := []struct {
		name string
		by   api.Principal
		req  string
		code api.Code
	}{
		{"admin", admin, "R1", api.CodeOK},
		{"participant", a1, "R1", api.CodeOK},
		{"subscriber of its list", a2, "R1", api.CodeOK},
		{"agent neither", a3, "R1", api.CodeForbidden},
		{"agent that does not exist", api.Principal{Role: api.RoleAgent, ID: "A9"}, "R1", api.CodeForbidden},
		{"connector of its channel", fb, "R1", api.CodeOK},
		{"connector of another channel", web, "R1", api.CodeForbidden},
		{"unknown request", admin, "R9", api.CodeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := query(t, s, tc.by, api.QueryRequest, api.QueryArgs{Request: tc.req})
			if api.CodeOf(err) != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
			if tc.code == api.CodeOK && !reflect.DeepEqual(got, want) {
				t.Errorf("\n got  %+v\n want %+v", got, want)
			}
		})
	}
	// A closed request stays readable by its participants.
	mustApply(t, s, cmd(OpClose, a1, &api.RequestArgs{Request: "R1"}))
	got, err := query(t, s, a1, api.QueryRequest, api.QueryArgs{Request: "R1"})
	if err != nil || got.(api.ConversationView).Request.State != api.StateClosed {
		t.Errorf("closed request: %+v, %v", got, err)
	}
}

func TestQueryView(t *testing.T) {
	s := queryState(t)
	got, err := query(t, s, a1, api.QueryView, nil)
	if err != nil {
		t.Fatal(err)
	}
	r1 := s.Requests["R1"]
	want := api.StreamView{
		Agent:         "A1",
		Lists:         []api.ListSnapshot{s.ListSnapshot(s.Lists["L1"])},
		Conversations: []api.ConversationView{{Request: s.Summary(r1), Transcript: r1.Transcript}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("A1 view\n got  %+v\n want %+v", got, want)
	}
	got, err = query(t, s, a3, api.QueryView, nil)
	if err != nil || !reflect.DeepEqual(got, api.StreamView{Agent: "A3", Lists: []api.ListSnapshot{s.ListSnapshot(s.Lists["L2"])}, Conversations: []api.ConversationView{}}) {
		t.Errorf("A3 view %+v, %v", got, err)
	}
	for _, p := range []api.Principal{admin, {Role: api.RoleAgent, ID: "A9"}, {Role: api.RoleConnector, ID: "ghost"}} {
		if _, err := query(t, s, p, api.QueryView, nil); api.CodeOf(err) != api.CodeForbidden {
			t.Errorf("%s %s: %v, want forbidden", p.Role, p.ID, err)
		}
	}
}

// A connector's view holds the open conversations of its channels, oldest
// first by request number (R2 before R10).
func TestQueryConnectorView(t *testing.T) {
	s := walkthrough(t)
	for i := 1; i <= 11; i++ {
		customerMessage(t, s, fmt.Sprintf("u%d", i), "hi")
	}
	mustApply(t, s, cmd(OpClose, fb, &api.RequestArgs{Request: "R5"}))
	got, err := query(t, s, fb, api.QueryView, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := got.(api.StreamView)
	var ids []string
	for _, c := range v.Conversations {
		ids = append(ids, c.Request.ID)
	}
	want := []string{"R1", "R2", "R3", "R4", "R6", "R7", "R8", "R9", "R10", "R11"}
	if v.Connector != "fb" || !reflect.DeepEqual(ids, want) || len(v.Lists) != 0 {
		t.Errorf("fb view: connector %q, conversations %v, lists %d; want %v", v.Connector, ids, len(v.Lists), want)
	}
	got, err = query(t, s, web, api.QueryView, nil)
	if err != nil || len(got.(api.StreamView).Conversations) != 0 {
		t.Errorf("web view %+v, %v", got, err)
	}
}

func TestQueryErrors(t *testing.T) {
	s := queryState(t)
	if _, err := s.Query(admin, "create_mrd", nil); api.CodeOf(err) != api.CodeUnknownOp {
		t.Errorf("a command as query: %v", err)
	}
	if _, err := s.Query(admin, "get_everything", nil); api.CodeOf(err) != api.CodeUnknownOp {
		t.Errorf("unknown query: %v", err)
	}
	if _, err := s.Query(admin, api.QueryList, []byte{0xc1}); api.CodeOf(err) != api.CodeBadRequest {
		t.Errorf("garbage args: %v", err)
	}
	if _, err := s.Query(admin, api.QueryList, mustMsgpack(t, "L1")); api.CodeOf(err) != api.CodeBadRequest {
		t.Errorf("args of the wrong shape: %v", err)
	}
}

// Only admins, agents and connectors read: any other role is refused
// every query, including the per-entity ones.
func TestQueryOtherRolesForbidden(t *testing.T) {
	s := queryState(t)
	ops := []string{api.QueryMRDs, api.QueryChannelTypes, api.QueryChannels, api.QueryLists, api.QueryQueues,
		api.QueryAgents, api.QueryConnectors, api.QueryList, api.QueryRequest, api.QueryView}
	for _, r := range []api.Role{api.RoleNone, api.RoleSystem, 9} {
		for _, op := range ops {
			got, err := query(t, s, api.Principal{Role: r, ID: "A1"}, op, api.QueryArgs{List: "L1", Request: "R1"})
			if api.CodeOf(err) != api.CodeForbidden {
				t.Errorf("%s %s: %+v, %v; want forbidden", r, op, got, err)
			}
		}
	}
}

// The admin listings send every collection, empty as empty, never nil: a
// client may iterate them without checking (docs/PROTOCOL.md §2).
func TestListingsSendEmptyCollections(t *testing.T) {
	s := walkthrough(t)
	mustApply(t, s, cmd(OpCreateAgent, admin, &api.CreateAgentArgs{ID: "A9", TokenHash: []byte("h")}))
	v, qerr := s.Query(admin, api.QueryAgents, nil)
	if qerr != nil {
		t.Fatal(qerr)
	}
	raw, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var agents []map[string]any
	if err := msgpack.Unmarshal(raw, &agents); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if a["id"] != "A9" {
			continue
		}
		for _, k := range []string{"max", "lists", "conversations"} {
			if a[k] == nil {
				t.Errorf("get_agents: %s of an agent with none is %v, want empty", k, a[k])
			}
		}
		return
	}
	t.Fatal("A9 not listed")
}
