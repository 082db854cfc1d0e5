package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/switchboard/switchboard/actors"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// QueryStatus is the read op that returns this node's transport.NodeStatus.
const QueryStatus = "status"

// Service is the node as the transport server sees it: it authenticates
// sessions, commits commands through Raft, answers reads from local state
// and attaches event streams to the actors. It implements transport.Backend.
type Service struct {
	node       *Node
	hub        *actors.Hub
	adminHash  [sha256.Size]byte
	clientAddr string
	sessions   func() int
	version    string
	batch      atomic.Pointer[Batcher] // group commit (batch.go)
	// The cluster side (forward.go, membership.go): peer connections,
	// this node's registry entry, timeouts, snapshot streaming.
	cl *clusterSide
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// AdminToken is the admin credential (only its hash is kept).
	AdminToken string
	// ClientAddr is this node's client address, reported in status.
	ClientAddr string
	// Sessions reports the number of open client connections (optional).
	Sessions func() int
	// Version is the build version reported in status.
	Version string
	// Batch configures group commit of submitted commands (batch.go).
	Batch BatchConfig
	// ClusterToken authenticates node-to-node calls, both ways (default:
	// AdminToken).
	ClusterToken string
	// PeerTLS, if set, is the TLS configuration for dialling other nodes
	// (with this node's client certificate for mutual TLS).
	PeerTLS *tls.Config
	// Logger receives the cluster side's logs (default: discarded).
	Logger *slog.Logger
}

// NewService wires a node and its hub into a transport.Backend.
func NewService(node *Node, hub *actors.Hub, cfg ServiceConfig) *Service {
	s := &Service{
		node:       node,
		hub:        hub,
		adminHash:  sha256.Sum256([]byte(cfg.AdminToken)),
		clientAddr: cfg.ClientAddr,
		sessions:   cfg.Sessions,
		version:    cfg.Version,
	}
	s.SetBatch(cfg.Batch)
	s.cl = newClusterSide(node, cfg)
	return s
}

// SetSessions sets the function that reports open client connections.
func (s *Service) SetSessions(f func() int) { s.sessions = f }

var errBadCredentials = &api.Error{Code: api.CodeUnauthenticated, Msg: "unknown principal or bad token"}

// Authenticate implements transport.Backend. Tokens are compared by their
// SHA-256 in constant time; an unknown id and a wrong token look the same.
func (s *Service) Authenticate(role api.Role, id, token string) (api.Principal, error) {
	sum := sha256.Sum256([]byte(token))
	switch role {
	case api.RoleAdmin:
		if token != "" && subtle.ConstantTimeCompare(sum[:], s.adminHash[:]) == 1 {
			return api.Principal{Role: api.RoleAdmin, ID: "admin"}, nil
		}
		return api.Principal{}, errBadCredentials
	case api.RoleAgent, api.RoleConnector:
		if token != "" && s.tokenMatches(role, id, sum[:]) {
			return api.Principal{Role: role, ID: id}, nil
		}
		// This node may not have applied a credential just created
		// through another node yet: catch up with the leader's commit
		// index once (forward.go) and look again.
		if token != "" && s.catchUpForAuth() && s.tokenMatches(role, id, sum[:]) {
			return api.Principal{Role: role, ID: id}, nil
		}
		return api.Principal{}, errBadCredentials
	}
	return api.Principal{}, &api.Error{Code: api.CodeUnauthenticated, Msg: fmt.Sprintf("unknown role %q", role)}
}

// tokenMatches reports whether the local state holds sum as the token hash
// of the agent or connector id.
func (s *Service) tokenMatches(role api.Role, id string, sum []byte) bool {
	var stored []byte
	s.node.FSM().Read(func(st *fsm.State, _ uint64) {
		if role == api.RoleAgent {
			if a := st.Agents[id]; a != nil {
				stored = a.TokenHash
			}
		} else if c := st.Connectors[id]; c != nil {
			stored = c.TokenHash
		}
	})
	return len(stored) == len(sum) && subtle.ConstantTimeCompare(sum, stored) == 1
}

// Credential is the result of create_agent and create_connector: the id and
// the token, which the node shows this once and stores only hashed.
type Credential struct {
	ID    string `msgpack:"id"`
	Token string `msgpack:"token"`
}

// Submit implements transport.Backend.
func (s *Service) Submit(ctx context.Context, cmd *fsm.Command) (fsm.Result, uint64, error) {
	var (
		token string
		hash  []byte
	)
	switch a := cmd.Args.(type) {
	case *api.CreateAgentArgs:
		token, hash = newToken()
		a.TokenHash = hash
	case *api.CreateConnectorArgs:
		token, hash = newToken()
		a.TokenHash = hash
	}
	// Proposed here on the leader, forwarded by a follower; either way
	// answered once this node has applied it (forward.go).
	res, index, err := s.commit(ctx, cmd)
	if err != nil {
		return fsm.Result{}, index, err
	}
	if token != "" && res.Err == nil && s.storedHashIs(cmd, hash) {
		res.Data = Credential{ID: createdID(cmd), Token: token}
	}
	// Otherwise this was a retry answered from the idempotency record: the
	// stored hash is the first attempt's, so this attempt's token would not
	// log in. The token was shown once, to the first answer.
	return res, index, nil
}

// createdID is the id a create_agent or create_connector command creates.
func createdID(cmd *fsm.Command) string {
	switch a := cmd.Args.(type) {
	case *api.CreateAgentArgs:
		return a.ID
	case *api.CreateConnectorArgs:
		return a.ID
	}
	return ""
}

// storedHashIs reports whether the credential the state holds for the
// principal a create command made is hash.
func (s *Service) storedHashIs(cmd *fsm.Command, hash []byte) bool {
	var stored []byte
	s.node.FSM().Read(func(st *fsm.State, _ uint64) {
		switch a := cmd.Args.(type) {
		case *api.CreateAgentArgs:
			if ag := st.Agents[a.ID]; ag != nil {
				stored = ag.TokenHash
			}
		case *api.CreateConnectorArgs:
			if c := st.Connectors[a.ID]; c != nil {
				stored = c.TokenHash
			}
		}
	})
	return subtle.ConstantTimeCompare(stored, hash) == 1
}

// newToken returns a random 256-bit token and its SHA-256.
func newToken() (string, []byte) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(tok))
	return tok, sum[:]
}

// Query implements transport.Backend: reads served from local state, after
// a read barrier when the request asked for a linearizable read
// (transport.IsLinearizable), and the admin cluster ops (admin_ops.go).
func (s *Service) Query(ctx context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error) {
	if op == QueryStatus {
		return s.Status(), nil
	}
	if h := adminOps[op]; h != nil {
		if p.Role != api.RoleAdmin {
			return nil, api.Errorf(api.CodeForbidden, "%s may not %s", p.Role, op)
		}
		return h(s, ctx, args)
	}
	if transport.IsLinearizable(ctx) {
		if err := s.readBarrier(ctx); err != nil {
			return nil, err
		}
	}
	var (
		out  any
		qerr *api.Error
	)
	s.node.FSM().Read(func(st *fsm.State, _ uint64) {
		out, qerr = st.Query(p, op, args)
	})
	if qerr != nil {
		return nil, qerr
	}
	return out, nil
}

// Attach implements transport.Backend.
func (s *Service) Attach(key string, since uint64, resume bool, out transport.Outbox) func() {
	return s.hub.Attach(key, since, resume, out)
}

// Status returns this node's status for the status query.
func (s *Service) Status() transport.NodeStatus {
	st := s.node.Status()
	ns := transport.NodeStatus{
		Node:              st.ID,
		ClientAddr:        s.clientAddr,
		RaftAddr:          st.RaftAddr,
		State:             st.State,
		Term:              st.Term,
		Leader:            st.LeaderID,
		LeaderAddr:        st.LeaderAddr,
		CommitIndex:       st.CommitIndex,
		AppliedIndex:      st.AppliedIndex,
		LastLogIndex:      st.LastLogIndex,
		LastSnapshotIndex: st.LastSnapshotIndex,
		Version:           s.version,
	}
	if r := s.node.Raft(); r != nil {
		ns.RaftAppliedIndex = r.AppliedIndex()
	}
	for _, m := range st.Members {
		ns.Members = append(ns.Members, transport.Member{ID: m.ID, RaftAddr: m.Address, Suffrage: m.Suffrage, Leader: m.ID == st.LeaderID})
	}
	if s.sessions != nil {
		ns.Sessions = s.sessions()
	}
	return ns
}
