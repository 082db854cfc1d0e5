// Package cluster runs the Raft side of a Switchboard node: the raft-boltdb
// log and stable store, file snapshots, the TCP transport, bootstrap of a
// single-node cluster, and Propose, which commits commands through the
// Raft log into the FSM.
//
// A Node has the lifecycle New, Open, Close. Open recovers whatever the data
// directory holds (latest snapshot, then the log after it) and, when the
// directory is new and Config.Bootstrap is set, makes this node the only
// voter of a new cluster.
//
// Key decisions:
//
//   - The leader stamps time: Propose sets each command's Time before
//     encoding, so fsm Apply never reads a clock.
//   - Commit failures are typed: every error Propose returns carries an
//     *fsm.Error whose Code (CodeNotLeader, CodeNoLeader, CodeUnavailable,
//     CodeTimeout...) is what goes on the wire, and errors.Is works against
//     the sentinels ErrNotLeader, ErrNoLeader, ErrUnavailable and ErrTimeout.
//     A not-leader error is a *LeaderError with the leader's id and address
//     as fields, so nobody has to parse a message. Business failures are not
//     Go errors: they are in the per-command fsm.Result.
//   - fsync stays on: the bolt store never runs with NoSync.
//   - Timeouts default to values that hold on a slow two-core CI machine
//     over loopback; every one can be overridden in Config, and Config.Tune
//     gets the last word on the raft.Config.
//
// On top of Node, Service (the transport.Backend) makes a node of a cluster:
// followers forward writes to the leader over node-to-node sessions on the
// leader's client port and answer once they have applied them themselves;
// linearizable reads use a read index; nodes join, form (bootstrap-expect)
// and leave the cluster; a replicated node registry maps Raft ids to client
// addresses; Start assembles it all. DESIGN.md in this directory has the
// whole picture.
package cluster
