package actors

import (
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/anthdm/hollywood/actor"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// session is one attached stream of a recipient key on this node.
type session struct {
	out   Outbox
	batch BatchOutbox // out, if it takes several frames at once
	// caught is out, if it is told when the stream has caught up.
	caught CaughtUpOutbox
	// lastSeq is the seq of the last event delivered (or reflected by the
	// last sync). Only the agent actor reads or writes it.
	lastSeq uint64

	// mu makes detach and Deliver exclusive, so that once detach returns
	// Deliver is not called again.
	mu       sync.Mutex
	detached bool
}

// detach marks the session gone; it waits for a Deliver in progress.
func (s *session) detach() {
	s.mu.Lock()
	s.detached = true
	s.mu.Unlock()
}

// maxBatch bounds the frames handed to an outbox in one DeliverBatch.
const maxBatch = 256

// deliver hands one frame to the outbox, as deliverAll.
func (s *session) deliver(frame []byte) (ok bool, why string) {
	return s.deliverAll([][]byte{frame})
}

// deliverAll hands frames to the outbox, in order: in batches of at most
// maxBatch if it takes batches, one by one otherwise. It returns false
// when the session must be dropped, with the reason ("" when it was
// detached).
func (s *session) deliverAll(frames [][]byte) (ok bool, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.detached {
		return false, ""
	}
	defer func() {
		if v := recover(); v != nil {
			s.detached = true
			ok, why = false, fmt.Sprintf("outbox panicked: %v", v)
		}
	}()
	if s.batch != nil {
		// A resume's replay can be longer than the whole outbox: hand it
		// over in slices, so the session's writer drains between them as
		// it does between single frames, instead of a batch the outbox can
		// never take cutting the session off at every resume.
		ok = true
		for len(frames) > 0 && ok {
			n := min(len(frames), maxBatch)
			ok = s.batch.DeliverBatch(frames[:n])
			frames = frames[n:]
		}
	} else {
		ok = true
		for _, f := range frames {
			if ok = s.out.Deliver(f); !ok {
				break
			}
		}
	}
	if !ok {
		s.detached = true
		return false, "slow consumer: outbox full"
	}
	return true, ""
}

// caughtUp tells the outbox, if it asked, that the stream caught up in
// mode at s.lastSeq; like Deliver, never after detach.
func (s *session) caughtUp(mode string) (ok bool, why string) {
	if s.caught == nil {
		return true, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.detached {
		return false, ""
	}
	defer func() {
		if v := recover(); v != nil {
			s.detached = true
			ok, why = false, fmt.Sprintf("outbox panicked: %v", v)
		}
	}()
	s.caught.CaughtUp(mode, s.lastSeq)
	return true, ""
}

// Messages of the agent actor (besides *delivery, published events).
type (
	attachMsg struct {
		s      *session
		since  uint64
		resume bool
	}
	detachMsg struct{ s *session }
	// resyncMsg gives every session a fresh sync (after Reset).
	resyncMsg struct{}
)

// agent is the actor of one recipient key: it owns delivery to that key's
// sessions on this node.
type agent struct {
	hub      *Hub
	key      string
	sessions []*session
	grace    graceState // the logout grace (grace.go)
}

// Receive implements actor.Receiver.
func (a *agent) Receive(c *actor.Context) {
	defer func() {
		if v := recover(); v != nil {
			// The message is lost, so the sessions may have missed an
			// event: bring them all back to a known point.
			a.hub.log.Error("agent actor panicked; re-syncing its sessions",
				"key", a.key, "msg", fmt.Sprintf("%T", c.Message()), "panic", v, "stack", string(debug.Stack()))
			a.resync()
		}
	}()
	switch m := c.Message().(type) {
	case *delivery:
		a.publish(m)
	case attachMsg:
		a.sessionOpened()
		a.attach(m)
	case detachMsg:
		a.sessions = removeSession(a.sessions, m.s)
		a.sessionClosed(c)
	case resyncMsg:
		a.resync()
	case graceDue:
		a.graceExpired(m)
	case attachedQuery:
		c.Respond(a.grace.attached)
	case actor.Stopped:
		a.stopGrace()
	}
}

// publish delivers live events to every session, each the ones it has
// not seen, in one go.
func (a *agent) publish(d *delivery) {
	kept := a.sessions[:0]
	for _, s := range a.sessions {
		if a.offer(s, d.entries, d.frames) {
			kept = append(kept, s)
		}
	}
	clear(a.sessions[len(kept):])
	a.sessions = kept
}

// offer delivers to s those of entries (the key's, in seq order) it has
// not seen yet, in one go. frames are the entries' frames, or nil to take
// them from the entries. It returns false if s must be dropped.
func (a *agent) offer(s *session, entries []*entry, frames [][]byte) bool {
	i := 0
	for i < len(entries) && entries[i].seq <= s.lastSeq {
		i++
	}
	if i == len(entries) {
		return true
	}
	if frames != nil {
		frames = frames[i:]
	} else {
		frames = make([][]byte, 0, len(entries)-i)
		for _, e := range entries[i:] {
			frames = append(frames, e.frame)
		}
	}
	if ok, why := s.deliverAll(frames); !ok {
		a.dropped(why)
		return false
	}
	s.lastSeq = entries[len(entries)-1].seq
	return true
}

func (a *agent) dropped(why string) {
	if why != "" {
		a.hub.log.Info("session cut off", "key", a.key, "reason", why)
	}
}

// catchUp offers s the key's entries among entries (in seq order), in one
// go. False if s was dropped.
func (a *agent) catchUp(s *session, entries []*entry) bool {
	var mine []*entry
	for _, e := range entries {
		if e.isFor(a.key) {
			mine = append(mine, e)
		}
	}
	return a.offer(s, mine, nil)
}

// attach starts a session: a replay from its cursor when the history
// covers it, otherwise a sync and the history after it.
func (a *agent) attach(m attachMsg) {
	s := m.s
	if m.resume {
		if entries, ok := a.hub.resumeFrom(a.key, m.since); ok {
			s.lastSeq = m.since
			mode := api.CaughtUpNone
			if a.catchUp(s, entries) {
				if s.lastSeq != m.since {
					mode = api.CaughtUpReplay
				}
				a.caughtUp(s, mode)
			}
			return
		}
	}
	frame, seq, ok := a.sync()
	if !ok {
		return
	}
	// Every event after the sync's seq reaches the inbox after this
	// message (it was published after View read the state, and the actor
	// was registered before). The history is replayed anyway in case the
	// view lagged the events already published, but only while it still
	// covers the sync: a replay across an eviction hole would raise
	// lastSeq past events that are still on their way through the inbox.
	entries, _ := a.hub.replay(seq)
	if a.start(s, frame, seq, entries) {
		a.caughtUp(s, api.CaughtUpSync)
	}
}

// caughtUp tells s's outbox how it caught up, in the same turn as the
// frames that did it (so before any later event), and keeps s for the
// live events.
func (a *agent) caughtUp(s *session, mode string) {
	if ok, why := s.caughtUp(mode); !ok {
		a.dropped(why)
		return
	}
	a.sessions = append(a.sessions, s)
}

// resync gives every session a fresh sync, then the history after it.
func (a *agent) resync() {
	if len(a.sessions) == 0 {
		return
	}
	frame, seq, ok := a.sync()
	if !ok {
		a.hub.log.Warn("dropping the sessions of a key with no view", "key", a.key, "sessions", len(a.sessions))
		for _, s := range a.sessions {
			s.detach()
		}
		clear(a.sessions)
		a.sessions = a.sessions[:0]
		return
	}
	var mine []*entry
	entries, _ := a.hub.replay(seq) // see attach
	for _, e := range entries {
		if e.isFor(a.key) {
			mine = append(mine, e)
		}
	}
	kept := a.sessions[:0]
	for _, s := range a.sessions {
		if a.start(s, frame, seq, mine) {
			kept = append(kept, s)
		}
	}
	clear(a.sessions[len(kept):])
	a.sessions = kept
}

// start delivers a sync frame at seq to s whatever it saw before, then the
// entries after it. False if s was dropped.
func (a *agent) start(s *session, frame []byte, seq uint64, entries []*entry) bool {
	if ok, why := s.deliver(frame); !ok {
		a.dropped(why)
		return false
	}
	s.lastSeq = seq
	return a.catchUp(s, entries)
}

// sync builds and encodes the key's sync event from the current view. ok is
// false (and it is logged) if there is no view or it does not encode.
func (a *agent) sync() (frame []byte, seq uint64, ok bool) {
	view, index, found, err := a.view()
	if err != nil || !found {
		a.hub.log.Error("no stream view for an attached key; delivering nothing", "key", a.key, "err", err)
		return nil, 0, false
	}
	seq = syncSeq(index)
	frame, err = a.hub.cfg.Encode(fsm.Event{Seq: seq, Kind: api.EvSync, To: []string{a.key}, Data: view})
	if err != nil {
		a.hub.log.Error("cannot encode sync event; delivering nothing", "key", a.key, "seq", seq, "err", err)
		return nil, 0, false
	}
	a.hub.seedLists(seq, view.Lists)
	return frame, seq, true
}

// view calls Config.View, turning a panic into an error.
func (a *agent) view() (view api.StreamView, index uint64, ok bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("View panicked: %v", v)
		}
	}()
	view, index, ok = a.hub.cfg.View(a.key)
	return view, index, ok, nil
}

// removeSession returns ss without s.
func removeSession(ss []*session, s *session) []*session {
	for i, x := range ss {
		if x == s {
			last := len(ss) - 1
			copy(ss[i:], ss[i+1:])
			ss[last] = nil
			return ss[:last]
		}
	}
	return ss
}
