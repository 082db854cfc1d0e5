package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/api"
)

// Server defaults, used for zero ServerConfig fields.
const (
	DefaultHelloTimeout = 5 * time.Second  // time to send hello after connecting
	DefaultOutboxFrames = 8192             // outbound queue per session, in frames
	DefaultOutboxBytes  = 4 << 20          // outbound queue per session, in bytes
	DefaultWriteTimeout = 10 * time.Second // longest a socket write may stall
	DefaultIdleTimeout  = 2 * time.Minute  // longest silence from a client
	// DefaultMaxInFlight is the concurrent requests per session: the
	// idempotency window (fsm.SessionWindow), so that every write a client
	// has in flight can still be answered from its record on a retry.
	DefaultMaxInFlight = 128
)

// byeTimeout bounds how long a closing session may spend writing what is
// left of its queue and its bye frame.
const byeTimeout = time.Second

// lingerTimeout is how long a closing session keeps reading (and discarding)
// after its last write, waiting for the client to close first: closing a
// socket with unread input sends a reset, which can destroy the bye in
// flight to the client.
const lingerTimeout = 500 * time.Millisecond

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("transport: server closed")

// ServerConfig configures a Server. Zero fields take their defaults.
type ServerConfig struct {
	// NodeID is this node's id, sent in welcome.
	NodeID string
	// MaxFrame is the largest frame payload accepted and announced in
	// welcome (default DefaultMaxFrame).
	MaxFrame int
	// HelloTimeout is how long a new connection has to send its hello
	// (default 5s).
	HelloTimeout time.Duration
	// OutboxFrames bounds each session's outbound queue, in frames (default
	// 8192). A session whose queue overflows is cut off with
	// CodeSlowConsumer.
	OutboxFrames int
	// OutboxBytes bounds each session's outbound queue in bytes (default
	// DefaultOutboxBytes, 4 MiB), counting frames until the socket has
	// taken them: a session that has that much waiting when another
	// frame comes is cut off with CodeSlowConsumer. One frame is always
	// accepted into a queue below the bound, so a session holds at most
	// OutboxBytes plus its largest frame.
	OutboxBytes int
	// WriteTimeout bounds every socket write (default 10s); a write that
	// makes no progress for that long closes the session.
	WriteTimeout time.Duration
	// IdleTimeout closes a session that sends nothing for that long
	// (default 2 minutes); every inbound frame resets it, so clients ping.
	IdleTimeout time.Duration
	// KeepaliveInterval is how long a session may go without the server
	// sending anything before it sends a ping (default 5s; negative: never).
	// It is announced in welcome (ping_ms) so that clients can tell a
	// frozen or dead node from a quiet one: silence for three intervals.
	KeepaliveInterval time.Duration
	// MaxInFlight bounds concurrent requests per session (default 128).
	// Beyond it the session stops reading its socket until one completes.
	MaxInFlight int
	// AgentWriteRate, ConnectorWriteRate and AdminWriteRate bound each
	// principal's writes on this node, shared by all its sessions here
	// (defaults DefaultAgentWriteRate...; Unlimited turns one off). A
	// write over the rate is answered rate_limited with retry_ms and not
	// applied.
	AgentWriteRate, ConnectorWriteRate, AdminWriteRate Rate
	// LoginFailuresPerAddr and LoginFailuresPerUser throttle failed
	// hellos per source address and per role and user id (defaults
	// DefaultLoginFailuresPerAddr, DefaultLoginFailuresPerUser): once one
	// has used up its failures, its hellos get bye rate_limited before the
	// credentials are checked.
	LoginFailuresPerAddr, LoginFailuresPerUser Rate
	// MaxConns and MaxConnsPerAddr cap the connections open at once on
	// the client port, in all and per source address (defaults
	// DefaultMaxConns, DefaultMaxConnsPerAddr; negative: no cap). The
	// node's listener applies them (NewLimitListener).
	MaxConns, MaxConnsPerAddr int
	// Logger receives connection and cut-off logs (default slog.Default()).
	Logger *slog.Logger
}

// orDefault is r, or def when r is zero; a positive rate without a burst
// gets one second's worth.
func (r Rate) orDefault(def Rate) Rate {
	if r == (Rate{}) {
		return def
	}
	if r.PerSec > 0 && r.Burst < 1 {
		r.Burst = max(1, int(math.Ceil(r.PerSec)))
	}
	return r
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg ServerConfig) withDefaults() ServerConfig {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	if cfg.OutboxFrames <= 0 {
		cfg.OutboxFrames = DefaultOutboxFrames
	}
	if cfg.OutboxBytes <= 0 {
		cfg.OutboxBytes = DefaultOutboxBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.KeepaliveInterval == 0 {
		cfg.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	cfg.AgentWriteRate = cfg.AgentWriteRate.orDefault(DefaultAgentWriteRate)
	cfg.ConnectorWriteRate = cfg.ConnectorWriteRate.orDefault(DefaultConnectorWriteRate)
	cfg.AdminWriteRate = cfg.AdminWriteRate.orDefault(DefaultAdminWriteRate)
	cfg.LoginFailuresPerAddr = cfg.LoginFailuresPerAddr.orDefault(DefaultLoginFailuresPerAddr)
	cfg.LoginFailuresPerUser = cfg.LoginFailuresPerUser.orDefault(DefaultLoginFailuresPerUser)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// Server accepts client connections and runs one session per connection in
// front of a Backend. Create it with NewServer, run it with Serve and stop it
// with Close.
type Server struct {
	backend Backend
	cfg     ServerConfig
	log     *slog.Logger

	// ctx is the parent of every request context; cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc

	writes    *writeLimits   // per-principal write buckets
	addrFails *failureLimits // failed hellos per source address
	userFails *failureLimits // failed hellos per role and user
	cutLog    cutLogs        // rate-limited cut-off warnings
	limited   limitCounts    // rate-limit refusals (RateLimited)

	writers sync.Pool     // *bufio.Writer, lent to sessions while they write
	nextID  atomic.Uint64 // session ids, for logs
	panics  atomic.Uint64 // recovered panics (tests assert zero)

	mu        sync.Mutex
	closed    bool
	listeners []net.Listener
	sessions  map[*session]struct{}
	wg        sync.WaitGroup // session goroutines
}

// NewServer returns a server for backend b. It does not listen until Serve.
func NewServer(b Backend, cfg ServerConfig) *Server {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		backend:   b,
		cfg:       cfg,
		log:       cfg.Logger,
		ctx:       ctx,
		cancel:    cancel,
		sessions:  map[*session]struct{}{},
		writes:    newWriteLimits(&cfg),
		addrFails: newFailureLimits(cfg.LoginFailuresPerAddr),
		userFails: newFailureLimits(cfg.LoginFailuresPerUser),
	}
}

// Serve accepts connections on ln until ln fails or Close is called, and
// runs a session for each. It always returns an error: ErrServerClosed after
// Close, else the accept error. Serve may be called on several listeners.
func (srv *Server) Serve(ln net.Listener) error {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	srv.listeners = append(srv.listeners, ln)
	srv.mu.Unlock()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if srv.isClosed() {
				return ErrServerClosed
			}
			if transientAccept(err) {
				// Out of descriptors or buffers, or a connection reset
				// while queued: back off like net/http instead of spinning
				// or giving up.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				srv.log.Warn("transport: accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("transport: accept: %w", err)
		}
		backoff = 0
		srv.start(conn)
	}
}

// getWriter lends a write buffer aimed at w.
func (srv *Server) getWriter(w io.Writer) *bufio.Writer {
	if bw, ok := srv.writers.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, writeBufSize)
}

// putWriter takes a write buffer back.
func (srv *Server) putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	srv.writers.Put(bw)
}

// transientAccept reports whether an accept error will likely pass.
func transientAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// start registers a session for conn and runs it in its own goroutines.
func (srv *Server) start(conn net.Conn) {
	s := newSession(srv, conn)
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		conn.Close()
		return
	}
	srv.sessions[s] = struct{}{}
	srv.wg.Add(1)
	srv.mu.Unlock()
	go func() {
		defer srv.wg.Done()
		s.run()
	}()
}

// remove forgets a finished session.
func (srv *Server) remove(s *session) {
	srv.mu.Lock()
	delete(srv.sessions, s)
	srv.mu.Unlock()
}

func (srv *Server) isClosed() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closed
}

// Addr returns the address of the first listener given to Serve, or nil
// before Serve and after Close.
func (srv *Server) Addr() net.Addr {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.listeners) == 0 {
		return nil
	}
	return srv.listeners[0].Addr()
}

// Sessions returns the number of open client connections.
func (srv *Server) Sessions() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

// Close stops accepting, tells every session bye (CodeUnavailable), closes
// it, cancels in-flight requests and waits for every session goroutine to
// finish. It is safe to call more than once; later calls only wait.
func (srv *Server) Close() error {
	srv.mu.Lock()
	first := !srv.closed
	srv.closed = true
	lns := srv.listeners
	srv.listeners = nil
	sessions := make([]*session, 0, len(srv.sessions))
	for s := range srv.sessions {
		sessions = append(sessions, s)
	}
	srv.mu.Unlock()

	var errs []error
	if first {
		for _, ln := range lns {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("transport: close listener %s: %w", ln.Addr(), err))
			}
		}
		for _, s := range sessions {
			s.stop(byeBody(api.CodeUnavailable, "server shutting down"), false)
		}
		srv.cancel()
	}
	srv.wg.Wait()
	return errors.Join(errs...)
}
