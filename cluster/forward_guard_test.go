package cluster

import (
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

func TestCheckForwardedEntryRefusesInflatedLengths(t *testing.T) {
	good, err := fsm.EncodeEntry(&fsm.Command{Op: fsm.OpCreateMRD, By: api.Principal{Role: api.RoleAdmin}, Args: &api.CreateMRDArgs{ID: "social"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkForwardedEntry(good); err != nil {
		t.Fatalf("a real entry was refused: %v", err)
	}
	bad := map[string][]byte{
		"empty":            {fsm.EntryCommands},
		"array of 4G":      {fsm.EntryCommands, 0xdd, 0xff, 0xff, 0xff, 0xff},
		"string of 4G":     {fsm.EntryCommands, 0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'},
		"nesting too deep": append([]byte{fsm.EntryCommands}, repeat(0x91, 200)...),
	}
	for name, entry := range bad {
		if err := checkForwardedEntry(entry); api.CodeOf(err) != api.CodeBadRequest {
			t.Errorf("%s: got %v, want bad_request", name, err)
		}
	}
}

func repeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}
