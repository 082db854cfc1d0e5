package node

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/switchboard/switchboard/console"
)

// The node's HTTP listener (Config.HTTPAddr): probes for load balancers and
// orchestrators, Prometheus metrics, and Go's profiler for the admin.
//
//	GET /healthz        200 while the process runs
//	GET /readyz         200 when the node serves clients, else 503; JSON either way
//	GET /metrics        Prometheus text format (Metrics)
//	GET /debug/pprof/   net/http/pprof, with Authorization: Bearer <admin token>
//	    /console/       the supervisors' web console (package console)
//
// docs/OPERATIONS.md ("Monitoring", "Web console") documents them for
// operators.

// readyApplyWait is how long /readyz waits for this node to apply what it
// knows committed before it answers 503: a healthy node applies within
// milliseconds, so a probe does not flap under load, while a node that is
// really behind is reported so.
const readyApplyWait = time.Second

// Readiness is the body of /readyz.
type Readiness struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"` // "ready", or why not
	Node   string `json:"node"`
	Leader string `json:"leader,omitempty"`
	// CommitIndex is the last index this node knows committed;
	// AppliedIndex what Raft has applied of it.
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// Readiness reasons: the first word of Readiness.Reason when not ready.
const (
	ReasonRemoved  = "removed"
	ReasonHalted   = "halted"
	ReasonClosing  = "shutting down"
	ReasonStarting = "starting"
	ReasonNoLeader = "no leader"
	ReasonBehind   = "catching up"
)

// readiness reports whether the node is ready: it serves clients, knows a
// leader and has applied up to the commit index it learned. With a done
// channel it waits up to readyApplyWait (or until done) for the applied
// index to reach the commit index before saying it is behind; with nil it
// does not wait.
func (s *Server) readiness(done <-chan struct{}) (bool, Readiness) {
	st := s.Node.Status()
	rd := Readiness{Node: st.ID, Leader: st.LeaderID, CommitIndex: st.CommitIndex}
	r := s.Node.Raft()
	if r != nil {
		rd.AppliedIndex = r.AppliedIndex()
	}
	not := func(reason string) (bool, Readiness) {
		rd.Reason = reason
		return false, rd
	}
	switch {
	case s.closing.Load():
		return not(ReasonClosing)
	case s.Removed():
		return not(ReasonRemoved + ": this node is no longer a member of the cluster")
	case s.HaltErr() != nil:
		return not(ReasonHalted + ": " + s.HaltErr().Error())
	case !isClosed(s.ready):
		return not(ReasonStarting + ": not yet caught up with the leader")
	case st.LeaderID == "" || r == nil:
		return not(ReasonNoLeader + ": this node knows no leader")
	}
	if rd.AppliedIndex < rd.CommitIndex && done != nil {
		deadline := time.NewTimer(readyApplyWait)
		defer deadline.Stop()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
	wait:
		for rd.AppliedIndex < rd.CommitIndex {
			select {
			case <-done:
				break wait
			case <-deadline.C:
				break wait
			case <-tick.C:
				rd.AppliedIndex = r.AppliedIndex()
			}
		}
	}
	if rd.AppliedIndex < rd.CommitIndex {
		return not(fmt.Sprintf("%s: applied %d of %d committed", ReasonBehind, rd.AppliedIndex, rd.CommitIndex))
	}
	rd.Ready, rd.Reason = true, "ready"
	return true, rd
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// httpHandler returns the node's HTTP routes, the console's among them.
func (s *Server) httpHandler(adminToken string, cons http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/console/", cons)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "node": s.Node.ID()})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		ok, rd := s.readiness(req.Context().Done())
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, rd)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{
		ErrorLog: promLogger{s}, Registry: s.Metrics.Registry,
	}))
	admin := adminOnly(adminToken)
	mux.Handle("/debug/pprof/", admin(http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/cmdline", admin(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("/debug/pprof/profile", admin(http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/symbol", admin(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("/debug/pprof/trace", admin(http.HandlerFunc(pprof.Trace)))
	return mux
}

// adminOnly lets a request through only with the admin token as a bearer
// token, compared by SHA-256 in constant time; else 401.
func adminOnly(token string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(got))
			if !ok || got == "" || token == "" || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard admin"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "the admin token is required: Authorization: Bearer <admin token>"})
				return
			}
			h.ServeHTTP(w, req)
		})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// promLogger sends promhttp's errors to the node's log.
type promLogger struct{ s *Server }

func (l promLogger) Println(v ...any) { l.s.log.Warn("metrics: " + fmt.Sprint(v...)) }

// listenHTTP returns the HTTP listener: the one handed over, else one
// bound at cfg.HTTPAddr, else nil (no HTTP listener).
func listenHTTP(cfg Config) (net.Listener, error) {
	if cfg.HTTPListener != nil {
		return cfg.HTTPListener, nil
	}
	if cfg.HTTPAddr == "" || cfg.HTTPAddr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for HTTP on %s: %w", cfg.HTTPAddr, err)
	}
	return ln, nil
}

// newConsole returns the web console over the backend. Its session keys
// come from the cluster secret, the same on every node, so that a
// supervisor's browser may land on any of them.
func newConsole(b *Backend, cfg Config, log *slog.Logger) (*console.Handler, error) {
	cons, err := console.New(console.Config{
		Backend: b,
		Secret:  []byte(cfg.ClusterToken),
		Node:    cfg.Raft.NodeID,
		Logger:  log,
	})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return cons, nil
}

// serveHTTP serves the HTTP routes, the console's among them, on ln until
// closeHTTP.
func (s *Server) serveHTTP(ln net.Listener, adminToken string, cons *console.Handler) {
	s.http = &http.Server{
		Handler:           s.httpHandler(adminToken, cons),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
	}
	// Shutdown waits for the requests in progress: the console's event
	// streams end at once instead (the browsers reconnect elsewhere).
	s.http.RegisterOnShutdown(cons.Close)
	s.httpLn = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP listener stopped", "err", err)
		}
	}()
}

// closeHTTP stops the HTTP listener, letting requests in progress finish
// for a moment.
func (s *Server) closeHTTP() {
	if s.http == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		_ = s.http.Close()
	}
}

// HTTPAddr returns the address of the HTTP listener, or "" without one.
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}
