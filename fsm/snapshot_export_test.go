package fsm

import (
	"bytes"
	"reflect"
	"testing"
)

// RefMarshal exposes the reflection-encoder reference of Marshal to the
// external tests (package fsm_test).
func RefMarshal(tb testing.TB, s *State) []byte { return refMarshal(tb, s) }

// CheckRestoreWays decodes the snapshot data (Marshal's bytes) by the
// reflection decoder and by every way of the fast path (snapshot_decode_test.go),
// and fails tb unless all give the same state, which encodes to data.
func CheckRestoreWays(tb testing.TB, data []byte) {
	tb.Helper()
	want, err := readStateReflect(data[1:])
	if err != nil {
		tb.Fatal(err)
	}
	for way, opt := range fastWays {
		got, err := readStateFast(data[1:], opt)
		if err != nil {
			tb.Fatalf("%s: the fast path refused a snapshot Marshal wrote: %v", way, err)
		}
		got.fillNil()
		if !reflect.DeepEqual(got, want) {
			tb.Fatalf("%s: the fast decoder's state differs from the reflection decoder's", way)
		}
		b, err := got.Marshal()
		if err != nil || !bytes.Equal(b, data) {
			tb.Fatalf("%s: the decoded state does not encode to the snapshot (%v)", way, err)
		}
	}
}
