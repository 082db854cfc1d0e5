package fsm

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"

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
	return 4096 + 320*len(s.Requests) + 48*s.Open.Len() + 160*len(s.Agents) + 24*len(s.ClosedOrder)
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
	if s.Level != 0 {
		n++
	}
	if len(s.Supervisors) > 0 {
		n++
	}
	if s.NextPresence != 0 {
		n++
	}
	b = msgp.AppendMapLen(b, n)
	b = msgp.AppendStr(b, "now")
	b = appendInt64(b, s.Now)
	b = msgp.AppendStr(b, "mrds")
	b = appendPtrMap(b, s.MRDs, appendMRD)
	b = msgp.AppendStr(b, "open")
	b = appendOpen(b, &s.Open)
	b = msgp.AppendStr(b, "index")
	b = appendUint64(b, s.Index)
	if s.Level != 0 {
		b = msgp.AppendStr(b, "level")
		b = binary.BigEndian.AppendUint32(append(b, msgpcode.Uint32), s.Level)
	}
	b = msgp.AppendStr(b, "lists")
	b = appendPtrMap(b, s.Lists, appendList)
	if len(s.Nodes) > 0 {
		b = msgp.AppendStr(b, "nodes")
		b = appendPtrMap(b, s.Nodes, appendNodeInfo)
	}
	b = msgp.AppendStr(b, "agents")
	b = appendPtrMap(b, s.Agents, appendAgent)
	b = msgp.AppendStr(b, "queues")
	b = appendPtrMap(b, s.Queues, appendQueue)
	b = msgp.AppendStr(b, "channels")
	b = appendPtrMap(b, s.Channels, appendChannel)
	b = msgp.AppendStr(b, "requests")
	b = appendPtrMap(b, s.Requests, appendRequest)
	b = msgp.AppendStr(b, "sessions")
	b = appendPtrMap(b, s.Sessions, appendSession)
	b = msgp.AppendStr(b, "connectors")
	b = appendPtrMap(b, s.Connectors, appendConnector)
	b = msgp.AppendStr(b, "last_sweep")
	b = appendInt64(b, s.LastSweep)
	if s.NextOffer != 0 {
		b = msgp.AppendStr(b, "next_offer")
		b = appendUint64(b, s.NextOffer)
	}
	if s.PullPolicy != "" {
		b = msgp.AppendStr(b, "pull_policy")
		b = msgp.AppendStr(b, string(s.PullPolicy))
	}
	if len(s.Supervisors) > 0 {
		b = msgp.AppendStr(b, "supervisors")
		b = appendPtrMap(b, s.Supervisors, appendSupervisor)
	}
	b = msgp.AppendStr(b, "closed_order")
	b = appendStrs(b, s.ClosedOrder)
	b = msgp.AppendStr(b, "next_request")
	b = appendUint64(b, s.NextRequest)
	b = msgp.AppendStr(b, "channel_types")
	b = appendPtrMap(b, s.ChannelTypes, appendChannelType)
	if s.NextPresence != 0 {
		b = msgp.AppendStr(b, "next_presence")
		b = appendUint64(b, s.NextPresence)
	}
	return b
}

func appendMRD(b []byte, v *api.MRD) []byte {
	b = msgp.AppendMapLen(b, 2)
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	return msgp.AppendStr(msgp.AppendStr(b, "name"), v.Name)
}

func appendChannelType(b []byte, v *api.ChannelType) []byte {
	b = msgp.AppendMapLen(b, 2)
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	return msgp.AppendStr(msgp.AppendStr(b, "mrd"), v.MRD)
}

func appendChannel(b []byte, v *api.Channel) []byte {
	b = msgp.AppendMapLen(b, 4+nonEmpty(v.List)+nonEmpty(v.Queue)+nonEmptyN(len(v.Connectors)))
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	b = msgp.AppendStr(msgp.AppendStr(b, "mrd"), v.MRD)
	if v.List != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "list"), v.List)
	}
	b = msgp.AppendStr(msgp.AppendStr(b, "mode"), string(v.Mode))
	b = msgp.AppendStr(msgp.AppendStr(b, "type"), v.Type)
	if v.Queue != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "queue"), v.Queue)
	}
	if len(v.Connectors) > 0 {
		b = appendStrs(msgp.AppendStr(b, "connectors"), v.Connectors)
	}
	return b
}

func appendList(b []byte, v *List) []byte {
	b = msgp.AppendMapLen(b, 2+nonEmptyN(len(v.Requests))+nonEmptyN(len(v.Subscribers))+
		nonZero(v.SLAMs)+nonZero(int64(v.SLAWarnPct))+nonZero(v.CloseInactiveMs)+nonZero(v.RemindInactiveMs)+
		nonEmpty(string(v.Access))+nonEmptyN(len(v.Granted)))
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	b = msgp.AppendStr(msgp.AppendStr(b, "name"), v.Name)
	if v.Access != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "access"), string(v.Access))
	}
	if v.SLAMs != 0 {
		b = appendInt64(msgp.AppendStr(b, "sla_ms"), v.SLAMs)
	}
	if len(v.Granted) > 0 {
		b = appendStrs(msgp.AppendStr(b, "granted"), v.Granted)
	}
	if len(v.Requests) > 0 {
		b = appendStrs(msgp.AppendStr(b, "requests"), v.Requests)
	}
	if len(v.Subscribers) > 0 {
		b = appendStrs(msgp.AppendStr(b, "subscribers"), v.Subscribers)
	}
	if v.SLAWarnPct != 0 {
		b = msgp.AppendInt(msgp.AppendStr(b, "sla_warn_pct"), int64(v.SLAWarnPct))
	}
	if v.CloseInactiveMs != 0 {
		b = appendInt64(msgp.AppendStr(b, "close_inactive_ms"), v.CloseInactiveMs)
	}
	if v.RemindInactiveMs != 0 {
		b = appendInt64(msgp.AppendStr(b, "remind_inactive_ms"), v.RemindInactiveMs)
	}
	return b
}

func appendQueue(b []byte, v *api.Queue) []byte {
	b = msgp.AppendMapLen(b, 5+nonEmptyN(len(v.Members))+nonEmptyN(len(v.Offered))+nonEmptyN(len(v.Waiting))+
		nonZero(int64(v.AgingCap))+nonZero(v.AgingStepMs)+nonZero(v.SLAMs)+nonZero(int64(v.SLAWarnPct))+
		nonZero(v.SLDay)+nonZero(int64(v.SLMet))+nonZero(int64(v.SLBreached)))
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	b = msgp.AppendStr(msgp.AppendStr(b, "mrd"), v.MRD)
	b = msgp.AppendStr(msgp.AppendStr(b, "name"), v.Name)
	if v.SLDay != 0 {
		b = appendInt64(msgp.AppendStr(b, "sl_day"), v.SLDay)
	}
	if v.SLMet != 0 {
		b = msgp.AppendInt(msgp.AppendStr(b, "sl_met"), int64(v.SLMet))
	}
	if v.SLAMs != 0 {
		b = appendInt64(msgp.AppendStr(b, "sla_ms"), v.SLAMs)
	}
	if len(v.Members) > 0 {
		b = appendStrs(msgp.AppendStr(b, "members"), v.Members)
	}
	if len(v.Offered) > 0 {
		b = appendStrs(msgp.AppendStr(b, "offered"), v.Offered)
	}
	if len(v.Waiting) > 0 {
		b = appendStrs(msgp.AppendStr(b, "waiting"), v.Waiting)
	}
	b = msgp.AppendInt(msgp.AppendStr(b, "priority"), int64(v.Priority))
	if v.AgingCap != 0 {
		b = msgp.AppendInt(msgp.AppendStr(b, "aging_cap"), int64(v.AgingCap))
	}
	if v.SLBreached != 0 {
		b = msgp.AppendInt(msgp.AppendStr(b, "sl_breached"), int64(v.SLBreached))
	}
	if v.SLAWarnPct != 0 {
		b = msgp.AppendInt(msgp.AppendStr(b, "sla_warn_pct"), int64(v.SLAWarnPct))
	}
	if v.AgingStepMs != 0 {
		b = appendInt64(msgp.AppendStr(b, "aging_step_ms"), v.AgingStepMs)
	}
	return appendInt64(msgp.AppendStr(b, "offer_timeout_ms"), v.OfferTimeoutMs)
}

func appendAgent(b []byte, v *Agent) []byte {
	n := 3 + nonEmptyN(len(v.Max)) + nonEmpty(string(v.Mode)) + nonEmptyN(len(v.Lists)) +
		nonEmptyN(len(v.Offers)) + nonEmptyN(len(v.Queues)) + nonEmptyN(len(v.States)) +
		nonZero(v.LoginAt) + nonFalse(v.LoggedIn) + nonEmptyN(len(v.Conversations)) +
		nonFalse(v.ChatRequested) + nonZero(v.LastAssignedAt) + nonZero(v.ChatRequestedAt) +
		nonZeroU(v.Presence)
	b = msgp.AppendMapLen(b, n)
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	if len(v.Max) > 0 {
		b = msgp.AppendStr(b, "max")
		b = msgp.AppendMapLen(b, len(v.Max))
		for _, e := range sortedEntries(v.Max) {
			b = msgp.AppendInt(msgp.AppendStr(b, e.k), int64(e.v))
		}
	}
	if v.Mode != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "mode"), string(v.Mode))
	}
	b = msgp.AppendStr(msgp.AppendStr(b, "name"), v.Name)
	if len(v.Lists) > 0 {
		b = appendStrs(msgp.AppendStr(b, "lists"), v.Lists)
	}
	if len(v.Offers) > 0 {
		b = appendStrs(msgp.AppendStr(b, "offers"), v.Offers)
	}
	if len(v.Queues) > 0 {
		b = appendStrs(msgp.AppendStr(b, "queues"), v.Queues)
	}
	if len(v.States) > 0 {
		b = msgp.AppendStr(b, "states")
		b = msgp.AppendMapLen(b, len(v.States))
		for _, e := range sortedEntries(v.States) {
			b = appendAgentMRDState(msgp.AppendStr(b, e.k), e.v)
		}
	}
	if v.LoginAt != 0 {
		b = appendInt64(msgp.AppendStr(b, "login_at"), v.LoginAt)
	}
	if v.Presence != 0 {
		b = appendUint64(msgp.AppendStr(b, "presence"), v.Presence)
	}
	if v.LoggedIn {
		b = msgp.AppendBool(msgp.AppendStr(b, "logged_in"), v.LoggedIn)
	}
	b = appendBin(msgp.AppendStr(b, "token_hash"), v.TokenHash)
	if len(v.Conversations) > 0 {
		b = appendStrs(msgp.AppendStr(b, "conversations"), v.Conversations)
	}
	if v.ChatRequested {
		b = msgp.AppendBool(msgp.AppendStr(b, "chat_requested"), v.ChatRequested)
	}
	if v.LastAssignedAt != 0 {
		b = appendInt64(msgp.AppendStr(b, "last_assigned_at"), v.LastAssignedAt)
	}
	if v.ChatRequestedAt != 0 {
		b = appendInt64(msgp.AppendStr(b, "chat_requested_at"), v.ChatRequestedAt)
	}
	return b
}

func appendAgentMRDState(b []byte, v AgentMRDState) []byte {
	b = msgp.AppendMapLen(b, 2+nonEmpty(v.Reason))
	b = appendInt64(msgp.AppendStr(b, "since"), v.Since)
	b = msgp.AppendStr(msgp.AppendStr(b, "state"), string(v.State))
	if v.Reason != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "reason"), v.Reason)
	}
	return b
}

func appendConnector(b []byte, v *Connector) []byte {
	b = msgp.AppendMapLen(b, 4)
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	b = msgp.AppendStr(msgp.AppendStr(b, "name"), v.Name)
	b = appendStrs(msgp.AppendStr(b, "channels"), v.Channels)
	return appendBin(msgp.AppendStr(b, "token_hash"), v.TokenHash)
}

func appendSupervisor(b []byte, v *Supervisor) []byte {
	b = msgp.AppendMapLen(b, 3+nonEmptyN(len(v.MRDs))+nonEmptyN(len(v.Lists))+nonEmptyN(len(v.Queues)))
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	if len(v.MRDs) > 0 {
		b = appendStrs(msgp.AppendStr(b, "mrds"), v.MRDs)
	}
	b = msgp.AppendStr(msgp.AppendStr(b, "name"), v.Name)
	if len(v.Lists) > 0 {
		b = appendStrs(msgp.AppendStr(b, "lists"), v.Lists)
	}
	if len(v.Queues) > 0 {
		b = appendStrs(msgp.AppendStr(b, "queues"), v.Queues)
	}
	return appendBin(msgp.AppendStr(b, "token_hash"), v.TokenHash)
}

func appendNodeInfo(b []byte, v *NodeInfo) []byte {
	b = msgp.AppendMapLen(b, 3)
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	b = msgp.AppendStr(msgp.AppendStr(b, "raft_addr"), v.RaftAddr)
	return msgp.AppendStr(msgp.AppendStr(b, "client_addr"), v.ClientAddr)
}

func appendRequest(b []byte, v *Request) []byte {
	n := 7 + nonEmpty(v.List) + nonNil(v.Offer) + nonEmpty(v.Queue) + nonFalse(v.Queued) +
		nonEmptyN(len(v.Declined)) + nonZero(int64(v.Priority)) + nonZero(v.QueuedAt) +
		nonEmptyN(len(v.Transcript)) + nonEmptyN(len(v.Participants)) + nonZero(v.AgentRequestedAt) +
		nonFalse(v.StrictDecline) + nonZero(int64(v.Unread)) + nonEmpty(string(v.SLA)) + nonZero(v.SLAAt) +
		nonZero(v.SLADue) + nonFalse(v.Reminded) + nonZero(v.SLAWarnAt) + nonZero(v.InactiveSince)
	b = msgp.AppendMapLen(b, n)
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	b = msgp.AppendStr(msgp.AppendStr(b, "mrd"), v.MRD)
	if v.SLA != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "sla"), string(v.SLA))
	}
	if v.List != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "list"), v.List)
	}
	if v.Offer != nil {
		b = appendOffer(msgp.AppendStr(b, "offer"), v.Offer)
	}
	if v.Queue != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "queue"), v.Queue)
	}
	b = msgp.AppendStr(msgp.AppendStr(b, "state"), string(v.State))
	if v.Queued {
		b = msgp.AppendBool(msgp.AppendStr(b, "queued"), v.Queued)
	}
	if v.SLAAt != 0 {
		b = appendInt64(msgp.AppendStr(b, "sla_at"), v.SLAAt)
	}
	if v.Unread != 0 {
		b = msgp.AppendInt(msgp.AppendStr(b, "unread"), int64(v.Unread))
	}
	b = msgp.AppendStr(msgp.AppendStr(b, "channel"), v.Channel)
	if v.SLADue != 0 {
		b = appendInt64(msgp.AppendStr(b, "sla_due"), v.SLADue)
	}
	b = msgp.AppendStr(b, "customer")
	b = msgp.AppendMapLen(b, 1+nonEmpty(v.Customer.Name))
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.Customer.ID)
	if v.Customer.Name != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "name"), v.Customer.Name)
	}
	if len(v.Declined) > 0 {
		b = appendStrs(msgp.AppendStr(b, "declined"), v.Declined)
	}
	if v.Priority != 0 {
		b = msgp.AppendInt(msgp.AppendStr(b, "priority"), int64(v.Priority))
	}
	if v.Reminded {
		b = msgp.AppendBool(msgp.AppendStr(b, "reminded"), v.Reminded)
	}
	if v.QueuedAt != 0 {
		b = appendInt64(msgp.AppendStr(b, "queued_at"), v.QueuedAt)
	}
	b = appendInt64(msgp.AppendStr(b, "created_at"), v.CreatedAt)
	if len(v.Transcript) > 0 {
		b = msgp.AppendStr(b, "transcript")
		b = msgp.AppendArrayLen(b, len(v.Transcript))
		for i := range v.Transcript {
			b = appendMessage(b, &v.Transcript[i])
		}
	}
	b = appendInt64(msgp.AppendStr(b, "updated_at"), v.UpdatedAt)
	if v.SLAWarnAt != 0 {
		b = appendInt64(msgp.AppendStr(b, "sla_warn_at"), v.SLAWarnAt)
	}
	if len(v.Participants) > 0 {
		b = appendStrs(msgp.AppendStr(b, "participants"), v.Participants)
	}
	if v.InactiveSince != 0 {
		b = appendInt64(msgp.AppendStr(b, "inactive_since"), v.InactiveSince)
	}
	if v.StrictDecline {
		b = msgp.AppendBool(msgp.AppendStr(b, "strict_decline"), v.StrictDecline)
	}
	if v.AgentRequestedAt != 0 {
		b = appendInt64(msgp.AppendStr(b, "agent_requested_at"), v.AgentRequestedAt)
	}
	return b
}

func appendMessage(b []byte, m *api.Message) []byte {
	b = msgp.AppendMapLen(b, 3+nonEmpty(m.Name))
	b = appendInt64(msgp.AppendStr(b, "at"), m.At)
	b = msgp.AppendStr(b, "from")
	b = msgp.AppendMapLen(b, 2)
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), m.From.ID)
	b = append(msgp.AppendStr(b, "role"), msgpcode.Uint8, byte(m.From.Role))
	if m.Name != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "name"), m.Name)
	}
	return msgp.AppendStr(msgp.AppendStr(b, "text"), m.Text)
}

func appendOffer(b []byte, v *Offer) []byte {
	b = msgp.AppendMapLen(b, 5+nonEmpty(v.From)+nonZero(v.QueuedAt))
	b = msgp.AppendStr(msgp.AppendStr(b, "id"), v.ID)
	if v.From != "" {
		b = msgp.AppendStr(msgp.AppendStr(b, "from"), v.From)
	}
	b = msgp.AppendStr(msgp.AppendStr(b, "kind"), string(v.Kind))
	b = msgp.AppendStr(msgp.AppendStr(b, "agent"), v.Agent)
	if v.QueuedAt != 0 {
		b = appendInt64(msgp.AppendStr(b, "queued_at"), v.QueuedAt)
	}
	b = appendInt64(msgp.AppendStr(b, "created_at"), v.CreatedAt)
	return appendInt64(msgp.AppendStr(b, "expires_at"), v.ExpiresAt)
}

func appendSession(b []byte, v *ClientSession) []byte {
	b = msgp.AppendMapLen(b, 3)
	b = appendUint64(msgp.AppendStr(b, "max_seq"), v.MaxSeq)
	b = msgp.AppendStr(b, "results")
	if v.Results == nil {
		b = append(b, msgpcode.Nil)
	} else {
		b = msgp.AppendMapLen(b, len(v.Results))
		seqs := make([]uint64, 0, len(v.Results))
		for k := range v.Results {
			seqs = append(seqs, k)
		}
		slices.Sort(seqs)
		for _, k := range seqs {
			b = appendResult(appendUint64(b, k), v.Results[k])
		}
	}
	return appendInt64(msgp.AppendStr(b, "last_seen"), v.LastSeen)
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
		return msgp.AppendMapLen(b, 0)
	}
	b = msgp.AppendMapLen(b, 1)
	b = msgp.AppendStr(b, "err")
	b = msgp.AppendMapLen(b, 2)
	b = msgp.AppendStr(msgp.AppendStr(b, "msg"), r.Err.Msg)
	b = append(msgp.AppendStr(b, "code"), msgpcode.Uint16, byte(r.Err.Code>>8), byte(r.Err.Code))
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
// (request ids, customer ids) without reading the strings, whose
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
	b = msgp.AppendMapLen(b, len(m))
	for _, e := range sortedEntries(m) {
		b = msgp.AppendStr(b, e.k)
		if e.v == nil {
			b = append(b, msgpcode.Nil)
		} else {
			b = fn(b, e.v)
		}
	}
	return b
}

// openRun is a run of the open map's snapshot form, in key order: the
// entries of one channel whose keys, channel+"\x00"+customer, have n
// bytes (es, customers in order), or one loose key (name, es nil).
type openRun struct {
	n    int
	name string // the channel, or the loose key
	es   []entry[string]
	rid  string // a loose key's
}

// appendOpen encodes o as the flat map it replaced was encoded: keys
// openKey(channel, customer) and the loose ones, in keyLess order (nil
// as msgpack nil). It sorts each channel's customers, which orders its
// keys, then the runs of one channel and key length by length and
// channel (compareOpenRuns), rather than all the keys at once: a
// channel's customers are sorted without reading its id, and the
// runs are few (channels × customer id lengths).
func appendOpen(b []byte, o *OpenRequests) []byte {
	if o.byChannel == nil {
		return append(b, msgpcode.Nil)
	}
	var runs []openRun
	for ch, m := range o.byChannel {
		es := sortedEntries(m) // by length, then bytes: so are their keys
		for len(es) > 0 {
			j := 1
			for j < len(es) && len(es[j].k) == len(es[0].k) {
				j++
			}
			runs = append(runs, openRun{n: len(ch) + 1 + len(es[0].k), name: ch, es: es[:j]})
			es = es[j:]
		}
	}
	for k, rid := range o.loose {
		runs = append(runs, openRun{n: len(k), name: k, rid: rid})
	}
	slices.SortFunc(runs, compareOpenRuns)
	b = msgp.AppendMapLen(b, o.n)
	for _, r := range runs {
		if r.es == nil {
			b = msgp.AppendStr(msgp.AppendStr(b, r.name), r.rid)
			continue
		}
		for _, e := range r.es {
			b = append(append(append(msgp.AppendStrHeader(b, r.n), r.name...), 0), e.k...)
			b = msgp.AppendStr(b, e.v)
		}
	}
	return b
}

// compareOpenRuns orders runs as keyLess orders their keys (length, then
// bytes). For keys of one length, comparing the channels is the keys' byte
// order because no channel (nor loose key) holds a NUL byte, the
// separator, which is the least byte: two channels that differ before the
// shorter one ends differ there in the keys too; if one channel is a
// prefix of the other, the shorter one's key has the separator where the
// longer one's has a greater byte, and strings.Compare also puts the
// shorter first. A loose key is longer than the channel of a key of its
// length, so it never equals that channel and compares like a longer
// channel. No two runs have the same length and name. OpenRequests keeps
// channels NUL-free: it splits a key at its first NUL byte.
func compareOpenRuns(a, b openRun) int {
	if a.n != b.n {
		return cmp.Compare(a.n, b.n)
	}
	return strings.Compare(a.name, b.name)
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

func nonZeroU(v uint64) int {
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

// appendStrs encodes a string slice; nil is msgpack nil, as the reflection
// encoder writes it.
func appendStrs(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, msgpcode.Nil)
	}
	b = msgp.AppendArrayLen(b, len(ss))
	for _, s := range ss {
		b = msgp.AppendStr(b, s)
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

// appendInt64 writes an int64 at full width (msgpack's default for int64).
func appendInt64(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, msgpcode.Int64), uint64(v))
}

// appendUint64 writes a uint64 at full width.
func appendUint64(b []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, msgpcode.Uint64), v)
}
