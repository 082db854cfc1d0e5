package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// The event stream (GET /console/events) is the supervisor's hub stream as
// Server-Sent Events:
//
//	retry: <ms>
//
//	id: <seq>
//	event: <kind>
//	data: <payload as JSON>
//
// The first event is a sync (its data a StreamView with the Board), unless
// the browser resumes: Last-Event-ID (the browser's own reconnect), or
// ?since=<seq> (a page that opens a new EventSource), asks for the events
// after that seq, which the hub replays from its history, or answers with
// a sync when the history no longer covers it. An idle stream gets a
// comment every KeepAlive.

// events serves the supervisor's event stream until the browser goes, the
// console closes, the supervisor's credential ends, or the stream falls
// too far behind (it is then cut off, and the browser reconnects).
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	s, ok := h.apiSession(w, r)
	if !ok {
		return
	}
	release, which, ok := h.streams.acquire(s.id)
	if !ok {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, api.CodeRateLimited.String(),
			fmt.Sprintf("too many console event streams open (the %s's limit): close another tab", which))
		return
	}
	defer release()
	since, resume := cursor(r)

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	st := &stream{w: w, rc: http.NewResponseController(w), wait: h.cfg.StreamWriteWait}
	fmt.Fprintf(&st.buf, "retry: %d\n\n", h.cfg.ReconnectDelay.Milliseconds())
	if st.flush() != nil {
		return
	}

	out := newOutbox(h.cfg.StreamFrames, h.cfg.StreamBytes)
	detach := h.cfg.Backend.Attach(api.SupervisorKey(s.id), since, resume, out)
	defer detach()
	keep := time.NewTicker(h.cfg.KeepAlive)
	defer keep.Stop()
	check := time.NewTicker(h.cfg.Revalidate)
	defer check.Stop()
	recheck := h.rechecked()
	var frames [][]byte
	for {
		revalidate := false
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-recheck:
			recheck, revalidate = h.rechecked(), true
		case <-check.C:
			revalidate = true
		case <-keep.C:
			st.comment("keepalive")
			if st.flush() != nil {
				return
			}
		case <-out.wake:
			var cut bool
			frames, cut = out.take(frames[:0])
			for _, f := range frames {
				if err := st.event(f); err != nil {
					h.log.Warn("console stream: an event could not be sent", "supervisor", s.id, "err", err)
				}
			}
			clear(frames)
			if cut {
				// What was queued is sent first, so that a reconnect
				// makes progress even after a burst larger than the
				// queue.
				st.comment("slow consumer: reconnect and resume from the last id")
			}
			if st.flush() != nil || cut {
				return
			}
			keep.Reset(h.cfg.KeepAlive)
		}
		if revalidate {
			if !h.cfg.Backend.CredentialValid(s.principal(), s.hash[:]) {
				st.comment("logged out: " + errRevoked.Error())
				_ = st.flush()
				return
			}
		}
	}
}

// cursor returns where a stream resumes: Last-Event-ID, else ?since.
func cursor(r *http.Request) (since uint64, resume bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("since")
	}
	if v == "" {
		return 0, false
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil || seq == 0 {
		return 0, false
	}
	return seq, true
}

// stream writes SSE to one response.
type stream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	wait time.Duration
	buf  bytes.Buffer
}

// event appends one encoded event frame as an SSE event.
func (st *stream) event(frame []byte) error {
	seq, kind, data, err := frameJSON(frame)
	if err != nil {
		return err
	}
	fmt.Fprintf(&st.buf, "id: %d\nevent: %s\ndata: ", seq, kind)
	st.buf.Write(data)
	st.buf.WriteString("\n\n")
	return nil
}

func (st *stream) comment(text string) { fmt.Fprintf(&st.buf, ": %s\n\n", text) }

// flush writes what is buffered, within the write deadline.
func (st *stream) flush() error {
	if st.buf.Len() == 0 {
		return nil
	}
	_ = st.rc.SetWriteDeadline(time.Now().Add(st.wait))
	_, err := st.w.Write(st.buf.Bytes())
	st.buf.Reset()
	if err == nil {
		err = st.rc.Flush()
	}
	return err
}

// errNotEvent: the hub delivered a frame that is not an event.
var errNotEvent = errors.New("console: not an event frame")

// frameJSON decodes an encoded event frame (length prefix included) into
// its seq, its kind and its payload as JSON.
func frameJSON(frame []byte) (seq uint64, kind string, data []byte, err error) {
	if len(frame) < 4 {
		return 0, "", nil, errNotEvent
	}
	var f transport.Frame
	if err := transport.DecodeFrame(frame[4:], &f); err != nil {
		return 0, "", nil, fmt.Errorf("decode event frame: %w", err)
	}
	if f.T != transport.TypeEvent || f.Kind == "" {
		return 0, "", nil, errNotEvent
	}
	data, err = msgpackJSON(f.Data)
	if err != nil {
		return 0, "", nil, fmt.Errorf("event %d (%s): %w", f.Seq, f.Kind, err)
	}
	return f.Seq, f.Kind, data, nil
}

// msgpackJSON converts a msgpack value to JSON, keeping the wire's field
// names (docs/PROTOCOL.md): maps become objects, binary strings base64.
func msgpackJSON(raw []byte) ([]byte, error) {
	if len(raw) == 0 {
		return []byte("null"), nil
	}
	if err := transport.CheckMsgpack(raw); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(raw))
	dec.UseLooseInterfaceDecoding(true)
	v, err := dec.DecodeInterface()
	if err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	return json.Marshal(v)
}

// toJSON converts a Go value of the api package (a command's result, a
// query's answer) to JSON with the wire's field names, through msgpack.
func toJSON(v any) ([]byte, error) {
	raw, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return msgpackJSON(raw)
}

// outbox is a stream's bounded queue of event frames: the hub delivers to
// it without blocking, and the stream's handler drains it. When a frame
// does not fit, the stream is cut off: Deliver returns false (the hub
// never delivers to it again) and the handler ends the response.
type outbox struct {
	maxFrames, maxBytes int
	wake                chan struct{}

	mu     sync.Mutex
	frames [][]byte
	bytes  int
	cut    bool
}

func newOutbox(maxFrames, maxBytes int) *outbox {
	return &outbox{maxFrames: maxFrames, maxBytes: maxBytes, wake: make(chan struct{}, 1)}
}

// Deliver implements transport.Outbox.
func (o *outbox) Deliver(frame []byte) bool { return o.DeliverBatch([][]byte{frame}) }

// DeliverBatch implements actors.BatchOutbox: the frames, in order, or
// none and the stream cut off. It does not keep the slice.
func (o *outbox) DeliverBatch(frames [][]byte) bool {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	o.mu.Lock()
	ok := !o.cut && len(o.frames)+len(frames) <= o.maxFrames && o.bytes+n <= o.maxBytes
	if ok {
		o.frames = append(o.frames, frames...)
		o.bytes += n
	} else {
		o.cut = true
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return ok
}

// take moves the queued frames to dst and reports whether the stream was
// cut off.
func (o *outbox) take(dst [][]byte) ([][]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	dst = append(dst, o.frames...)
	clear(o.frames)
	o.frames, o.bytes = o.frames[:0], 0
	return dst, o.cut
}
