package transport

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// TestServerKeepalivePings: a session on which the server has nothing to
// send gets a ping after each keepalive interval of outbound silence,
// announced in welcome, never before the welcome; a client that never
// answers them (an older client) is not cut off for that, only by the
// idle timeout, as before.
func TestServerKeepalivePings(t *testing.T) {
	const iv = 150 * time.Millisecond
	h := newHarness(t, ServerConfig{KeepaliveInterval: iv, IdleTimeout: 2 * time.Second}, nil)
	c := h.dial()

	// Before hello: nothing, not even a ping, for three intervals.
	_ = c.c.SetReadDeadline(time.Now().Add(3 * iv))
	var f Frame
	err := ReadFrame(c.br, DefaultMaxFrame, &f)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read before hello: frame %q, err %v; want nothing (a timeout)", f.T, err)
	}
	c.send(&Frame{T: TypeHello, V: ProtocolVersion, Role: "admin", Token: testToken})
	w := c.read()
	if w.T != TypeWelcome || w.PingMs != int(iv/time.Millisecond) {
		t.Fatalf("first frame %+v, want welcome with ping_ms %d", w, iv/time.Millisecond)
	}

	// Silence from the server: pings, about one per interval, ids rising;
	// the client answers none of them but pings itself (as an older
	// client does, for the idle timeout) and stays connected well past
	// the idle timeout.
	start, last := time.Now(), time.Now()
	var (
		pings  int
		lastID uint64
		ours   uint64
	)
	for time.Since(start) < 3*time.Second {
		f := c.read()
		now := time.Now()
		switch f.T {
		case TypePing:
			if gap := now.Sub(last); gap < iv*8/10 {
				t.Fatalf("ping %d came %v after the previous frame, before the %v interval", f.ID, gap, iv)
			}
			if f.ID <= lastID {
				t.Fatalf("ping id %d after %d", f.ID, lastID)
			}
			lastID = f.ID
			pings++
			if pings%3 == 0 {
				ours++
				c.send(&Frame{T: TypePing, ID: 1000 + ours}) // keeps the session from idling out
			}
		case TypePong:
			if f.ID != 1000+ours {
				t.Fatalf("pong %d, want %d", f.ID, 1000+ours)
			}
		default:
			t.Fatalf("unexpected %q frame %+v", f.T, f)
		}
		last = now
	}
	if want := int(3*time.Second/iv) / 2; pings < want {
		t.Fatalf("%d pings in 3s at a %v interval, want at least %d", pings, iv, want)
	}

	// Nothing but the client's own silence ends it: the idle timeout.
	c.expectBye(api.CodeTimeout)
}

// TestServerKeepaliveOff: a negative interval sends no pings and announces
// none.
func TestServerKeepaliveOff(t *testing.T) {
	h := newHarness(t, ServerConfig{KeepaliveInterval: -1}, nil)
	c := h.dial()
	c.send(&Frame{T: TypeHello, V: ProtocolVersion, Role: "admin", Token: testToken})
	if w := c.read(); w.T != TypeWelcome || w.PingMs != 0 {
		t.Fatalf("first frame %+v, want welcome without ping_ms", w)
	}
	_ = c.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var f Frame
	if err := ReadFrame(c.br, DefaultMaxFrame, &f); err == nil {
		t.Fatalf("unexpected %q frame with keepalives off", f.T)
	}
}
