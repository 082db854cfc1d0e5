package node

import (
	"bufio"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/internal/netutil"
	"github.com/switchboard/switchboard/transport"
)

// maxPeekHello is the largest first frame the listener decodes to tell a
// node's hello from a client's: a hello is a few hundred bytes. A bigger
// first frame goes to the client server, which judges it.
const maxPeekHello = 4096

// splitListener accepts on the client port and routes each connection by
// its first frame: a hello with role cluster.RoleNode goes to the cluster
// service's node server (cluster.Service.ServeNode),
// everything else to the client server (transport.Server), which receives
// the connection through Accept with the bytes read so far put back. Until
// SetReady, client connections are refused with a bye unavailable, so that
// clients move on to a node that is caught up; node connections are served
// from the start (forming a cluster needs them).
type splitListener struct {
	inner   net.Listener
	peek    time.Duration
	node    func(c net.Conn, hello *cluster.Frame, br *bufio.Reader)
	log     *slog.Logger
	clients chan net.Conn
	done    chan struct{}
	once    sync.Once
	ready   atomic.Bool
	wg      sync.WaitGroup
}

func newSplitListener(inner net.Listener, peek time.Duration, logger *slog.Logger,
	node func(net.Conn, *cluster.Frame, *bufio.Reader)) *splitListener {
	l := &splitListener{
		inner:   inner,
		peek:    peek,
		node:    node,
		log:     logger,
		clients: make(chan net.Conn),
		done:    make(chan struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// SetReady lets client connections through.
func (l *splitListener) SetReady() { l.ready.Store(true) }

func (l *splitListener) acceptLoop() {
	defer l.wg.Done()
	netutil.AcceptLoop(l.inner, l.done, l.log, "client", func() { l.Close() }, func(c net.Conn) { go l.route(c) })
}

// route reads the first frame of c and hands c to the node server or to
// the client server.
func (l *splitListener) route(c net.Conn) {
	helloBy := time.Now().Add(l.peek)
	_ = c.SetReadDeadline(helloBy)
	var hdr [4]byte
	n, err := io.ReadFull(c, hdr[:])
	prefix := hdr[:n]
	if err == nil {
		if size := binary.BigEndian.Uint32(hdr[:]); size > 0 && size <= maxPeekHello {
			payload := make([]byte, size)
			m, err2 := io.ReadFull(c, payload)
			prefix = append(prefix, payload[:m]...)
			var f transport.Frame
			if err2 == nil && transport.DecodeFrame(payload, &f) == nil &&
				f.T == transport.TypeHello && f.Role == cluster.RoleNode {
				_ = c.SetReadDeadline(time.Time{})
				hello := &cluster.Frame{T: cluster.FrameHello, V: f.V, Role: f.Role, User: f.User, Token: f.Token}
				l.node(c, hello, bufio.NewReaderSize(c, 64<<10))
				return
			}
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	if !l.ready.Load() {
		l.refuse(c)
		return
	}
	pc := &prefixConn{Conn: c, prefix: prefix, helloBy: helloBy}
	select {
	case l.clients <- pc:
	case <-l.done:
		c.Close()
	}
}

// refuse tells a client this node is not ready and closes the connection.
func (l *splitListener) refuse(c net.Conn) {
	defer c.Close()
	b, err := transport.EncodeFrame(&transport.Frame{T: transport.TypeBye, Err: &transport.ErrorBody{
		Code: api.CodeUnavailable, Name: api.CodeUnavailable.String(),
		Msg:     "node starting: not caught up with the cluster yet; try another node",
		RetryMs: 500,
	}})
	if err != nil {
		return
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(b)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	// Drain briefly so the close does not reset the bye away.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, _ = io.Copy(io.Discard, c)
}

// Accept returns the next client connection.
func (l *splitListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.clients:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting. Connections already handed out are their
// owners' to close.
func (l *splitListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

// Addr is the listening address.
func (l *splitListener) Addr() net.Addr { return l.inner.Addr() }

// prefixConn is a connection whose first reads return bytes already read
// from it.
type prefixConn struct {
	net.Conn
	mu     sync.Mutex
	prefix []byte
	// helloBy is when the client's time to say hello ends: the peek
	// has used part of it already.
	helloBy time.Time
}

// HelloDeadline tells the client server when the hello deadline ends.
func (c *prefixConn) HelloDeadline() time.Time { return c.helloBy }

func (c *prefixConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection when the underlying one can.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
