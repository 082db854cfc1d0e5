package transport

import (
	"crypto/sha256"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/ratelog"
)

// Rate is a token bucket: PerSec tokens are added each second, up to
// Burst. A zero Rate in a ServerConfig takes the default; a negative
// PerSec means unlimited.
type Rate struct {
	PerSec float64
	Burst  int
}

// Unlimited is a Rate that never refuses.
var Unlimited = Rate{PerSec: -1}

func (r Rate) unlimited() bool { return r.PerSec < 0 }

// Default limits, used for zero ServerConfig fields. The write rates are
// per principal on each node, generous enough for the bench's 256
// connectors and 1,000 agents at full speed (docs/PERFORMANCE.md) and far
// above what a person or a channel connector needs.
var (
	DefaultAgentWriteRate     = Rate{PerSec: 200, Burst: 400}
	DefaultConnectorWriteRate = Rate{PerSec: 5000, Burst: 10000}
	DefaultAdminWriteRate     = Unlimited
	// A source address or a principal id gets 20 failed hellos at once,
	// then one a second; beyond that its hellos are refused with
	// rate_limited before the credentials are looked at.
	DefaultLoginFailuresPerAddr = Rate{PerSec: 1, Burst: 20}
	DefaultLoginFailuresPerUser = Rate{PerSec: 1, Burst: 20}
)

// Kinds of rate-limit refusal, as Server.RateLimited reports them.
const (
	// LimitWrite: a write over its principal's rate, answered
	// rate_limited and not applied.
	LimitWrite = "write"
	// LimitLoginAddr: a hello from a source address that used up its
	// failed hellos, refused with bye rate_limited.
	LimitLoginAddr = "login_addr"
	// LimitLoginUser: a hello for a role and user id that used up its
	// failed hellos, refused with bye rate_limited.
	LimitLoginUser = "login_user"
)

// Indexes of limitCounts' kinds.
const (
	limitWrite = iota
	limitLoginAddr
	limitLoginUser
)

var (
	limitKinds = [...]string{limitWrite: LimitWrite, limitLoginAddr: LimitLoginAddr, limitLoginUser: LimitLoginUser}
	limitRoles = [...]api.Role{api.RoleAdmin, api.RoleAgent, api.RoleConnector, api.RoleSupervisor}
)

// limitCounts counts rate-limit refusals by kind (limitKinds' index) and
// role.
type limitCounts [len(limitKinds)][api.RoleSupervisor + 1]atomic.Uint64

func (c *limitCounts) add(kind int, r api.Role) {
	if r <= api.RoleSupervisor && r != api.RoleSystem {
		c[kind][r].Add(1)
	}
}

// RateLimited calls fn with how many refusals of each kind (LimitWrite,
// LimitLoginAddr, LimitLoginUser) and role (admin, agent, connector,
// supervisor;
// for a hello, the role it claimed) this server made since it started,
// zeros included.
func (srv *Server) RateLimited(fn func(kind string, role api.Role, n uint64)) {
	for k, kind := range limitKinds {
		for _, r := range limitRoles {
			fn(kind, r, srv.limited[k][r].Load())
		}
	}
}

// MaxHelloFrame is the largest frame a connection may send before its
// hello is accepted: a hello is a few hundred bytes, and a stranger must
// not make the node allocate max_frame per connection.
const MaxHelloFrame = 4096

// bucket is one token bucket.
type bucket struct {
	mu     sync.Mutex
	rate   Rate
	tokens float64
	last   time.Time
	refs   int // sessions holding it (write buckets), under the owner's lock
}

func newBucket(r Rate, now time.Time) *bucket {
	return &bucket{rate: r, tokens: float64(r.Burst), last: now}
}

// refill adds what accrued since the last call; under b.mu.
func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(float64(b.rate.Burst), b.tokens+d.Seconds()*b.rate.PerSec)
		b.last = now
	}
}

// take takes one token; when there is none, it reports how long until one.
func (b *bucket) take(now time.Time) (ok bool, retry time.Duration) {
	if b.rate.unlimited() {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, b.wait()
}

// wait is how long until a token accrues; under b.mu.
func (b *bucket) wait() time.Duration {
	if b.rate.PerSec <= 0 {
		return time.Hour
	}
	return time.Duration((1 - b.tokens) / b.rate.PerSec * float64(time.Second))
}

// empty reports whether the bucket has no token now, and how long until
// it has one.
func (b *bucket) empty(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if b.tokens >= 1 {
		return false, 0
	}
	return true, b.wait()
}

// full reports whether the bucket has refilled to its burst: it then
// remembers nothing and may be dropped.
func (b *bucket) full(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens >= float64(b.rate.Burst)
}

// writeLimits holds one write bucket per principal with a session on this
// node, shared by its sessions, so that opening more connections does not
// buy more writes.
type writeLimits struct {
	rates   map[api.Role]Rate
	mu      sync.Mutex
	buckets map[string]*bucket
}

func newWriteLimits(cfg *ServerConfig) *writeLimits {
	return &writeLimits{
		rates: map[api.Role]Rate{
			api.RoleAgent:     cfg.AgentWriteRate,
			api.RoleConnector: cfg.ConnectorWriteRate,
			api.RoleAdmin:     cfg.AdminWriteRate,
			// Supervisors are people at a console, as agents are.
			api.RoleSupervisor: cfg.AgentWriteRate,
		},
		buckets: map[string]*bucket{},
	}
}

// acquire returns the principal's bucket, nil when its role is unlimited;
// release it when the session ends.
func (w *writeLimits) acquire(p api.Principal) *bucket {
	r, ok := w.rates[p.Role]
	if !ok || r.unlimited() {
		return nil
	}
	key := p.Role.String() + "/" + p.ID
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.buckets[key]
	if b == nil {
		b = newBucket(r, time.Now())
		w.buckets[key] = b
	}
	b.refs++
	return b
}

// release lets go of a bucket acquire returned; the last session of a
// principal drops it.
func (w *writeLimits) release(p api.Principal, b *bucket) {
	if b == nil {
		return
	}
	key := p.Role.String() + "/" + p.ID
	w.mu.Lock()
	defer w.mu.Unlock()
	if b.refs--; b.refs <= 0 && w.buckets[key] == b {
		delete(w.buckets, key)
	}
}

// maxLoginKeys bounds the failed-login buckets kept per kind (addresses,
// users): past it, idle ones are dropped, and new keys are not tracked
// until some are (the per-address limit still holds).
const maxLoginKeys = 65536

// failureLimits counts failed hellos per key (a source address, or a role
// and user id) in token buckets: each failure takes a token, and a key
// with none left is refused until one accrues.
type failureLimits struct {
	rate    Rate
	mu      sync.Mutex
	buckets map[string]*bucket
}

func newFailureLimits(r Rate) *failureLimits {
	return &failureLimits{rate: r, buckets: map[string]*bucket{}}
}

// blocked reports whether key has used up its failures, and for how long.
func (f *failureLimits) blocked(key string, now time.Time) (bool, time.Duration) {
	if f.rate.unlimited() {
		return false, 0
	}
	f.mu.Lock()
	b := f.buckets[key]
	f.mu.Unlock()
	if b == nil {
		return false, 0
	}
	return b.empty(now)
}

// fail records a failure of key.
func (f *failureLimits) fail(key string, now time.Time) {
	if f.rate.unlimited() {
		return
	}
	f.mu.Lock()
	b := f.buckets[key]
	if b == nil {
		if len(f.buckets) >= maxLoginKeys {
			for k, o := range f.buckets {
				if o.full(now) {
					delete(f.buckets, k)
				}
			}
		}
		if len(f.buckets) >= maxLoginKeys {
			f.mu.Unlock()
			return
		}
		b = newBucket(f.rate, now)
		f.buckets[key] = b
	}
	f.mu.Unlock()
	b.take(now)
}

// remoteHost is the IP of a connection's peer (its whole address when it
// has no port).
func remoteHost(c net.Conn) string {
	a := c.RemoteAddr()
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// cutLogEvery is the most often one kind of session cut-off (by code) is
// logged: a client can cause cut-offs at will.
const cutLogEvery = 5 * time.Second

// cutLogs rate-limits the cut-off warnings, one limiter per code.
type cutLogs struct {
	mu sync.Mutex
	m  map[api.Code]*ratelog.Limiter
}

func (c *cutLogs) get(code api.Code) *ratelog.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[api.Code]*ratelog.Limiter{}
	}
	l := c.m[code]
	if l == nil {
		l = ratelog.New(cutLogEvery)
		c.m[code] = l
	}
	return l
}

// rateLimited is the error body of a refusal for a rate: retry after d.
func rateLimited(d time.Duration, format string, args ...any) *ErrorBody {
	b := byeBody(api.CodeRateLimited, format, args...)
	b.RetryMs = int(min(max((d+time.Millisecond-1)/time.Millisecond, 1), math.MaxInt32))
	return b
}

// credential is what a session authenticated as: the principal and the
// SHA-256 of its token (never the token itself).
type credential struct {
	p    api.Principal
	hash [sha256.Size]byte
}

// revocable reports whether the principal's credential can be revoked.
func (c *credential) revocable() bool {
	return c.p.Role == api.RoleAgent || c.p.Role == api.RoleConnector || c.p.Role == api.RoleSupervisor
}

// credentialValid asks the backend whether c still holds.
func (srv *Server) credentialValid(c *credential) bool {
	ck, ok := srv.backend.(CredentialChecker)
	return !ok || !c.revocable() || ck.CredentialValid(c.p, c.hash[:])
}

// revokedBye is the bye of a session whose credential was revoked.
func revokedBye(p api.Principal) *ErrorBody {
	return byeBody(api.CodeUnauthenticated, "%s %q was deleted or its credential replaced", p.Role, p.ID)
}

// Revalidate ends, with bye unauthenticated, every session whose
// credential the backend no longer holds (CredentialChecker): of the
// given principals, or of anyone when ps is nil. It does not block on the
// sessions (it may run on Raft's apply goroutine).
func (srv *Server) Revalidate(ps []api.Principal) {
	if _, ok := srv.backend.(CredentialChecker); !ok {
		return
	}
	srv.mu.Lock()
	sessions := make([]*session, 0, len(srv.sessions))
	for s := range srv.sessions {
		sessions = append(sessions, s)
	}
	srv.mu.Unlock()
	for _, s := range sessions {
		c := s.cred.Load()
		if c == nil || !c.revocable() || (ps != nil && !slices.Contains(ps, c.p)) {
			continue
		}
		if !srv.credentialValid(c) {
			s.stop(revokedBye(c.p), true)
		}
	}
}
