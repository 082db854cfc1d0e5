package node

import (
	"log/slog"
	"reflect"
	"strings"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/vmihailenco/msgpack/v5"
)

// The audit trail: one INFO line, with the attribute audit=true, for every
// admin change, on the node that received it — who (the principal), what
// (the op, and the entity it names when it names one), where it landed (the
// log index) and the outcome. Filter a node's logs on audit=true to get it.
//
//	level=INFO msg="admin command applied" audit=true principal=admin:admin op=create_agent target=alice index=42 outcome=ok
//
// Admin commands are logged once committed, whatever their outcome (a
// business error is applied as a no-op at its index); a command that
// failed to commit is logged with index 0 and the failure's code, so an
// attempt is never silent. The cluster ops of the client protocol that
// are not log entries (cluster_remove, cluster_transfer_leadership,
// snapshot_take) are logged too, without an index.

// auditKey is the attribute that marks an audit line.
const auditKey = "audit"

// audit logs an admin's or a supervisor's command submitted through this
// node: both act on others, so who did what must be on record.
func (b *Backend) audit(cmd *fsm.Command, res fsm.Result, index uint64, err error) {
	if cmd.By.Role != api.RoleAdmin && cmd.By.Role != api.RoleSupervisor {
		return
	}
	attrs := []any{slog.Bool(auditKey, true),
		"principal", cmd.By.Role.String() + ":" + cmd.By.ID,
		"op", opName(cmd.Op)}
	if t := auditTarget(cmd.Args); t != "" {
		attrs = append(attrs, "target", t)
	}
	attrs = append(attrs, "index", index, "outcome", outcome(res, err))
	msg := cmd.By.Role.String() + " command applied"
	if err != nil {
		msg = cmd.By.Role.String() + " command not committed"
	}
	b.log.Info(msg, attrs...)
}

// auditAdminOp logs an admin cluster op of the client protocol that
// changes something.
func (b *Backend) auditAdminOp(p api.Principal, op string, args msgpack.RawMessage, err error) {
	if op == QueryClusterStatus || op == OpSnapshotRead {
		return // reads
	}
	attrs := []any{slog.Bool(auditKey, true), "principal", p.Role.String() + ":" + p.ID, "op", op}
	var a struct {
		Node string `msgpack:"node"`
	}
	if len(args) > 0 && msgpack.Unmarshal(args, &a) == nil && a.Node != "" {
		attrs = append(attrs, "target", a.Node)
	}
	attrs = append(attrs, "outcome", outcome(fsm.Result{}, err))
	b.log.Info("admin cluster op", attrs...)
}

// auditTarget returns the entity a command's arguments name: their ID
// field (create_agent, create_list...), else their Request field (close,
// transfer...), else their Agent field (subscribe, set_agent_state...),
// else "".
func auditTarget(args any) string {
	v := reflect.ValueOf(args)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	for _, name := range []string{"ID", "Request", "Agent"} {
		if f := v.FieldByName(name); f.IsValid() && f.Kind() == reflect.String && f.String() != "" {
			return f.String()
		}
	}
	return ""
}

// streamRole is the role label of an event stream's recipient key.
func streamRole(key string) string {
	role, _, _ := strings.Cut(key, ":")
	return role
}

// opName is the registered name of a command's op.
func opName(op fsm.Op) string {
	if info := fsm.Commands.Lookup(op); info != nil {
		return info.Name
	}
	return "unknown"
}
