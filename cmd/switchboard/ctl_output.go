package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// query runs a read and prints its result: as JSON with -o json, else with
// render.
func (x *ctl) query(ctx context.Context, op string, args, out any, render func()) error {
	if err := x.do(ctx, op, args, out); err != nil {
		return err
	}
	if x.json {
		return x.printJSON(out)
	}
	render()
	return nil
}

// done reports a change that was applied: the sentence format in table
// mode; with -o json an object {"op", "args", "result"} holding the wire
// op, the arguments sent and the result received (null when none).
func (x *ctl) done(op string, args, result any, format string, a ...any) error {
	if !x.json {
		if format != "" {
			fmt.Fprintf(x.out, format+"\n", a...)
		}
		return nil
	}
	jargs, err := jsonValue(args)
	if err != nil {
		return err
	}
	jres, err := jsonValue(result)
	if err != nil {
		return err
	}
	return writeJSON(x.out, struct {
		Op     string `json:"op"`
		Args   any    `json:"args"`
		Result any    `json:"result"`
	}{op, jargs, jres})
}

// printJSON prints v indented. Values of our wire types (api, transport,
// cluster) go through jsonValue, so their keys are the snake_case names of
// docs/PROTOCOL.md; values with json tags of their own print as tagged.
func (x *ctl) printJSON(v any) error {
	if _, own := v.(jsonTagged); !own {
		var err error
		if v, err = jsonValue(v); err != nil {
			return err
		}
	}
	return writeJSON(x.out, v)
}

// jsonTagged marks output types whose json tags are their contract.
type jsonTagged interface{ jsonTagged() }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonValue turns a value of a wire type into plain maps, slices and
// scalars keyed as on the wire: it is encoded with msgpack, whose struct
// tags are the protocol's snake_case names, and decoded generically. A nil
// pointer or slice becomes nil (JSON null).
func jsonValue(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("json output: %w", err)
	}
	var out any
	if err := msgpack.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("json output: %w", err)
	}
	return out, nil
}

// writeTable prints a tab-separated header and rows as aligned columns.
func writeTable(out io.Writer, header string, rows func(w io.Writer)) {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	rows(w)
	w.Flush()
}

func (x *ctl) table(header string, rows func(w io.Writer)) { writeTable(x.out, header, rows) }

// appliedIndex is the last log index the node has applied: the state
// machine's applied index, or Raft's when that is further (Raft also
// applies the no-op and configuration entries that never reach the
// state). Lag is measured against this.
func appliedIndex(st api.NodeStatus) uint64 {
	return max(st.AppliedIndex, st.RaftAppliedIndex)
}

// orUnknown is s, or "unknown" when s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// renderStatus prints `ctl status`: the node, then the members it knows.
func renderStatus(out io.Writer, st api.NodeStatus) {
	writeTable(out, "NODE\tSTATE\tTERM\tLEADER\tCOMMIT\tAPPLIED\tLAST LOG\tSNAPSHOT\tSESSIONS\tCLIENTS\tVERSION", func(w io.Writer) {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", st.Node, st.State, st.Term, orUnknown(st.Leader),
			st.CommitIndex, appliedIndex(st), st.LastLogIndex, st.LastSnapshotIndex, st.Sessions, dash(st.ClientAddr), dash(st.Version))
	})
	fmt.Fprintln(out)
	writeTable(out, "MEMBER\tRAFT ADDRESS\tSUFFRAGE\tLEADER", func(w io.Writer) {
		for _, m := range st.Members {
			fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", m.ID, m.RaftAddr, m.Suffrage, m.Leader)
		}
	})
}
