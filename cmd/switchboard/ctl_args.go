package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// ctlArgs is a parsed ctl command line: the flags, wherever they stood,
// then the verb and its arguments.
type ctlArgs struct {
	conn   connFlags
	output *outputFlag
	create createFlags
	// supervisor, if set, is the supervisor ctl acts as (--supervisor).
	supervisor string
	verb       string
	args       []string // after the verb
}

// createFlags are the flags of `ctl create KIND ID`.
type createFlags struct {
	name, mrd, typ, list, queue, max, channels string
	mrds, lists, queues, access                string
	priority, agingCap, slaWarn                int
	offerTimeout, agingStep, sla               time.Duration
	remindInactive, closeInactive              time.Duration
}

func (c *createFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.name, "name", "", "create: display name")
	fs.StringVar(&c.mrd, "mrd", "", "create channel-type|queue: media routing domain")
	fs.StringVar(&c.typ, "type", "", "create channel: channel type")
	fs.StringVar(&c.list, "list", "", "create channel: list of a pull channel")
	fs.StringVar(&c.queue, "queue", "", "create channel: queue of a push channel")
	fs.IntVar(&c.priority, "priority", 0, "create queue: priority (higher first)")
	fs.DurationVar(&c.offerTimeout, "offer-timeout", 30*time.Second, "create queue: how long an offer waits for an answer")
	fs.DurationVar(&c.agingStep, "aging-step", 0, "create queue: raise a waiting request's priority by one per this much waiting (with --aging-cap)")
	fs.IntVar(&c.agingCap, "aging-cap", 0, "create queue: at most this much raise by aging")
	fs.DurationVar(&c.sla, "sla", 0, "create list|queue, set-service-level: an agent must be in a request within this long of its arrival (0: no service level)")
	fs.IntVar(&c.slaWarn, "sla-warn", 0, "create list|queue, set-service-level: warn at this percentage of --sla (1-99; 0: no warning)")
	fs.DurationVar(&c.remindInactive, "remind-inactive", 0, "create list: remind the subscribers of a request INACTIVE this long (0: off)")
	fs.DurationVar(&c.closeInactive, "close-inactive", 0, "create list: close a request INACTIVE this long (0: off)")
	fs.StringVar(&c.access, "access", "", "create list: who may subscribe: open (any agent; the default) or restricted (only agents granted with grant-list)")
	fs.StringVar(&c.max, "max", "", "create agent: max concurrent conversations per MRD, e.g. social=3,chat=2")
	fs.StringVar(&c.channels, "channels", "", "create connector: channels it may speak for, comma-separated")
	fs.StringVar(&c.mrds, "mrds", "", "create supervisor: MRDs of its scope, comma-separated")
	fs.StringVar(&c.lists, "lists", "", "create supervisor: lists of its scope, comma-separated")
	fs.StringVar(&c.queues, "queues", "", "create supervisor: queues of its scope, comma-separated (no --mrds, --lists or --queues: everything)")
}

// createFlagsOf lists the flags each `create KIND` takes.
var createFlagsOf = map[string][]string{
	"mrd":          {"name"},
	"channel-type": {"mrd"},
	"list":         {"name", "sla", "sla-warn", "remind-inactive", "close-inactive", "access"},
	"queue":        {"name", "mrd", "priority", "offer-timeout", "aging-step", "aging-cap", "sla", "sla-warn"},
	"channel":      {"type", "list", "queue"},
	"agent":        {"name", "max"},
	"connector":    {"name", "channels"},
	"supervisor":   {"name", "mrds", "lists", "queues"},
}

// serviceLevelFlags are the flags of `ctl set-service-level`.
var serviceLevelFlags = []string{"sla", "sla-warn"}

// parseCtlArgs parses ctl's command line. Flags may stand anywhere: before
// the verb, after it or among its arguments; a flag that does not apply
// to the verb is a usage error, never ignored. -h, --help and the verb
// "help" print the help to stdout and return flag.ErrHelp.
func parseCtlArgs(args []string, stdout io.Writer) (*ctlArgs, error) {
	fs := newFlagSet("ctl")
	a := &ctlArgs{}
	a.conn.register(fs)
	a.output = registerOutput(fs)
	a.create.register(fs)
	fs.StringVar(&a.supervisor, "supervisor", os.Getenv("SWITCHBOARD_SUPERVISOR"), "act as this supervisor, with its token (env SWITCHBOARD_SUPERVISOR)")
	pos, err := parseAnywhere(fs, args, stdout, ctlHelp())
	if err != nil {
		return nil, err
	}
	if len(pos) == 0 {
		return nil, fmt.Errorf("%w: ctl needs a verb\n\n%s", errUsage, ctlUsage)
	}
	if pos[0] == "help" {
		printHelp(stdout, ctlHelp(), fs)
		return nil, flag.ErrHelp
	}
	a.verb, a.args = pos[0], pos[1:]
	var allowed []string
	if a.verb == "create" && len(a.args) > 0 {
		allowed = createFlagsOf[a.args[0]]
	}
	if a.verb == "set-service-level" {
		allowed = serviceLevelFlags
	}
	var bad error
	fs.Visit(func(f *flag.Flag) {
		if bad != nil || !isCreateFlag(f.Name) || slices.Contains(allowed, f.Name) {
			return
		}
		switch {
		case a.verb == "set-service-level":
			bad = fmt.Errorf("%w: 'ctl set-service-level' takes --%s, not --%s", errUsage, strings.Join(allowed, ", --"), f.Name)
		case a.verb != "create":
			bad = fmt.Errorf("%w: --%s applies to 'ctl create', not to 'ctl %s'", errUsage, f.Name, a.verb)
		case allowed != nil:
			bad = fmt.Errorf("%w: 'ctl create %s' takes --%s, not --%s", errUsage, a.args[0], strings.Join(allowed, ", --"), f.Name)
		}
	})
	return a, bad
}

func isCreateFlag(name string) bool {
	for _, names := range createFlagsOf {
		if slices.Contains(names, name) {
			return true
		}
	}
	return false
}

// ctlUsage is the short usage of ctl: its verbs.
var ctlUsage = "usage: switchboard ctl VERB [ARGUMENTS] [flags]   (flags anywhere, e.g. --addr A --token-file F -o json)\n\n" + ctlVerbs

// ctlHelp is the full help of `ctl --help`.
func ctlHelp() string {
	return ctlUsage + `

Every verb takes -o json for machine-readable output (stable snake_case
keys): a change prints {"op", "args", "result"}, a query its result.

The admin token is the first found of: ` + adminTokenLookup.order() + `.

The agent and customer consoles ('switchboard agent', 'switchboard
customer') take these commands once connected:

` + consoleHelp()
}

// consoleHelp lists the commands of the agent and customer consoles.
func consoleHelp() string {
	return "agent console (switchboard agent --user ID --token-file F):\n" + indent(agentHelp+"\n"+agentPushHelp) +
		"\n\ncustomer console (switchboard customer --connector ID --token-file F --channel C --customer ID):\n" + indent(customerHelp)
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
