package node

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/internal/testutil"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// An agent that pipelines get_list on a big list and never reads the
// answers is cut off once its pending output passes the byte budget, and
// the node's heap stays bounded meanwhile (it was bounded only in frames:
// 8,192 answers of any size).
func TestPipelinedGetListIsCutOffAtTheByteBudget(t *testing.T) {
	const budget = 1 << 20
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) {
		cfg.Raft.Bootstrap = true
		cfg.Transport.OutboxBytes = budget
	})
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, connTok := haSetup(t, admin, "a1")
	conn := haDial(t, []string{n.client}, "connector", "fb", connTok, false)
	text := strings.Repeat("x", 4000)
	const open = 600
	for i := range open {
		haCall(t, conn, api.OpCustomerMessage, api.CustomerMessageArgs{Channel: "C1", CustomerID: fmt.Sprintf("cust%d", i), Text: text}, nil)
	}
	// A whole page: every request (a summary shows the first 256 bytes
	// of its message).
	listArgs := api.QueryArgs{List: "L1", Limit: api.MaxPageSize}
	var snap api.ListSnapshot
	haCall(t, admin, "get_list", listArgs, &snap)
	if len(snap.Requests) != open || snap.More {
		t.Fatalf("a page of the list holds %d requests (more %v), want %d", len(snap.Requests), snap.More, open)
	}
	sessions := n.srv.Transport.Sessions()
	base := heapInUse()

	c, err := net.DialTimeout("tcp", n.client, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	args, _ := msgpack.Marshal(listArgs)
	go func() {
		hello, _ := transport.EncodeFrame(&transport.Frame{T: transport.TypeHello, V: transport.ProtocolVersion, Role: "agent", User: "a1", Token: tokens["a1"]})
		if _, err := c.Write(hello); err != nil {
			return
		}
		for id := uint64(1); id <= 20000; id++ {
			f, _ := transport.EncodeFrame(&transport.Frame{T: transport.TypeRequest, ID: id, Op: "get_list", Args: args})
			if _, err := c.Write(f); err != nil {
				return // cut off
			}
		}
	}()

	// Every answer is ~300 KB: 20,000 of them are 6 GB, and the old
	// bound (8,192 frames) let the heap grow by 1.4 GiB or more. The
	// session must be gone long before: the in-flight answers being built
	// (128 × 300 KB) and the budget are ~40 MiB; the bound leaves room for
	// the garbage of encoding them and for whatever else runs in this
	// process under -race on a loaded machine (153 MiB was seen once).
	const maxGrowth = 512 << 20
	var peak uint64
	testutil.WaitFor(t, 60*time.Second, func() bool {
		h := heapInUse()
		peak = max(peak, h)
		if h > base+maxGrowth {
			t.Fatalf("heap grew by %d MiB while an agent pipelined get_list without reading", (h-base)>>20)
		}
		return n.srv.Transport.Sessions() == sessions
	}, "the pipelining session was not cut off")
	t.Logf("heap peak %d KiB above the start", (peak-min(peak, base))>>10)

	// The connection ends: what the socket held, then EOF or a reset.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the node kept the connection open after cutting the session")
	}
}

// The requests a session may have in flight agree with the idempotency
// window, so that a client's retry of any write it has in flight can be
// answered from its record.
func TestInFlightBoundIsTheIdempotencyWindow(t *testing.T) {
	if transport.DefaultMaxInFlight != fsm.SessionWindow {
		t.Fatalf("transport.DefaultMaxInFlight = %d, fsm.SessionWindow = %d: they must agree",
			transport.DefaultMaxInFlight, fsm.SessionWindow)
	}
}
