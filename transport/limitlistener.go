package transport

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/internal/ratelog"
)

// Connection caps, used when NewLimitListener is given zero. The bench's
// 1,256 connections from one address fit under the per-address cap.
const (
	DefaultMaxConns        = 20000
	DefaultMaxConnsPerAddr = 2048
)

// LimitListener caps the connections open at once through it, in all and
// per source address. A connection over either cap is closed as soon as
// it is accepted, before a byte is read, so idle connections cannot pile
// up without bound.
type LimitListener struct {
	net.Listener
	total, perAddr int
	log            *slog.Logger
	warn           *ratelog.Limiter

	mu     sync.Mutex
	open   int
	byAddr map[string]int

	// Connections refused over each cap (Refused).
	refusedTotal, refusedPerAddr atomic.Uint64
}

// NewLimitListener wraps ln with caps of total and perAddr open
// connections (DefaultMaxConns and DefaultMaxConnsPerAddr if zero;
// negative: no cap).
func NewLimitListener(ln net.Listener, total, perAddr int, log *slog.Logger) *LimitListener {
	if total == 0 {
		total = DefaultMaxConns
	}
	if perAddr == 0 {
		perAddr = DefaultMaxConnsPerAddr
	}
	if log == nil {
		log = slog.Default()
	}
	return &LimitListener{Listener: ln, total: total, perAddr: perAddr, log: log,
		warn: ratelog.New(10 * time.Second), byAddr: map[string]int{}}
}

// Accept returns the next connection within the caps.
func (l *LimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := remoteHost(c)
		l.mu.Lock()
		over := ""
		switch {
		case l.total > 0 && l.open >= l.total:
			over = "total"
		case l.perAddr > 0 && l.byAddr[host] >= l.perAddr:
			over = "per address"
		default:
			l.open++
			l.byAddr[host]++
		}
		l.mu.Unlock()
		if over != "" {
			if over == "total" {
				l.refusedTotal.Add(1)
			} else {
				l.refusedPerAddr.Add(1)
			}
			c.Close()
			l.warn.Log(l.log, slog.LevelWarn, "connection refused: over the "+over+" connection cap",
				"remote", host, "max_total", l.total, "max_per_address", l.perAddr)
			continue
		}
		return &limitedConn{Conn: c, l: l, host: host}, nil
	}
}

// Open returns the number of connections open through the listener.
func (l *LimitListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Refused returns how many connections were closed on accept because
// they were over the cap on all connections, and over the cap per source
// address.
func (l *LimitListener) Refused() (total, perAddr uint64) {
	return l.refusedTotal.Load(), l.refusedPerAddr.Load()
}

func (l *LimitListener) done(host string) {
	l.mu.Lock()
	l.open--
	if l.byAddr[host]--; l.byAddr[host] <= 0 {
		delete(l.byAddr, host)
	}
	l.mu.Unlock()
}

// limitedConn gives its place back when closed.
type limitedConn struct {
	net.Conn
	l    *LimitListener
	host string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.done(c.host) })
	return err
}

// CloseWrite half-closes the connection when the underlying one can.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
