package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
)

const (
	// writeBufSize is the writer's bufio size: frames are batched into it
	// and flushed when the queue runs empty.
	writeBufSize = 32 << 10
	// readBufSize is the reader's bufio size: enough to take in a burst of
	// pipelined small requests per system call.
	readBufSize = 8 << 10
	// keepBufSize is the largest read buffer a session keeps between frames;
	// larger frames get a buffer of their own.
	keepBufSize = 64 << 10
	// keepQueueCap is the largest queue slice kept after a burst.
	keepQueueCap = 1024
)

// session is one client connection: a reader goroutine (run) that decodes
// frames and starts requests, and a writer goroutine that drains the bounded
// outbound queue to the socket. It implements Outbox for the backend.
type session struct {
	srv  *Server
	conn net.Conn
	id   uint64
	log  atomic.Pointer[slog.Logger]

	// ctx is every request's context; cancelled when the session stops.
	ctx    context.Context
	cancel context.CancelFunc

	// The outbound queue. queued counts frames accepted by Deliver and not
	// yet handed to the socket writer: it is what OutboxFrames bounds.
	mu      sync.Mutex
	pending [][]byte
	queued  int
	stopped bool
	bye     *ErrorBody // sent last when the session stops, if not nil
	wake    chan struct{}
	stopCh  chan struct{} // closed when the session stops
	readEnd chan struct{} // closed when the reader has stopped reading

	// queuedBytes, under mu, is the size of those frames, until written
	// to the socket: what OutboxBytes bounds.
	queuedBytes int

	// cred is the credential the session authenticated with, once it has
	// (read by Server.Revalidate from other goroutines).
	cred atomic.Pointer[credential]

	// cutAt, once set by stop, is the deadline of every remaining write.
	dmu   sync.Mutex
	cutAt time.Time

	// Reader-owned; request goroutines read them after hello set them.
	authed    bool
	welcomed  atomic.Bool // welcome queued: the writer may send pings
	marker    atomic.Bool // the hello asked for caught_up (CaughtUp)
	principal api.Principal
	clientID  string
	detach    func()
	writes    *bucket       // the principal's write bucket; nil: unlimited
	inflight  chan struct{} // MaxInFlight semaphore
	reqs      sync.WaitGroup
}

var _ Outbox = (*session)(nil)

func newSession(srv *Server, conn net.Conn) *session {
	ctx, cancel := context.WithCancel(srv.ctx)
	s := &session{
		srv:      srv,
		conn:     conn,
		id:       srv.nextID.Add(1),
		ctx:      ctx,
		cancel:   cancel,
		wake:     make(chan struct{}, 1),
		stopCh:   make(chan struct{}),
		readEnd:  make(chan struct{}),
		inflight: make(chan struct{}, srv.cfg.MaxInFlight),
	}
	s.log.Store(srv.log.With("session", s.id, "remote", conn.RemoteAddr().String()))
	return s
}

func (s *session) logger() *slog.Logger { return s.log.Load() }

// run serves the connection until it ends, then releases everything the
// session holds. It returns once every goroutine of the session is done.
func (s *session) run() {
	s.logger().Debug("transport: connected")
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.guard("writer", s.writeLoop)
	}()

	s.guard("reader", s.readLoop)
	s.stop(nil, false)
	if s.detach != nil {
		s.guard("detach", s.detach)
	}
	s.srv.writes.release(s.principal, s.writes)
	// Keep reading (and discarding) until the writer has closed the
	// connection or the client has: closing a socket with unread input
	// sends a reset, which can destroy the bye in flight to the client.
	_ = s.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, s.conn)
	close(s.readEnd)
	<-writerDone
	s.reqs.Wait()
	s.srv.remove(s)
	s.logger().Debug("transport: disconnected")
}

// guard runs fn, turning a panic into a logged internal error that ends
// this session only.
func (s *session) guard(what string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			s.srv.panics.Add(1)
			s.logger().Error("transport: panic in session", "in", what, "panic", r, "stack", string(debug.Stack()))
			s.stop(byeBody(api.CodeInternal, "internal error"), false)
			if what == "writer" {
				// Nobody else closes the connection.
				s.conn.Close()
			}
		}
	}()
	fn()
}

// Deliver queues one encoded frame without blocking. When the queue is full
// the session is cut off with CodeSlowConsumer and Deliver returns false; it
// also returns false once the session has stopped for any reason.
func (s *session) Deliver(frame []byte) bool {
	return s.DeliverBatch([][]byte{frame})
}

// DeliverBatch queues frames, in order, without blocking, so that they
// leave in one write. It is Deliver for several frames: when they do not
// all fit in the queue the session is cut off with CodeSlowConsumer and it
// returns false. It does not keep frames (the slice).
func (s *session) DeliverBatch(frames [][]byte) bool {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return false
	}
	if s.queued+len(frames) > s.srv.cfg.OutboxFrames || s.queuedBytes >= s.srv.cfg.OutboxBytes {
		n, nb := s.queued, s.queuedBytes
		s.mu.Unlock()
		s.stop(byeBody(api.CodeSlowConsumer, "outbound queue full (%d frames, %d bytes): reconnect and resume from the last event received", n, nb), true)
		return false
	}
	first := len(s.pending) == 0
	s.pending = append(s.pending, frames...)
	s.queued += len(frames)
	for _, f := range frames {
		s.queuedBytes += len(f)
	}
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// CaughtUp queues the caught_up frame, if the hello asked for it, once
// the backend has delivered the stream's replay or sync: it is called on
// the stream's delivery goroutine, in order with the events (see
// actors.CaughtUpOutbox).
func (s *session) CaughtUp(mode string, seq uint64) {
	if s.marker.Load() {
		s.send(&Frame{T: TypeCaughtUp, Mode: mode, Seq: seq})
	}
}

// send encodes v as a frame and queues it.
func (s *session) send(v any) bool {
	b, err := EncodeFrame(v)
	if err != nil {
		s.logger().Error("transport: encode frame", "err", err)
		return false
	}
	return s.Deliver(b)
}

// isStopped reports whether the session is stopping.
func (s *session) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// stop ends the session: no more frames are accepted, in-flight requests are
// cancelled, and the writer sends what is queued (nothing if drop) then bye
// (if not nil) under a short deadline, and closes the connection. Only the
// first call has an effect.
func (s *session) stop(bye *ErrorBody, drop bool) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.bye = bye
	if drop {
		clear(s.pending)
		s.pending = nil
	}
	s.mu.Unlock()

	s.dmu.Lock()
	s.cutAt = time.Now().Add(min(byeTimeout, s.srv.cfg.WriteTimeout))
	// Also cuts short a write already blocked on a client that does not read.
	_ = s.conn.SetWriteDeadline(s.cutAt)
	s.dmu.Unlock()

	s.cancel()
	close(s.stopCh)
	if bye != nil && bye.Code != api.CodeUnavailable {
		s.srv.cutLog.get(bye.Code).Log(s.logger(), slog.LevelWarn, "transport: session cut off", "code", bye.Name, "reason", bye.Msg)
	}
}

// writeLoop drains the queue into a buffered writer, flushing whenever the
// queue runs empty, until the session stops. The buffer is borrowed from
// the server's pool only while there is something to write, so idle
// sessions hold none.
func (s *session) writeLoop() {
	var batch [][]byte
	ka := s.newKeepalive()
	defer ka.stop()
	for {
		select {
		case <-s.wake:
		case <-s.stopCh:
		case <-ka.C():
			ka.fire(s) // queues a ping: the wake follows
			continue
		}
		bw := s.srv.getWriter(deadlineWriter{s})
		stopped, err := s.writeQueued(bw, &batch)
		if err == nil && !stopped {
			err = bw.Flush()
			ka.wrote()
		}
		switch {
		case err != nil:
			s.writeFailed(err)
		case stopped:
			s.finish(bw)
		}
		s.srv.putWriter(bw)
		if err != nil || stopped {
			return
		}
	}
}

// writeQueued writes queued frames to bw until the queue is empty or the
// session has stopped. batch is the spare slice swapped with the queue.
func (s *session) writeQueued(bw *bufio.Writer, batch *[][]byte) (stopped bool, err error) {
	for {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return true, nil
		}
		b := s.pending
		s.pending = (*batch)[:0]
		s.mu.Unlock()
		if len(b) == 0 {
			*batch = b
			return false, nil
		}
		nb := 0
		for _, f := range b {
			if _, err := bw.Write(f); err != nil {
				return false, err
			}
			nb += len(f)
		}
		n := len(b)
		clear(b)
		if cap(b) > keepQueueCap {
			b = nil
		}
		*batch = b
		s.mu.Lock()
		s.queued -= n
		s.queuedBytes -= nb
		s.mu.Unlock()
	}
}

// writeFailed ends the session after a socket write error: the stream may
// end inside a frame, so nothing more is written.
func (s *session) writeFailed(err error) {
	if !s.isStopped() {
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			s.logger().Warn("transport: session cut off", "reason", fmt.Sprintf("write timeout: %v", err))
		} else {
			s.logger().Debug("transport: write failed", "err", err)
		}
	}
	s.stop(nil, true)
	s.conn.Close()
}

// finish writes what is left of the queue and the bye frame, half-closes
// the connection, gives the client a moment to read, and closes it.
func (s *session) finish(bw *bufio.Writer) {
	s.mu.Lock()
	rest, bye := s.pending, s.bye
	s.pending = nil
	s.mu.Unlock()
	for _, f := range rest {
		if _, err := bw.Write(f); err != nil {
			break
		}
	}
	if bye != nil {
		if b, err := EncodeFrame(&Frame{T: TypeBye, Err: bye}); err == nil {
			_, _ = bw.Write(b)
		}
	}
	if err := bw.Flush(); err == nil {
		if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		t := time.NewTimer(lingerTimeout)
		select {
		case <-s.readEnd:
		case <-t.C:
		}
		t.Stop()
	}
	s.conn.Close()
}

// deadlineWriter sets the write deadline before every socket write: the
// normal WriteTimeout, or the short cut-off deadline once stopping.
type deadlineWriter struct{ s *session }

func (w deadlineWriter) Write(p []byte) (int, error) {
	s := w.s
	s.dmu.Lock()
	d := s.cutAt
	if d.IsZero() {
		d = time.Now().Add(s.srv.cfg.WriteTimeout)
	}
	err := s.conn.SetWriteDeadline(d)
	s.dmu.Unlock()
	if err != nil {
		return 0, err
	}
	return s.conn.Write(p)
}

// byeBody builds the error body of a res or bye frame.
func byeBody(code api.Code, format string, args ...any) *ErrorBody {
	return &ErrorBody{Code: code, Name: code.String(), Msg: fmt.Sprintf(format, args...)}
}
