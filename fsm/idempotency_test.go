package fsm_test

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

func TestRetryReturnsOriginalResultAndAppliesOnce(t *testing.T) {
	s := walkthrough(t)
	msg := func() *Command {
		return keyed("c1", 1, at(t0+1, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "Hi"})))
	}
	first, evs := mustApply(t, s, msg())
	if len(evs) != 1 {
		t.Fatalf("first apply: events %s", kinds(evs))
	}
	after := marshal(t, s)
	for range 3 {
		res, evs := s.Apply(msg())
		if !reflect.DeepEqual(res, first) {
			t.Errorf("retry answered %+v, first %+v", res, first)
		}
		if len(evs) != 0 {
			t.Errorf("retry emitted %s", kinds(evs))
		}
	}
	if !bytes.Equal(after, marshal(t, s)) {
		t.Error("retries changed the state")
	}
	if len(s.Requests) != 1 || len(s.Requests["R1"].Transcript) != 1 || s.NextRequest != 1 {
		t.Errorf("%d requests, transcript %d, next %d: the message applied twice",
			len(s.Requests), len(s.Requests["R1"].Transcript), s.NextRequest)
	}
}

// walkthroughAt is the walkthrough with the state at feature level, not
// this build's: the old rules, for the tests that pin them.
func walkthroughAt(tb testing.TB, level uint32) *State {
	tb.Helper()
	cs := walkthroughCommands()
	cs[0].Args = &api.FeatureLevelArgs{Level: level}
	s := NewState()
	for _, c := range cs {
		mustApply(tb, s, c)
	}
	if s.ActiveLevel() != level {
		tb.Fatalf("state at level %d, want %d", s.ActiveLevel(), level)
	}
	return s
}

// A retry names the original command; its arguments are not looked at.
// From level 3 a join's retry gets the compact record of the first join
// (its request and entry), below it the whole first result.
func TestRetryWithOtherArgsStillReturnsOriginal(t *testing.T) {
	s := walkthrough(t)
	openR1(t, s)
	s.Index = 31
	mustApply(t, s, keyed("c1", 7, cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"})))
	s.Index = 32
	res, evs := s.Apply(keyed("c1", 7, cmd(OpJoin, a1, &api.RequestArgs{Request: "R9"})))
	if want := (api.Applied{Retry: true, Index: 31, Request: "R1"}); res.Err != nil || res.Data != want || len(evs) != 0 {
		t.Errorf("retry answered %+v with %d events, want %+v", res, len(evs), want)
	}

	s = walkthroughAt(t, Level2)
	openR1(t, s)
	first, _ := mustApply(t, s, keyed("c1", 7, cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"})))
	res, evs = s.Apply(keyed("c1", 7, cmd(OpJoin, a1, &api.RequestArgs{Request: "R9"})))
	if !reflect.DeepEqual(res, first) || len(evs) != 0 {
		t.Errorf("level 2: retry answered %+v with %d events", res, len(evs))
	}
}

// A rejection is a result too: the retry gets the same rejection even if
// the command would now succeed.
func TestRetryOfRejectionReturnsRejection(t *testing.T) {
	s := walkthrough(t)
	openR1(t, s)
	join := func(seq uint64) *Command { return keyed("app", seq, cmd(OpJoin, a3, &api.RequestArgs{Request: "R1"})) }
	first, _ := s.Apply(join(5))
	if api.CodeOf(first.Err) != api.CodeNotSubscribed {
		t.Fatalf("join: %v", first.Err)
	}
	mustApply(t, s, cmd(OpSubscribe, a3, &api.SubscribeArgs{List: "L1"}))
	if res, evs := s.Apply(join(5)); !reflect.DeepEqual(res, first) || len(evs) != 0 {
		t.Errorf("retry answered %+v with %d events", res, len(evs))
	}
	if slices.Contains(s.Requests["R1"].Participants, "A3") {
		t.Error("the retry joined")
	}
	mustApply(t, s, join(6))
	wantState(t, s, "R1", api.StateActive, "A3")
}

func TestIdempotencyKeyIsPrincipalClientAndSeq(t *testing.T) {
	msg := func(by api.Principal, client string) *Command {
		return keyed(client, 1, cmd(OpCustomerMessage, by, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "Hi"}))
	}
	s := walkthrough(t)
	mustApply(t, s, msg(fb, "c1"))
	// Another client of the same connector, same seq: a new command.
	res, _ := mustApply(t, s, msg(fb, "c2"))
	if want := (api.CustomerMessageResult{Request: "R1", State: api.StateUnread}); res.Data != want {
		t.Errorf("other client: %+v, want %+v", res.Data, want)
	}
	// Another principal with the same client id and seq: a new command.
	res, _ = mustApply(t, s, msg(admin, "c1"))
	if want := (api.CustomerMessageResult{Request: "R1", State: api.StateUnread}); res.Data != want {
		t.Errorf("other principal: %+v, want %+v", res.Data, want)
	}
	// Agents too: A1 and A2 share a client id and seq.
	mustApply(t, s, keyed("app", 1, cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"})))
	mustApply(t, s, keyed("app", 1, cmd(OpJoin, a2, &api.RequestArgs{Request: "R1"})))
	wantState(t, s, "R1", api.StateActive, "A1", "A2")
	if n := len(s.Requests["R1"].Transcript); n != 3 {
		t.Errorf("transcript has %d messages, want 3", n)
	}
}

func TestNoKeyNoDeduplication(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client string
		seq    uint64
	}{{"seq 0", "c1", 0}, {"no client id", "", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			s := walkthrough(t)
			for range 2 {
				mustApply(t, s, keyed(tc.client, tc.seq, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "Hi"})))
			}
			if n := len(s.Requests["R1"].Transcript); n != 2 {
				t.Errorf("transcript has %d messages, want 2", n)
			}
			if len(s.Sessions) != 0 {
				t.Errorf("sessions recorded: %v", s.Sessions)
			}
		})
	}
}

// createLists applies create_list X<seq> for each seq as client "w".
func createLists(t *testing.T, s *State, seqs ...uint64) {
	t.Helper()
	for _, seq := range seqs {
		mustApply(t, s, keyed("w", seq, cmd(OpCreateList, admin, &api.CreateListArgs{ID: fmt.Sprintf("X%d", seq)})))
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestIdempotencyWindow(t *testing.T) {
	s := walkthrough(t)
	createLists(t, s, seqRange(1, 200)...)
	retry := func(seq uint64) Result {
		res, evs := s.Apply(keyed("w", seq, cmd(OpCreateList, admin, &api.CreateListArgs{ID: fmt.Sprintf("X%d", seq)})))
		if len(evs) != 0 {
			t.Errorf("retry of %d emitted events", seq)
		}
		return res
	}
	// The last SessionWindow results are kept: seqs 73..200.
	for _, seq := range []uint64{200 - SessionWindow + 1, 150, 200} {
		if res := retry(seq); res.Err != nil || res.Data != (api.Created{ID: fmt.Sprintf("X%d", seq)}) {
			t.Errorf("retry of %d: %+v, want the original Created", seq, res)
		}
	}
	before := marshal(t, s)
	for _, seq := range []uint64{200 - SessionWindow, 1} {
		if res := retry(seq); api.CodeOf(res.Err) != api.CodeStaleSequence {
			t.Errorf("retry of %d: %+v, want stale_sequence", seq, res)
		}
	}
	if !bytes.Equal(before, marshal(t, s)) {
		t.Error("a stale retry changed the state")
	}
	if n := len(s.Sessions["admin:admin/w"].Results); n != SessionWindow {
		t.Errorf("session keeps %d results, want %d", n, SessionWindow)
	}
}

// A seq inside the window that was never used is a new command, even if it
// arrives after higher ones.
func TestOutOfOrderSeqInsideWindowApplies(t *testing.T) {
	s := walkthrough(t)
	var seqs []uint64
	for _, q := range seqRange(1, 200) {
		if q != 150 {
			seqs = append(seqs, q)
		}
	}
	createLists(t, s, seqs...)
	createLists(t, s, 150)
	if s.Lists["X150"] == nil {
		t.Error("seq 150 did not apply")
	}
}

// Sessions with sparse sequence numbers stay bounded.
func TestSessionResultsBounded(t *testing.T) {
	s := walkthrough(t)
	for i := uint64(1); i <= 2000; i++ {
		mustApply(t, s, keyed("sparse", i*7, cmd(OpNoop, a1, &api.NoopArgs{})))
		mustApply(t, s, keyed("dense", i, cmd(OpNoop, a1, &api.NoopArgs{})))
	}
	for _, client := range []string{"sparse", "dense"} {
		sess := s.Sessions["agent:A1/"+client]
		if n := len(sess.Results); n > 2*SessionWindow {
			t.Errorf("%s session keeps %d results", client, n)
		}
	}
}

func TestSessionsExpireAfterTTL(t *testing.T) {
	s := walkthrough(t)
	create := func(client string, when int64) Result {
		res, _ := s.Apply(keyed(client, 1, at(when, cmd(OpCreateList, admin, &api.CreateListArgs{ID: "X-" + client}))))
		return res
	}
	tick := func(when int64) { mustApply(t, s, at(when, cmd(OpNoop, fb, &api.NoopArgs{}))) }
	has := func(client string) bool {
		_, ok := s.Sessions["admin:admin/"+client]
		return ok
	}

	create("old", t0)
	create("busy", t0)
	tick(t0 + SessionTTL/2)
	if res := create("busy", t0+SessionTTL/2); res.Err != nil { // a retry: keeps the session alive
		t.Fatalf("retry: %v", res.Err)
	}
	tick(t0 + SessionTTL)
	if !has("old") || !has("busy") {
		t.Fatal("a session expired before its TTL")
	}
	tick(t0 + SessionTTL + sweepEvery)
	if has("old") {
		t.Error("a session silent for longer than SessionTTL survived the sweep")
	}
	if !has("busy") {
		t.Error("a session seen within SessionTTL was dropped")
	}
	// The expired session's retry is a new command: the list exists now.
	if res := create("old", t0+SessionTTL+sweepEvery); api.CodeOf(res.Err) != api.CodeAlreadyExists {
		t.Errorf("retry after expiry: %+v, want already_exists", res)
	}
	if res := create("busy", t0+SessionTTL+sweepEvery); res.Err != nil || res.Data != (api.Created{ID: "X-busy"}) {
		t.Errorf("retry within TTL: %+v, want the original result", res)
	}
}

// Sessions are part of the snapshot: a retry on a restored state returns the
// original result (the same on the wire) without applying again.
func TestSessionsSurviveSnapshot(t *testing.T) {
	s := walkthrough(t)
	msg := keyed("c1", 1, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "Hi"}))
	first, _ := mustApply(t, s, msg)
	restored, err := ReadState(bufio.NewReader(bytes.NewReader(marshal(t, s))))
	if err != nil {
		t.Fatal(err)
	}
	res, evs := restored.Apply(msg)
	if !reflect.DeepEqual(wire(t, res), wire(t, first)) {
		t.Errorf("retry after restore answered %+v, first %+v", res, first)
	}
	if len(evs) != 0 || len(restored.Requests["R1"].Transcript) != 1 {
		t.Errorf("retry after restore applied again (%d events)", len(evs))
	}
	if !bytes.Equal(marshal(t, s), marshal(t, restored)) {
		t.Error("restored state encodes differently")
	}
}

// Sessions are bounded in number, not only by age: past MaxSessions the
// least recently seen are dropped, the same ones on every replica. At
// level 2 one principal's client ids reach that cap (from level 3 they
// cannot: TestOnePrincipalCannotEvictAnothersRecords).
func TestSessionsBoundedInNumber(t *testing.T) {
	run := func() *State {
		s := walkthroughAt(t, Level2)
		for i := range MaxSessions + 1 {
			// A few share an instant, so ties are broken by key.
			when := t0 + int64(i/4)
			mustApply(t, s, keyed(fmt.Sprintf("c%06d", i), 1, at(when, cmd(OpNoop, a1, &api.NoopArgs{}))))
		}
		return s
	}
	s := run()
	if n := len(s.Sessions); n != MaxSessions*9/10 {
		t.Fatalf("%d sessions after %d clients, want %d", n, MaxSessions+1, MaxSessions*9/10)
	}
	dropped := MaxSessions + 1 - len(s.Sessions)
	for _, i := range []int{0, dropped - 1, dropped, MaxSessions} {
		_, kept := s.Sessions[fmt.Sprintf("agent:A1/c%06d", i)]
		if want := i >= dropped; kept != want {
			t.Errorf("client c%06d kept = %v, want %v (the %d least recently seen go)", i, kept, want, dropped)
		}
	}
	// A dropped client's retry is a new command; a kept one's is not.
	if res, evs := s.Apply(keyed("c000000", 1, at(t0+MaxSessions, cmd(OpNoop, a1, &api.NoopArgs{})))); res.Err != nil || len(s.Sessions) != MaxSessions*9/10+1 {
		t.Fatalf("retry of a dropped client: %+v %v, %d sessions", res, evs, len(s.Sessions))
	}
	if !bytes.Equal(marshal(t, s), marshal(t, func() *State {
		r := run()
		r.Apply(keyed("c000000", 1, at(t0+MaxSessions, cmd(OpNoop, a1, &api.NoopArgs{}))))
		return r
	}())) {
		t.Error("two replicas fed the same commands hold different sessions")
	}
	// A kept client's retry is answered from its session: the original
	// no-op's result, not the join it now names (which would fail).
	kept := keyed(fmt.Sprintf("c%06d", MaxSessions), 1, at(t0+MaxSessions, cmd(OpJoin, a1, &api.RequestArgs{Request: "R404"})))
	if res, evs := s.Apply(kept); res.Err != nil || len(evs) != 0 {
		t.Errorf("retry of a kept client: %+v %v, want the original no-op's result", res, evs)
	}
	if res, _ := s.Apply(keyed("fresh", 1, at(t0+MaxSessions, cmd(OpJoin, a1, &api.RequestArgs{Request: "R404"})))); api.CodeOf(res.Err) != api.CodeNotFound {
		t.Errorf("the same join from a new client: %+v, want not_found (the check above could not fail)", res)
	}
}

// manySubscribes fills L1 with 200 requests whose first message is 1,000
// bytes (each shows it twice in the list view, as its preview and as the
// latest unread: the view is about 430 KB), then has A3 subscribe to it
// 128 times from one client id (unsubscribing in between without a seq,
// so that every subscribe stays in the window). It returns the snapshot
// size before and after the subscribes.
func manySubscribes(t *testing.T, s *State) (before, after int) {
	t.Helper()
	text := strings.Repeat("m", 1000)
	for i := range 200 {
		customerMessage(t, s, fmt.Sprintf("u%d", i), text)
	}
	before = len(marshal(t, s))
	for seq := uint64(1); seq <= SessionWindow; seq++ {
		s.Index = 1000 + seq
		mustApply(t, s, keyed("app", seq, cmd(OpSubscribe, a3, &api.SubscribeArgs{List: "L1"})))
		mustApply(t, s, cmd(OpUnsubscribe, a3, &api.SubscribeArgs{List: "L1"}))
	}
	return before, len(marshal(t, s))
}

// A client id's subscribes do not grow the snapshot by their list views:
// from level 3 each keeps a record of at most MaxRecordBytes, so 128 of
// them add at most 32 KiB, however long the list. (Level 2 keeps the
// views: about 430 KB each here, 55 MB in all; issue #10 saw 0.8 → 54 MiB.)
func TestSnapshotBoundedAfterManySubscribes(t *testing.T) {
	before, after := manySubscribes(t, walkthrough(t))
	t.Logf("level 3: snapshot %d bytes before 128 subscribes, %d after (+%d)", before, after, after-before)
	if grew := after - before; grew > SessionWindow*MaxRecordBytes {
		t.Errorf("128 subscribes grew the snapshot by %d bytes, above %d", grew, SessionWindow*MaxRecordBytes)
	}
	if testing.Short() {
		return
	}
	before, after = manySubscribes(t, walkthroughAt(t, Level2))
	t.Logf("level 2: snapshot %d bytes before 128 subscribes, %d after (+%d)", before, after, after-before)
	if after-before < SessionWindow*400_000 {
		t.Errorf("level 2 kept less than the list views: +%d bytes", after-before)
	}
}

// One principal minting client ids cannot push out another principal's
// record: from level 3 it keeps at most MaxClientIDsPerPrincipal sessions,
// losing its own least recently used, and never reaches MaxSessions. The
// other principal's retry, after more than MaxSessions new client ids,
// gets the original result and applies nothing.
func TestOnePrincipalCannotEvictAnothersRecords(t *testing.T) {
	s := walkthrough(t)
	msg := func() *Command {
		return keyed("fb-app", 1, at(t0+1, cmd(OpCustomerMessage, fb, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "u1", Text: "Hi"})))
	}
	first, _ := mustApply(t, s, msg())
	join := func() *Command { return keyed("a1-app", 1, at(t0+1, cmd(OpJoin, a1, &api.RequestArgs{Request: "R1"}))) }
	s.Index = 7
	mustApply(t, s, join())
	for i := range MaxSessions + 1 {
		mustApply(t, s, keyed(fmt.Sprintf("m%06d", i), 1, at(t0+2+int64(i), cmd(OpNoop, a2, &api.NoopArgs{}))))
	}
	var mine []string
	for k := range s.Sessions {
		if strings.HasPrefix(k, "agent:A2/") {
			mine = append(mine, k)
		}
	}
	slices.Sort(mine)
	if len(mine) != MaxClientIDsPerPrincipal || mine[0] != fmt.Sprintf("agent:A2/m%06d", MaxSessions+1-MaxClientIDsPerPrincipal) {
		t.Errorf("A2 keeps %d sessions from %v on, want its %d latest", len(mine), mine[:1], MaxClientIDsPerPrincipal)
	}
	res, evs := s.Apply(msg())
	if !reflect.DeepEqual(res, first) || len(evs) != 0 {
		t.Errorf("fb's retry answered %+v with %d events, want the original %+v", res, len(evs), first)
	}
	if n := len(s.Requests["R1"].Transcript); n != 1 {
		t.Errorf("R1's transcript has %d messages: the retry applied again", n)
	}
	if res, _ := s.Apply(join()); res.Data != (api.Applied{Retry: true, Index: 7, Request: "R1"}) {
		t.Errorf("A1's retry answered %+v, want its record", res)
	}
}

// A principal's sessions together keep at most MaxRecordsPerPrincipal
// records: past it, its least recently used session goes, not another
// principal's; the same on every replica.
func TestRecordsPerPrincipalCapped(t *testing.T) {
	const clients = 20
	run := func() *State {
		s := walkthrough(t)
		mustApply(t, s, keyed("other", 1, at(t0, cmd(OpNoop, a1, &api.NoopArgs{}))))
		when := t0
		for c := range clients {
			for seq := uint64(1); seq <= SessionWindow+2; seq++ {
				when++
				mustApply(t, s, keyed(fmt.Sprintf("c%02d", c), seq, at(when, cmd(OpNoop, a2, &api.NoopArgs{}))))
			}
		}
		return s
	}
	s := run()
	records, sessions := 0, 0
	for k, sess := range s.Sessions {
		if strings.HasPrefix(k, "agent:A2/") {
			sessions++
			records += len(sess.Results)
		}
	}
	keep := MaxRecordsPerPrincipal / SessionWindow
	if records > MaxRecordsPerPrincipal || sessions != keep {
		t.Errorf("A2 keeps %d records in %d sessions, want at most %d in %d", records, sessions, MaxRecordsPerPrincipal, keep)
	}
	for c := range clients {
		_, kept := s.Sessions[fmt.Sprintf("agent:A2/c%02d", c)]
		if want := c >= clients-keep; kept != want {
			t.Errorf("client c%02d kept = %v, want %v", c, kept, want)
		}
	}
	if _, ok := s.Sessions["agent:A1/other"]; !ok {
		t.Error("A1's session, older than all of A2's, was dropped")
	}
	if !bytes.Equal(marshal(t, s), marshal(t, run())) {
		t.Error("two replicas fed the same commands hold different sessions")
	}
}

// MaxSessions stays the last line from level 3: many principals together
// past it lose the least recently seen tenth.
func TestSessionsGlobalCapAtLevel3(t *testing.T) {
	if testing.Short() {
		t.Skip("65,600 sessions")
	}
	s := walkthrough(t)
	principals := MaxSessions/MaxClientIDsPerPrincipal + 1
	when := t0
	for c := range MaxClientIDsPerPrincipal {
		for p := range principals {
			when++
			by := api.Principal{Role: api.RoleAgent, ID: fmt.Sprintf("P%04d", p)}
			mustApply(t, s, keyed(fmt.Sprintf("c%02d", c), 1, at(when, cmd(OpNoop, by, &api.NoopArgs{}))))
		}
	}
	if n := len(s.Sessions); n > MaxSessions || n < MaxSessions*9/10 {
		t.Errorf("%d sessions after %d, want between %d and %d", n, principals*MaxClientIDsPerPrincipal, MaxSessions*9/10, MaxSessions)
	}
	if _, ok := s.Sessions["agent:P0000/c00"]; ok {
		t.Error("the least recently seen session survived the global cap")
	}
	back := restore(t, marshal(t, s))
	if !bytes.Equal(marshal(t, back), marshal(t, s)) {
		t.Error("restored state encodes differently")
	}
}
