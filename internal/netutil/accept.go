// Package netutil holds the node's small listener helpers.
package netutil

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// AcceptLoop accepts connections from ln and hands each to handle until
// done is closed (the owner closed ln). A temporary accept error is
// retried after a backoff that doubles from 5 ms up to 1 s; any other is
// logged as "<what> listener failed" and ends the loop after calling
// onFail (typically the owner's Close).
func AcceptLoop(ln net.Listener, done <-chan struct{}, log *slog.Logger, what string, onFail func(), handle func(net.Conn)) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			log.Error(what+" listener failed", "err", err)
			onFail()
			return
		}
		backoff = 0
		handle(c)
	}
}
