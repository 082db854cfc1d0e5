package fsm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Sink receives the events of every applied entry, in log order, from the
// Raft apply goroutine, which every commit waits for: it should hand them
// off rather than deliver them, and may block only to push back on a
// consumer that has fallen far behind (actors.Hub queues up to
// Config.PublishQueue entries, then waits).
type Sink interface {
	// Publish hands over the events of log entry index (Seq already set).
	Publish(index uint64, evs []Event)
	// Reset says the state was replaced by a snapshot at index: every
	// stream must re-sync from the new state.
	Reset(index uint64)
}

// ApplyResponse is what FSM.Apply returns for a command entry: one Result
// per command, in order.
type ApplyResponse struct {
	Index   uint64
	Results []Result
	Err     error // set only when the entry was undecodable
}

// FSM adapts State to raft.FSM: it decodes entries, applies them under a
// lock, numbers the events by log position and hands them to the Sink.
type FSM struct {
	mu      sync.RWMutex
	state   *State
	applied atomic.Uint64 // last applied log index (also state.Index)
	sink    Sink
	log     *slog.Logger

	waitMu sync.Mutex
	waitCh chan struct{} // closed and replaced after each apply
}

// NewFSM returns an FSM over an empty state. sink may be nil.
func NewFSM(sink Sink, logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FSM{state: NewState(), sink: sink, log: logger, waitCh: make(chan struct{})}
}

// SetSink sets the event sink; call before Raft starts.
func (f *FSM) SetSink(s Sink) { f.sink = s }

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		f.mu.Lock()
		f.state.Index = l.Index
		f.mu.Unlock()
		f.markApplied(l.Index)
		return nil
	}
	cmds, err := DecodeEntry(l.Data)
	if err != nil {
		// Deterministic on every replica: the entry is skipped, state unchanged.
		f.log.Error("skipping undecodable log entry", "index", l.Index, "err", err)
		f.mu.Lock()
		f.state.Index = l.Index
		f.mu.Unlock()
		f.markApplied(l.Index)
		return &ApplyResponse{Index: l.Index, Err: err}
	}
	resp := &ApplyResponse{Index: l.Index, Results: make([]Result, len(cmds))}
	var evs []Event
	f.mu.Lock()
	f.state.Index = l.Index
	for i, c := range cmds {
		res, e := f.state.Apply(c)
		resp.Results[i] = res
		evs = append(evs, e...)
	}
	f.mu.Unlock()
	for i := range evs {
		evs[i].Seq = api.SeqOf(l.Index, i)
	}
	f.markApplied(l.Index)
	if f.sink != nil && len(evs) > 0 {
		f.sink.Publish(l.Index, evs)
	}
	return resp
}

func (f *FSM) markApplied(index uint64) {
	f.applied.Store(index)
	f.waitMu.Lock()
	close(f.waitCh)
	f.waitCh = make(chan struct{})
	f.waitMu.Unlock()
}

// Applied returns the index of the last applied log entry.
func (f *FSM) Applied() uint64 { return f.applied.Load() }

// WaitApplied blocks until the FSM has applied index, or done is closed.
func (f *FSM) WaitApplied(done <-chan struct{}, index uint64) error {
	for {
		f.waitMu.Lock()
		ch := f.waitCh
		f.waitMu.Unlock()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-done:
			return errors.New("fsm: gave up waiting for apply")
		}
	}
}

// Read runs fn with the state under a read lock, with the index of the last
// entry that state reflects. fn must not keep references into the state.
func (f *FSM) Read(fn func(s *State, applied uint64)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	// state.Index, not f.applied: Apply advances applied after releasing
	// the lock, so applied may still name the entry before this state.
	fn(f.state, f.state.Index)
}

// snapshotVersion is the first byte of a snapshot.
const snapshotVersion byte = 1

// Snapshot implements raft.FSM. It encodes the state under the read lock so
// the capture is consistent; Persist only writes the bytes. (Encoding in
// Persist, outside the lock, would need a copy or an immutable state: Apply
// changes requests, agents and lists in place.) The hand encoder makes this
// about 1.5 s of CPU for a million open requests.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	data, err := f.state.Marshal()
	if err != nil {
		return nil, fmt.Errorf("fsm: encode snapshot: %w", err)
	}
	return &snapshot{data: data}, nil
}

// Restore implements raft.FSM: it discards the current state for the
// snapshot's, then tells the sink to re-sync every stream.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := ReadState(bufio.NewReader(rc))
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.state = st
	f.mu.Unlock()
	f.markApplied(st.Index)
	// Everything the sink knew is superseded: streams re-sync.
	if f.sink != nil {
		f.sink.Reset(st.Index)
	}
	return nil
}

// Marshal encodes the state for a snapshot: a version byte, then msgpack
// with every map's entries sorted by key (so equal states encode to equal
// bytes). The encoding is written by hand (snapshot_encode.go); it is the
// bytes msgpack.Marshal and appendCanonical gave, without their reflection
// and re-sorting.
func (s *State) Marshal() ([]byte, error) {
	out := make([]byte, 1, s.encodedSizeHint())
	out[0] = snapshotVersion
	return appendState(out, s), nil
}

// appendCanonical appends the msgpack value src to dst with the entries of
// every map, at any depth, ordered by their encoded keys.
func appendCanonical(dst, src []byte) ([]byte, error) {
	r := bytes.NewReader(src)
	c := &canonicalizer{src: src, r: r, dec: msgpack.NewDecoder(r)}
	return c.value(dst)
}

type canonicalizer struct {
	src []byte
	r   *bytes.Reader // the decoder reads src through it, unbuffered
	dec *msgpack.Decoder
}

func (c *canonicalizer) value(dst []byte) ([]byte, error) {
	code, err := c.dec.PeekCode()
	if err != nil {
		return nil, err
	}
	isMap := msgpcode.IsFixedMap(code) || code == msgpcode.Map16 || code == msgpcode.Map32
	isArray := msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32
	if !isMap && !isArray {
		start := len(c.src) - c.r.Len()
		if err := c.dec.Skip(); err != nil {
			return nil, err
		}
		return append(dst, c.src[start:len(c.src)-c.r.Len()]...), nil
	}
	var n int
	if isMap {
		n, err = c.dec.DecodeMapLen()
	} else {
		n, err = c.dec.DecodeArrayLen()
	}
	if err != nil {
		return nil, err
	}
	if isMap {
		dst = msgp.AppendMapLen(dst, n)
	} else {
		dst = msgp.AppendArrayLen(dst, n)
	}
	if !isMap {
		for range n {
			if dst, err = c.value(dst); err != nil {
				return nil, err
			}
		}
		return dst, nil
	}
	type entry struct{ start, keyEnd, end int }
	base := len(dst)
	entries := make([]entry, n)
	for i := range entries {
		e := &entries[i]
		e.start = len(dst)
		if dst, err = c.value(dst); err != nil {
			return nil, err
		}
		e.keyEnd = len(dst)
		if dst, err = c.value(dst); err != nil {
			return nil, err
		}
		e.end = len(dst)
	}
	if slices.IsSortedFunc(entries, func(a, b entry) int {
		return bytes.Compare(dst[a.start:a.keyEnd], dst[b.start:b.keyEnd])
	}) {
		return dst, nil
	}
	body := slices.Clone(dst[base:])
	slices.SortFunc(entries, func(a, b entry) int {
		return bytes.Compare(body[a.start-base:a.keyEnd-base], body[b.start-base:b.keyEnd-base])
	})
	dst = dst[:base]
	for _, e := range entries {
		dst = append(dst, body[e.start-base:e.end-base]...)
	}
	return dst, nil
}

// ReadState decodes a state written by Marshal. The snapshot is read whole
// and its structure checked (msgp.Check) before msgpack decodes it, so a
// corrupt or hostile snapshot is an error, not a panic or an allocation
// out of proportion to its size.
func ReadState(r *bufio.Reader) (st *State, err error) {
	v, err := r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("fsm: read snapshot: %w", err)
	}
	if v != snapshotVersion {
		return nil, fmt.Errorf("fsm: snapshot version %d, want %d", v, snapshotVersion)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("fsm: read snapshot: %w", err)
	}
	if n, err := msgp.Check(data, maxSnapshotDepth); err != nil {
		return nil, fmt.Errorf("fsm: decode snapshot: %w", err)
	} else if n != len(data) {
		return nil, fmt.Errorf("fsm: decode snapshot: %d bytes after the state", len(data)-n)
	}
	defer func() {
		if p := recover(); p != nil {
			st, err = nil, fmt.Errorf("fsm: decode snapshot: %v", p)
		}
	}()
	st = NewState()
	if err := msgpack.NewDecoder(bytes.NewReader(data)).Decode(st); err != nil {
		return nil, fmt.Errorf("fsm: decode snapshot: %w", err)
	}
	st.fillNil()
	return st, nil
}

// fillNil makes every map non-nil after decoding.
func (s *State) fillNil() {
	fresh := NewState()
	if s.MRDs == nil {
		s.MRDs = fresh.MRDs
	}
	if s.ChannelTypes == nil {
		s.ChannelTypes = fresh.ChannelTypes
	}
	if s.Channels == nil {
		s.Channels = fresh.Channels
	}
	if s.Lists == nil {
		s.Lists = fresh.Lists
	}
	if s.Queues == nil {
		s.Queues = fresh.Queues
	}
	if s.Agents == nil {
		s.Agents = fresh.Agents
	}
	if s.Connectors == nil {
		s.Connectors = fresh.Connectors
	}
	if s.Requests == nil {
		s.Requests = fresh.Requests
	}
	if s.Open == nil {
		s.Open = fresh.Open
	}
	if s.Sessions == nil {
		s.Sessions = fresh.Sessions
	}
	for _, sess := range s.Sessions {
		if sess.Results == nil {
			sess.Results = map[uint64]Result{}
		}
	}
}

type snapshot struct{ data []byte }

// Persist writes the encoded state; any failure cancels the sink.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("fsm: close snapshot: %w", err)
	}
	return nil
}

func (s *snapshot) Release() {}
