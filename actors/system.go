package actors

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// Defaults of the commands the node issues itself.
const (
	// DefaultLogoutGrace is how long an agent's last session on a node may
	// stay closed before that node logs the agent out.
	DefaultLogoutGrace = 30 * time.Second
	// systemSubmitTimeout bounds one submitted command.
	systemSubmitTimeout = 10 * time.Second
)

// system is the principal of the commands this node issues.
func (h *Hub) system() api.Principal {
	id := "node"
	if h.cfg.NodeID != "" {
		id = "node:" + h.cfg.NodeID
	}
	return api.Principal{Role: api.RoleSystem, ID: id}
}

// submit commits cmd through Config.Submit in its own goroutine (an actor
// never waits on Raft) and calls done, if not nil, with the outcome. It
// reports false, doing nothing, when there is no Submit or the hub is
// closed.
func (h *Hub) submit(cmd *fsm.Command, done func(fsm.Result, error)) bool {
	if h.cfg.Submit == nil {
		return false
	}
	return h.job(func(ctx context.Context) {
		res, err := h.cfg.Submit(ctx, cmd)
		if done != nil {
			done(res, err)
		}
	})
}

// job runs fn in its own goroutine with a context bounded by
// systemSubmitTimeout and cancelled by Close, which waits for it. A panic
// in fn is logged. It reports false, doing nothing, once the hub is
// closed.
func (h *Hub) job(fn func(ctx context.Context)) bool {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	h.jobs.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.jobs.Done()
		defer func() {
			if v := recover(); v != nil {
				h.log.Error("system job panicked", "panic", v, "stack", string(debug.Stack()))
			}
		}()
		ctx, cancel := context.WithTimeout(h.ctx, systemSubmitTimeout)
		defer cancel()
		fn(ctx)
	}()
	return true
}
