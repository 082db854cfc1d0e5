package main

import (
	"flag"

	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/transport"
)

// limitFlags are serve's flags for the client port's limits
// (docs/OPERATIONS.md "Security model"); each has an environment variable.
type limitFlags struct {
	outboxBytes int
}

func (l *limitFlags) register(fs *flag.FlagSet, errp *error) {
	fs.IntVar(&l.outboxBytes, "max-pending-bytes", envInt("SWITCHBOARD_MAX_PENDING_BYTES", transport.DefaultOutboxBytes, errp),
		"bytes of answers and events a connection may have waiting for its client; over it the connection is cut off with slow_consumer (env SWITCHBOARD_MAX_PENDING_BYTES)")
}

// apply sets the limits in the node's configuration.
func (l *limitFlags) apply(cfg *node.Config) {
	cfg.Transport.OutboxBytes = l.outboxBytes
}
