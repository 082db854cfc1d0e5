package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// helloMarker sends an agent's hello asking for the caught_up marker
// (since: nil for a fresh stream) and returns the welcome.
func (r *rawConn) helloMarker(user, token string, since *uint64, marker bool) transport.Frame {
	r.t.Helper()
	r.send(&transport.Frame{T: transport.TypeHello, V: transport.ProtocolVersion, Role: "agent", User: user, Token: token,
		Since: since, Marker: marker})
	f, err := r.next(10 * time.Second)
	if err != nil || f.T != transport.TypeWelcome {
		r.t.Fatalf("hello: %+v, %v; want welcome", f, err)
	}
	return f
}

// untilCaughtUp reads frames (skipping the node's pings) up to and
// including the caught_up frame, and returns the events before it and
// the caught_up frame.
func (r *rawConn) untilCaughtUp() ([]transport.Frame, transport.Frame) {
	r.t.Helper()
	var evs []transport.Frame
	for {
		f, err := r.next(10 * time.Second)
		if err != nil {
			r.t.Fatalf("no caught_up after %d events: %v", len(evs), err)
		}
		switch f.T {
		case transport.TypePing:
		case transport.TypeEvent:
			evs = append(evs, f)
		case transport.TypeCaughtUp:
			return evs, f
		default:
			r.t.Fatalf("unexpected %q frame %+v before caught_up", f.T, f)
		}
	}
}

// events reads n events, skipping pings; any other frame fails the test.
func (r *rawConn) events(n int) []transport.Frame {
	r.t.Helper()
	var evs []transport.Frame
	for len(evs) < n {
		f, err := r.next(10 * time.Second)
		if err != nil {
			r.t.Fatalf("after %d of %d events: %v", len(evs), n, err)
		}
		switch f.T {
		case transport.TypePing:
		case transport.TypeEvent:
			evs = append(evs, f)
		default:
			r.t.Fatalf("unexpected %q frame %+v among events", f.T, f)
		}
	}
	return evs
}

func seqsOf(evs []transport.Frame) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

// TestCaughtUpMarkerOverTCP: against a real node over TCP, a hello with
// marker gets welcome marker, then its stream's start, then one
// caught_up saying how it started and the seq it reached: a fresh stream
// its sync ("sync"), a resume within the history the events after the
// cursor ("replay", at the last of them), a resume at the head nothing
// ("none", at the cursor). A hello without marker gets today's frames
// exactly. Events applied while a stream starts land before the marker
// (at or below its seq) or after it (above), each once.
func TestCaughtUpMarkerOverTCP(t *testing.T) {
	n := newHANode(t, "n1", nil)
	n.start(func(cfg *Config) { cfg.Raft.Bootstrap = true })
	admin := haDial(t, []string{n.client}, "admin", "", haAdminToken, false)
	tokens, fbToken := haSetup(t, admin, "a1")
	fb := haDial(t, []string{n.client}, "connector", "fb", fbToken, false)
	message := func(customer string) {
		haCall(t, fb, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: customer, Text: "hi"}, nil)
	}

	// Fresh: sync, then caught_up sync at the sync's seq.
	live := dialRaw(t, n.client, "127.0.0.1")
	if w := live.helloMarker("a1", tokens["a1"], nil, true); !w.Marker {
		t.Fatalf("welcome %+v, want marker", w)
	}
	evs, cu := live.untilCaughtUp()
	if len(evs) != 1 || evs[0].Kind != string(api.EvSync) {
		t.Fatalf("fresh stream before caught_up: %v, want one sync", evs)
	}
	if cu.Mode != api.CaughtUpSync || cu.Seq != evs[0].Seq {
		t.Fatalf("fresh stream: caught_up %s at %d, want sync at %d", cu.Mode, cu.Seq, evs[0].Seq)
	}

	// Three requests: a1's live stream hears of them.
	for i := range 3 {
		message(fmt.Sprintf("c%d", i))
	}
	created := live.events(3)

	// Resume after the first: the two others replayed, then caught_up
	// replay at the last.
	resume := dialRaw(t, n.client, "127.0.0.1")
	since := created[0].Seq
	resume.helloMarker("a1", tokens["a1"], &since, true)
	evs, cu = resume.untilCaughtUp()
	if got, want := fmt.Sprint(seqsOf(evs)), fmt.Sprint(seqsOf(created[1:])); got != want {
		t.Fatalf("replayed %s, want %s", got, want)
	}
	if cu.Mode != api.CaughtUpReplay || cu.Seq != created[2].Seq {
		t.Fatalf("resume within the history: caught_up %s at %d, want replay at %d", cu.Mode, cu.Seq, created[2].Seq)
	}

	// Resume at the head: caught_up none at the cursor, nothing before.
	head := dialRaw(t, n.client, "127.0.0.1")
	at := created[2].Seq
	head.helloMarker("a1", tokens["a1"], &at, true)
	evs, cu = head.untilCaughtUp()
	if len(evs) != 0 || cu.Mode != api.CaughtUpNone || cu.Seq != at {
		t.Fatalf("resume at the head: %v then caught_up %s at %d, want nothing then none at %d", seqsOf(evs), cu.Mode, cu.Seq, at)
	}

	// Without marker: welcome has none, the two replayed events, and the
	// next frame is the pong of a ping, not a caught_up.
	plain := dialRaw(t, n.client, "127.0.0.1")
	if w := plain.helloMarker("a1", tokens["a1"], &since, false); w.Marker {
		t.Fatalf("welcome %+v carries marker though the hello did not ask", w)
	}
	plain.events(2)
	plain.send(&transport.Frame{T: transport.TypePing, ID: 99})
	for {
		f, err := plain.next(10 * time.Second)
		if err != nil {
			t.Fatalf("no pong: %v", err)
		}
		if f.T == transport.TypePing {
			continue
		}
		if f.T != transport.TypePong || f.ID != 99 {
			t.Fatalf("after the replay without marker: %+v, want the pong", f)
		}
		break
	}

	// Events applied while a stream starts: split by the marker, each once.
	const more = 6
	racing := dialRaw(t, n.client, "127.0.0.1")
	sent := make(chan error, 1)
	go func() {
		var err error
		for i := range more {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = errors.Join(err, fb.Call(ctx, "customer_message", api.CustomerMessageArgs{Channel: "C1", CustomerID: fmt.Sprintf("r%d", i), Text: "hi"}, nil))
			cancel()
		}
		sent <- err
	}()
	racing.helloMarker("a1", tokens["a1"], &since, true)
	before, cu := racing.untilCaughtUp()
	if err := <-sent; err != nil {
		t.Fatalf("messages while the stream starts: %v", err)
	}
	want := slices.Concat(created[1:], live.events(more)) // every event after since
	after := racing.events(len(want) - len(before))
	if cu.Mode != api.CaughtUpReplay {
		t.Fatalf("racing resume: caught_up %s, want replay", cu.Mode)
	}
	for _, e := range before {
		if e.Seq > cu.Seq {
			t.Fatalf("event %d before the marker at %d", e.Seq, cu.Seq)
		}
	}
	if len(before) > 0 && before[len(before)-1].Seq != cu.Seq {
		t.Fatalf("marker at %d, last event before it %d", cu.Seq, before[len(before)-1].Seq)
	}
	for _, e := range after {
		if e.Seq <= cu.Seq {
			t.Fatalf("event %d after the marker at %d", e.Seq, cu.Seq)
		}
	}
	if got, w := fmt.Sprint(seqsOf(append(before, after...))), fmt.Sprint(seqsOf(want)); got != w {
		t.Fatalf("racing resume got %s, want %s", got, w)
	}
}
