package fsm

import (
	"errors"
	"strings"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// The snapshot decoder's fast path. A snapshot's bulk is its requests and
// the open-request index: decoded by msgpack's reflection they cost about
// 22 allocations a request and most of a restore's time. readStateFast
// decodes those two maps by hand — a request's strings in one allocation,
// its slices sized once — and the rest of the state (configuration,
// agents, sessions: small) by msgpack, from a map holding the other keys.
//
// It accepts exactly what appendState writes and what msgpack would
// decode the same way; anything else (an unexpected key or type, a
// snapshot of another writer) returns errNotFast and ReadState decodes the
// whole snapshot by reflection instead. snapshot_decode_test.go holds the
// two paths to the same result.

var errNotFast = errors.New("fsm: snapshot not in the fast decoder's shape")

// readStateFast decodes data (a state, checked by msgp.Check) into a new
// State, or returns errNotFast.
func readStateFast(data []byte) (*State, error) {
	n, i, ok := msgp.ReadMapLen(data, 0)
	if !ok {
		return nil, errNotFast
	}
	var (
		requests map[string]*Request
		open     map[string]string
		haveReq  bool
		haveOpen bool
		rest     = make([]byte, 0, 4096)
		restN    int
	)
	for range n {
		key, next, ok := msgp.ReadStr(data, i)
		if !ok {
			return nil, errNotFast
		}
		switch string(key) {
		case "requests":
			if haveReq {
				return nil, errNotFast // msgpack would merge the two
			}
			if requests, i, ok = decodeRequests(data, next); !ok {
				return nil, errNotFast
			}
			haveReq = true
		case "open":
			if haveOpen {
				return nil, errNotFast
			}
			if open, i, ok = decodeStringMap(data, next); !ok {
				return nil, errNotFast
			}
			haveOpen = true
		default:
			vlen, err := msgp.Check(data[next:], maxSnapshotDepth)
			if err != nil {
				return nil, errNotFast
			}
			rest = append(rest, data[i:next+vlen]...)
			restN++
			i = next + vlen
		}
	}
	if i != len(data) {
		return nil, errNotFast
	}
	st := NewState()
	body := msgp.AppendMapLen(make([]byte, 0, len(rest)+5), restN)
	body = append(body, rest...)
	if err := msgpack.Unmarshal(body, st); err != nil {
		return nil, err
	}
	if haveReq {
		st.Requests = requests
	}
	if haveOpen {
		st.Open = open
	}
	return st, nil
}

// decodeStringMap decodes a map of str to str (or nil) at i.
func decodeStringMap(b []byte, i int) (map[string]string, int, bool) {
	if isNil(b, i) {
		return nil, i + 1, true
	}
	n, i, ok := msgp.ReadMapLen(b, i)
	if !ok {
		return nil, i, false
	}
	m := make(map[string]string, n)
	for range n {
		k, next, ok := msgp.ReadStr(b, i)
		if !ok {
			return nil, i, false
		}
		v, after, ok := msgp.ReadStr(b, next)
		if !ok {
			return nil, i, false
		}
		// Key and value in one allocation.
		var sb strings.Builder
		sb.Grow(len(k) + len(v))
		sb.Write(k)
		sb.Write(v)
		s := sb.String()
		m[s[:len(k)]] = s[len(k):]
		i = after
	}
	return m, i, true
}

// decodeRequests decodes the requests map (or nil) at i.
func decodeRequests(b []byte, i int) (map[string]*Request, int, bool) {
	if isNil(b, i) {
		return nil, i + 1, true
	}
	n, i, ok := msgp.ReadMapLen(b, i)
	if !ok {
		return nil, i, false
	}
	m := make(map[string]*Request, n)
	var d reqDecoder
	for range n {
		k, next, ok := msgp.ReadStr(b, i)
		if !ok {
			return nil, i, false
		}
		if isNil(b, next) {
			m[string(k)] = nil
			i = next + 1
			continue
		}
		var key string
		r, after, ok := d.request(b, next, k, &key)
		if !ok {
			return nil, i, false
		}
		m[key] = r
		i = after
	}
	return m, i, true
}

// reqDecoder decodes requests one at a time, reusing its scratch space:
// each request's strings (its key in the map included) share one
// allocation, made once the request is read.
type reqDecoder struct {
	strs []pendingStr
}

// pendingStr is a string field waiting for its request's allocation.
type pendingStr struct {
	dst *string
	b   []byte
}

func isNil(b []byte, i int) bool { return i < len(b) && b[i] == 0xc0 }

// eachField reads a map at i, calling field with each key and the offset
// of its value; field reads the value and returns the offset after it.
func eachField(b []byte, i int, field func(key []byte, i int) (int, bool)) (int, bool) {
	n, i, ok := msgp.ReadMapLen(b, i)
	if !ok {
		return i, false
	}
	for range n {
		var k []byte
		if k, i, ok = msgp.ReadStr(b, i); !ok {
			return i, false
		}
		if i, ok = field(k, i); !ok {
			return i, false
		}
	}
	return i, true
}

// str reads a str (or nil: "") at i into *dst, once the request is done.
func (d *reqDecoder) str(b []byte, i int, dst *string) (int, bool) {
	if isNil(b, i) {
		*dst = ""
		return i + 1, true
	}
	s, next, ok := msgp.ReadStr(b, i)
	if !ok {
		return i, false
	}
	d.strs = append(d.strs, pendingStr{dst, s})
	return next, true
}

// int64At reads an integer (or nil: 0) at i.
func int64At(b []byte, i int, dst *int64) (int, bool) {
	if isNil(b, i) {
		*dst = 0
		return i + 1, true
	}
	v, next, ok := msgp.ReadInt(b, i)
	if !ok {
		return i, false
	}
	*dst = int64(v)
	return next, true
}

func intAt(b []byte, i int, dst *int) (int, bool) {
	var v int64
	next, ok := int64At(b, i, &v)
	*dst = int(v)
	return next, ok
}

func boolAt(b []byte, i int, dst *bool) (int, bool) {
	if isNil(b, i) {
		*dst = false
		return i + 1, true
	}
	v, next, ok := msgp.ReadBool(b, i)
	*dst = v
	return next, ok
}

// strs reads an array of str (or nil).
func (d *reqDecoder) strSlice(b []byte, i int, dst *[]string) (int, bool) {
	if isNil(b, i) {
		*dst = nil
		return i + 1, true
	}
	n, i, ok := msgp.ReadArrayLen(b, i)
	if !ok {
		return i, false
	}
	out := make([]string, n)
	for j := range out {
		if i, ok = d.str(b, i, &out[j]); !ok {
			return i, false
		}
	}
	*dst = out
	return i, true
}

// flush gives the pending strings their one allocation.
func (d *reqDecoder) flush() {
	total := 0
	for _, p := range d.strs {
		total += len(p.b)
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, p := range d.strs {
		sb.Write(p.b)
	}
	all := sb.String()
	off := 0
	for _, p := range d.strs {
		*p.dst = all[off : off+len(p.b)]
		off += len(p.b)
	}
	clear(d.strs)
	d.strs = d.strs[:0]
}

// request decodes one request at i (a map, as appendRequest writes it);
// its map key goes to *key.
func (d *reqDecoder) request(b []byte, i int, key []byte, keyDst *string) (*Request, int, bool) {
	r := &Request{}
	d.strs = append(d.strs[:0], pendingStr{keyDst, key})
	i, ok := eachField(b, i, func(k []byte, i int) (int, bool) {
		switch string(k) {
		case "id":
			return d.str(b, i, &r.ID)
		case "mrd":
			return d.str(b, i, &r.MRD)
		case "sla":
			return d.str(b, i, (*string)(&r.SLA))
		case "list":
			return d.str(b, i, &r.List)
		case "queue":
			return d.str(b, i, &r.Queue)
		case "state":
			return d.str(b, i, (*string)(&r.State))
		case "channel":
			return d.str(b, i, &r.Channel)
		case "offer":
			return d.offer(b, i, &r.Offer)
		case "queued":
			return boolAt(b, i, &r.Queued)
		case "reminded":
			return boolAt(b, i, &r.Reminded)
		case "strict_decline":
			return boolAt(b, i, &r.StrictDecline)
		case "sla_at":
			return int64At(b, i, &r.SLAAt)
		case "sla_due":
			return int64At(b, i, &r.SLADue)
		case "queued_at":
			return int64At(b, i, &r.QueuedAt)
		case "created_at":
			return int64At(b, i, &r.CreatedAt)
		case "updated_at":
			return int64At(b, i, &r.UpdatedAt)
		case "sla_warn_at":
			return int64At(b, i, &r.SLAWarnAt)
		case "inactive_since":
			return int64At(b, i, &r.InactiveSince)
		case "agent_requested_at":
			return int64At(b, i, &r.AgentRequestedAt)
		case "unread":
			return intAt(b, i, &r.Unread)
		case "priority":
			return intAt(b, i, &r.Priority)
		case "customer":
			return eachField(b, i, func(k []byte, i int) (int, bool) {
				switch string(k) {
				case "id":
					return d.str(b, i, &r.Customer.ID)
				case "name":
					return d.str(b, i, &r.Customer.Name)
				}
				return i, false
			})
		case "declined":
			return d.strSlice(b, i, &r.Declined)
		case "participants":
			return d.strSlice(b, i, &r.Participants)
		case "transcript":
			return d.transcript(b, i, &r.Transcript)
		}
		return i, false // a field this decoder does not know
	})
	if !ok {
		return nil, i, false
	}
	d.flush()
	return r, i, true
}

func (d *reqDecoder) offer(b []byte, i int, dst **Offer) (int, bool) {
	if isNil(b, i) {
		*dst = nil
		return i + 1, true
	}
	o := &Offer{}
	*dst = o
	return eachField(b, i, func(k []byte, i int) (int, bool) {
		switch string(k) {
		case "id":
			return d.str(b, i, &o.ID)
		case "from":
			return d.str(b, i, &o.From)
		case "kind":
			return d.str(b, i, (*string)(&o.Kind))
		case "agent":
			return d.str(b, i, &o.Agent)
		case "queued_at":
			return int64At(b, i, &o.QueuedAt)
		case "created_at":
			return int64At(b, i, &o.CreatedAt)
		case "expires_at":
			return int64At(b, i, &o.ExpiresAt)
		}
		return i, false
	})
}

func (d *reqDecoder) transcript(b []byte, i int, dst *[]api.Message) (int, bool) {
	if isNil(b, i) {
		*dst = nil
		return i + 1, true
	}
	n, i, ok := msgp.ReadArrayLen(b, i)
	if !ok {
		return i, false
	}
	out := make([]api.Message, n)
	*dst = out
	for j := range out {
		m := &out[j]
		i, ok = eachField(b, i, func(k []byte, i int) (int, bool) {
			switch string(k) {
			case "at":
				return int64At(b, i, &m.At)
			case "name":
				return d.str(b, i, &m.Name)
			case "text":
				return d.str(b, i, &m.Text)
			case "from":
				return eachField(b, i, func(k []byte, i int) (int, bool) {
					switch string(k) {
					case "id":
						return d.str(b, i, &m.From.ID)
					case "role":
						var v int64
						i, ok := int64At(b, i, &v)
						if !ok || v < 0 || v > 255 {
							return i, false
						}
						m.From.Role = api.Role(v)
						return i, true
					}
					return i, false
				})
			}
			return i, false
		})
		if !ok {
			return i, false
		}
	}
	return i, true
}
