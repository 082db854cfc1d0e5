package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/node"
)

// ctlSuperviseUsage lists the supervision verbs of ctl. With --supervisor
// ID, ctl logs in as that supervisor (its token found as
// supervisorTokenLookup says) and may run only these, within its scope;
// without, it runs them as the admin.
const ctlSuperviseUsage = `  create supervisor ID [--name N] [--mrds M,...] [--lists L,...] [--queues Q,...]   prints its token (no scope: everything)
  delete supervisor ID | get supervisors
  board                                        the wallboard: lists, queues, agents, open requests
  assign REQUEST AGENT                         offer a waiting or listed request to an agent
  transfer REQUEST FROM TO                     move a conversation from agent FROM to agent TO
  requeue REQUEST QUEUE [FROM]                 put a push request in a queue (FROM leaves it)
  not-ready AGENT MRD [REASON]                 take an agent off routing in an MRD
  logout AGENT                                 log an agent out
  (with --supervisor ID: act as that supervisor; only board, assign, transfer,
   requeue, not-ready, logout, close and get list|request|queue)`

// supervisorVerbs are the verbs a supervisor may run through ctl.
var supervisorVerbs = map[string]bool{
	"board": true, "assign": true, "transfer": true, "requeue": true, "not-ready": true,
	"logout": true, "close": true, "get": true,
}

// supervise runs a supervision verb; handled is false for any other verb.
func (x *ctl) supervise(ctx context.Context, verb string, args []string) (handled bool, err error) {
	usage := func(u string) error { return fmt.Errorf("%w: %s", errUsage, u) }
	switch verb {
	case "board":
		if len(args) != 0 {
			return true, usage("board takes no arguments")
		}
		var b api.Board
		return true, x.query(ctx, api.QueryBoard, nil, &b, func() { x.board(&b) })
	case "assign":
		if len(args) != 2 {
			return true, usage("assign REQUEST AGENT")
		}
		a := api.TransferArgs{Request: args[0], ToAgent: args[1]}
		var info api.OfferInfo
		return true, x.call(ctx, api.OpTransfer, a, &info, "offered %s to %s", a.Request, a.ToAgent)
	case "transfer":
		if len(args) != 3 {
			return true, usage("transfer REQUEST FROM TO")
		}
		a := api.TransferArgs{Request: args[0], Agent: args[1], ToAgent: args[2]}
		var info api.OfferInfo
		return true, x.call(ctx, api.OpTransfer, a, &info, "moved %s from %s; offered to %s", a.Request, a.Agent, a.ToAgent)
	case "requeue":
		if len(args) != 2 && len(args) != 3 {
			return true, usage("requeue REQUEST QUEUE [FROM]")
		}
		a := api.TransferToQueueArgs{Request: args[0], Queue: args[1]}
		if len(args) == 3 {
			a.Agent = args[2]
		}
		return true, x.call(ctx, api.OpTransferToQueue, a, nil, "put %s in queue %s", a.Request, a.Queue)
	case "not-ready":
		if len(args) != 2 && len(args) != 3 {
			return true, usage("not-ready AGENT MRD [REASON]")
		}
		a := api.SetAgentStateArgs{Agent: args[0], MRD: args[1], State: api.AgentNotReady, Reason: "supervisor"}
		if len(args) == 3 {
			a.Reason = args[2]
		}
		return true, x.call(ctx, api.OpSetAgentState, a, nil, "%s is NOT_READY in %s (%s)", a.Agent, a.MRD, a.Reason)
	case "logout":
		if len(args) != 1 {
			return true, usage("logout AGENT")
		}
		return true, x.call(ctx, api.OpLogout, api.AgentArgs{Agent: args[0]}, nil, "logged %s out", args[0])
	}
	return false, nil
}

// createSupervisor runs "create supervisor ID [flags]".
func (x *ctl) createSupervisor(ctx context.Context, id string, f createFlags) error {
	a := api.CreateSupervisorArgs{ID: id, Name: f.name, MRDs: splitList(f.mrds), Lists: splitList(f.lists), Queues: splitList(f.queues)}
	var cred node.Credential
	if err := x.do(ctx, api.OpCreateSupervisor, a, &cred); err != nil {
		return err
	}
	return x.done(api.OpCreateSupervisor, a, cred, "created supervisor %s\ntoken: %s", cred.ID, cred.Token)
}

// supervisors prints "get supervisors".
func (x *ctl) supervisors(ctx context.Context) error {
	var v []api.SupervisorInfo
	return x.show(ctx, api.QuerySupervisors, &v, "ID\tNAME\tSCOPE", func(w io.Writer) {
		for _, s := range v {
			fmt.Fprintf(w, "%s\t%s\t%s\n", s.ID, dash(s.Name), scopeOf(s))
		}
	})
}

func scopeOf(s api.SupervisorInfo) string {
	var parts []string
	for _, p := range []struct {
		what string
		ids  []string
	}{{"mrds", s.MRDs}, {"lists", s.Lists}, {"queues", s.Queues}} {
		if len(p.ids) > 0 {
			parts = append(parts, p.what+"="+strings.Join(p.ids, ","))
		}
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, " ")
}

// board prints a Board: lists, queues, agents, then the open requests.
func (x *ctl) board(b *api.Board) {
	now := time.Unix(0, b.At)
	age := func(at int64) string {
		if at == 0 {
			return "-"
		}
		return now.Sub(time.Unix(0, at)).Round(time.Second).String()
	}
	x.table("LIST\tUNREAD\tACTIVE\tINACTIVE\tOLDEST UNREAD\tBREACHED\tSUBSCRIBERS", func(w io.Writer) {
		for _, l := range b.Lists {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%d\t%d\n", l.ID, l.Unread, l.Active, l.Inactive, age(l.OldestUnreadAt), l.Breached, l.Subscribers)
		}
	})
	fmt.Fprintln(x.out)
	x.table("QUEUE\tMRD\tWAITING\tLONGEST WAIT\tOFFERED\tREADY\tBUSY\tNOT_READY\tSERVICE LEVEL TODAY", func(w io.Writer) {
		for _, q := range b.Queues {
			sl := "-"
			if n := q.Met + q.Breached; n > 0 {
				sl = fmt.Sprintf("%d%% (%d/%d)", 100*q.Met/n, q.Met, n)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n", q.ID, q.MRD, q.Waiting, age(q.OldestQueuedAt), q.Offered, q.Ready, q.Busy, q.NotReady, sl)
		}
	})
	fmt.Fprintln(x.out)
	x.table("AGENT\tNAME\tSTATE\tCONVERSATIONS", func(w io.Writer) {
		for _, a := range b.Agents {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", a.Status.Agent, dash(a.Name), agentStates(a.Status), dash(strings.Join(a.Conversations, ",")))
		}
	})
	fmt.Fprintln(x.out)
	x.requestTable(b.Requests)
	if b.Truncated {
		fmt.Fprintf(x.out, "(truncated: the board lists at most %d requests and %d agents)\n", api.MaxBoardRequests, api.MaxBoardAgents)
	}
}

// agentStates renders an agent's state per MRD, e.g. "chat=READY 1/3".
func agentStates(st api.AgentStatus) string {
	if !st.LoggedIn {
		return string(api.AgentLoggedOut)
	}
	var parts []string
	for _, m := range st.MRDs {
		s := m.MRD + "=" + string(m.State)
		if m.Max > 0 {
			s += fmt.Sprintf(" %d/%d", m.Conversations+m.Offers, m.Max)
		}
		parts = append(parts, s)
	}
	return dash(strings.Join(parts, " "))
}
