package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// The lock-out of issue #10 item 7, over TCP against a real node: 12,000
// open requests with 2 KB messages made a list's sync 19.9 MiB, above the
// client's frame limit, and every subscriber was refused on every
// reconnect. A client with the documented limit (api.MaxNodeFrame, the Go
// client's default) now connects and syncs: its sync carries the first
// page, the total and more, and get_list pages through the rest. So does
// the channel's connector, whose view is the 12,000 conversations.
func TestSyncOfTwelveThousandRequestsFitsTheClientFrame(t *testing.T) {
	const requests, textBytes = 12000, 2048
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, connTok := haSetup(t, admin, "a1", "a2")
	conn := haDial(t, []string{n.client}, "connector", "fb", connTok, false)

	text := strings.Repeat("m", textBytes)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < requests; i += 64 {
				if _, err := conn.CustomerMessage(ctx, api.CustomerMessageArgs{Channel: "C1", CustomerID: fmt.Sprintf("c%d", i), Text: text}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d requests of %d bytes opened in %v", requests, textBytes, time.Since(start))

	// A fresh agent session (the Go client's default frame limit) syncs.
	if transport.DefaultClientMaxFrame != api.MaxNodeFrame {
		t.Fatalf("the Go client accepts %d bytes by default, the node sends up to %d", transport.DefaultClientMaxFrame, api.MaxNodeFrame)
	}
	a1 := haDial(t, []string{n.client}, "agent", "a1", tokens["a1"], false)
	ev := haNextEvent(t, a1)
	if ev.Kind != api.EvSync {
		t.Fatalf("a1's first event: %s, want sync", ev.Kind)
	}
	var v api.StreamView
	if err := ev.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if len(v.Lists) != 1 || v.Lists[0].Total != requests || !v.Lists[0].More || len(v.Lists[0].Requests) != api.DefaultPageSize {
		t.Fatalf("a1's sync: %d lists, the first with %d requests of %d, more %v", len(v.Lists), len(v.Lists[0].Requests), v.Lists[0].Total, v.Lists[0].More)
	}
	t.Logf("a1's sync: %d bytes", len(ev.Data))

	// get_list pages through every request, once each.
	seen := map[string]bool{}
	after := ""
	for page := 0; ; page++ {
		snap, err := a1.ListPage(ctx, "L1", after, api.MaxPageSize)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		for _, r := range snap.Requests {
			if seen[r.ID] {
				t.Fatalf("request %s twice", r.ID)
			}
			seen[r.ID] = true
		}
		if !snap.More {
			break
		}
		after = snap.Requests[len(snap.Requests)-1].ID
	}
	if len(seen) != requests {
		t.Fatalf("the pages hold %d requests, want %d", len(seen), requests)
	}

	// Subscribing to the list answers with its first page too.
	var cred Credential
	haCall(t, admin, api.OpCreateAgent, api.CreateAgentArgs{ID: "a3"}, &cred)
	a3 := haDial(t, []string{n.client}, "agent", "a3", cred.Token, false)
	snap, err := a3.Subscribe(ctx, "", "L1")
	if err != nil || snap.Total != requests || !snap.More {
		t.Fatalf("a3's subscribe: total %d, more %v, %v", snap.Total, snap.More, err)
	}

	// The connector's view is the open conversations of its channel.
	conn2 := haDial(t, []string{n.client}, "connector", "fb", connTok, false)
	ev = haNextEvent(t, conn2)
	v = api.StreamView{}
	if err := ev.Decode(&v); err != nil || ev.Kind != api.EvSync || !v.MoreConversations || len(v.Conversations) == 0 {
		t.Fatalf("the connector's sync: %s, %d conversations, more %v, %v", ev.Kind, len(v.Conversations), v.MoreConversations, err)
	}
	t.Logf("the connector's sync: %d bytes", len(ev.Data))
}
