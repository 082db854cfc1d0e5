package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

const customerHelp = `type a line to send it as the customer; also:
  /agent   ask for a (new) agent
  /close   close the conversation
  /quit`

// customerOptions is a parsed `switchboard customer` command line.
type customerOptions struct {
	conn                                    connFlags
	connector, channel, customer, name, say string
	token                                   string
}

const customerUsage = `usage: switchboard customer --connector ID [--token-file F | --token T] --channel C --customer ID [--name N] [--say TEXT] [flags]

Plays a channel connector carrying one customer's messages: with --say,
sends one message and exits; else each line typed is sent.
The connector token is the first found of: `

// parseCustomerArgs parses customer's flags, wherever they stand; it takes
// no positional arguments.
func parseCustomerArgs(args []string, stdout io.Writer) (customerOptions, error) {
	var o customerOptions
	fs := newFlagSet("customer")
	o.conn.register(fs)
	fs.StringVar(&o.connector, "connector", os.Getenv("SWITCHBOARD_USER"), "connector id (env SWITCHBOARD_USER)")
	fs.StringVar(&o.channel, "channel", "", "channel the customer writes on")
	fs.StringVar(&o.customer, "customer", "", "customer id on the channel")
	fs.StringVar(&o.name, "name", "", "customer display name")
	fs.StringVar(&o.say, "say", "", "send this one message, print the request it went to, and exit")
	pos, err := parseAnywhere(fs, args, stdout, customerUsage+connectorTokenLookup.order()+".\n\n"+consoleHelp())
	if err != nil {
		return o, err
	}
	if len(pos) > 0 {
		return o, fmt.Errorf("%w: customer takes no arguments, got %q (a message goes in --say \"...\")", errUsage, pos)
	}
	if o.connector == "" || o.channel == "" || o.customer == "" {
		return o, fmt.Errorf("%w: customer needs --connector, --channel and --customer", errUsage)
	}
	o.token, err = o.conn.resolveToken(connectorTokenLookup)
	return o, err
}

// runCustomer plays a channel connector carrying one customer's messages.
func runCustomer(ctx context.Context, args []string, stdout, _ io.Writer) error {
	o, err := parseCustomerArgs(args, stdout)
	if err != nil {
		return err
	}
	cf := o.conn
	c, err := cf.dial(ctx, "connector", o.connector, o.token, o.say == "")
	if err != nil {
		return err
	}
	defer c.Close()
	send := func(ctx context.Context, text string) (api.CustomerMessageResult, error) {
		cctx, cancel := context.WithTimeout(ctx, cf.timeout)
		defer cancel()
		var res api.CustomerMessageResult
		err := c.Call(cctx, "customer_message", api.CustomerMessageArgs{Channel: o.channel, CustomerID: o.customer, CustomerName: o.name, Text: text}, &res)
		return res, err
	}
	if o.say != "" {
		res, err := send(ctx, o.say)
		if err != nil {
			return err
		}
		verb := "added to"
		if res.Created {
			verb = "opened"
		}
		fmt.Fprintf(stdout, "%s request %s (%s)\n", verb, res.Request, res.State)
		return nil
	}
	var mu sync.Mutex
	out := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, format+"\n", a...)
	}
	out("connected as connector %s for %s on %s; %s", o.connector, o.customer, o.channel, customerHelp)
	var current string // the customer's open request, once known
	var curMu sync.Mutex
	go func() {
		for ev := range c.Events() {
			curMu.Lock()
			req := current
			curMu.Unlock()
			if req != "" && eventRequest(ev) == req && ev.Kind != api.EvSync {
				out("%s", describeEvent(ev))
			}
		}
	}()
	return commandLoop(ctx, os.Stdin, c, out, func(line string) error {
		cctx, cancel := context.WithTimeout(ctx, cf.timeout)
		defer cancel()
		switch line {
		case "/help":
			out("%s", customerHelp)
			return nil
		case "/agent":
			var r api.RequestAgentResult
			if err := c.Call(cctx, "request_agent", api.RequestAgentArgs{Channel: o.channel, CustomerID: o.customer}, &r); err != nil {
				return err
			}
			out("request %s is %s; announced again: %v", r.Request, r.State, r.Announced)
			return nil
		case "/close":
			curMu.Lock()
			req := current
			curMu.Unlock()
			if req == "" {
				return fmt.Errorf("no open request yet")
			}
			return c.Call(cctx, "close", api.RequestArgs{Request: req}, nil)
		}
		if strings.HasPrefix(line, "/") {
			return fmt.Errorf("unknown command %q", line)
		}
		res, err := send(ctx, line)
		if err != nil {
			return err
		}
		curMu.Lock()
		current = res.Request
		curMu.Unlock()
		if res.Created {
			out("opened request %s", res.Request)
		}
		return nil
	})
}

// eventRequest returns the request an event is about, if any.
func eventRequest(ev transport.Event) string {
	var v struct {
		Request string `msgpack:"request"`
	}
	if ev.Decode(&v) != nil {
		return ""
	}
	return v.Request
}
