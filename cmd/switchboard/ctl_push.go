package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
)

// ctlPushUsage lists the push-routing verbs of ctl.
const ctlPushUsage = `  queue add-member QUEUE AGENT | queue remove-member QUEUE AGENT
  pull-policy strict_priority|first_due        how free agents pick among their queues
  get queue ID                                 a queue's members, waiting requests and offers
  get agent-states                             every agent's login, mode, state, load per MRD`

// queue runs "queue add-member|remove-member QUEUE AGENT".
func (x *ctl) queue(ctx context.Context, args []string) error {
	if len(args) != 3 || (args[0] != "add-member" && args[0] != "remove-member") {
		return fmt.Errorf("%w: queue add-member|remove-member QUEUE AGENT", errUsage)
	}
	a := api.QueueMemberArgs{Queue: args[1], Agent: args[2]}
	if args[0] == "add-member" {
		return x.call(ctx, "add_queue_member", a, nil, "added %s to queue %s", a.Agent, a.Queue)
	}
	return x.call(ctx, "remove_queue_member", a, nil, "removed %s from queue %s", a.Agent, a.Queue)
}

// pullPolicy runs "pull-policy POLICY".
func (x *ctl) pullPolicy(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: pull-policy %s|%s", errUsage, api.PolicyStrictPriority, api.PolicyFirstDue)
	}
	return x.call(ctx, "set_pull_policy", api.SetPullPolicyArgs{Policy: api.PullPolicy(args[0])}, nil, "pull policy: %s", args[0])
}

// setServiceLevel runs "set-service-level list|queue ID --sla D
// [--sla-warn P]".
func (x *ctl) setServiceLevel(ctx context.Context, args []string, f createFlags) error {
	if len(args) != 2 || (args[0] != "list" && args[0] != "queue") {
		return fmt.Errorf("%w: set-service-level list|queue ID --sla 30s [--sla-warn 80]", errUsage)
	}
	a := api.ServiceLevelArgs{SLAMs: f.sla.Milliseconds(), WarnPct: f.slaWarn}
	if args[0] == "list" {
		a.List = args[1]
	} else {
		a.Queue = args[1]
	}
	return x.call(ctx, api.OpSetServiceLevel, a, nil, "service level of %s %s: %v, warning at %d%%", args[0], args[1], f.sla, f.slaWarn)
}

// getPush answers "get queue ID" and "get agent-states"; handled is false
// for anything else.
func (x *ctl) getPush(ctx context.Context, args []string) (handled bool, err error) {
	switch {
	case len(args) == 2 && args[0] == "queue":
		var v api.QueueView
		return true, x.query(ctx, api.QueryQueue, api.QueryArgs{Queue: args[1]}, &v, func() { x.queueView(v) })
	case len(args) == 1 && args[0] == "agent-states":
		var v []api.AgentStatus
		return true, x.query(ctx, api.QueryAgentStates, nil, &v, func() { x.agentStates(v) })
	}
	return false, nil
}

func (x *ctl) queueView(v api.QueueView) {
	fmt.Fprintf(x.out, "queue %s", v.ID)
	if v.Name != "" {
		fmt.Fprintf(x.out, " (%s)", v.Name)
	}
	fmt.Fprintf(x.out, ": mrd %s, priority %d, offer timeout %s\nmembers: %s\n\n", v.MRD, v.Priority,
		time.Duration(v.OfferTimeoutMs)*time.Millisecond, dash(strings.Join(v.Members, ",")))
	x.table("WAITING\tPRIORITY\tQUEUED\tCUSTOMER\tDECLINED BY\tPREVIEW", func(w io.Writer) {
		for _, q := range v.Waiting {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", q.Request.ID, q.Priority, time.Unix(0, q.QueuedAt).Format(time.DateTime),
				customerName(q.Request.Customer), dash(strings.Join(q.Declined, ",")), clip(q.Request.Preview, 40))
		}
	})
	fmt.Fprintln(x.out)
	x.table("OFFERED\tOFFER\tKIND\tTO\tEXPIRES", func(w io.Writer) {
		for _, o := range v.Offers {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", o.Request.ID, o.ID, o.Kind, o.Agent, time.Unix(0, o.ExpiresAt).Format(time.TimeOnly))
		}
	})
}

func (x *ctl) agentStates(v []api.AgentStatus) {
	x.table("AGENT\tLOGGED IN\tMODE\tMRD\tSTATE\tREASON\tCHATS\tOFFERS\tMAX\tQUEUES", func(w io.Writer) {
		for _, a := range v {
			mode := string(a.Mode)
			if a.ChatRequested {
				mode += " (chat requested)"
			}
			for _, m := range a.MRDs {
				max := "-"
				if m.Max > 0 {
					max = fmt.Sprint(m.Max)
				}
				fmt.Fprintf(w, "%s\t%v\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", a.Agent, a.LoggedIn, mode, m.MRD, m.State,
					dash(m.Reason), m.Conversations, m.Offers, max, dash(strings.Join(a.Queues, ",")))
			}
		}
	})
}
