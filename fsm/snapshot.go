package fsm

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/switchboard/switchboard/internal/gchold"
	"github.com/switchboard/switchboard/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The snapshot encoding of a State: what the Raft adapter (cluster.FSM)
// writes in Persist and reads back in Restore, and what a backup holds.

// snapshotVersion is the first byte of a snapshot.
const snapshotVersion byte = 1

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

// holdGCFrom is the snapshot size from which ReadState pauses the garbage
// collector while it decodes.
const holdGCFrom = 16 << 20

// ReadState decodes a state written by Marshal. The snapshot is read
// whole. The fast path (snapshot_decode.go) takes what Marshal writes;
// anything else has its structure checked (msgp.Check) before msgpack
// decodes it, so a corrupt or hostile snapshot is an error, not a panic or
// an allocation out of proportion to its size. From holdGCFrom bytes on,
// the garbage collector is paused while it decodes (internal/gchold).
func ReadState(r *bufio.Reader) (st *State, err error) {
	v, err := r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("fsm: read snapshot: %w", err)
	}
	if v != snapshotVersion {
		return nil, fmt.Errorf("fsm: snapshot version %d, want %d", v, snapshotVersion)
	}
	// io.Copy lets r write itself out: a reader of bytes in memory (a
	// bytes.Reader under r) gives them in one write, which the buffer
	// takes in one allocation of their size; a file is read into a
	// buffer that doubles. io.ReadAll grows by a quarter at a time,
	// allocating (and faulting in) some five times the snapshot's size.
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return nil, fmt.Errorf("fsm: read snapshot: %w", err)
	}
	data := buf.Bytes()
	if len(data) >= holdGCFrom {
		// A restore allocates about three times the snapshot's size, two
		// thirds of it kept: collecting while the heap grows marks it
		// again and again for nothing (internal/gchold).
		defer gchold.Hold(4 * int64(len(data)))()
	}
	defer func() {
		if p := recover(); p != nil {
			st, err = nil, fmt.Errorf("fsm: decode snapshot: %v", p)
		}
	}()
	if st, err = readStateFast(data, restoreOptions()); err == nil {
		st.fillNil()
	} else if st, err = readStateReflect(data); err != nil {
		return nil, err
	}
	st.indexSessions()
	return st, nil
}

// readStateReflect is ReadState's slow path: any snapshot msgpack wrote,
// checked first. It leaves the sessions' index to build.
func readStateReflect(data []byte) (*State, error) {
	if n, err := msgp.Check(data, maxSnapshotDepth); err != nil {
		return nil, fmt.Errorf("fsm: decode snapshot: %w", err)
	} else if n != len(data) {
		return nil, fmt.Errorf("fsm: decode snapshot: %d bytes after the state", len(data)-n)
	}
	st := NewState()
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
	if s.Open.byChannel == nil {
		s.Open.byChannel = fresh.Open.byChannel
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
