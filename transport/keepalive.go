package transport

import "time"

// DefaultKeepaliveInterval is how long a session's outbound side may stay
// silent before the server sends a ping (ServerConfig.KeepaliveInterval).
// A client that hears nothing for three intervals may take the node for
// dead (docs/PROTOCOL.md §4.6): 6 s, so that a frozen node is left in
// seconds (issue 11), at the cost of one small frame every 2 s on an
// idle session (500 a second for 1,000 idle agents).
const DefaultKeepaliveInterval = 2 * time.Second

// keepalive is a session writer's timer: it fires after the interval
// without any write, and the writer then queues a ping. Pings start once
// the welcome is queued, so that welcome stays the first frame a client
// reads. The server never waits for the pong: a client that does not
// answer is not cut off for that (only inbound silence, IdleTimeout, is).
// A nil *keepalive (interval negative) never fires.
type keepalive struct {
	t    *time.Timer
	iv   time.Duration
	next uint64 // id of the next ping
}

// newKeepalive returns the session's keepalive timer, or nil if disabled.
func (s *session) newKeepalive() *keepalive {
	iv := s.srv.cfg.KeepaliveInterval
	if iv <= 0 {
		return nil
	}
	return &keepalive{t: time.NewTimer(iv), iv: iv}
}

// C is the timer's channel (nil, blocking forever, when disabled).
func (k *keepalive) C() <-chan time.Time {
	if k == nil {
		return nil
	}
	return k.t.C
}

// wrote restarts the interval after a write.
func (k *keepalive) wrote() {
	if k != nil {
		k.t.Reset(k.iv)
	}
}

func (k *keepalive) stop() {
	if k != nil {
		k.t.Stop()
	}
}

// fire queues a ping if the session has been welcomed (the write that
// follows restarts the interval), or restarts the interval otherwise.
func (k *keepalive) fire(s *session) {
	if !s.welcomed.Load() {
		k.wrote()
		return
	}
	k.next++
	s.send(&Frame{T: TypePing, ID: k.next})
}

// pingMs is the interval announced in welcome, in milliseconds (0: none).
func (cfg *ServerConfig) pingMs() int {
	if cfg.KeepaliveInterval <= 0 {
		return 0
	}
	return int(max(cfg.KeepaliveInterval/time.Millisecond, 1))
}
