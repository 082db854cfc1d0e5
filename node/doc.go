// Package node is the composition root of a Switchboard node: Start builds
// the state machine and its Raft node (package cluster), the actors hub
// (package actors) and the client server (package transport), and wires
// them through the interfaces each of them declares: the hub is the FSM's
// cluster.Sink and gets the cluster's write path as its actors.Config
// hooks; Backend is the server's transport.Backend; the presence and
// status node ops are registered on the cluster service. It also owns the
// client port's split between node sessions and client sessions (mux.go),
// readiness, and the order of shutdown. `switchboard serve` and the
// bench's embedded clusters run a node through Start. DESIGN.md in this
// directory has the picture.
package node
