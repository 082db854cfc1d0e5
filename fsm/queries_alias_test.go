package fsm

import (
	"slices"
	"testing"

	"github.com/switchboard/switchboard/api"
)

// A query's answer is encoded after the state's read lock is released
// (cluster.Service.Query) while Apply goes on, so it must not share any
// slice the state later edits in place. get_queues returned each queue's
// Waiting line itself, which putInQueue and takeFromQueue edit in place.
func TestQueryQueuesDoesNotAliasState(t *testing.T) {
	s := ptWorld(t)
	r1, _ := ptArrive(t, s, "WS", "u1", 0)
	ptArrive(t, s, "WS", "u2", 0)
	ptArrive(t, s, "WS", "u3", 0)
	out, qerr := s.Query(ptAdmin, api.QueryQueues, nil)
	if qerr != nil {
		t.Fatal(qerr)
	}
	var qs *api.Queue
	for i := range out.([]api.Queue) {
		if q := &out.([]api.Queue)[i]; q.ID == "QS" {
			qs = q
		}
	}
	if qs == nil {
		t.Fatal("get_queues has no QS")
	}
	want := slices.Clone(qs.Waiting)
	if len(want) != 3 {
		t.Fatalf("QS waiting %v, want 3 requests", want)
	}
	// Closing a queued request takes it out of Waiting (slices.Delete), an
	// arrival puts one in (slices.Insert).
	ptApply(t, s, ptCmd(OpClose, ptConn, &api.RequestArgs{Request: r1}))
	ptArrive(t, s, "WS", "u4", 9)
	if !slices.Equal(qs.Waiting, want) {
		t.Errorf("get_queues answer changed under later commands: %v, was %v", qs.Waiting, want)
	}
}
