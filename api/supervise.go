package api

// Supervision (feature level 3). A supervisor logs in like an agent (role
// "supervisor", its id and token). Its stream carries every event about the
// requests and agents in its scope, starting with a sync whose StreamView
// holds a Board; get_board answers the same Board at any time.
//
// Its actions are the ordinary ops, sent with the supervisor as principal
// and refused with CodeForbidden outside its scope:
//
//   - close: close any live request;
//   - transfer: offer a request to an agent (to_agent), taking it from its
//     queue if it waits there ("assign"), with agent naming the participant
//     who leaves it, if any;
//   - transfer_to_queue: put a push request in another queue of its MRD,
//     one in its scope too (checked by the node before proposing:
//     fsm.State.PrecheckSupervisor);
//   - set_agent_state: set an agent NOT_READY in an MRD (never READY);
//   - logout: log an agent out.

// QueryBoard answers the caller's Board (supervisors and admins).
const QueryBoard = "get_board"

// QuerySupervisors lists the supervisors (admins): → []SupervisorInfo.
const QuerySupervisors = "get_supervisors"

// MaxBoardRequests bounds the open requests a Board lists (oldest first),
// so that the view does not grow with the state; Board.Truncated says when
// more are open. The per-list and per-queue figures always count them all.
const MaxBoardRequests = 2000

// MaxBoardAgents bounds the agents a Board lists (by id).
const MaxBoardAgents = 2000

// Board is a supervisor's picture of its scope: the wallboard's lists and
// queues with their live figures, the agents, and the open requests.
type Board struct {
	Supervisor string `msgpack:"supervisor"`
	// At is the state's clock (the latest leader time applied), unix
	// nanoseconds: ages on the board are relative to it.
	At       int64            `msgpack:"at"`
	Lists    []BoardList      `msgpack:"lists"`
	Queues   []BoardQueue     `msgpack:"queues"`
	Agents   []BoardAgent     `msgpack:"agents"`
	Requests []RequestSummary `msgpack:"requests"`
	// Truncated is true when something was left out: a Board holds at
	// most MaxBoardRequests requests and MaxBoardAgents agents, and stays
	// within MaxViewBytes (half of it for requests, a quarter for agents,
	// a quarter for lists and queues), so that a sync never grows with
	// the state.
	Truncated bool `msgpack:"truncated"`
}

// BoardList is one list on the wallboard.
type BoardList struct {
	ID         string `msgpack:"id"`
	Name       string `msgpack:"name"`
	SLAMs      int64  `msgpack:"sla_ms"`
	SLAWarnPct int    `msgpack:"sla_warn_pct"`
	Unread     int    `msgpack:"unread"`
	Active     int    `msgpack:"active"`
	Inactive   int    `msgpack:"inactive"`
	// OldestUnreadAt is when the oldest UNREAD request was created (0:
	// none). Breached counts the open requests whose SLA is breached.
	OldestUnreadAt int64 `msgpack:"oldest_unread_at"`
	Breached       int   `msgpack:"breached"`
	Subscribers    int   `msgpack:"subscribers"`
}

// BoardQueue is one queue on the wallboard.
type BoardQueue struct {
	ID         string `msgpack:"id"`
	Name       string `msgpack:"name"`
	MRD        string `msgpack:"mrd"`
	SLAMs      int64  `msgpack:"sla_ms"`
	SLAWarnPct int    `msgpack:"sla_warn_pct"`
	// Waiting is how many requests wait; OldestQueuedAt when the longest
	// waiting one was queued (0: none).
	Waiting        int   `msgpack:"waiting"`
	OldestQueuedAt int64 `msgpack:"oldest_queued_at"`
	Offered        int   `msgpack:"offered"`
	// Members by state in the queue's MRD: READY with free capacity,
	// READY and busy (at least one conversation), NOT_READY, logged out.
	Ready     int `msgpack:"ready"`
	Busy      int `msgpack:"busy"`
	NotReady  int `msgpack:"not_ready"`
	LoggedOut int `msgpack:"logged_out"`
	Members   int `msgpack:"members"`
	// Service level today (the UTC day of At): requests of the queue
	// whose service level was decided today, met (an agent got into it
	// within the queue's SLA) or breached. The service level is
	// Met / (Met + Breached).
	Met      int `msgpack:"met"`
	Breached int `msgpack:"breached"`
}

// BoardAgent is one agent on the board.
type BoardAgent struct {
	Status        AgentStatus `msgpack:"status"`
	Name          string      `msgpack:"name"`
	Conversations []string    `msgpack:"conversations"`
}
