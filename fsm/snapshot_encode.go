package fsm

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The snapshot encoder: an append-style msgpack writer for State that
// produces, byte for byte, what msgpack.Marshal followed by appendCanonical
// produced (snapshot version 1): every struct is a map of its msgpack field
// names, omitempty fields left out when empty; every map, struct or not, has
// its entries ordered by their encoded keys. A msgpack string's encoding
// starts with a header that grows with its length, so encoded-key order is
// (length, then bytes) order: keyLess. Struct fields below are written in
// that order, by hand; snapshot_test.go checks the bytes against the
// reflection encoder, on a state with every field filled in, so a field
// added to a struct and forgotten here fails a test.
//
// Integer widths follow msgpack's defaults: int is compact (EncodeInt),
// int64/uint64/uint16/uint8 keep their full width.

// encodedSizeHint guesses a state's encoded size, so that the buffer is
// allocated once in the common case.
func (s *State) encodedSizeHint() int {
	return 4096 + 320*len(s.Requests) + 48*len(s.Open) + 160*len(s.Agents) + 24*len(s.ClosedOrder)
}

// appendState appends s's canonical msgpack encoding to b.
func appendState(b []byte, s *State) []byte {
	n := 15
	if len(s.Nodes) > 0 {
		n++
	}
	if s.NextOffer != 0 {
		n++
	}
	if s.PullPolicy != "" {
		n++
	}
	b = appendMapLen(b, n)
	b = appendStr(b, "now")
	b = appendInt64(b, s.Now)
	b = appendStr(b, "mrds")
	b = appendPtrMap(b, s.MRDs, appendMRD)
	b = appendStr(b, "open")
	b = appendStringMap(b, s.Open)
	b = appendStr(b, "index")
	b = appendUint64(b, s.Index)
	b = appendStr(b, "lists")
	b = appendPtrMap(b, s.Lists, appendList)
	if len(s.Nodes) > 0 {
		b = appendStr(b, "nodes")
		b = appendPtrMap(b, s.Nodes, appendNodeInfo)
	}
	b = appendStr(b, "agents")
	b = appendPtrMap(b, s.Agents, appendAgent)
	b = appendStr(b, "queues")
	b = appendPtrMap(b, s.Queues, appendQueue)
	b = appendStr(b, "channels")
	b = appendPtrMap(b, s.Channels, appendChannel)
	b = appendStr(b, "requests")
	b = appendPtrMap(b, s.Requests, appendRequest)
	b = appendStr(b, "sessions")
	b = appendPtrMap(b, s.Sessions, appendSession)
	b = appendStr(b, "connectors")
	b = appendPtrMap(b, s.Connectors, appendConnector)
	b = appendStr(b, "last_sweep")
	b = appendInt64(b, s.LastSweep)
	if s.NextOffer != 0 {
		b = appendStr(b, "next_offer")
		b = appendUint64(b, s.NextOffer)
	}
	if s.PullPolicy != "" {
		b = appendStr(b, "pull_policy")
		b = appendStr(b, string(s.PullPolicy))
	}
	b = appendStr(b, "closed_order")
	b = appendStrs(b, s.ClosedOrder)
	b = appendStr(b, "next_request")
	b = appendUint64(b, s.NextRequest)
	b = appendStr(b, "channel_types")
	b = appendPtrMap(b, s.ChannelTypes, appendChannelType)
	return b
}

func appendMRD(b []byte, v *MRD) []byte {
	b = appendMapLen(b, 2)
	b = appendStr(appendStr(b, "id"), v.ID)
	return appendStr(appendStr(b, "name"), v.Name)
}

func appendChannelType(b []byte, v *ChannelType) []byte {
	b = appendMapLen(b, 2)
	b = appendStr(appendStr(b, "id"), v.ID)
	return appendStr(appendStr(b, "mrd"), v.MRD)
}

func appendChannel(b []byte, v *Channel) []byte {
	b = appendMapLen(b, 4+nonEmpty(v.List)+nonEmpty(v.Queue)+nonEmptyN(len(v.Connectors)))
	b = appendStr(appendStr(b, "id"), v.ID)
	b = appendStr(appendStr(b, "mrd"), v.MRD)
	if v.List != "" {
		b = appendStr(appendStr(b, "list"), v.List)
	}
	b = appendStr(appendStr(b, "mode"), string(v.Mode))
	b = appendStr(appendStr(b, "type"), v.Type)
	if v.Queue != "" {
		b = appendStr(appendStr(b, "queue"), v.Queue)
	}
	if len(v.Connectors) > 0 {
		b = appendStrs(appendStr(b, "connectors"), v.Connectors)
	}
	return b
}

func appendList(b []byte, v *List) []byte {
	b = appendMapLen(b, 2+nonEmptyN(len(v.Requests))+nonEmptyN(len(v.Subscribers)))
	b = appendStr(appendStr(b, "id"), v.ID)
	b = appendStr(appendStr(b, "name"), v.Name)
	if len(v.Requests) > 0 {
		b = appendStrs(appendStr(b, "requests"), v.Requests)
	}
	if len(v.Subscribers) > 0 {
		b = appendStrs(appendStr(b, "subscribers"), v.Subscribers)
	}
	return b
}

func appendQueue(b []byte, v *Queue) []byte {
	b = appendMapLen(b, 5+nonEmptyN(len(v.Members))+nonEmptyN(len(v.Offered))+nonEmptyN(len(v.Waiting)))
	b = appendStr(appendStr(b, "id"), v.ID)
	b = appendStr(appendStr(b, "mrd"), v.MRD)
	b = appendStr(appendStr(b, "name"), v.Name)
	if len(v.Members) > 0 {
		b = appendStrs(appendStr(b, "members"), v.Members)
	}
	if len(v.Offered) > 0 {
		b = appendStrs(appendStr(b, "offered"), v.Offered)
	}
	if len(v.Waiting) > 0 {
		b = appendStrs(appendStr(b, "waiting"), v.Waiting)
	}
	b = appendInt(appendStr(b, "priority"), int64(v.Priority))
	return appendInt64(appendStr(b, "offer_timeout_ms"), v.OfferTimeoutMs)
}

func appendAgent(b []byte, v *Agent) []byte {
	n := 3 + nonEmptyN(len(v.Max)) + nonEmpty(string(v.Mode)) + nonEmptyN(len(v.Lists)) +
		nonEmptyN(len(v.Offers)) + nonEmptyN(len(v.Queues)) + nonEmptyN(len(v.States)) +
		nonZero(v.LoginAt) + nonFalse(v.LoggedIn) + nonEmptyN(len(v.Conversations)) +
		nonFalse(v.ChatRequested) + nonZero(v.LastAssignedAt) + nonZero(v.ChatRequestedAt)
	b = appendMapLen(b, n)
	b = appendStr(appendStr(b, "id"), v.ID)
	if len(v.Max) > 0 {
		b = appendStr(b, "max")
		b = appendMapLen(b, len(v.Max))
		for _, e := range sortedEntries(v.Max) {
			b = appendInt(appendStr(b, e.k), int64(e.v))
		}
	}
	if v.Mode != "" {
		b = appendStr(appendStr(b, "mode"), string(v.Mode))
	}
	b = appendStr(appendStr(b, "name"), v.Name)
	if len(v.Lists) > 0 {
		b = appendStrs(appendStr(b, "lists"), v.Lists)
	}
	if len(v.Offers) > 0 {
		b = appendStrs(appendStr(b, "offers"), v.Offers)
	}
	if len(v.Queues) > 0 {
		b = appendStrs(appendStr(b, "queues"), v.Queues)
	}
	if len(v.States) > 0 {
		b = appendStr(b, "states")
		b = appendMapLen(b, len(v.States))
		for _, e := range sortedEntries(v.States) {
			b = appendAgentMRDState(appendStr(b, e.k), e.v)
		}
	}
	if v.LoginAt != 0 {
		b = appendInt64(appendStr(b, "login_at"), v.LoginAt)
	}
	if v.LoggedIn {
		b = appendBool(appendStr(b, "logged_in"), v.LoggedIn)
	}
	b = appendBin(appendStr(b, "token_hash"), v.TokenHash)
	if len(v.Conversations) > 0 {
		b = appendStrs(appendStr(b, "conversations"), v.Conversations)
	}
	if v.ChatRequested {
		b = appendBool(appendStr(b, "chat_requested"), v.ChatRequested)
	}
	if v.LastAssignedAt != 0 {
		b = appendInt64(appendStr(b, "last_assigned_at"), v.LastAssignedAt)
	}
	if v.ChatRequestedAt != 0 {
		b = appendInt64(appendStr(b, "chat_requested_at"), v.ChatRequestedAt)
	}
	return b
}

func appendAgentMRDState(b []byte, v AgentMRDState) []byte {
	b = appendMapLen(b, 2+nonEmpty(v.Reason))
	b = appendInt64(appendStr(b, "since"), v.Since)
	b = appendStr(appendStr(b, "state"), string(v.State))
	if v.Reason != "" {
		b = appendStr(appendStr(b, "reason"), v.Reason)
	}
	return b
}

func appendConnector(b []byte, v *Connector) []byte {
	b = appendMapLen(b, 4)
	b = appendStr(appendStr(b, "id"), v.ID)
	b = appendStr(appendStr(b, "name"), v.Name)
	b = appendStrs(appendStr(b, "channels"), v.Channels)
	return appendBin(appendStr(b, "token_hash"), v.TokenHash)
}

func appendNodeInfo(b []byte, v *NodeInfo) []byte {
	b = appendMapLen(b, 3)
	b = appendStr(appendStr(b, "id"), v.ID)
	b = appendStr(appendStr(b, "raft_addr"), v.RaftAddr)
	return appendStr(appendStr(b, "client_addr"), v.ClientAddr)
}

func appendRequest(b []byte, v *Request) []byte {
	n := 7 + nonEmpty(v.List) + nonNil(v.Offer) + nonEmpty(v.Queue) + nonFalse(v.Queued) +
		nonEmptyN(len(v.Declined)) + nonZero(int64(v.Priority)) + nonZero(v.QueuedAt) +
		nonEmptyN(len(v.Transcript)) + nonEmptyN(len(v.Participants)) + nonZero(v.AgentRequestedAt)
	b = appendMapLen(b, n)
	b = appendStr(appendStr(b, "id"), v.ID)
	b = appendStr(appendStr(b, "mrd"), v.MRD)
	if v.List != "" {
		b = appendStr(appendStr(b, "list"), v.List)
	}
	if v.Offer != nil {
		b = appendOffer(appendStr(b, "offer"), v.Offer)
	}
	if v.Queue != "" {
		b = appendStr(appendStr(b, "queue"), v.Queue)
	}
	b = appendStr(appendStr(b, "state"), string(v.State))
	if v.Queued {
		b = appendBool(appendStr(b, "queued"), v.Queued)
	}
	b = appendStr(appendStr(b, "channel"), v.Channel)
	b = appendStr(b, "customer")
	b = appendMapLen(b, 1+nonEmpty(v.Customer.Name))
	b = appendStr(appendStr(b, "id"), v.Customer.ID)
	if v.Customer.Name != "" {
		b = appendStr(appendStr(b, "name"), v.Customer.Name)
	}
	if len(v.Declined) > 0 {
		b = appendStrs(appendStr(b, "declined"), v.Declined)
	}
	if v.Priority != 0 {
		b = appendInt(appendStr(b, "priority"), int64(v.Priority))
	}
	if v.QueuedAt != 0 {
		b = appendInt64(appendStr(b, "queued_at"), v.QueuedAt)
	}
	b = appendInt64(appendStr(b, "created_at"), v.CreatedAt)
	if len(v.Transcript) > 0 {
		b = appendStr(b, "transcript")
		b = appendArrayLen(b, len(v.Transcript))
		for i := range v.Transcript {
			b = appendMessage(b, &v.Transcript[i])
		}
	}
	b = appendInt64(appendStr(b, "updated_at"), v.UpdatedAt)
	if len(v.Participants) > 0 {
		b = appendStrs(appendStr(b, "participants"), v.Participants)
	}
	if v.AgentRequestedAt != 0 {
		b = appendInt64(appendStr(b, "agent_requested_at"), v.AgentRequestedAt)
	}
	return b
}

func appendMessage(b []byte, m *Message) []byte {
	b = appendMapLen(b, 3+nonEmpty(m.Name))
	b = appendInt64(appendStr(b, "at"), m.At)
	b = appendStr(b, "from")
	b = appendMapLen(b, 2)
	b = appendStr(appendStr(b, "id"), m.From.ID)
	b = append(appendStr(b, "role"), msgpcode.Uint8, byte(m.From.Role))
	if m.Name != "" {
		b = appendStr(appendStr(b, "name"), m.Name)
	}
	return appendStr(appendStr(b, "text"), m.Text)
}

func appendOffer(b []byte, v *Offer) []byte {
	b = appendMapLen(b, 5+nonEmpty(v.From))
	b = appendStr(appendStr(b, "id"), v.ID)
	if v.From != "" {
		b = appendStr(appendStr(b, "from"), v.From)
	}
	b = appendStr(appendStr(b, "kind"), string(v.Kind))
	b = appendStr(appendStr(b, "agent"), v.Agent)
	b = appendInt64(appendStr(b, "created_at"), v.CreatedAt)
	return appendInt64(appendStr(b, "expires_at"), v.ExpiresAt)
}

func appendSession(b []byte, v *ClientSession) []byte {
	b = appendMapLen(b, 3)
	b = appendUint64(appendStr(b, "max_seq"), v.MaxSeq)
	b = appendStr(b, "results")
	if v.Results == nil {
		b = append(b, msgpcode.Nil)
	} else {
		b = appendMapLen(b, len(v.Results))
		seqs := make([]uint64, 0, len(v.Results))
		for k := range v.Results {
			seqs = append(seqs, k)
		}
		slices.Sort(seqs)
		for _, k := range seqs {
			b = appendResult(appendUint64(b, k), v.Results[k])
		}
	}
	return appendInt64(appendStr(b, "last_seen"), v.LastSeen)
}

// appendResult encodes a command result. Data is any value (a result
// struct, or after a restore the generic maps msgpack decoded it into), so
// it goes through the reflection encoder and the canonicalizer, which are
// what defined its encoding; results are few (a window per client).
func appendResult(b []byte, r Result) []byte {
	if r.Data != nil {
		raw, err := msgpack.Marshal(r)
		if err == nil {
			if out, err := appendCanonical(b, raw); err == nil {
				return out
			}
		}
		// Unreachable for the values Apply stores; keep the output
		// decodable rather than failing the whole snapshot.
		r.Data = nil
	}
	if r.Err == nil {
		return appendMapLen(b, 0)
	}
	b = appendMapLen(b, 1)
	b = appendStr(b, "err")
	b = appendMapLen(b, 2)
	b = appendStr(appendStr(b, "msg"), r.Err.Msg)
	b = append(appendStr(b, "code"), msgpcode.Uint16, byte(r.Err.Code>>8), byte(r.Err.Code))
	return b
}

// keyCompare orders strings as their msgpack encodings compare.
func keyCompare(a, b string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// entry is a map entry, for encoding a map in key order without looking
// every key up again. hi and lo hold the key's first 16 bytes (big-endian,
// zero-padded): with the length they order nearly every pair of keys
// (request ids, open-request keys) without reading the strings, whose
// bytes are scattered over the heap. On a state of a million requests the
// sort was otherwise bound by cache misses.
type entry[V any] struct {
	hi, lo uint64
	k      string
	v      V
}

func sortedEntries[V any](m map[string]V) []entry[V] {
	es := make([]entry[V], 0, len(m))
	for k, v := range m {
		var p [16]byte
		copy(p[:], k)
		es = append(es, entry[V]{binary.BigEndian.Uint64(p[:8]), binary.BigEndian.Uint64(p[8:]), k, v})
	}
	slices.SortFunc(es, func(a, b entry[V]) int {
		if c := cmp.Compare(len(a.k), len(b.k)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		if c := cmp.Compare(a.lo, b.lo); c != 0 {
			return c
		}
		if len(a.k) <= 16 {
			return 0
		}
		return strings.Compare(a.k[16:], b.k[16:])
	})
	return es
}

// appendPtrMap encodes a map of struct pointers in key order (nil map: nil).
func appendPtrMap[V any](b []byte, m map[string]*V, fn func([]byte, *V) []byte) []byte {
	if m == nil {
		return append(b, msgpcode.Nil)
	}
	b = appendMapLen(b, len(m))
	for _, e := range sortedEntries(m) {
		b = appendStr(b, e.k)
		if e.v == nil {
			b = append(b, msgpcode.Nil)
		} else {
			b = fn(b, e.v)
		}
	}
	return b
}

func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, msgpcode.Nil)
	}
	b = appendMapLen(b, len(m))
	for _, e := range sortedEntries(m) {
		b = appendStr(appendStr(b, e.k), e.v)
	}
	return b
}

func nonEmpty(s string) int { return nonEmptyN(len(s)) }

func nonEmptyN(n int) int {
	if n > 0 {
		return 1
	}
	return 0
}

func nonZero(v int64) int {
	if v != 0 {
		return 1
	}
	return 0
}

func nonFalse(v bool) int {
	if v {
		return 1
	}
	return 0
}

func nonNil[T any](p *T) int {
	if p != nil {
		return 1
	}
	return 0
}

func appendMapLen(b []byte, n int) []byte { return appendLen(b, true, n) }

func appendArrayLen(b []byte, n int) []byte { return appendLen(b, false, n) }

func appendStr(b []byte, s string) []byte {
	l := len(s)
	switch {
	case l < 32:
		b = append(b, msgpcode.FixedStrLow|byte(l))
	case l <= math.MaxUint8:
		b = append(b, msgpcode.Str8, byte(l))
	case l <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, msgpcode.Str16), uint16(l))
	default:
		b = binary.BigEndian.AppendUint32(append(b, msgpcode.Str32), uint32(l))
	}
	return append(b, s...)
}

// appendStrs encodes a string slice; nil is msgpack nil, as the reflection
// encoder writes it.
func appendStrs(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, msgpcode.Nil)
	}
	b = appendArrayLen(b, len(ss))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

func appendBin(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, msgpcode.Nil)
	}
	l := len(v)
	switch {
	case l <= math.MaxUint8:
		b = append(b, msgpcode.Bin8, byte(l))
	case l <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, msgpcode.Bin16), uint16(l))
	default:
		b = binary.BigEndian.AppendUint32(append(b, msgpcode.Bin32), uint32(l))
	}
	return append(b, v...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, msgpcode.True)
	}
	return append(b, msgpcode.False)
}

// appendInt64 writes an int64 at full width (msgpack's default for int64).
func appendInt64(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, msgpcode.Int64), uint64(v))
}

// appendUint64 writes a uint64 at full width.
func appendUint64(b []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, msgpcode.Uint64), v)
}

// appendInt writes an int compactly, as msgpack's EncodeInt does for Go's
// int kind.
func appendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		u := uint64(n)
		switch {
		case u <= math.MaxInt8:
			return append(b, byte(u))
		case u <= math.MaxUint8:
			return append(b, msgpcode.Uint8, byte(u))
		case u <= math.MaxUint16:
			return binary.BigEndian.AppendUint16(append(b, msgpcode.Uint16), uint16(u))
		case u <= math.MaxUint32:
			return binary.BigEndian.AppendUint32(append(b, msgpcode.Uint32), uint32(u))
		}
		return appendUint64(b, u)
	case n >= int64(int8(msgpcode.NegFixedNumLow)):
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, msgpcode.Int8, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, msgpcode.Int16), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, msgpcode.Int32), uint32(n))
	}
	return appendInt64(b, n)
}
