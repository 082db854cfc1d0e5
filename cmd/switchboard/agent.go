package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

const agentHelp = `commands (one per line):
  subscribe LIST | unsubscribe LIST
  join REQUEST | leave REQUEST | close REQUEST
  send REQUEST TEXT...
  view              your lists and conversations (the first of each)
  list LIST [AFTER] a list's open requests, after request AFTER
  conversations [AFTER]  your conversations, after request AFTER
  request REQUEST   a request and its transcript
  help | quit`

// agentOptions is a parsed `switchboard agent` command line.
type agentOptions struct {
	conn  connFlags
	user  string
	token string
}

const agentUsage = `usage: switchboard agent --user ID [--token-file F | --token T] [--addr A,B,C] [flags]

Connects as agent ID and prints its notifications; type commands on stdin.
The agent token is the first found of: `

// parseAgentArgs parses agent's flags, wherever they stand; it takes no
// positional arguments (commands are typed in the console).
func parseAgentArgs(args []string, stdout io.Writer) (agentOptions, error) {
	var o agentOptions
	fs := newFlagSet("agent")
	o.conn.register(fs)
	fs.StringVar(&o.user, "user", os.Getenv("SWITCHBOARD_USER"), "agent id (env SWITCHBOARD_USER)")
	pos, err := parseAnywhere(fs, args, stdout, agentUsage+agentTokenLookup.order()+".\n\n"+consoleHelp())
	if err != nil {
		return o, err
	}
	if len(pos) > 0 {
		return o, fmt.Errorf("%w: agent takes no arguments, got %q: type console commands once connected (see 'switchboard agent --help')", errUsage, pos)
	}
	if o.user == "" {
		return o, fmt.Errorf("%w: agent needs --user (or SWITCHBOARD_USER)", errUsage)
	}
	o.token, err = o.conn.resolveToken(agentTokenLookup)
	return o, err
}

func runAgent(ctx context.Context, args []string, stdout, _ io.Writer) error {
	o, err := parseAgentArgs(args, stdout)
	if err != nil {
		return err
	}
	cf := o.conn
	c, err := cf.dial(ctx, "agent", o.user, o.token, true)
	if err != nil {
		return err
	}
	defer c.Close()
	var mu sync.Mutex // one writer at a time on stdout
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, format+"\n", a...)
	}
	say("connected as agent %s; type 'help' for commands", o.user)
	go func() {
		for ev := range c.Events() {
			say("%s", describeEvent(ev))
		}
	}()
	return commandLoop(ctx, os.Stdin, c, say, func(line string) error {
		f := strings.Fields(line)
		cctx, cancel := context.WithTimeout(ctx, cf.timeout)
		defer cancel()
		need := func(n int) error {
			if len(f) < n {
				return fmt.Errorf("%s needs %d argument(s); type 'help'", f[0], n-1)
			}
			return nil
		}
		switch f[0] {
		case "help":
			say("%s\n%s", agentHelp, agentPushHelp)
			return nil
		case "subscribe", "unsubscribe":
			if err := need(2); err != nil {
				return err
			}
			return c.Call(cctx, f[0], api.SubscribeArgs{List: f[1]}, nil)
		case "join":
			if err := need(2); err != nil {
				return err
			}
			// The typed helper: a retry answered from the cluster's
			// record gets the transcript read after it.
			jr, err := c.Join(cctx, f[1], "")
			if err != nil {
				return err
			}
			for _, m := range jr.Transcript {
				say("  %s", formatMessage(m))
			}
			return nil
		case "leave", "close":
			if err := need(2); err != nil {
				return err
			}
			return c.Call(cctx, f[0], api.RequestArgs{Request: f[1]}, nil)
		case "send":
			if err := need(3); err != nil {
				return err
			}
			text := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, "send")), f[1]))
			return c.Call(cctx, "send", api.SendArgs{Request: f[1], Text: text}, nil)
		case "view":
			var v api.StreamView
			if err := c.Call(cctx, api.QueryView, nil, &v); err != nil {
				return err
			}
			say("%s", describeView(v))
			return nil
		case "list":
			if err := need(2); err != nil {
				return err
			}
			var l api.ListSnapshot
			if err := c.Call(cctx, api.QueryList, api.QueryArgs{List: f[1], After: optional(f, 2)}, &l); err != nil {
				return err
			}
			say("%s", describeList(l))
			return nil
		case "conversations":
			var p api.ConversationPage
			if err := c.Call(cctx, api.QueryConversations, api.QueryArgs{After: optional(f, 1)}, &p); err != nil {
				return err
			}
			say("%s", describeConversations(p.Conversations, p.More))
			return nil
		case "request":
			if err := need(2); err != nil {
				return err
			}
			var v api.ConversationView
			if err := c.Call(cctx, api.QueryRequest, api.QueryArgs{Request: f[1]}, &v); err != nil {
				return err
			}
			say("%s", describeSummary(v.Request))
			for _, m := range v.Transcript {
				say("  %s", formatMessage(m))
			}
			return nil
		}
		if handled, err := agentPushCommand(cctx, c, say, f); handled {
			return err
		}
		return fmt.Errorf("unknown command %q; type 'help'", f[0])
	})
}

// commandLoop reads lines from in and runs each with do until EOF, "quit",
// the context ends or the connection is lost for good.
func commandLoop(ctx context.Context, in io.Reader, c *transport.Client, say func(string, ...any), do func(line string) error) error {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.Done():
			return c.Err()
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			if line == "quit" || line == "exit" {
				return nil
			}
			if err := do(line); err != nil {
				say("error: %v", err)
			} else {
				say("ok")
			}
		}
	}
}

// describeEvent renders one notification as a line for a person.
func describeEvent(ev transport.Event) string {
	head := fmt.Sprintf("#%d %s", ev.Seq, ev.Kind)
	switch ev.Kind {
	case api.EvRequestCreated, api.EvRequestUpdated, api.EvRequestRemoved:
		var r api.RequestSummary
		if ev.Decode(&r) == nil {
			return head + " " + describeSummary(r)
		}
	case api.EvListSubscribed:
		var l api.ListSnapshot
		if ev.Decode(&l) == nil {
			return head + " " + describeList(l)
		}
	case api.EvListUnsubscribed:
		var l api.ListRef
		if ev.Decode(&l) == nil {
			return head + " list " + l.List
		}
	case api.EvConversationJoined, api.EvConversationLeft:
		var p api.ParticipantChange
		if ev.Decode(&p) == nil {
			return fmt.Sprintf("%s %s agent %s → %s, agents [%s]", head, p.Request, p.Agent, p.State, strings.Join(p.Participants, ","))
		}
	case api.EvConversationMessage:
		var m api.ConversationMessage
		if ev.Decode(&m) == nil {
			return head + " " + m.Request + " " + formatMessage(m.Message)
		}
	case api.EvConversationClosed:
		var c api.ConversationClosed
		if ev.Decode(&c) == nil {
			return fmt.Sprintf("%s %s by %s %s", head, c.Request, c.By.Role, c.By.ID)
		}
	case api.EvSync:
		var v api.StreamView
		if ev.Decode(&v) == nil {
			return head + " " + describeView(v)
		}
	}
	if s, ok := describePushEvent(ev, head); ok {
		return s
	}
	return head
}

func describeSummary(r api.RequestSummary) string {
	s := fmt.Sprintf("%s [%s] on %s from %s", r.ID, r.State, r.Channel, customerName(r.Customer))
	if len(r.Participants) > 0 {
		s += ", agents " + strings.Join(r.Participants, ",")
	}
	if r.Preview != "" {
		s += fmt.Sprintf(": %q", clip(r.Preview, 60))
	}
	if r.Unread > 1 || (r.Unread == 1 && r.Latest != r.Preview) {
		s += fmt.Sprintf(" (%d unread, latest %q)", r.Unread, clip(r.Latest, 60))
	}
	return s
}

func describeList(l api.ListSnapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "list %s: %d open", l.List, max(l.Total, len(l.Requests)))
	for _, r := range l.Requests {
		b.WriteString("\n    " + describeSummary(r))
	}
	if l.More && len(l.Requests) > 0 {
		fmt.Fprintf(&b, "\n    ... more: list %s %s", l.List, l.Requests[len(l.Requests)-1].ID)
	} else if l.More {
		fmt.Fprintf(&b, "\n    ... more: list %s", l.List)
	}
	return b.String()
}

// describeConversations lists conversations, and how to see more.
func describeConversations(cs []api.ConversationView, more bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d conversation(s)", len(cs))
	for _, c := range cs {
		b.WriteString("\n  in " + describeSummary(c.Request))
	}
	if more && len(cs) > 0 {
		b.WriteString("\n  ... more: conversations " + cs[len(cs)-1].Request.ID)
	}
	return b.String()
}

// optional returns f[i], or "" if there is none.
func optional(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

func describeView(v api.StreamView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d list(s), %d conversation(s)", len(v.Lists), len(v.Conversations))
	for _, l := range v.Lists {
		b.WriteString("\n  " + describeList(l))
	}
	for _, c := range v.Conversations {
		b.WriteString("\n  in " + describeSummary(c.Request))
	}
	if v.MoreConversations && len(v.Conversations) > 0 {
		b.WriteString("\n  ... more: conversations " + v.Conversations[len(v.Conversations)-1].Request.ID)
	}
	if v.Push != nil {
		b.WriteString("\n  " + describePushView(*v.Push))
	}
	return b.String()
}
