// Package fsm is Switchboard's replicated state machine: the domain model
// (MRDs, channel types, channels, lists, queues, agents, connectors,
// requests), the commands that change it, the events those commands cause,
// and the msgpack snapshot encoding of the state (the raft.FSM adapter is
// cluster.FSM).
//
// State.Apply is deterministic: it reads no clock (the proposer stamps
// Command.Time), uses no randomness, and never lets map iteration order
// reach its output. Two States fed the same commands hold identical state and
// return identical results and events. Business failures are returned as
// *Error values carrying a Code; they never change state.
package fsm
