package fsm_test

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
)

// Equal states encode to equal bytes, whatever order their maps were
// filled in, and Marshal → ReadState → Marshal is the identity.
func TestMarshalIsCanonical(t *testing.T) {
	a := walkthrough(t)
	b := NewState()
	cmds := walkthroughCommands()
	// Same commands, independent ones swapped (the feature level first).
	order := []int{0, 2, 1, 4, 3, 6, 5, 7, 9, 8, 12, 11, 10, 14, 13, 17, 16, 15}
	for _, i := range order {
		mustApply(t, b, cmds[i])
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the two orders built different states")
	}
	for range 20 { // map iteration order is random on each run
		if !bytes.Equal(marshal(t, a), marshal(t, b)) {
			t.Fatal("equal states encode differently")
		}
	}
	// Sessions with many results, read back and written again.
	for i := uint64(1); i <= 50; i++ {
		mustApply(t, a, keyed("c", i, cmd(OpCreateList, admin, &api.CreateListArgs{ID: fmt.Sprintf("X%d", i)})))
	}
	data := marshal(t, a)
	if again := marshal(t, restore(t, data)); !bytes.Equal(again, data) {
		t.Error("Marshal of a restored state differs")
	}
}

func TestReadStateFillsEmptyMaps(t *testing.T) {
	s := restore(t, marshal(t, &State{}))
	if s.MRDs == nil || s.ChannelTypes == nil || s.Channels == nil || s.Lists == nil || s.Queues == nil ||
		s.Agents == nil || s.Connectors == nil || s.Requests == nil || s.Sessions == nil {
		t.Fatalf("nil maps after ReadState: %+v", s)
	}
	// A state read back from nothing works.
	for _, c := range walkthroughCommands() {
		mustApply(t, s, c)
	}
}

func TestReadStateErrors(t *testing.T) {
	for name, data := range map[string][]byte{"empty": nil, "version 2": {2, 0x80}, "cut": {1, 0xde, 0x00}} {
		if _, err := ReadState(bufio.NewReader(bytes.NewReader(data))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A restored state encodes to the bytes it was restored from, a stored
// result with small integers included: a subscribe's list view holds an
// UNREAD request's unread count, encoded in one byte.
func TestRestoredResultsEncodeAsBefore(t *testing.T) {
	s := walkthrough(t)
	customerMessage(t, s, "u1", "hello")
	mustApply(t, s, keyed("c1", 1, cmd(OpSubscribe, a3, &api.SubscribeArgs{List: "L1"})))
	data := marshal(t, s)
	if got := marshal(t, restore(t, data)); !bytes.Equal(got, data) {
		t.Fatal("the restored state encodes to other bytes")
	}
}
