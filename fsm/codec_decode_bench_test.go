package fsm_test

import (
	"testing"

	"github.com/switchboard/switchboard/api"
	. "github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/msgp"
)

// BenchmarkDecodeArgs: the client path, where transport decodes a request's
// arguments (customer_message, the busiest op) with Commands.DecodeArgs.
func BenchmarkDecodeArgs(b *testing.B) {
	raw, err := msgp.AppendValue(nil, &api.CustomerMessageArgs{Channel: "C2", CustomerID: "c42", CustomerName: "Customer", Text: "Hello, I need help with my order"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, _, ferr := Commands.DecodeArgs("customer_message", raw); ferr != nil {
			b.Fatal(ferr)
		}
	}
}
