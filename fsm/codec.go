package fsm

import (
	"bytes"
	"errors"
	"fmt"

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

// EncodeEntry encodes commands as one log entry.
func EncodeEntry(cmds ...*Command) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(EntryCommands)
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.EncodeArrayLen(len(cmds)); err != nil {
		return nil, err
	}
	for _, c := range cmds {
		if err := encodeCommand(enc, c); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func encodeCommand(enc *msgpack.Encoder, c *Command) error {
	if err := enc.EncodeArrayLen(7); err != nil {
		return err
	}
	if err := enc.EncodeUint8(uint8(c.Op)); err != nil {
		return err
	}
	if err := enc.EncodeUint8(uint8(c.By.Role)); err != nil {
		return err
	}
	if err := enc.EncodeString(c.By.ID); err != nil {
		return err
	}
	if err := enc.EncodeString(c.ClientID); err != nil {
		return err
	}
	if err := enc.EncodeUint64(c.Seq); err != nil {
		return err
	}
	if err := enc.EncodeInt64(c.Time); err != nil {
		return err
	}
	return enc.Encode(c.Args)
}

// DecodeEntry decodes a log entry. Commands whose op this version does not
// know decode with a nil Args and Op set, so Apply answers CodeUnknownOp.
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
		return nil, fmt.Errorf("%w: kind %d", ErrUndecodable, data[0])
	}
	dec := msgpack.NewDecoder(bytes.NewReader(data[1:]))
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	if n < 0 || n > len(data) {
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
	c.By.Role = Role(role)
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
