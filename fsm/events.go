package fsm

import "github.com/switchboard/switchboard/api"

// Event is a notification caused by a command, with the recipient keys
// (AgentKey / ConnectorKey) computed from the state at apply time. Data is
// immutable once emitted: it may be shared by every recipient.
type Event struct {
	// Seq numbers the event in the log: see SeqOf. Set by the FSM adapter.
	Seq  uint64
	Kind api.EventKind
	To   []string
	Data any
}

// events accumulates the events of one command.
type events struct {
	list []Event
	// keepAll keeps events with no recipient: supervisors may hear them
	// (superviseEvents, which then drops those nobody hears).
	keepAll bool
}

func (e *events) add(kind api.EventKind, to []string, data any) {
	if len(to) == 0 && !e.keepAll {
		return
	}
	e.list = append(e.list, Event{Kind: kind, To: to, Data: data})
}
