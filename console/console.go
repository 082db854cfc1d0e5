package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/ratelog"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// Backend is what the console needs of the node: node.Backend has these
// methods, the ones the client server uses.
type Backend interface {
	// Authenticate checks a supervisor's id and token (api.RoleSupervisor).
	Authenticate(role api.Role, id, token string) (api.Principal, error)
	// CredentialValid reports whether the state still holds tokenHash as
	// p's token hash.
	CredentialValid(p api.Principal, tokenHash []byte) bool
	// Commit commits a write with the supervisor as principal.
	Commit(ctx context.Context, w transport.Write) (data any, index uint64, err error)
	// Query answers a read from local state.
	Query(ctx context.Context, p api.Principal, op string, args msgpack.RawMessage) (any, error)
	// Attach starts the event stream of key into out (see
	// transport.Backend.Attach).
	Attach(key string, since uint64, resume bool, out transport.Outbox) (detach func())
}

// Rate is a token bucket: PerSec tokens a second, up to Burst.
type Rate struct {
	PerSec float64
	Burst  int
}

// Defaults for Config's zero fields.
const (
	DefaultSessionTTL      = 12 * time.Hour
	DefaultKeepAlive       = 15 * time.Second
	DefaultRevalidate      = 5 * time.Second
	DefaultMaxStreams      = 256
	DefaultStreamsPerSup   = 8
	DefaultStreamFrames    = 4096
	DefaultStreamBytes     = 4 << 20
	DefaultStreamWriteWait = 10 * time.Second
	DefaultReconnectDelay  = 2 * time.Second
	DefaultActionTimeout   = 15 * time.Second
	maxLoginBody           = 4 << 10
	maxActionBody          = 16 << 10
	maxRateKeys            = 16384
	failedLoginLogEvery    = 5 * time.Second
)

// Default rates: a source address gets 10 failed logins at once, then
// one every two seconds; a supervisor's actions through one node, 20 a
// second in bursts of 40.
const (
	DefaultLoginFailuresPerSec = 0.5
	DefaultLoginFailuresBurst  = 10
	DefaultActionsPerSec       = 20
	DefaultActionsBurst        = 40
)

// Config configures a Handler.
type Config struct {
	// Backend is the node. Required.
	Backend Backend
	// Secret is the cluster secret (node.Config.ClusterToken), the same on
	// every node: the session and CSRF keys are derived from it. Required.
	Secret []byte
	// Node names this node on the pages.
	Node string
	// Logger receives the console's logs (discarded if nil).
	Logger *slog.Logger

	// SessionTTL is how long a login lasts (DefaultSessionTTL).
	SessionTTL time.Duration
	// KeepAlive is how often an idle event stream sends a comment
	// (DefaultKeepAlive).
	KeepAlive time.Duration
	// Revalidate is how often an event stream checks that its
	// supervisor's credential still holds (DefaultRevalidate).
	Revalidate time.Duration
	// ReconnectDelay is the SSE retry the browser waits before it
	// reconnects a dropped stream (DefaultReconnectDelay).
	ReconnectDelay time.Duration
	// MaxStreams bounds the event streams open on this node at once, and
	// StreamsPerSupervisor those of one supervisor.
	MaxStreams           int
	StreamsPerSupervisor int
	// StreamFrames and StreamBytes bound the events queued for one
	// stream; a browser that falls that far behind is cut off and
	// reconnects (DefaultStreamFrames, DefaultStreamBytes).
	StreamFrames int
	StreamBytes  int
	// StreamWriteWait bounds one write to a stream's connection
	// (DefaultStreamWriteWait).
	StreamWriteWait time.Duration
	// LoginFailures limits failed logins per source address
	// (DefaultLoginFailuresPerSec, DefaultLoginFailuresBurst); ActionRate
	// a supervisor's actions (DefaultActionsPerSec, DefaultActionsBurst).
	LoginFailures Rate
	ActionRate    Rate
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Handler serves the console under /console/. Make one with New; Close
// ends its event streams.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	keys    keys
	origin  *http.CrossOriginProtection
	pages   *template.Template
	streams *streamLimits
	logins  *limiter
	actions *limiter
	// reads limits a supervisor's board and request reads, which walk
	// the state under its read lock (the actions' rate, its own bucket).
	reads *limiter
	acts  map[string]action
	// failLog rate-limits the log lines of failed logins, which anyone
	// can cause at will.
	failLog *ratelog.Limiter

	done      chan struct{}
	closeOnce sync.Once

	// recheck is closed, and replaced, when credentials may have been
	// revoked (Revalidate): every stream then checks its own.
	mu      sync.Mutex
	recheck chan struct{}
}

// New returns the console's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Backend == nil {
		return nil, errors.New("console: Config.Backend is required")
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("console: Config.Secret (the cluster secret) is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	setDefault(&cfg.SessionTTL, DefaultSessionTTL)
	setDefault(&cfg.KeepAlive, DefaultKeepAlive)
	setDefault(&cfg.Revalidate, DefaultRevalidate)
	setDefault(&cfg.ReconnectDelay, DefaultReconnectDelay)
	setDefault(&cfg.StreamWriteWait, DefaultStreamWriteWait)
	setDefault(&cfg.MaxStreams, DefaultMaxStreams)
	setDefault(&cfg.StreamsPerSupervisor, DefaultStreamsPerSup)
	setDefault(&cfg.StreamFrames, DefaultStreamFrames)
	setDefault(&cfg.StreamBytes, DefaultStreamBytes)
	if cfg.LoginFailures == (Rate{}) {
		cfg.LoginFailures = Rate{PerSec: DefaultLoginFailuresPerSec, Burst: DefaultLoginFailuresBurst}
	}
	if cfg.ActionRate == (Rate{}) {
		cfg.ActionRate = Rate{PerSec: DefaultActionsPerSec, Burst: DefaultActionsBurst}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg:     cfg,
		log:     cfg.Logger,
		keys:    deriveKeys(cfg.Secret),
		origin:  http.NewCrossOriginProtection(),
		pages:   pages,
		streams: newStreamLimits(cfg.MaxStreams, cfg.StreamsPerSupervisor),
		logins:  newLimiter(cfg.LoginFailures, maxRateKeys),
		actions: newLimiter(cfg.ActionRate, maxRateKeys),
		reads:   newLimiter(cfg.ActionRate, maxRateKeys),
		acts:    actionTable(),
		failLog: ratelog.New(failedLoginLogEvery),
		done:    make(chan struct{}),
		recheck: make(chan struct{}),
	}
	h.logins.now, h.actions.now, h.reads.now = cfg.Now, cfg.Now, cfg.Now
	h.mux = h.routes()
	return h, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// routes returns the console's routes. Every path is under /console/.
func (h *Handler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /console/{$}", h.index)
	mux.HandleFunc("GET /console/login", h.loginPage)
	mux.HandleFunc("POST /console/login", h.login)
	mux.HandleFunc("POST /console/logout", h.logout)
	mux.HandleFunc("GET /console/static/{file}", h.static)
	mux.HandleFunc("GET /console/events", h.events)
	mux.HandleFunc("GET /console/api/board", h.board)
	mux.HandleFunc("GET /console/api/request/{id}", h.request)
	mux.HandleFunc("POST /console/api/{op}", h.action)
	mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %s %s in the console", r.Method, r.URL.Path))
	})
	return mux
}

// ServeHTTP serves the console's routes, with the headers every answer
// carries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// Close ends every event stream at once (the browsers reconnect, to this
// node once it serves again or to another): the HTTP server's Shutdown
// calls it, as it would otherwise wait for the streams to end.
func (h *Handler) Close() {
	h.closeOnce.Do(func() { close(h.done) })
}

// Revalidate makes every event stream check at once that its supervisor's
// credential still holds: call it when principals were deleted (ps), or
// when any credential may have changed (nil, a snapshot installed). It does
// not block, so it may run on Raft's apply goroutine (cluster.FSM's
// revocation hook). Streams also check every Config.Revalidate.
func (h *Handler) Revalidate(ps []api.Principal) {
	if ps != nil && !slices.ContainsFunc(ps, func(p api.Principal) bool { return p.Role == api.RoleSupervisor }) {
		return
	}
	h.mu.Lock()
	close(h.recheck)
	h.recheck = make(chan struct{})
	h.mu.Unlock()
}

// rechecked returns the channel the next Revalidate closes.
func (h *Handler) rechecked() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.recheck
}

// now is the handler's clock.
func (h *Handler) now() time.Time { return h.cfg.Now() }
