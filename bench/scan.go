package bench

import "encoding/binary"

// scanner reads the few msgpack shapes of an event frame without
// allocating. Any shape it does not expect makes it fail, and the caller
// falls back to a full decode.
type scanner struct {
	b   []byte
	i   int
	bad bool
}

func (s *scanner) next() byte {
	if s.i >= len(s.b) {
		s.bad = true
		return 0
	}
	c := s.b[s.i]
	s.i++
	return c
}

func (s *scanner) take(n int) []byte {
	if n < 0 || s.i+n > len(s.b) {
		s.bad = true
		return nil
	}
	out := s.b[s.i : s.i+n]
	s.i += n
	return out
}

func (s *scanner) mapLen() int {
	c := s.next()
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f)
	case c == 0xde:
		if b := s.take(2); b != nil {
			return int(binary.BigEndian.Uint16(b))
		}
	}
	s.bad = true
	return 0
}

func (s *scanner) str() []byte {
	c := s.next()
	n := -1
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = int(c & 0x1f)
	case c == 0xd9:
		if b := s.take(1); b != nil {
			n = int(b[0])
		}
	case c == 0xda:
		if b := s.take(2); b != nil {
			n = int(binary.BigEndian.Uint16(b))
		}
	case c == 0xdb:
		if b := s.take(4); b != nil {
			n = int(binary.BigEndian.Uint32(b))
		}
	}
	if n < 0 {
		s.bad = true
		return nil
	}
	return s.take(n)
}

func (s *scanner) uint() uint64 {
	c := s.next()
	switch {
	case c <= 0x7f:
		return uint64(c)
	case c == 0xcc || c == 0xd0:
		if b := s.take(1); b != nil && (c == 0xcc || b[0] < 0x80) {
			return uint64(b[0])
		}
	case c == 0xcd || c == 0xd1:
		if b := s.take(2); b != nil && (c == 0xcd || b[0] < 0x80) {
			return uint64(binary.BigEndian.Uint16(b))
		}
	case c == 0xce || c == 0xd2:
		if b := s.take(4); b != nil && (c == 0xce || b[0] < 0x80) {
			return uint64(binary.BigEndian.Uint32(b))
		}
	case c == 0xcf || c == 0xd3:
		if b := s.take(8); b != nil && (c == 0xcf || b[0] < 0x80) {
			return binary.BigEndian.Uint64(b)
		}
	}
	s.bad = true
	return 0
}

// parseEvent reads an "ev" frame payload as the node encodes it (a map
// with t, seq, kind and, last, data). ok is false for any other frame or
// shape.
func parseEvent(p []byte) (ev eventHead, ok bool) {
	s := scanner{b: p}
	n := s.mapLen()
	var haveT, haveSeq bool
	for k := 0; k < n && !s.bad; k++ {
		switch string(s.str()) {
		case "t":
			if string(s.str()) != "ev" {
				return ev, false
			}
			haveT = true
		case "seq":
			ev.seq = s.uint()
			haveSeq = true
		case "kind":
			ev.kind = s.str()
		case "data":
			if k != n-1 || !haveT || !haveSeq || ev.kind == nil {
				return ev, false // nothing after data can be skipped here
			}
			ev.data = s.b[s.i:]
			if isListEvent(ev.kind) {
				ev.req, ev.list = s.summary()
			}
			return ev, !s.bad
		default:
			return ev, false
		}
	}
	return ev, false
}

// summary reads the id and list of a request summary, whose encoding
// starts id, channel, list.
func (s *scanner) summary() (req uint64, list []byte) {
	n := s.mapLen()
	for k := 0; k < n && !s.bad; k++ {
		switch string(s.str()) {
		case "id":
			req = requestNumber(s.str())
		case "channel":
			s.str()
		case "list":
			return req, s.str()
		default:
			return req, nil // a summary without a list
		}
	}
	return req, list
}
