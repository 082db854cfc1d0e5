package main

import (
	"context"
	"flag"
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

// runCustomer plays a channel connector carrying one customer's messages.
func runCustomer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("customer", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var cf connFlags
	cf.register(flags)
	connector := flags.String("connector", os.Getenv("SWITCHBOARD_USER"), "connector id (env SWITCHBOARD_USER)")
	channel := flags.String("channel", "", "channel the customer writes on")
	customer := flags.String("customer", "", "customer id on the channel")
	name := flags.String("name", "", "customer display name")
	say := flags.String("say", "", "send this one message, print the request it went to, and exit")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *connector == "" || cf.token == "" || *channel == "" || *customer == "" {
		return fmt.Errorf("%w: customer needs --connector, --token, --channel and --customer", errUsage)
	}
	c, err := cf.dial(ctx, "connector", *connector, cf.token, *say == "")
	if err != nil {
		return err
	}
	defer c.Close()
	send := func(ctx context.Context, text string) (api.CustomerMessageResult, error) {
		cctx, cancel := context.WithTimeout(ctx, cf.timeout)
		defer cancel()
		var res api.CustomerMessageResult
		err := c.Call(cctx, "customer_message", api.CustomerMessageArgs{Channel: *channel, CustomerID: *customer, CustomerName: *name, Text: text}, &res)
		return res, err
	}
	if *say != "" {
		res, err := send(ctx, *say)
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
	out("connected as connector %s for %s on %s; %s", *connector, *customer, *channel, customerHelp)
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
			if err := c.Call(cctx, "request_agent", api.RequestAgentArgs{Channel: *channel, CustomerID: *customer}, &r); err != nil {
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
