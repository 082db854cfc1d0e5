package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/node"

	"github.com/switchboard/switchboard/transport"
)

const ctlUsage = `usage: switchboard ctl [--addr A] [--token T] <verb> ...

  status                                       node and cluster status
  cluster status                               every member: state, term, commit/applied index, lag
  cluster remove NODE                          remove a node from the cluster
  cluster transfer-leadership [NODE]           hand leadership to NODE (default: the most up-to-date)
  snapshot take                                snapshot the node connected to now
  snapshot save FILE                           back up the leader's state to FILE
  create mrd ID [--name N]
  create channel-type ID --mrd M
  create list ID [--name N]
  create queue ID --mrd M [--priority P] [--offer-timeout 30s]
  create channel ID --type T (--list L | --queue Q)
  create agent ID [--name N] [--max MRD=N,...]   prints the agent's token
  create connector ID --channels C[,C...]        prints the connector's token
  delete list|agent|connector ID
  subscribe AGENT LIST | unsubscribe AGENT LIST
  get mrds|channel-types|channels|lists|queues|agents|connectors
  get list ID                                  the list's open requests
  get request ID                               a request and its transcript
  close REQUEST                                close a request as admin
` + ctlPushUsage

// ctl is one admin session: a connection and where to print.
type ctl struct {
	c       *transport.Client
	out     io.Writer
	timeout time.Duration
}

func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("ctl", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprintln(stderr, ctlUsage); flags.PrintDefaults() }
	var cf connFlags
	cf.register(flags)
	if err := flags.Parse(args); err != nil {
		return err
	}
	rest := flags.Args()
	if len(rest) == 0 {
		flags.Usage()
		return fmt.Errorf("%w: ctl needs a verb", errUsage)
	}
	token, err := cf.adminToken()
	if err != nil {
		return err
	}
	c, err := cf.dial(ctx, "admin", "", token, false)
	if err != nil {
		return err
	}
	defer c.Close()
	x := &ctl{c: c, out: stdout, timeout: cf.timeout}
	verb, rest := rest[0], rest[1:]
	switch verb {
	case "status":
		return x.status(ctx)
	case "create":
		return x.create(ctx, rest)
	case "delete":
		if len(rest) != 2 || (rest[0] != "list" && rest[0] != "agent") {
			return fmt.Errorf("%w: delete list|agent|connector ID", errUsage)
		}
		return x.call(ctx, "delete_"+rest[0], api.IDArgs{ID: rest[1]}, nil, "deleted %s %s", rest[0], rest[1])
	case "subscribe", "unsubscribe":
		if len(rest) != 2 {
			return fmt.Errorf("%w: %s AGENT LIST", errUsage, verb)
		}
		return x.call(ctx, verb, api.SubscribeArgs{Agent: rest[0], List: rest[1]}, nil, "%sd %s to %s", verb, rest[0], rest[1])
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
	}
	return fmt.Errorf("%w: unknown verb %q\n%s", errUsage, verb, ctlUsage)
}

func (x *ctl) call(ctx context.Context, op string, args, out any, format string, a ...any) error {
	cctx, cancel := context.WithTimeout(ctx, x.timeout)
	defer cancel()
	if err := x.c.Call(cctx, op, args, out); err != nil {
		return err
	}
	if format != "" {
		fmt.Fprintf(x.out, format+"\n", a...)
	}
	return nil
}

func (x *ctl) create(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: create KIND ID [flags]", errUsage)
	}
	kind, id := args[0], args[1]
	flags := flag.NewFlagSet("create "+kind, flag.ContinueOnError)
	name := flags.String("name", "", "display name")
	mrd := flags.String("mrd", "", "media routing domain")
	typ := flags.String("type", "", "channel type")
	list := flags.String("list", "", "list of a pull channel")
	queue := flags.String("queue", "", "queue of a push channel")
	priority := flags.Int("priority", 0, "queue priority (higher first)")
	offerTimeout := flags.Duration("offer-timeout", 30*time.Second, "how long an offer waits for an answer")
	max := flags.String("max", "", "max concurrent conversations per MRD, e.g. social=3,chat=2")
	channels := flags.String("channels", "", "channels a connector may speak for, comma-separated")
	if err := flags.Parse(args[2:]); err != nil {
		return err
	}
	var cred node.Credential
	switch kind {
	case "mrd":
		return x.call(ctx, "create_mrd", api.CreateMRDArgs{ID: id, Name: *name}, nil, "created mrd %s", id)
	case "channel-type":
		return x.call(ctx, "create_channel_type", api.CreateChannelTypeArgs{ID: id, MRD: *mrd}, nil, "created channel type %s", id)
	case "list":
		return x.call(ctx, "create_list", api.CreateListArgs{ID: id, Name: *name}, nil, "created list %s", id)
	case "queue":
		return x.call(ctx, "create_queue", api.CreateQueueArgs{ID: id, Name: *name, MRD: *mrd, Priority: *priority, OfferTimeoutMs: offerTimeout.Milliseconds()}, nil, "created queue %s", id)
	case "channel":
		a := api.CreateChannelArgs{ID: id, Type: *typ, List: *list, Queue: *queue, Mode: api.ModePull}
		if *queue != "" {
			a.Mode = api.ModePush
		}
		return x.call(ctx, "create_channel", a, nil, "created %s channel %s", a.Mode, id)
	case "agent":
		m, err := parseMax(*max)
		if err != nil {
			return err
		}
		if err := x.call(ctx, "create_agent", api.CreateAgentArgs{ID: id, Name: *name, Max: m}, &cred, ""); err != nil {
			return err
		}
	case "connector":
		if *channels == "" {
			return fmt.Errorf("%w: create connector ID --channels C[,C...]", errUsage)
		}
		if err := x.call(ctx, "create_connector", api.CreateConnectorArgs{ID: id, Name: *name, Channels: strings.Split(*channels, ",")}, &cred, ""); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: cannot create %q", errUsage, kind)
	}
	fmt.Fprintf(x.out, "created %s %s\ntoken: %s\n", kind, cred.ID, cred.Token)
	return nil
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

func (x *ctl) table(header string, rows func(w io.Writer)) {
	w := tabwriter.NewWriter(x.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	rows(w)
	w.Flush()
}

func (x *ctl) status(ctx context.Context) error {
	var st api.NodeStatus
	if err := x.call(ctx, node.QueryStatus, nil, &st, ""); err != nil {
		return err
	}
	x.table("NODE\tSTATE\tTERM\tLEADER\tCOMMIT\tAPPLIED\tLAST LOG\tSNAPSHOT\tSESSIONS\tCLIENTS\tVERSION", func(w io.Writer) {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", st.Node, st.State, st.Term, st.Leader,
			st.CommitIndex, st.AppliedIndex, st.LastLogIndex, st.LastSnapshotIndex, st.Sessions, st.ClientAddr, st.Version)
	})
	fmt.Fprintln(x.out)
	x.table("MEMBER\tRAFT ADDRESS\tSUFFRAGE\tLEADER", func(w io.Writer) {
		for _, m := range st.Members {
			fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", m.ID, m.RaftAddr, m.Suffrage, m.Leader)
		}
	})
	return nil
}

func (x *ctl) get(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: get WHAT", errUsage)
	}
	if handled, err := x.getPush(ctx, args); handled {
		return err
	}
	switch {
	case args[0] == "list" && len(args) == 2:
		var snap api.ListSnapshot
		if err := x.call(ctx, api.QueryList, api.QueryArgs{List: args[1]}, &snap, ""); err != nil {
			return err
		}
		x.requestTable(snap.Requests)
		return nil
	case args[0] == "request" && len(args) == 2:
		var v api.ConversationView
		if err := x.call(ctx, api.QueryRequest, api.QueryArgs{Request: args[1]}, &v, ""); err != nil {
			return err
		}
		x.requestTable([]api.RequestSummary{v.Request})
		fmt.Fprintln(x.out)
		for _, m := range v.Transcript {
			fmt.Fprintln(x.out, formatMessage(m))
		}
		return nil
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
		return x.show(ctx, api.QueryLists, &v, "ID\tNAME\tOPEN\tSUBSCRIBERS", func(w io.Writer) {
			for _, l := range v {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", l.ID, dash(l.Name), l.Open, dash(strings.Join(l.Subscribers, ",")))
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

func (x *ctl) show(ctx context.Context, op string, out any, header string, rows func(io.Writer)) error {
	if err := x.call(ctx, op, nil, out, ""); err != nil {
		return err
	}
	x.table(header, rows)
	return nil
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
