package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/transport"
)

// limitFlags are serve's flags for the client port's limits
// (docs/OPERATIONS.md "Security model"); each has an environment variable.
type limitFlags struct {
	outboxBytes               int
	maxConns, maxConnsPerAddr int
	agentRate, connectorRate  rateFlag
	adminRate, loginFails     rateFlag
}

func (l *limitFlags) register(fs *flag.FlagSet, errp *error) {
	fs.IntVar(&l.outboxBytes, "max-pending-bytes", envInt("SWITCHBOARD_MAX_PENDING_BYTES", transport.DefaultOutboxBytes, errp),
		"bytes of answers and events a connection may have waiting for its client; over it the connection is cut off with slow_consumer (env SWITCHBOARD_MAX_PENDING_BYTES)")
	fs.IntVar(&l.maxConns, "max-connections", envInt("SWITCHBOARD_MAX_CONNECTIONS", transport.DefaultMaxConns, errp),
		"connections open at once on the client port; more are closed at once; negative: no cap (env SWITCHBOARD_MAX_CONNECTIONS)")
	fs.IntVar(&l.maxConnsPerAddr, "max-connections-per-address", envInt("SWITCHBOARD_MAX_CONNECTIONS_PER_ADDRESS", transport.DefaultMaxConnsPerAddr, errp),
		"connections open at once from one source address; negative: no cap (env SWITCHBOARD_MAX_CONNECTIONS_PER_ADDRESS)")
	rate := func(r *rateFlag, name, env string, def transport.Rate, usage string) {
		*r = rateFlag(def)
		if v := os.Getenv(env); v != "" {
			if err := r.Set(v); err != nil && *errp == nil {
				*errp = fmt.Errorf("%s=%q: %v", env, v, err)
			}
		}
		fs.Var(r, name, usage+": RATE per second, RATE:BURST, or off (env "+env+")")
	}
	rate(&l.agentRate, "agent-write-rate", "SWITCHBOARD_AGENT_WRITE_RATE", transport.DefaultAgentWriteRate,
		"writes per second of each agent on this node, over all its connections; more are answered rate_limited")
	rate(&l.connectorRate, "connector-write-rate", "SWITCHBOARD_CONNECTOR_WRITE_RATE", transport.DefaultConnectorWriteRate,
		"writes per second of each connector on this node")
	rate(&l.adminRate, "admin-write-rate", "SWITCHBOARD_ADMIN_WRITE_RATE", transport.DefaultAdminWriteRate,
		"writes per second of admins on this node")
	rate(&l.loginFails, "login-failure-rate", "SWITCHBOARD_LOGIN_FAILURE_RATE", transport.DefaultLoginFailuresPerAddr,
		"failed hellos allowed per source address and per user; past them hellos are refused with rate_limited")
}

// apply sets the limits in the node's configuration.
func (l *limitFlags) apply(cfg *node.Config) {
	t := &cfg.Transport
	t.OutboxBytes = l.outboxBytes
	t.MaxConns, t.MaxConnsPerAddr = l.maxConns, l.maxConnsPerAddr
	t.AgentWriteRate = transport.Rate(l.agentRate)
	t.ConnectorWriteRate = transport.Rate(l.connectorRate)
	t.AdminWriteRate = transport.Rate(l.adminRate)
	t.LoginFailuresPerAddr = transport.Rate(l.loginFails)
	t.LoginFailuresPerUser = transport.Rate(l.loginFails)
}

// rateFlag is a transport.Rate as a flag: "off", "RATE" (a burst of one
// second's worth) or "RATE:BURST".
type rateFlag transport.Rate

func (r *rateFlag) String() string {
	if r == nil {
		return ""
	}
	if r.PerSec < 0 {
		return "off"
	}
	return strconv.FormatFloat(r.PerSec, 'g', -1, 64) + ":" + strconv.Itoa(r.Burst)
}

func (r *rateFlag) Set(s string) error {
	if s == "off" {
		*r = rateFlag(transport.Unlimited)
		return nil
	}
	rs, bs, hasBurst := strings.Cut(s, ":")
	per, err := strconv.ParseFloat(rs, 64)
	if err != nil || per <= 0 {
		return fmt.Errorf("rate %q: want a positive number per second, RATE:BURST or off", s)
	}
	burst := max(1, int(per+0.999999))
	if hasBurst {
		if burst, err = strconv.Atoi(bs); err != nil || burst < 1 {
			return fmt.Errorf("burst %q: want a positive integer", bs)
		}
	}
	*r = rateFlag{PerSec: per, Burst: burst}
	return nil
}
