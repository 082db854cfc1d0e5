package fsm

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
)

// flat is o in its snapshot form: the map State.Open was before it was
// kept by channel.
func (o *OpenRequests) flat() map[string]string {
	if o.byChannel == nil {
		return nil
	}
	m := map[string]string{}
	for ch, custs := range o.byChannel {
		for cust, rid := range custs {
			m[openKey(ch, cust)] = rid
		}
	}
	for k, rid := range o.loose {
		m[k] = rid
	}
	return m
}

// checkOpenIndex fails unless s.Open keeps its invariants: no channel id
// with a NUL byte, no empty channel map, loose keys without NUL and loose
// nil when empty, and a count of all the entries.
func checkOpenIndex(t testing.TB, s *State) {
	t.Helper()
	o := &s.Open
	n := len(o.loose)
	for ch, custs := range o.byChannel {
		if strings.IndexByte(ch, 0) >= 0 {
			t.Fatalf("open requests: channel %q holds a NUL byte", ch)
		}
		if len(custs) == 0 {
			t.Fatalf("open requests: channel %q has an empty map", ch)
		}
		n += len(custs)
	}
	for k := range o.loose {
		if strings.IndexByte(k, 0) >= 0 {
			t.Fatalf("open requests: loose key %q holds a NUL byte", k)
		}
	}
	if o.loose != nil && len(o.loose) == 0 {
		t.Fatal("open requests: empty loose map")
	}
	if o.Len() != n {
		t.Fatalf("open requests: Len %d, %d entries", o.Len(), n)
	}
}

// scanView is the connector view the way View computed it before the
// index: a scan of every open request.
func scanView(s *State, connector string) []string {
	var ids []string
	for _, ch := range s.Connectors[connector].Channels {
		for k, rid := range s.Open.flat() {
			if len(k) > len(ch) && k[:len(ch)] == ch && k[len(ch)] == 0 {
				ids = append(ids, rid)
			}
		}
	}
	slices.SortFunc(ids, compareRequestIDs)
	return ids
}

// TestOpenIndex: through random customer messages and closes on pull and
// push channels, the open requests keep their invariants after every
// command, the
// connectors' views equal a full scan, and a snapshot round trip (ReadState)
// gives the same open requests while the snapshot bytes stay those of the
// state.
func TestOpenIndex(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	s := NewState()
	admin := api.Principal{Role: api.RoleAdmin, ID: "admin"}
	now := int64(0)
	do := func(by api.Principal, op Op, args any) Result {
		now++
		res, _ := s.Apply(&Command{Op: op, By: by, Time: now, Args: args})
		return res
	}
	must := func(res Result) {
		t.Helper()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	must(do(admin, OpCreateMRD, &api.CreateMRDArgs{ID: "chat"}))
	must(do(admin, OpCreateChannelType, &api.CreateChannelTypeArgs{ID: "web", MRD: "chat"}))
	must(do(admin, OpCreateList, &api.CreateListArgs{ID: "l"}))
	must(do(admin, OpCreateQueue, &api.CreateQueueArgs{ID: "q", MRD: "chat"}))
	channels := []string{"p1", "p2", "p3", "push"}
	for _, ch := range channels[:3] {
		must(do(admin, OpCreateChannel, &api.CreateChannelArgs{ID: ch, Type: "web", Mode: api.ModePull, List: "l"}))
	}
	must(do(admin, OpCreateChannel, &api.CreateChannelArgs{ID: "push", Type: "web", Mode: api.ModePush, Queue: "q"}))
	// Connector a serves p1 and push; b serves p2 and p3.
	must(do(admin, OpCreateConnector, &api.CreateConnectorArgs{ID: "a", Channels: []string{"p1", "push"}, TokenHash: []byte("h")}))
	must(do(admin, OpCreateConnector, &api.CreateConnectorArgs{ID: "b", Channels: []string{"p2", "p3"}, TokenHash: []byte("h")}))
	owner := map[string]string{"p1": "a", "push": "a", "p2": "b", "p3": "b"}

	for i := range 2000 {
		ch := channels[rng.IntN(len(channels))]
		cust := fmt.Sprintf("c%d", rng.IntN(40))
		by := api.Principal{Role: api.RoleConnector, ID: owner[ch]}
		if rid, ok := s.Open.Get(ch, cust); ok && rng.IntN(3) == 0 {
			must(do(by, OpClose, &api.RequestArgs{Request: rid}))
		} else {
			must(do(by, OpCustomerMessage, &api.CustomerMessageArgs{Channel: ch, CustomerID: cust, Text: "hi"}))
		}
		checkOpenIndex(t, s)
		if i%100 != 0 {
			continue
		}
		for _, cn := range []string{"a", "b"} {
			v, ok := s.View(api.ConnectorKey(cn))
			if !ok {
				t.Fatalf("no view of connector %s", cn)
			}
			var got []string
			for _, c := range v.Conversations {
				got = append(got, c.Request.ID)
			}
			if want := scanView(s, cn); !slices.Equal(got, want) {
				t.Fatalf("step %d: view of %s lists %v, a scan %v", i, cn, got, want)
			}
		}
	}

	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadState(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	checkOpenIndex(t, back)
	for _, cn := range []string{"a", "b"} {
		v1, _ := s.View(api.ConnectorKey(cn))
		v2, _ := back.View(api.ConnectorKey(cn))
		if len(v1.Conversations) != len(v2.Conversations) {
			t.Fatalf("connector %s: %d conversations before the round trip, %d after", cn, len(v1.Conversations), len(v2.Conversations))
		}
	}
	b2, err := back.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatal("the snapshot of the restored state differs from the original's")
	}
}
