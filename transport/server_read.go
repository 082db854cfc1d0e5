package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// maxClientID bounds the client id of a hello: it travels in every command.
const maxClientID = 128

// readLoop reads and handles frames until the connection fails or the
// session stops.
func (s *session) readLoop() {
	cfg := &s.srv.cfg
	helloBy := time.Now().Add(cfg.HelloTimeout)
	if hd, ok := s.conn.(interface{ HelloDeadline() time.Time }); ok {
		// The listener already waited for the first frame: the deadline
		// runs from the connection's accept, as documented.
		helloBy = hd.HelloDeadline()
	}
	_ = s.conn.SetReadDeadline(helloBy)
	br := bufio.NewReaderSize(s.conn, readBufSize)
	var (
		buf []byte
		f   Frame
	)
	for {
		if s.authed {
			// Idle is time spent waiting on the client, so the deadline
			// is set before each read, not after the previous frame.
			_ = s.conn.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		}
		limit := cfg.MaxFrame
		if !s.authed {
			limit = min(limit, MaxHelloFrame)
		}
		p, err := ReadFramePayload(br, limit, buf)
		if err != nil {
			s.readFailed(err)
			return
		}
		buf = nil
		if cap(p) <= keepBufSize {
			buf = p[:0] // decoded frames copy what they keep
		}
		if s.isStopped() {
			return
		}
		if err := DecodeFrame(p, &f); err != nil {
			s.stop(errorBody(err), false)
			return
		}
		if !s.handle(&f) {
			return
		}
	}
}

// readFailed stops the session after a read error, with the bye it calls for.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrMalformedFrame):
		s.stop(errorBody(err), false)
	case errors.As(err, &ne) && ne.Timeout() && !s.isStopped():
		if s.authed {
			s.stop(byeBody(api.CodeTimeout, "idle for %v", s.srv.cfg.IdleTimeout), false)
		} else {
			s.stop(byeBody(api.CodeHelloTimeout, "no hello within %v", s.srv.cfg.HelloTimeout), false)
		}
	default:
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			s.logger().Debug("transport: read", "err", err)
		}
		s.stop(nil, false)
	}
}

// handle acts on one decoded frame. It returns false when the session must
// stop reading.
func (s *session) handle(f *Frame) bool {
	switch f.T {
	case TypeHello:
		if s.authed {
			s.protocolError(f, "second hello")
			return false
		}
		return s.hello(f)
	case TypeRequest:
		if !s.authed {
			s.send(&Frame{T: TypeResponse, ID: f.ID, Err: byeBody(api.CodeUnauthenticated, "send hello first")})
			return true
		}
		return s.request(f)
	case TypePing:
		s.send(&Frame{T: TypePong, ID: f.ID})
		return true
	case TypePong:
		return true
	}
	s.protocolError(f, fmt.Sprintf("unexpected %q frame", f.T))
	return false
}

// protocolError answers a frame that is not allowed now: a failed res if
// it carries an id, then bye, and the session stops.
func (s *session) protocolError(f *Frame, msg string) {
	body := byeBody(api.CodeProtocol, "%s", msg)
	if f.ID != 0 {
		s.send(&Frame{T: TypeResponse, ID: f.ID, Err: body})
	}
	s.stop(body, false)
}

// hello authenticates the session, answers welcome and attaches the
// principal's event stream.
func (s *session) hello(f *Frame) bool {
	if f.V != ProtocolVersion {
		s.stop(byeBody(api.CodeProtocol, "protocol version %d not supported, this server speaks %d", f.V, ProtocolVersion), false)
		return false
	}
	role := api.ParseRole(f.Role)
	if role == api.RoleNone {
		s.stop(byeBody(api.CodeBadRequest, "unknown role %q", f.Role), false)
		return false
	}
	if len(f.Client) > maxClientID {
		s.stop(byeBody(api.CodeBadRequest, "client id longer than %d bytes", maxClientID), false)
		return false
	}
	if !printableUTF8(f.Client) {
		s.stop(byeBody(api.CodeBadRequest, "client id must be UTF-8 text without control characters"), false)
		return false
	}
	user := f.User
	if role == api.RoleAdmin {
		user = ""
	}
	now := time.Now()
	// Ids are at most 128 bytes: a longer user cannot log in, and must
	// not make the throttle's keys big.
	addrKey, userKey := remoteHost(s.conn), role.String()+"/"+user[:min(len(user), maxClientID)]
	if blocked, d := s.srv.addrFails.blocked(addrKey, now); blocked {
		s.srv.limited.add(limitLoginAddr, role)
		s.stop(rateLimited(d, "too many failed hellos from %s", addrKey), false)
		return false
	}
	if blocked, d := s.srv.userFails.blocked(userKey, now); blocked {
		s.srv.limited.add(limitLoginUser, role)
		s.stop(rateLimited(d, "too many failed hellos for %s", userKey), false)
		return false
	}
	p, err := s.srv.backend.Authenticate(role, user, f.Token)
	if err != nil {
		if api.CodeOf(err) == api.CodeUnauthenticated {
			s.srv.addrFails.fail(addrKey, now)
			s.srv.userFails.fail(userKey, now)
		}
		s.stop(errorBody(err), false)
		return false
	}
	if s.isStopped() {
		return false
	}
	cred := &credential{p: p, hash: sha256.Sum256([]byte(f.Token))}
	s.cred.Store(cred)
	if !s.srv.credentialValid(cred) {
		// Revoked between the check and now: Revalidate may have run
		// before the credential was stored.
		s.stop(revokedBye(p), false)
		return false
	}
	s.principal = p
	s.writes = s.srv.writes.acquire(p)
	s.clientID = f.Client
	if s.clientID == "" {
		s.clientID = rand.Text()
	}
	s.authed = true
	log := s.logger().With("role", p.Role.String(), "user", p.ID, "client", s.clientID)
	s.log.Store(log)

	// welcome is queued before Attach, so it precedes every event. It
	// echoes the marker when a caught_up will follow: only sessions with
	// a stream get one.
	key := p.Key()
	marker := f.Marker && key != ""
	s.marker.Store(marker)
	s.send(&Frame{
		T:        TypeWelcome,
		V:        ProtocolVersion,
		Node:     s.srv.cfg.NodeID,
		Role:     p.Role.String(),
		User:     p.ID,
		Client:   s.clientID,
		MaxFrame: s.srv.cfg.MaxFrame,
		PingMs:   s.srv.cfg.pingMs(),
		Marker:   marker,
	})
	s.welcomed.Store(true)
	if key != "" {
		var since uint64
		if f.Since != nil {
			since = *f.Since
		}
		s.detach = s.srv.backend.Attach(key, since, f.Since != nil, s)
	}
	log.Debug("transport: hello", "resume", f.Since != nil, "marker", marker)
	return true
}

// request validates a req and runs it in its own goroutine, waiting for a
// free in-flight slot first (backpressure). It returns false if the session
// stopped while waiting.
func (s *session) request(f *Frame) bool {
	id := f.ID
	if id == 0 {
		// Ids start at 1: a res with id 0 could not be told from a
		// frame without one.
		s.send(&Frame{T: TypeResponse, ID: id, Err: byeBody(api.CodeBadRequest, "req id must be at least 1")})
		return true
	}
	if f.Op == "" {
		s.send(&Frame{T: TypeResponse, ID: id, Err: byeBody(api.CodeBadRequest, "req without op")})
		return true
	}
	var job func(ctx context.Context) *Frame
	if api.IsWrite(f.Op) && s.writes != nil {
		if ok, d := s.writes.take(time.Now()); !ok {
			s.srv.limited.add(limitWrite, s.principal.Role)
			s.send(&Frame{T: TypeResponse, ID: id, Err: rateLimited(d, "%s %s over its write rate (%g/s)", s.principal.Role, s.principal.ID, s.writes.rate.PerSec)})
			return true
		}
	}
	if api.IsWrite(f.Op) {
		w := Write{By: s.principal, ClientID: s.clientID, Seq: f.Seq, Op: f.Op, Args: f.Args}
		if c := s.cred.Load(); c.revocable() {
			w.TokenHash = c.hash[:]
		}
		job = func(ctx context.Context) *Frame {
			data, index, err := s.srv.backend.Commit(ctx, w)
			if err != nil {
				return &Frame{T: TypeResponse, ID: id, Index: index, Err: errorBody(err)}
			}
			return ResponseFrame(id, data, index)
		}
	} else {
		op, args, p, lin := f.Op, f.Args, s.principal, f.Linearizable
		job = func(ctx context.Context) *Frame {
			if lin {
				ctx = WithLinearizable(ctx)
			}
			data, err := s.srv.backend.Query(ctx, p, op, args)
			if err != nil {
				return &Frame{T: TypeResponse, ID: id, Err: errorBody(err)}
			}
			return ResponseFrame(id, data, 0)
		}
	}

	select {
	case s.inflight <- struct{}{}:
	case <-s.stopCh:
		return false
	}
	s.reqs.Add(1)
	go func() {
		defer s.reqs.Done()
		defer func() { <-s.inflight }()
		s.guard("request", func() { s.send(job(s.ctx)) })
	}()
	return true
}

// ResponseFrame is the res frame a node sends for a successful op with
// result data (omitted when nil). Its payload never exceeds
// api.MaxNodeFrame: a result too large for it (reads are paged, but an
// admin listing of a huge configuration may be) is answered with
// frame_too_large instead, naming the size, so the caller asks for less.
func ResponseFrame(id uint64, data any, index uint64) *Frame {
	f := &Frame{T: TypeResponse, ID: id, OK: true, Index: index}
	if data != nil {
		raw, err := marshalData(data)
		if err != nil {
			return &Frame{T: TypeResponse, ID: id, Index: index, Err: byeBody(api.CodeInternal, "encode result: %v", err)}
		}
		if len(raw) > api.MaxNodeFrame-maxResponseOverhead {
			return &Frame{T: TypeResponse, ID: id, Index: index, Err: byeBody(api.CodeFrameTooLarge,
				"the answer takes %d bytes, above the %d a node sends: ask for a page (after, limit)", len(raw), api.MaxNodeFrame-maxResponseOverhead)}
		}
		f.Data = raw
	}
	return f
}

// maxResponseOverhead bounds what a res frame's payload holds besides its
// data: the map header, t, id, ok, index and their keys.
const maxResponseOverhead = 64

// marshalData encodes a result the way frames are encoded (compact ints).
func marshalData(v any) (msgpack.RawMessage, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// errorBody converts err into the wire error, with the leader and retry
// hints of errors that carry them.
func errorBody(err error) *ErrorBody {
	b := NewErrorBody(err)
	b.Msg = strings.TrimPrefix(b.Msg, b.Name+": ") // the name is already in the body
	if b.Code == api.CodeInternal && errors.Is(err, context.DeadlineExceeded) {
		b.Code, b.Name = api.CodeTimeout, api.CodeTimeout.String()
	}
	var la interface{ LeaderAddr() string }
	if errors.As(err, &la) {
		b.Leader = la.LeaderAddr()
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > 0 {
			b.RetryMs = int(min((d+time.Millisecond-1)/time.Millisecond, math.MaxInt32))
		}
	}
	return b
}

// printableUTF8 reports whether s is valid UTF-8 with no control
// characters: what a client id, echoed in welcome and kept in the
// replicated state's session keys, may hold.
func printableUTF8(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
