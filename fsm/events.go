package fsm

import (
	"maps"

	"github.com/switchboard/switchboard/api"
)

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
	// wasIn and wasAgent hold where a request, and what an agent, was
	// before this command moved it (to another queue; out of its MRDs by
	// a logout), so that the supervisors who watched it there hear of
	// the move too. Recorded only with keepAll.
	wasIn    map[string][3]string // request id → mrd, list, queue
	wasAgent map[string]*Agent    // agent id → a copy as it was
}

// requestMoves records r's place before the command moves it.
func (e *events) requestMoves(r *Request) {
	if !e.keepAll {
		return
	}
	if e.wasIn == nil {
		e.wasIn = map[string][3]string{}
	}
	if _, ok := e.wasIn[r.ID]; !ok {
		e.wasIn[r.ID] = [3]string{r.MRD, r.List, r.Queue}
	}
}

// agentChanges records ag as it is before the command changes where it
// works.
func (e *events) agentChanges(ag *Agent) {
	if !e.keepAll {
		return
	}
	if e.wasAgent == nil {
		e.wasAgent = map[string]*Agent{}
	}
	if _, ok := e.wasAgent[ag.ID]; !ok {
		c := *ag
		c.States = maps.Clone(ag.States)
		e.wasAgent[ag.ID] = &c
	}
}

func (e *events) add(kind api.EventKind, to []string, data any) {
	if len(to) == 0 && !e.keepAll {
		return
	}
	e.list = append(e.list, Event{Kind: kind, To: to, Data: data})
}
