// Package actors is the live, per-node delivery side of Switchboard: a Hub
// that receives every applied event from the FSM (it is a cluster.Sink),
// keeps a bounded history of them for resume, and fans them out through
// hollywood actors — one agent actor per recipient key, which owns delivery
// to that key's sessions on this node, plus list and conversation actors
// that hold this node's live views of lists and conversations.
//
// # Delivery guarantees
//
// Each event is encoded once; the same bytes go to every recipient session.
// A session sees each event for its key exactly once, in log order, from its
// starting point: after its resume cursor when the history still covers it,
// otherwise after a sync event carrying the key's full view. Three rules
// make that hold while history replay and live traffic overlap:
//
//   - Publish appends to the history and looks up the recipients' actors
//     under one hub lock, and Attach registers its actor and queues its
//     attach message under the same lock. So an event is either in the
//     history when the attach is processed, or reaches the actor's inbox
//     after the attach message.
//   - The agent actor keeps a lastSeq per session and delivers a frame only
//     if its seq is greater, so whatever arrives twice (replay and inbox) is
//     delivered once.
//   - The history tracks a "covered" seq: every event after it is still
//     held. A cursor below it gets a sync instead of a replay with a hole.
//
// # Backpressure and failure
//
// Nothing here waits for a reader. hollywood's inboxes are unbounded, so the
// only bounded buffer is the session's Outbox: when Deliver refuses a frame
// the session is dropped (the transport cuts the connection off and the
// client resumes by cursor). Actors hold views and live delivery only; the
// FSM holds the truth. A panicking agent actor is restarted with its state
// kept, and because hollywood dropped the message that panicked, every
// session of that key is re-synced.
//
// # Commands the node issues itself
//
// Three timers change replicated state, always by proposing a command
// through Config.Submit (role system), never by touching state: while the
// node leads, the timer actor (timers.go) proposes offer_timeout for each
// offer that lapses, and the deadline actor (deadlines.go) proposes
// sla_warning, sla_breach, remind_inactive and close_inactive as each
// request's deadline passes (both run on leadertimers.go); and an agent
// actor whose last session closed proposes logout once the logout grace
// passes with no session back anywhere (grace.go). The FSM decides: a
// command that lost a race is refused and changes nothing.
package actors
