package fsm_test

import (
	"bytes"
	"testing"

	. "github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/fsm/fsmtest"
)

// On the random command streams of the determinism test, after every
// 10th entry, the hand encoder writes exactly the reflection encoder's
// bytes, and every way of the hand decoder reads them back to the
// reflection decoder's state (open requests included).
func TestMarshalMatchesReflectionOnRandomStates(t *testing.T) {
	for seed := range int64(3) {
		d := &direct{s: NewState()}
		var index uint64
		for _, e := range fsmtest.SetupEntries() {
			index++
			d.apply(t, index, e)
		}
		g := fsmtest.NewGen(seed)
		for i := range 1000 {
			g.Peek(d.s)
			index++
			d.apply(t, index, g.Entry())
			if i%10 != 9 {
				continue
			}
			got, want := marshal(t, d.s), RefMarshal(t, d.s)
			if !bytes.Equal(got, want) {
				t.Fatalf("seed %d, entry %d: hand encoding differs from the reflection encoding", seed, index)
			}
			CheckRestoreWays(t, got)
		}
	}
}
