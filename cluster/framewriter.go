package cluster

import (
	"net"
	"sync"
	"time"
)

// maxKeptWriteBuf is the largest coalescing buffer a frameWriter keeps
// after a burst; larger ones are dropped for the collector.
const maxKeptWriteBuf = 1 << 20

// frameWriter writes whole frames to a node connection from many
// goroutines at once, coalescing them: the first caller to find the socket
// idle becomes the flusher and writes, in one system call per round,
// every frame the others appended meanwhile. A forwarded command and its
// answer would otherwise cost one write(2) each on both nodes; under load
// dozens share one.
//
// write returns once its frame has been handed to the socket, or with the
// error that stopped it; after an error every later write fails at once
// (the stream may end inside a frame, so the connection is done).
type frameWriter struct {
	c net.Conn

	mu      sync.Mutex
	cond    sync.Cond // signalled when a round has been written or failed
	buf     []byte    // frames waiting for the next round
	spare   []byte    // the previous round's buffer, reused
	writing bool      // a flusher is running
	taken   uint64    // rounds taken by the flusher
	written uint64    // rounds completely written
	err     error

	// bufs holds encoding buffers, so frames are encoded outside mu
	// without allocating each time.
	bufs sync.Pool
}

func newFrameWriter(c net.Conn) *frameWriter {
	w := &frameWriter{c: c}
	w.cond.L = &w.mu
	w.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	return w
}

func (w *frameWriter) write(f *Frame) error {
	bp := w.bufs.Get().(*[]byte)
	enc := AppendFrame((*bp)[:0], f)

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.buf = append(w.buf, enc...)
	}
	if cap(enc) <= maxKeptWriteBuf {
		*bp = enc[:0]
		w.bufs.Put(bp)
	}
	if w.err != nil {
		return w.err
	}
	// The frame goes out in the next round the flusher takes.
	mine := w.taken + 1
	if w.writing {
		for w.written < mine && w.err == nil {
			w.cond.Wait()
		}
		if w.written >= mine {
			return nil
		}
		return w.err
	}

	w.writing = true
	for len(w.buf) > 0 && w.err == nil {
		out := w.buf
		w.buf = w.spare[:0]
		w.taken++
		round := w.taken
		w.mu.Unlock()
		_ = w.c.SetWriteDeadline(time.Now().Add(nodeWriteTimeout))
		_, werr := w.c.Write(out)
		w.mu.Lock()
		if cap(out) <= maxKeptWriteBuf {
			w.spare = out[:0]
		} else {
			w.spare = nil
		}
		if werr != nil {
			w.err = werr
			w.buf = nil
		} else {
			w.written = round
		}
		w.cond.Broadcast()
	}
	w.writing = false
	if w.written >= mine {
		return nil
	}
	return w.err
}
