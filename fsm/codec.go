package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"

	"github.com/vmihailenco/msgpack/v5"
)

// Log entry format (the data of one Raft log entry):
//
//	byte 0     entry kind: EntryCommands
//	bytes 1..  msgpack array of commands, each a msgpack array
//	           [op uint8, role uint8, by_id string, client_id string,
//	            seq uint64, time int64, args map]
//
// One entry may carry many commands (group commit); each gets its own result.
const (
	EntryCommands byte = 1
	// entryIgnorable is a flag bit: an older node that does not know an
	// entry kind with this bit set skips the entry instead of failing.
	entryIgnorable byte = 0x80
)

// ErrUndecodable means a log entry could not be decoded at all.
var ErrUndecodable = errors.New("fsm: undecodable log entry")

// ErrNewerEntry means a log entry is of a kind this build does not know
// and may not skip: it was written by a newer Switchboard. Such an error
// also wraps ErrUndecodable.
var ErrNewerEntry = errors.New("fsm: log entry of a newer kind, written by a newer Switchboard: upgrade this node")

// EncodeEntry encodes commands as one log entry. The bytes are written by
// hand (codec_append.go): they are exactly those msgpack's reflection
// encoder wrote (testdata/entry_v1.bin and the tests hold them to it), without
// its per-command allocations.
func EncodeEntry(cmds ...*Command) ([]byte, error) {
	sb := entryScratches.Get().(*entryScratch)
	b := append(sb.b[:0], EntryCommands)
	b = msgp.AppendArrayLen(b, len(cmds))
	var err error
	for _, c := range cmds {
		if b, err = entryAppendCommand(b, c); err != nil {
			break
		}
	}
	var out []byte
	if err == nil {
		out = append(make([]byte, 0, len(b)), b...)
	}
	if cap(b) <= maxEntryScratch {
		sb.b = b
		entryScratches.Put(sb)
	}
	return out, err
}

// entryAppendCommand appends c as the array [op uint8, role uint8, by_id,
// client_id, seq uint64, time int64, args], each in the fixed width the
// format has always used.
func entryAppendCommand(b []byte, c *Command) ([]byte, error) {
	b = append(b, 0x97, 0xcc, byte(c.Op), 0xcc, byte(c.By.Role))
	b = msgp.AppendStr(b, c.By.ID)
	b = msgp.AppendStr(b, c.ClientID)
	b = binary.BigEndian.AppendUint64(append(b, 0xcf), c.Seq)
	b = binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(c.Time))
	return entryAppendArgs(b, c.Args)
}

// DecodeEntry decodes a log entry. Commands whose op this version does not
// know decode with a nil Args and Op set, so Apply answers CodeUnknownOp.
//
// The decoder is hand-written (codec_decode.go) and decodes every entry, or
// fails on it, exactly as msgpack's reflection decoder did, with one
// exception: an entry nested deeper than maxEntryDepth (32) is refused.
// No version ever wrote one (arguments nest 2 levels at most).
func DecodeEntry(data []byte) ([]*Command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrUndecodable)
	}
	switch data[0] {
	case EntryCommands:
	default:
		if data[0]&entryIgnorable != 0 {
			return nil, nil
		}
		if data[0] == 0 {
			return nil, fmt.Errorf("%w: kind 0", ErrUndecodable)
		}
		return nil, fmt.Errorf("%w: %w: kind %d", ErrUndecodable, ErrNewerEntry, data[0])
	}
	// Every declared length fits in the entry and nesting is bounded, so
	// that neither decoder below allocates more than the entry's length
	// justifies (msgpack trusts declared lengths).
	// Bytes after the value are allowed: msgpack's decoder never read them.
	if _, err := msgp.Check(data[1:], maxEntryDepth); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	cmds, fallback, err := decodeEntryFast(data[1:])
	if !fallback {
		return cmds, err
	}
	return decodeEntryReflect(data[1:])
}

// decodeEntryReflect decodes the commands array b with msgpack's reflection
// decoder: the decoder of entries whose envelope decodeEntryFast leaves to
// it, and the reference the fast decoder is held to.
func decodeEntryReflect(b []byte) ([]*Command, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	if n < 0 || n > len(b)+1 {
		return nil, fmt.Errorf("%w: %d commands", ErrUndecodable, n)
	}
	cmds := make([]*Command, 0, n)
	for i := 0; i < n; i++ {
		c, err := decodeCommand(dec)
		if err != nil {
			return nil, fmt.Errorf("%w: command %d: %v", ErrUndecodable, i, err)
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

func decodeCommand(dec *msgpack.Decoder) (*Command, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	if n != 7 {
		return nil, fmt.Errorf("command has %d fields, want 7", n)
	}
	c := &Command{}
	op, err := dec.DecodeUint8()
	if err != nil {
		return nil, err
	}
	c.Op = Op(op)
	role, err := dec.DecodeUint8()
	if err != nil {
		return nil, err
	}
	c.By.Role = api.Role(role)
	if c.By.ID, err = dec.DecodeString(); err != nil {
		return nil, err
	}
	if c.ClientID, err = dec.DecodeString(); err != nil {
		return nil, err
	}
	if c.Seq, err = dec.DecodeUint64(); err != nil {
		return nil, err
	}
	if c.Time, err = dec.DecodeInt64(); err != nil {
		return nil, err
	}
	info := Commands.Lookup(c.Op)
	if info == nil {
		return c, dec.Skip()
	}
	c.Args = info.NewArgs()
	if err := dec.Decode(c.Args); err != nil {
		return nil, err
	}
	return c, nil
}

// entryScratch is a reusable encoding buffer; EncodeEntry returns an exact-size
// copy of what it wrote there.
type entryScratch struct{ b []byte }

// maxEntryScratch bounds the buffers kept for reuse.
const maxEntryScratch = 1 << 20

var entryScratches = sync.Pool{New: func() any { return &entryScratch{b: make([]byte, 0, 4096)} }}

// Arguments are encoded by msgp.AppendValue (a per-type plan that writes
// exactly what msgpack's reflection encoder writes).

// entryAppendArgs appends a command's arguments.
func entryAppendArgs(b []byte, args any) ([]byte, error) { return msgp.AppendValue(b, args) }
