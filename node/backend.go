package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/actors"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// QueryStatus is the read op (and the node op) that answers this node's
// transport.NodeStatus.
const QueryStatus = "status"

// Backend is the node as the client server (transport.Server) sees it: it
// authenticates sessions, commits commands through the cluster, answers
// reads from local state (and the admin ops, admin.go) and attaches event
// streams to the actors. It implements transport.Backend.
type Backend struct {
	fsm       *cluster.FSM
	raft      *cluster.Node
	cl        *cluster.Service
	hub       *actors.Hub
	adminHash [sha256.Size]byte
	version   string
	// sessions reports the open client connections (the transport
	// server's count; set once the server exists, before it serves).
	sessions func() int
	// authSem bounds the authentications catching up with the leader at
	// once (catchUpForAuth).
	authSem chan struct{}
	// metrics counts commands and deliveries (nil: not counted); log
	// carries the audit lines (audit.go); removed is set once the node was
	// removed from the cluster (removed.go), after which clients are
	// refused.
	metrics *Metrics
	log     *slog.Logger
	removed atomic.Bool
}

var (
	_ transport.Backend           = (*Backend)(nil)
	_ transport.CredentialChecker = (*Backend)(nil)
)

// CredentialValid implements transport.CredentialChecker: the local state
// still holds tokenHash as p's token hash.
func (b *Backend) CredentialValid(p api.Principal, tokenHash []byte) bool {
	return b.tokenMatches(p.Role, p.ID, tokenHash)
}

var errRevoked = &api.Error{Code: api.CodeUnauthenticated, Msg: "credential revoked: the principal was deleted or its token replaced"}

func newBackend(cl *cluster.Service, hub *actors.Hub, adminToken, version string) *Backend {
	return &Backend{
		fsm:       cl.Node().FSM(),
		raft:      cl.Node(),
		cl:        cl,
		hub:       hub,
		adminHash: sha256.Sum256([]byte(adminToken)),
		version:   version,
		authSem:   make(chan struct{}, 16),
		log:       slog.New(slog.DiscardHandler),
	}
}

var errBadCredentials = &api.Error{Code: api.CodeUnauthenticated, Msg: "unknown principal or bad token"}

// Authenticate implements transport.Backend. Tokens are compared by their
// SHA-256 in constant time; an unknown id and a wrong token look the same.
func (b *Backend) Authenticate(role api.Role, id, token string) (api.Principal, error) {
	if b.removed.Load() {
		return api.Principal{}, errRemoved(b.raft.ID())
	}
	sum := sha256.Sum256([]byte(token))
	switch role {
	case api.RoleAdmin:
		if token != "" && subtle.ConstantTimeCompare(sum[:], b.adminHash[:]) == 1 {
			return api.Principal{Role: api.RoleAdmin, ID: "admin"}, nil
		}
		return api.Principal{}, errBadCredentials
	case api.RoleAgent, api.RoleConnector, api.RoleSupervisor:
		if token != "" && b.tokenMatches(role, id, sum[:]) {
			return api.Principal{Role: role, ID: id}, nil
		}
		// This node may not have applied a credential just created
		// through another node yet: catch up with the leader's commit
		// index once and look again.
		if token != "" && b.catchUpForAuth() && b.tokenMatches(role, id, sum[:]) {
			return api.Principal{Role: role, ID: id}, nil
		}
		return api.Principal{}, errBadCredentials
	}
	return api.Principal{}, &api.Error{Code: api.CodeUnauthenticated, Msg: fmt.Sprintf("unknown role %q", role)}
}

// tokenMatches reports whether the local state holds sum as the token hash
// of the agent, connector or supervisor id.
func (b *Backend) tokenMatches(role api.Role, id string, sum []byte) bool {
	var stored []byte
	b.fsm.Read(func(st *fsm.State, _ uint64) { stored = storedHash(st, role, id) })
	return len(stored) == len(sum) && subtle.ConstantTimeCompare(sum, stored) == 1
}

// storedHash is the token hash st holds for role's id (nil: none).
func storedHash(st *fsm.State, role api.Role, id string) []byte {
	switch role {
	case api.RoleAgent:
		if a := st.Agents[id]; a != nil {
			return a.TokenHash
		}
	case api.RoleConnector:
		if c := st.Connectors[id]; c != nil {
			return c.TokenHash
		}
	case api.RoleSupervisor:
		if sv := st.Supervisors[id]; sv != nil {
			return sv.TokenHash
		}
	}
	return nil
}

// authCatchUpTimeout bounds the read barrier of a failed authentication.
const authCatchUpTimeout = 2 * time.Second

// catchUpForAuth brings this node up to the leader's commit index (a read
// barrier) after a credential check failed on local state, so that an
// agent or connector created through another node a moment ago can log in
// here. It reports whether it caught up; at most a few run at once, so bad
// credentials cannot flood the leader.
func (b *Backend) catchUpForAuth() bool {
	select {
	case b.authSem <- struct{}{}:
	default:
		return false
	}
	defer func() { <-b.authSem }()
	ctx, cancel := context.WithTimeout(context.Background(), authCatchUpTimeout)
	defer cancel()
	return b.cl.ReadBarrier(ctx) == nil
}

// Credential is the result of create_agent and create_connector: the id and
// the token, which the node shows this once and stores only hashed.
type Credential struct {
	ID    string `msgpack:"id"`
	Token string `msgpack:"token"`
}

// Commit is the transport's write path: the command is decoded and its
// sender's role checked (fsm.Registry.NewCommand), so bad arguments and a
// forbidden op are refused before anything is proposed; then it is
// submitted.
func (b *Backend) Commit(ctx context.Context, w transport.Write) (any, uint64, error) {
	if b.removed.Load() {
		return nil, 0, errRemoved(b.raft.ID())
	}
	if w.TokenHash != nil && !b.tokenMatches(w.By.Role, w.By.ID, w.TokenHash) {
		// The session's credential is not the principal's any more: an
		// old session must not act as a re-created id.
		return nil, 0, errRevoked
	}
	cmd, ferr := fsm.Commands.NewCommand(w.By, w.ClientID, w.Seq, w.Op, w.Args)
	if ferr != nil {
		b.metrics.observeRefused(ferr)
		return nil, 0, ferr
	}
	if err := b.precheckSupervisor(ctx, cmd); err != nil {
		b.metrics.observeRefused(err)
		b.audit(cmd, fsm.Result{}, 0, err)
		return nil, 0, err
	}
	res, index, err := b.Submit(ctx, cmd)
	if err != nil {
		return nil, 0, err
	}
	if res.Err != nil {
		return nil, index, res.Err
	}
	return res.Data, index, nil
}

// precheckSupervisor refuses, before it is proposed, a supervisor's
// command that Apply would let reach outside its scope: a
// transfer_to_queue into a queue it does not supervise
// (fsm.State.PrecheckSupervisor, which says why the check holds when
// made before Apply). A queue this node does not hold may have been
// created through another node a moment ago: it looks again after a
// read barrier, so that the answer does not depend on the node the
// supervisor is connected to; if the barrier fails, so does the command
// (no_leader, timeout: retry), since passing it on unchecked could let
// it into such a queue.
func (b *Backend) precheckSupervisor(ctx context.Context, cmd *fsm.Command) error {
	if cmd.By.Role != api.RoleSupervisor {
		return nil
	}
	check := func() (err *api.Error) {
		b.fsm.Read(func(st *fsm.State, _ uint64) { err = st.PrecheckSupervisor(cmd) })
		return err
	}
	err := check()
	if err == nil {
		return nil
	}
	if err.Code != api.CodeNotFound {
		return err
	}
	if berr := b.cl.ReadBarrier(ctx); berr != nil {
		return berr
	}
	if err = check(); err != nil {
		return err
	}
	return nil
}

// Submit implements transport.Backend.
func (b *Backend) Submit(ctx context.Context, cmd *fsm.Command) (fsm.Result, uint64, error) {
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
	case *api.CreateSupervisorArgs:
		token, hash = newToken()
		a.TokenHash = hash
	}
	// Proposed here on the leader, forwarded by a follower; either way
	// answered once this node has applied it (cluster.Service.Commit).
	start := time.Now()
	res, index, err := b.cl.Commit(ctx, cmd)
	b.metrics.observeCommand(opName(cmd.Op), res, err, time.Since(start))
	b.audit(cmd, res, index, err)
	if err != nil {
		return fsm.Result{}, index, err
	}
	if role, id := createdPrincipal(cmd); token != "" && res.Err == nil && b.tokenMatches(role, id, hash) {
		res.Data = Credential{ID: id, Token: token}
	}
	// Otherwise this was a retry answered from the idempotency record: the
	// stored hash is the first attempt's, so this attempt's token would not
	// log in. The token was shown once, to the first answer.
	return res, index, nil
}

// createdPrincipal is the principal a create_agent, create_connector or
// create_supervisor command creates.
func createdPrincipal(cmd *fsm.Command) (api.Role, string) {
	switch a := cmd.Args.(type) {
	case *api.CreateAgentArgs:
		return api.RoleAgent, a.ID
	case *api.CreateConnectorArgs:
		return api.RoleConnector, a.ID
	case *api.CreateSupervisorArgs:
		return api.RoleSupervisor, a.ID
	}
	return api.RoleNone, ""
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
// (transport.IsLinearizable), and the admin cluster ops (admin.go).
func (b *Backend) Query(ctx context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error) {
	if op == QueryStatus {
		st := b.Status()
		if p.Role != api.RoleAdmin {
			// Only nodes and admins need the Raft addresses; nobody
			// else should learn where the Raft ports are.
			st.RaftAddr, st.LeaderAddr, st.Members = "", "", nil
		}
		return st, nil
	}
	if b.removed.Load() {
		return nil, errRemoved(b.raft.ID())
	}
	if h := adminOps[op]; h != nil {
		if p.Role != api.RoleAdmin {
			return nil, api.Errorf(api.CodeForbidden, "%s may not %s", p.Role, op)
		}
		out, err := h(b, ctx, args)
		b.auditAdminOp(p, op, args, err)
		return out, err
	}
	if transport.IsLinearizable(ctx) {
		if err := b.cl.ReadBarrier(ctx); err != nil {
			return nil, err
		}
	}
	var (
		out  any
		qerr *api.Error
	)
	b.fsm.Read(func(st *fsm.State, _ uint64) {
		out, qerr = st.Query(p, op, args)
	})
	if qerr != nil {
		return nil, qerr
	}
	return out, nil
}

// cursorWait is how long an attach waits for this node to reach a resume
// cursor ahead of it before answering with a sync instead.
const cursorWait = 2 * time.Second

// Attach implements transport.Backend.
func (b *Backend) Attach(key string, since uint64, resume bool, out transport.Outbox) func() {
	asked := resume
	if index := api.IndexOf(since); resume && index > b.raft.FSM().Applied() {
		// A cursor this node has not reached: another node's that is
		// ahead of this one (it catches up in a moment), or one beyond
		// the log altogether. Wait a moment; past that, a sync rather
		// than a stream that stays silent until the log gets there.
		ctx, cancel := context.WithTimeout(context.Background(), cursorWait)
		if err := b.raft.WaitIndex(ctx, index); err != nil {
			resume = false
		}
		cancel()
	}
	return b.metrics.wrapAttach(streamRole(key), asked, out, func(out transport.Outbox) func() {
		return b.hub.Attach(key, since, resume, out)
	})
}

// Status returns this node's status for the status query.
func (b *Backend) Status() api.NodeStatus {
	st := b.raft.Status()
	ns := api.NodeStatus{
		Node:              st.ID,
		ClientAddr:        b.cl.ClientAddr(),
		RaftAddr:          st.RaftAddr,
		State:             st.State,
		Term:              st.Term,
		Leader:            st.LeaderID,
		LeaderAddr:        st.LeaderAddr,
		CommitIndex:       st.CommitIndex,
		AppliedIndex:      st.AppliedIndex,
		LastLogIndex:      st.LastLogIndex,
		LastSnapshotIndex: st.LastSnapshotIndex,
		Version:           b.version,
		MaxFeatureLevel:   b.raft.FSM().MaxLevel(),
		Removed:           b.removed.Load(),
	}
	b.raft.FSM().Read(func(s *fsm.State, _ uint64) { ns.FeatureLevel = s.ActiveLevel() })
	if r := b.raft.Raft(); r != nil {
		ns.RaftAppliedIndex = r.AppliedIndex()
	}
	for _, m := range st.Members {
		ns.Members = append(ns.Members, api.Member{ID: m.ID, RaftAddr: m.Address, Suffrage: m.Suffrage, Leader: m.ID == st.LeaderID})
	}
	if b.sessions != nil {
		ns.Sessions = b.sessions()
	}
	return ns
}
