package fsm

import "testing"

// RefMarshal exposes the reflection-encoder reference of Marshal to the
// external tests (package fsm_test).
func RefMarshal(tb testing.TB, s *State) []byte { return refMarshal(tb, s) }
