// Package cluster is the Raft side of a Switchboard node: the raft-boltdb
// log and stable store, file snapshots, the Raft TCP (or mutual TLS)
// transport, the raft.FSM adapter over fsm.State (FSM, which hands applied
// events to a Sink), Propose and group commit, forwarding to the leader,
// read indexes, membership and the node registry, snapshot streaming, and
// the node-to-node RPC client and server. It imports neither the actors
// nor the client protocol: package node wires it to them.
//
// A Node has the lifecycle New, Open, Close. Open recovers whatever the data
// directory holds (latest snapshot, then the log after it) and, when the
// directory is new and Config.Bootstrap is set, makes this node the only
// voter of a new cluster. A Service on top of a Node commits commands
// through the leader (Commit: proposed here when leading, forwarded
// otherwise, answered once this node has applied them), serves linearizable
// read barriers, joins and forms clusters, and serves node ops from a
// handler table the layers above extend (Service.Handle).
//
// Key decisions:
//
//   - The leader stamps time: Propose sets each command's Time before
//     encoding, so fsm Apply never reads a clock.
//   - Commit failures are typed: every error Propose returns carries an
//     *api.Error whose Code (CodeNotLeader, CodeNoLeader, CodeUnavailable,
//     CodeTimeout...) is what goes on the wire, and errors.Is works against
//     the sentinels ErrNotLeader, ErrNoLeader, ErrUnavailable and ErrTimeout.
//     A not-leader error is a *LeaderError with the leader's id and address
//     as fields, so nobody has to parse a message. Business failures are not
//     Go errors: they are in the per-command fsm.Result.
//   - fsync stays on: the bolt store never runs with NoSync.
//   - Node-to-node calls share the client port and the client protocol's
//     framing, byte for byte (rpc_frame.go), so nodes of consecutive
//     releases still talk during a rolling upgrade.
//   - Timeouts default to values that hold on a slow two-core CI machine
//     over loopback; every one can be overridden in Config, and Config.Tune
//     gets the last word on the raft.Config.
//
// DESIGN.md in this directory has the whole picture.
package cluster
