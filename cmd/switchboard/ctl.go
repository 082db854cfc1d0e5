package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/transport"
)

// ctlVerbs lists every verb of ctl.
const ctlVerbs = `  status                                       the node ctl is connected to
  cluster status                               every member: state, term, commit/applied index, lag
  cluster remove NODE                          remove a node from the cluster
  cluster transfer-leadership [NODE]           hand leadership to NODE (default: the most up-to-date)
  snapshot take                                snapshot the node connected to now
  snapshot save FILE                           back up the leader's state to FILE
  create mrd ID [--name N]
  create channel-type ID --mrd M
  create list ID [--name N] [--access open|restricted] [--sla 30s [--sla-warn 80]] [--remind-inactive 10m] [--close-inactive 1h]
  create queue ID --mrd M [--name N] [--priority P] [--offer-timeout 30s] [--aging-step 30s --aging-cap 5] [--sla 30s [--sla-warn 80]]
  create channel ID --type T (--list L | --queue Q)
  create agent ID [--name N] [--max MRD=N,...]   prints the agent's token
  create connector ID --channels C[,C...] [--name N]  prints the connector's token
  delete list|agent|connector ID
  subscribe AGENT LIST | unsubscribe AGENT LIST
  grant-list AGENT LIST | revoke-list AGENT LIST  let AGENT subscribe to a restricted LIST (revoking unsubscribes it)
  set-list-access LIST open|restricted         restricting unsubscribes every agent without a grant
  get mrds|channel-types|channels|lists|queues|agents|connectors
  get list ID                                  the list's open requests (every page)
  get request ID                               a request and its transcript
  close REQUEST                                close a request as admin
  set-service-level list|queue ID --sla 30s [--sla-warn 80]   for requests arriving from now on (--sla 0: off)
` + ctlPushUsage + "\n" + ctlSuperviseUsage

// ctl is one admin session: a connection and where to print.
type ctl struct {
	c       *transport.Client
	out     io.Writer
	timeout time.Duration
	json    bool // -o json
}

func runCtl(ctx context.Context, args []string, stdout, _ io.Writer) error {
	a, err := parseCtlArgs(args, stdout)
	if err != nil {
		return err
	}
	role, user, lookup := "admin", "", adminTokenLookup
	if a.supervisor != "" {
		if !supervisorVerbs[a.verb] {
			return fmt.Errorf("%w: a supervisor may not run 'ctl %s' (see ctl --help)", errUsage, a.verb)
		}
		role, user, lookup = "supervisor", a.supervisor, supervisorTokenLookup
	}
	token, err := a.conn.resolveToken(lookup)
	if err != nil {
		return err
	}
	c, err := a.conn.dial(ctx, role, user, token, false)
	if err != nil {
		return err
	}
	defer c.Close()
	x := &ctl{c: c, out: stdout, timeout: a.conn.timeout, json: *a.output == outputJSON}
	verb, rest := a.verb, a.args
	switch verb {
	case "status":
		if len(rest) != 0 {
			return fmt.Errorf("%w: status takes no arguments, got %q", errUsage, rest)
		}
		return x.status(ctx)
	case "create":
		return x.create(ctx, rest, a.create)
	case "delete":
		if len(rest) != 2 || (rest[0] != "list" && rest[0] != "agent" && rest[0] != "connector" && rest[0] != "supervisor") {
			return fmt.Errorf("%w: delete list|agent|connector|supervisor ID", errUsage)
		}
		return x.call(ctx, "delete_"+rest[0], api.IDArgs{ID: rest[1]}, nil, "deleted %s %s", rest[0], rest[1])
	case "subscribe", "unsubscribe":
		if len(rest) != 2 {
			return fmt.Errorf("%w: %s AGENT LIST", errUsage, verb)
		}
		return x.call(ctx, verb, api.SubscribeArgs{Agent: rest[0], List: rest[1]}, nil, "%sd %s to %s", verb, rest[0], rest[1])
	case "grant-list", "revoke-list":
		if len(rest) != 2 {
			return fmt.Errorf("%w: %s AGENT LIST", errUsage, verb)
		}
		op, done := api.OpGrantList, "granted %s list %s"
		if verb == "revoke-list" {
			op, done = api.OpRevokeList, "revoked %s's grant of list %s"
		}
		return x.call(ctx, op, api.ListGrantArgs{Agent: rest[0], List: rest[1]}, nil, done, rest[0], rest[1])
	case "set-list-access":
		if len(rest) != 2 || (rest[1] != string(api.ListOpen) && rest[1] != string(api.ListRestricted)) {
			return fmt.Errorf("%w: set-list-access LIST open|restricted", errUsage)
		}
		return x.call(ctx, api.OpSetListAccess, api.ListAccessArgs{List: rest[0], Access: api.ListAccess(rest[1])}, nil, "list %s is %s", rest[0], rest[1])
	case "close":
		if len(rest) != 1 {
			return fmt.Errorf("%w: close REQUEST", errUsage)
		}
		return x.call(ctx, "close", api.RequestArgs{Request: rest[0]}, nil, "closed %s", rest[0])
	case "get":
		return x.get(ctx, rest)
	case "cluster":
		return x.cluster(ctx, rest)
	case "snapshot":
		return x.snapshot(ctx, rest)
	case "queue":
		return x.queue(ctx, rest)
	case "pull-policy":
		return x.pullPolicy(ctx, rest)
	case "set-service-level":
		return x.setServiceLevel(ctx, rest, a.create)
	}
	if handled, err := x.supervise(ctx, verb, rest); handled {
		return err
	}
	return fmt.Errorf("%w: unknown verb %q\n\n%s", errUsage, verb, ctlUsage)
}

// do runs one call, printing nothing.
func (x *ctl) do(ctx context.Context, op string, args, out any) error {
	cctx, cancel := context.WithTimeout(ctx, x.timeout)
	defer cancel()
	return x.c.Call(cctx, op, args, out)
}

// call runs a change and reports it (see done).
func (x *ctl) call(ctx context.Context, op string, args, out any, format string, a ...any) error {
	if err := x.do(ctx, op, args, out); err != nil {
		return err
	}
	return x.done(op, args, out, format, a...)
}

func (x *ctl) create(ctx context.Context, args []string, f createFlags) error {
	if len(args) != 2 {
		return fmt.Errorf("%w: create KIND ID [flags]", errUsage)
	}
	kind, id := args[0], args[1]
	var cred node.Credential
	switch kind {
	case "mrd":
		return x.call(ctx, "create_mrd", api.CreateMRDArgs{ID: id, Name: f.name}, nil, "created mrd %s", id)
	case "channel-type":
		return x.call(ctx, "create_channel_type", api.CreateChannelTypeArgs{ID: id, MRD: f.mrd}, nil, "created channel type %s", id)
	case "list":
		return x.call(ctx, "create_list", api.CreateListArgs{ID: id, Name: f.name, SLAMs: f.sla.Milliseconds(), SLAWarnPct: f.slaWarn,
			RemindInactiveMs: f.remindInactive.Milliseconds(), CloseInactiveMs: f.closeInactive.Milliseconds(), Access: api.ListAccess(f.access)}, nil, "created list %s", id)
	case "queue":
		return x.call(ctx, "create_queue", api.CreateQueueArgs{ID: id, Name: f.name, MRD: f.mrd, Priority: f.priority, OfferTimeoutMs: f.offerTimeout.Milliseconds(),
			AgingStepMs: f.agingStep.Milliseconds(), AgingCap: f.agingCap, SLAMs: f.sla.Milliseconds(), SLAWarnPct: f.slaWarn}, nil, "created queue %s", id)
	case "channel":
		a := api.CreateChannelArgs{ID: id, Type: f.typ, List: f.list, Queue: f.queue, Mode: api.ModePull}
		if f.queue != "" {
			a.Mode = api.ModePush
		}
		return x.call(ctx, "create_channel", a, nil, "created %s channel %s", a.Mode, id)
	case "agent":
		m, err := parseMax(f.max)
		if err != nil {
			return err
		}
		a := api.CreateAgentArgs{ID: id, Name: f.name, Max: m}
		if err := x.do(ctx, "create_agent", a, &cred); err != nil {
			return err
		}
		return x.done("create_agent", a, cred, "created agent %s\ntoken: %s", cred.ID, cred.Token)
	case "connector":
		if f.channels == "" {
			return fmt.Errorf("%w: create connector ID --channels C[,C...]", errUsage)
		}
		a := api.CreateConnectorArgs{ID: id, Name: f.name, Channels: strings.Split(f.channels, ",")}
		if err := x.do(ctx, "create_connector", a, &cred); err != nil {
			return err
		}
		return x.done("create_connector", a, cred, "created connector %s\ntoken: %s", cred.ID, cred.Token)
	case "supervisor":
		return x.createSupervisor(ctx, id, f)
	}
	return fmt.Errorf("%w: cannot create %q", errUsage, kind)
}

func parseMax(s string) (map[string]int, error) {
	if s == "" {
		return nil, nil
	}
	m := map[string]int{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return nil, fmt.Errorf("%w: --max wants MRD=N pairs, got %q", errUsage, kv)
		}
		m[k] = n
	}
	return m, nil
}

func (x *ctl) status(ctx context.Context) error {
	var st api.NodeStatus
	return x.query(ctx, node.QueryStatus, nil, &st, func() { renderStatus(x.out, st) })
}

func (x *ctl) get(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: get WHAT", errUsage)
	}
	if handled, err := x.getPush(ctx, args); handled {
		return err
	}
	if len(args) == 1 && args[0] == "supervisors" {
		return x.supervisors(ctx)
	}
	switch {
	case args[0] == "list" && len(args) == 2:
		snap, err := x.wholeList(ctx, args[1])
		if err != nil {
			return err
		}
		if x.json {
			return x.printJSON(snap)
		}
		x.requestTable(snap.Requests)
		return nil
	case args[0] == "request" && len(args) == 2:
		var v api.ConversationView
		return x.query(ctx, api.QueryRequest, api.QueryArgs{Request: args[1]}, &v, func() {
			x.requestTable([]api.RequestSummary{v.Request})
			fmt.Fprintln(x.out)
			for _, m := range v.Transcript {
				fmt.Fprintln(x.out, formatMessage(m))
			}
		})
	case len(args) != 1:
		return fmt.Errorf("%w: get mrds|channel-types|channels|lists|queues|agents|connectors|agent-states|list ID|request ID|queue ID", errUsage)
	}
	switch args[0] {
	case "mrds":
		var v []api.MRD
		return x.show(ctx, api.QueryMRDs, &v, "ID\tNAME", func(w io.Writer) {
			for _, m := range v {
				fmt.Fprintf(w, "%s\t%s\n", m.ID, m.Name)
			}
		})
	case "channel-types":
		var v []api.ChannelType
		return x.show(ctx, api.QueryChannelTypes, &v, "ID\tMRD", func(w io.Writer) {
			for _, c := range v {
				fmt.Fprintf(w, "%s\t%s\n", c.ID, c.MRD)
			}
		})
	case "channels":
		var v []api.Channel
		return x.show(ctx, api.QueryChannels, &v, "ID\tTYPE\tMRD\tMODE\tLIST\tQUEUE\tCONNECTORS", func(w io.Writer) {
			for _, c := range v {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Type, c.MRD, c.Mode, dash(c.List), dash(c.Queue), dash(strings.Join(c.Connectors, ",")))
			}
		})
	case "lists":
		var v []api.ListInfo
		return x.show(ctx, api.QueryLists, &v, "ID\tNAME\tOPEN\tACCESS\tSUBSCRIBERS\tGRANTED", func(w io.Writer) {
			for _, l := range v {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", l.ID, dash(l.Name), l.Open, dash(string(l.Access)),
					dash(strings.Join(l.Subscribers, ",")), dash(strings.Join(l.Granted, ",")))
			}
		})
	case "queues":
		var v []api.Queue
		return x.show(ctx, api.QueryQueues, &v, "ID\tNAME\tMRD\tPRIORITY\tOFFER TIMEOUT", func(w io.Writer) {
			for _, q := range v {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", q.ID, dash(q.Name), q.MRD, q.Priority, time.Duration(q.OfferTimeoutMs)*time.Millisecond)
			}
		})
	case "agents":
		var v []api.AgentInfo
		return x.show(ctx, api.QueryAgents, &v, "ID\tNAME\tMAX\tLISTS\tCONVERSATIONS", func(w io.Writer) {
			for _, a := range v {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", a.ID, dash(a.Name), formatMax(a.Max), dash(strings.Join(a.Lists, ",")), dash(strings.Join(a.Conversations, ",")))
			}
		})
	case "connectors":
		var v []api.ConnectorInfo
		return x.show(ctx, api.QueryConnectors, &v, "ID\tNAME\tCHANNELS", func(w io.Writer) {
			for _, c := range v {
				fmt.Fprintf(w, "%s\t%s\t%s\n", c.ID, dash(c.Name), strings.Join(c.Channels, ","))
			}
		})
	}
	return fmt.Errorf("%w: cannot get %q", errUsage, args[0])
}

// wholeList reads every open request of list, page after page (a node
// sends one page per answer, docs/PROTOCOL.md §18).
func (x *ctl) wholeList(ctx context.Context, list string) (api.ListSnapshot, error) {
	var whole api.ListSnapshot
	args := api.QueryArgs{List: list, Limit: api.MaxPageSize}
	for {
		var page api.ListSnapshot
		if err := x.do(ctx, api.QueryList, args, &page); err != nil {
			return whole, err
		}
		reqs := append(whole.Requests, page.Requests...)
		whole, whole.Requests = page, reqs
		if !page.More || len(page.Requests) == 0 {
			whole.More = false
			if whole.Requests == nil {
				whole.Requests = []api.RequestSummary{}
			}
			return whole, nil
		}
		args.After = page.Requests[len(page.Requests)-1].ID
	}
}

func (x *ctl) show(ctx context.Context, op string, out any, header string, rows func(io.Writer)) error {
	return x.query(ctx, op, nil, out, func() { x.table(header, rows) })
}

func (x *ctl) requestTable(rs []api.RequestSummary) {
	x.table("REQUEST\tSTATE\tCHANNEL\tCUSTOMER\tAGENTS\tCREATED\tPREVIEW", func(w io.Writer) {
		for _, r := range rs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.State, r.Channel, customerName(r.Customer),
				dash(strings.Join(r.Participants, ",")), time.Unix(0, r.CreatedAt).Format(time.DateTime), clip(r.Preview, 40))
		}
	})
}

func customerName(c api.Customer) string {
	if c.Name != "" {
		return c.Name + " (" + c.ID + ")"
	}
	return c.ID
}

func formatMessage(m api.Message) string {
	who := m.From.ID
	if m.Name != "" {
		who = m.Name
	}
	role := "customer"
	if m.From.Role == api.RoleAgent {
		role = "agent"
	}
	return fmt.Sprintf("[%s] %s %s: %s", time.Unix(0, m.At).Format(time.TimeOnly), role, who, m.Text)
}

func formatMax(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
