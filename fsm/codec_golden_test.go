package fsm_test

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	. "github.com/switchboard/switchboard/fsm"
)

var updateEntryGolden = flag.Bool("update-entry-golden", false, "rewrite testdata/entry_v1.bin with the current encoder")

// goldenCommands are the commands of testdata/entry_v1.bin, a log entry
// written by the reflection-based EncodeEntry before the hand-written one
// replaced it. Entries already in Raft logs and snapshots must decode the
// same forever, and the encoder must keep writing these bytes (followers
// and older nodes read them). Maps have one key each so that the bytes are
// deterministic.
func goldenCommands() []*Command {
	sys := Principal{Role: RoleSystem, ID: "n1"}
	ag := Principal{Role: RoleAgent, ID: "A1"}
	fb := Principal{Role: RoleConnector, ID: "fb"}
	admin := Principal{Role: RoleAdmin, ID: "admin"}
	c := func(op Op, by Principal, seq uint64, args any) *Command {
		return &Command{Op: op, By: by, ClientID: "0123456789abcdef", Seq: seq, Time: 1_700_000_000_123_456_789, Args: args}
	}
	return []*Command{
		c(OpCreateMRD, admin, 1, &CreateMRDArgs{ID: "social", Name: "Social"}),
		c(OpCreateQueue, admin, 2, &CreateQueueArgs{ID: "Q1", Name: "Web", MRD: "chat", Priority: -3, OfferTimeoutMs: 1 << 40}),
		c(OpCreateChannel, admin, 3, &CreateChannelArgs{ID: "C2", Type: "facebook", Mode: ModePush, Queue: "Q1"}),
		c(OpCreateAgent, admin, 4, &CreateAgentArgs{ID: "A1", Name: "Ann", Max: map[string]int{"chat": 3}, TokenHash: []byte{0, 1, 255}}),
		c(OpCreateAgent, admin, 5, &CreateAgentArgs{ID: "A2"}),
		c(OpCreateConnector, admin, 6, &CreateConnectorArgs{ID: "fb", Channels: []string{"C2", "W1"}, TokenHash: []byte("hash")}),
		c(OpNoop, sys, 0, &NoopArgs{}),
		c(OpNoop, sys, 0, &NoopArgs{Pad: bytes.Repeat([]byte{7}, 300)}),
		c(OpCustomerMessage, fb, 7, &CustomerMessageArgs{Channel: "C2", CustomerID: "u1", CustomerName: "Ursula", Text: strings.Repeat("ü", 100)}),
		c(OpCustomerMessage, fb, 8, &CustomerMessageArgs{Channel: "C2", CustomerID: "u2", Text: "hi", Priority: 5}),
		c(OpCustomerMessage, fb, 9, &CustomerMessageArgs{Channel: "C2", CustomerID: "u3", Text: "hi", Priority: -200}),
		c(OpJoin, ag, 1<<63, &RequestArgs{Request: "R1", Agent: "A1"}),
		c(OpSend, ag, 11, &SendArgs{Request: "R1", Text: strings.Repeat("x", 4096)}),
		c(OpSetAgentState, ag, 12, &SetAgentStateArgs{Agent: "A1", MRD: "chat", State: AgentNotReady, Reason: "lunch"}),
		c(OpAcceptOffer, ag, 13, &OfferArgs{Request: "R2", OfferID: "O1"}),
		c(OpOfferTimeout, sys, 0, &OfferArgs{Request: "R2", OfferID: "O1"}),
		c(OpTransfer, ag, 14, &TransferArgs{Request: "R2", Agent: "A1", ToAgent: "A2"}),
		c(OpRegisterNode, sys, 0, &RegisterNodeArgs{Node: NodeInfo{ID: "n1", RaftAddr: "10.0.0.1:7401", ClientAddr: "10.0.0.1:7400"}}),
		c(OpClose, Principal{}, 0, &RequestArgs{}),
	}
}

const entryGolden = "testdata/entry_v1.bin"

// TestEntryGolden: the committed entry decodes to the same commands, and
// EncodeEntry still writes it byte for byte.
func TestEntryGolden(t *testing.T) {
	cmds := goldenCommands()
	if *updateEntryGolden {
		data, err := EncodeEntry(cmds...)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(entryGolden, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(entryGolden)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEntry(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cmds) {
		for i := range cmds {
			if i >= len(got) || !reflect.DeepEqual(got[i], cmds[i]) {
				t.Fatalf("command %d of %s decodes as %+v, want %+v", i, entryGolden, got[min(i, len(got)-1)], cmds[i])
			}
		}
		t.Fatalf("%s decodes to %d commands, want %d", entryGolden, len(got), len(cmds))
	}
	data, err := EncodeEntry(cmds...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, golden) {
		t.Fatalf("EncodeEntry no longer writes %s:\n got  % x\n want % x", entryGolden, data, golden)
	}
}
