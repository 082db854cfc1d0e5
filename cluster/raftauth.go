package cluster

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/switchboard/switchboard/internal/netutil"
	"github.com/switchboard/switchboard/internal/ratelog"
)

// Raft stream authentication without TLS. Raft's own transport reads RPCs
// from whoever connects, so a stranger who reaches the Raft port could
// send an AppendEntries with a higher term and make the node follow it.
// Every Raft stream therefore starts with a mutual challenge-response over
// the cluster secret, before raft sees a byte:
//
//	dialer   → acceptor: raftAuthMagic (8 bytes), nonce_d (32 bytes)
//	acceptor → dialer:   nonce_a (32), HMAC-SHA256(secret, "acceptor" | nonce_d | nonce_a)
//	dialer   → acceptor: HMAC-SHA256(secret, "dialer" | nonce_d | nonce_a)
//
// Each side checks the other's MAC in constant time and closes the
// connection on a mismatch; the role label keeps one side's answer from
// being replayed as the other's, and fresh nonces on both sides keep an
// old exchange from being replayed. The whole exchange has raftAuthTimeout.
// With TLS, mutual certificate verification authenticates the stream
// instead (tls.go).

// raftAuthMagic opens a dialer's handshake: it names the protocol and its
// version, so a node of another build fails with a clear log line.
var raftAuthMagic = [8]byte{'S', 'B', 'R', 'A', 'F', 'T', 0, 1}

const (
	raftAuthNonce = 32
	// raftAuthTimeout bounds a handshake, both ways.
	raftAuthTimeout = 3 * time.Second
	// raftAuthMaxPending bounds handshakes in progress on a listener, so
	// that connections left silent cannot pile up goroutines.
	raftAuthMaxPending = 64
	// raftAuthLogEvery is the most often a refused stream is logged.
	raftAuthLogEvery = 10 * time.Second
)

// errRaftAuth is a failed handshake: the peer does not know the secret.
var errRaftAuth = errors.New("cluster: raft stream: peer does not prove the cluster secret")

// raftAuthMAC is HMAC-SHA256(secret, role | nonceD | nonceA).
func raftAuthMAC(secret []byte, role string, nonceD, nonceA []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(role))
	m.Write(nonceD)
	m.Write(nonceA)
	return m.Sum(nil)
}

// authStreamLayer wraps a raft.StreamLayer so that every stream, both ways,
// proves knowledge of the cluster secret first. Accepted connections are
// handshaken in their own goroutines, off the accept loop, and reach Accept
// only once authenticated: raft never reads a stranger's bytes, and one
// silent stranger does not hold up the others.
type authStreamLayer struct {
	inner  raft.StreamLayer
	secret []byte
	log    *slog.Logger
	warn   *ratelog.Limiter

	conns   chan net.Conn
	pending chan struct{} // handshakes in progress (semaphore)
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func newAuthStreamLayer(inner raft.StreamLayer, secret []byte, log *slog.Logger) *authStreamLayer {
	l := &authStreamLayer{
		inner:   inner,
		secret:  bytes.Clone(secret),
		log:     log,
		warn:    ratelog.New(raftAuthLogEvery),
		conns:   make(chan net.Conn),
		pending: make(chan struct{}, raftAuthMaxPending),
		done:    make(chan struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *authStreamLayer) acceptLoop() {
	defer l.wg.Done()
	netutil.AcceptLoop(l.inner, l.done, l.log, "raft", func() { l.Close() }, func(c net.Conn) {
		select {
		case l.pending <- struct{}{}:
		default:
			l.warn.Log(l.log, slog.LevelWarn, "raft stream refused: too many handshakes in progress",
				"remote", c.RemoteAddr().String())
			c.Close()
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.pending }()
			if err := l.acceptHandshake(c); err != nil {
				l.warn.Log(l.log, slog.LevelWarn, "raft stream refused: handshake failed",
					"remote", c.RemoteAddr().String(), "err", err)
				c.Close()
				return
			}
			select {
			case l.conns <- c:
			case <-l.done:
				c.Close()
			}
		}()
	})
}

// acceptHandshake runs the acceptor's side of the handshake on c.
func (l *authStreamLayer) acceptHandshake(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(raftAuthTimeout))
	var in [len(raftAuthMagic) + raftAuthNonce]byte
	if _, err := io.ReadFull(c, in[:]); err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	if !bytes.Equal(in[:len(raftAuthMagic)], raftAuthMagic[:]) {
		return errors.New("not a Switchboard raft stream (or a build without stream authentication)")
	}
	nonceD := in[len(raftAuthMagic):]
	nonceA := make([]byte, raftAuthNonce)
	_, _ = rand.Read(nonceA)
	out := append(nonceA, raftAuthMAC(l.secret, "acceptor", nonceD, nonceA)...)
	if _, err := c.Write(out); err != nil {
		return fmt.Errorf("write challenge: %w", err)
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if !hmac.Equal(got, raftAuthMAC(l.secret, "dialer", nonceD, nonceA)) {
		return errRaftAuth
	}
	return c.SetDeadline(time.Time{})
}

// Dial connects to another node's Raft address and runs the dialer's side
// of the handshake; it fails unless the other node proves the secret.
func (l *authStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := l.inner.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	if err := l.dialHandshake(c, min(timeout, raftAuthTimeout)); err != nil {
		c.Close()
		l.warn.Log(l.log, slog.LevelWarn, "raft stream to peer refused: handshake failed", "peer", string(address), "err", err)
		return nil, fmt.Errorf("cluster: raft stream to %s: %w", address, err)
	}
	return c, nil
}

func (l *authStreamLayer) dialHandshake(c net.Conn, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = raftAuthTimeout
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	nonceD := make([]byte, raftAuthNonce)
	_, _ = rand.Read(nonceD)
	if _, err := c.Write(append(raftAuthMagic[:], nonceD...)); err != nil {
		return fmt.Errorf("write hello: %w", err)
	}
	var in [raftAuthNonce + sha256.Size]byte
	if _, err := io.ReadFull(c, in[:]); err != nil {
		return fmt.Errorf("read challenge: %w", err)
	}
	nonceA := in[:raftAuthNonce]
	if !hmac.Equal(in[raftAuthNonce:], raftAuthMAC(l.secret, "acceptor", nonceD, nonceA)) {
		return errRaftAuth
	}
	if _, err := c.Write(raftAuthMAC(l.secret, "dialer", nonceD, nonceA)); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	return c.SetDeadline(time.Time{})
}

// Accept returns the next authenticated stream.
func (l *authStreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the inner listener; handshakes in
// progress end with their connections closed.
func (l *authStreamLayer) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

// Addr is the inner layer's advertised address.
func (l *authStreamLayer) Addr() net.Addr { return l.inner.Addr() }
