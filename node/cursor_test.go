package node

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// A resume cursor beyond anything this node has applied (a bogus one, or
// one from a node far ahead) gets a sync after a short wait, instead of a
// stream that stays silent until the log reaches it.
func TestResumeBeyondTheLogGetsASync(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, _ := haSetup(t, admin, "a1")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, transport.ClientConfig{Addrs: []string{n.client}, Role: "agent", User: "a1", Token: tokens["a1"],
		Resume: true, Since: api.SeqOf(1<<40, 0), RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case ev := <-c.Events():
		if api.EventKind(ev.Kind) != api.EvSync {
			t.Fatalf("first event %s, want a sync", ev.Kind)
		}
	case <-time.After(cursorWait + 10*time.Second):
		t.Fatal("no sync for a cursor beyond the log")
	}
}
