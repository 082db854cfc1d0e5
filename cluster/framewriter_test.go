package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// countingConn counts Write calls; while gate is set, each Write first
// waits for it to be closed.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	gate   chan struct{}
	inside chan struct{} // receives once per Write that reached the gate
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		c.inside <- struct{}{}
		<-gate
	}
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// readFrames reads n frames from r and returns them.
func readFrames(t *testing.T, r net.Conn, n int) []Frame {
	t.Helper()
	br := bufio.NewReader(r)
	out := make([]Frame, 0, n)
	for len(out) < n {
		var f Frame
		if err := ReadFrame(br, nodeMaxFrame, &f); err != nil {
			t.Errorf("frame %d: %v", len(out), err)
			return out
		}
		out = append(out, f)
	}
	return out
}

func TestFrameWriterConcurrentFramesArriveWholeAndInOrder(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := newFrameWriter(a)
	const writers, each = 16, 200

	got := make(chan []Frame, 1)
	go func() { got <- readFrames(t, b, writers*each) }()

	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				f := &Frame{T: FrameRequest, ID: uint64(g*each + i), Op: fmt.Sprintf("op-%d", g)}
				if err := w.write(f); err != nil {
					t.Errorf("writer %d frame %d: %v", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	frames := <-got
	if len(frames) != writers*each {
		t.Fatalf("read %d frames, want %d", len(frames), writers*each)
	}
	next := make([]int, writers)
	for _, f := range frames {
		g := int(f.ID) / each
		if f.Op != fmt.Sprintf("op-%d", g) {
			t.Fatalf("frame %d carries op %q: frames were mixed", f.ID, f.Op)
		}
		if i := int(f.ID) % each; i != next[g] {
			t.Fatalf("writer %d: frame %d arrived when %d was due", g, i, next[g])
		}
		next[g]++
	}
}

func TestFrameWriterCoalescesFramesWrittenWhileBusy(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	cc := &countingConn{Conn: a, gate: make(chan struct{}), inside: make(chan struct{}, 4)}
	w := newFrameWriter(cc)
	const waiting = 10

	got := make(chan []Frame, 1)
	go func() { got <- readFrames(t, b, 1+waiting) }()

	errs := make(chan error, 1+waiting)
	go func() { errs <- w.write(&Frame{T: FramePing, ID: 1}) }()
	<-cc.inside // the first frame's round is at the socket and held there
	for i := range waiting {
		go func() { errs <- w.write(&Frame{T: FramePing, ID: uint64(2 + i)}) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		queued := len(w.buf)
		w.mu.Unlock()
		one := AppendFrame(nil, &Frame{T: FramePing, ID: 2})
		if queued >= waiting*len(one) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d bytes queued behind the busy round", queued)
		}
		time.Sleep(time.Millisecond)
	}
	cc.mu.Lock()
	gate := cc.gate
	cc.gate = nil
	cc.mu.Unlock()
	close(gate)
	for range 1 + waiting {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if frames := <-got; len(frames) != 1+waiting {
		t.Fatalf("read %d frames, want %d", len(frames), 1+waiting)
	}
	if n := cc.count(); n != 2 {
		t.Fatalf("%d socket writes for %d frames, want 2 (the held one, then the rest together)", n, 1+waiting)
	}
}

func TestFrameWriterFailsEveryWriteAfterSocketError(t *testing.T) {
	a, b := net.Pipe()
	b.Close()
	w := newFrameWriter(a)
	err := w.write(&Frame{T: FramePing, ID: 1})
	if err == nil {
		t.Fatal("write to a closed peer succeeded")
	}
	if err2 := w.write(&Frame{T: FramePing, ID: 2}); !errors.Is(err2, err) {
		t.Fatalf("write after a failed write: %v, want the first error %v", err2, err)
	}
}
