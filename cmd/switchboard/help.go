package main

import (
	"context"
	"fmt"
	"io"
)

// runHelp prints `switchboard help`: the commands, every ctl verb, the
// agent and customer console commands and where credentials are looked
// up. `switchboard help COMMAND` is `switchboard COMMAND --help`.
func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		for _, c := range commands() {
			if c.name == args[0] && c.name != "help" {
				return c.run(ctx, []string{"--help"}, stdout, stderr)
			}
		}
		return fmt.Errorf("%w: no help for %q: not a command", errUsage, args[0])
	}
	usage(stdout)
	fmt.Fprintf(stdout, "\nctl verbs (switchboard ctl VERB [ARGUMENTS] [flags], flags anywhere; -o json on every verb):\n%s\n\n%s\n", ctlVerbs, consoleHelp())
	fmt.Fprintf(stdout, "\ncredentials, first found wins:\n  ctl       %s\n  agent     %s\n  customer  %s\n",
		adminTokenLookup.order(), agentTokenLookup.order(), connectorTokenLookup.order())
	return nil
}
