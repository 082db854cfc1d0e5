// Package bench is Switchboard's load generator and measurement harness,
// run as `switchboard bench`: scenarios, latency histograms, correctness
// counters and the report.
//
// A run is a list of cases (scenario × connector count × group commit).
// Each case runs against a running cluster, or a fresh cluster started in
// this process on loopback (real Raft, BoltDB with fsync, TCP), and
// measures from real client sockets:
//
//   - commands/s answered and their latency (HDR histograms: p50, p99,
//     p999, max), under a rate or as fast as one command in flight per
//     connector allows; under a rate, latency counts from the time a
//     command was due, so a node that falls behind is charged for it;
//   - notifications: every agent's stream is read by the bench itself
//     (agentconn.go), not by transport.Client, which drops an event whose
//     seq is not above the last one and would hide a duplicate or
//     reordering by the node. Every event's seq must rise; every
//     request.created/updated/removed a subscriber is owed (counted from
//     the commands that caused them) must arrive. Notification latency is
//     from the acknowledgement of the customer message that opened a
//     request to each subscribed agent reading its request.created;
//   - memory (embedded): live heap after GC and RSS, per connected agent
//     and per open request, and the time to snapshot that state.
//
// The raw scenario sends no-op commands through the very same path: its
// figures are the consensus layer's limit, which the others are compared
// with.
package bench
