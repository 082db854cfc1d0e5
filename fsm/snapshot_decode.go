package fsm

import (
	"bytes"
	"errors"
	"strings"
	"sync"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// The snapshot decoder's fast path. A snapshot's bulk is its requests,
// the open-request map and the lists' request ids: decoded by msgpack's
// reflection they cost about 22 allocations a request and most of a
// restore's time. readStateFast decodes those three by hand and the rest
// of the state (configuration, agents, sessions: small) by msgpack, from a
// map holding the other keys. A request's strings share one allocation
// (its id shares its map key, a customer's message the customer's id and
// name), the names of configuration (channels, lists, MRDs, agents) are
// interned: five allocations per open request instead of six, and 720
// heap bytes instead of 768. Nothing is allocated in bulk across
// requests (see reqDecoder). It builds the open requests by channel
// (OpenRequests, open_index.go) from the flat open map's bytes, one map
// entry per open request, each channel's map made at its size. The open map
// and the lists are decoded on goroutines of their own while the calling
// one decodes the requests (sections); each builds its own maps, so the
// state is the same whatever the order they run in.
//
// It accepts exactly what appendState writes and what msgpack would
// decode the same way; anything else (an unexpected key or type, maps not
// in Marshal's order, a snapshot of another writer, a malformed snapshot)
// returns errNotFast and ReadState checks the snapshot (msgp.Check) and
// decodes it whole by reflection instead. The fast path runs before that
// check: every length it reads is bounded by the bytes left before it
// sizes anything by it, and it nests no deeper than a request's fields.
// snapshot_decode_test.go holds the two paths to the same result (and
// FuzzReadState, on any input).

var errNotFast = errors.New("fsm: snapshot not in the fast decoder's shape")

// fastOptions tunes readStateFast; the result does not depend on them.
type fastOptions struct {
	// parallel: the open map and the lists, when of at least this many
	// bytes, are decoded on goroutines of their own (sections) while
	// this one decodes the requests.
	parallel int
}

// restoreOptions are ReadState's: below 256 KiB (some 10,000 open
// requests) a value is not worth a goroutine of its own.
func restoreOptions() fastOptions {
	return fastOptions{parallel: 256 << 10}
}

// Interning: the strings of a request that name configuration (its
// channel, list, MRD, queue, state, agents) repeat across requests, so
// each decoder keeps one copy of each, up to maxInterned strings of at
// most maxInternLen bytes (beyond that they are copied per request).
const (
	maxInterned  = 4096
	maxInternLen = 64
)

// readStateFast decodes data (a state, without its version byte) into a
// new State, or returns errNotFast.
func readStateFast(data []byte, opt fastOptions) (st *State, err error) {
	n, i, ok := msgp.ReadMapLen(data, 0)
	if !ok || n > len(data)-i {
		return nil, errNotFast
	}
	var (
		requests map[string]*Request
		lists    map[string]*List
		open     openSection
		seen     = map[string]bool{}
		rest     = make([]byte, 0, 4096)
		restN    int
		par      = sections{min: opt.parallel}
	)
	defer par.wait() // never leave a goroutine running, even on a panic here
	for range n {
		key, next, ok := msgp.ReadStr(data, i)
		if !ok {
			return nil, errNotFast
		}
		switch k := string(key); k {
		case "requests", "lists", "open":
			if seen[k] {
				return nil, errNotFast // msgpack would merge the two
			}
			seen[k] = true
			var decode func() (int, bool)
			switch k {
			case "requests":
				decode = func() (end int, ok bool) {
					requests, end, ok = newReqDecoder().requests(data, next)
					return end, ok
				}
			case "lists":
				decode = func() (end int, ok bool) {
					lists, end, ok = newReqDecoder().lists(data, next)
					return end, ok
				}
			case "open":
				decode = func() (int, bool) {
					open.decode(data, next)
					return open.end, open.ok
				}
			}
			if k == "requests" {
				// The bulk of the snapshot, the last big value in
				// Marshal's order: decoded here while the others are.
				i, ok = decode()
			} else {
				i, ok = par.decode(data, next, decode)
			}
			if !ok {
				return nil, errNotFast
			}
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
	st = NewState()
	body := msgp.AppendMapLen(make([]byte, 0, len(rest)+5), restN)
	body = append(body, rest...)
	if err := msgpack.Unmarshal(body, st); err != nil {
		return nil, err
	}
	if !par.wait() {
		return nil, errNotFast
	}
	if seen["requests"] {
		st.Requests = requests
	}
	if seen["lists"] {
		st.Lists = lists
	}
	if seen["open"] {
		st.Open = open.open
	}
	return st, nil
}

// sections decodes the big values of a snapshot's top level on goroutines
// of their own: each builds maps no other touches, and the state is put
// together once all are done, so the result is the same in any order.
type sections struct {
	min  int // bytes from which a value is decoded on a goroutine of its own
	wg   sync.WaitGroup
	oks  []*bool
	done bool
}

// decode runs fn, which decodes the value at at and returns the offset
// after it. A value of at least min bytes is skipped here (a walk of its
// bytes) and fn runs on a new goroutine: decode returns at once with the
// offset after the value, and wait says whether fn succeeded.
func (p *sections) decode(data []byte, at int, fn func() (int, bool)) (int, bool) {
	if len(data)-at < p.min {
		return fn()
	}
	vlen, err := msgp.Check(data[at:], maxSnapshotDepth)
	if err != nil {
		return at, false
	}
	if vlen < p.min {
		end, ok := fn()
		return end, ok && end == at+vlen
	}
	ok := new(bool)
	p.oks = append(p.oks, ok)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			if recover() != nil {
				*ok = false
			}
		}()
		end, fnOK := fn()
		*ok = fnOK && end == at+vlen
	}()
	return at + vlen, true
}

// wait waits for the goroutines and says whether they all succeeded.
func (p *sections) wait() bool {
	p.wg.Wait()
	for _, ok := range p.oks {
		if !*ok {
			return false
		}
	}
	return true
}

// openSection is the decoded open map: exactly what DecodeMsgpack builds
// from it.
type openSection struct {
	open OpenRequests
	end  int  // the offset after the map
	ok   bool // decoded
}

// decode decodes the open map (or nil) at i into its two-level form. A
// first read of its entries counts each channel's open requests, so that
// each channel's map is made at its size; the channel ids are decoded
// once each. Its keys must be in Marshal's order, so none is there twice
// (a map whose later entry replaced an earlier one would count it twice).
func (o *openSection) decode(b []byte, i int) {
	*o = openSection{end: i}
	if isNil(b, i) {
		o.end, o.ok = i+1, true
		return
	}
	n, i, ok := msgp.ReadMapLen(b, i)
	if !ok || n > (len(b)-i)/2 {
		return
	}
	var (
		chanAt = map[string]int{} // channel id → index in ids
		ids    []string           // the channel ids, by index
		counts []int
		loose  int
		last   = -1 // the previous entry's channel (the map is sorted: runs of one channel are common)
	)
	// channelOf returns the index of k's channel, and where its customer
	// starts; -1 for a key without NUL (a loose key).
	channelOf := func(k []byte) (int, int) {
		c := bytes.IndexByte(k, 0)
		if c < 0 {
			return -1, 0
		}
		ch := k[:c]
		if last >= 0 && ids[last] == string(ch) {
			return last, c + 1
		}
		x, ok := chanAt[string(ch)]
		if !ok {
			x = len(ids)
			id := string(ch)
			chanAt[id] = x
			ids = append(ids, id)
			counts = append(counts, 0)
		}
		last = x
		return x, c + 1
	}
	j := i
	var prev []byte
	for e := range n {
		k, next, ok := msgp.ReadStr(b, j)
		if !ok || e > 0 && !inOrder(prev, k) {
			return // a key twice, or not Marshal's order
		}
		prev = k
		if _, j, ok = msgp.ReadStr(b, next); !ok {
			return
		}
		if x, _ := channelOf(k); x >= 0 {
			counts[x]++
		} else {
			loose++
		}
	}
	inner := make([]map[string]string, len(ids))
	open := OpenRequests{byChannel: make(map[string]map[string]string, len(ids)), n: n}
	for x, id := range ids {
		inner[x] = make(map[string]string, counts[x])
		open.byChannel[id] = inner[x]
	}
	if loose > 0 {
		open.loose = make(map[string]string, loose)
	}
	for range n {
		k, next, _ := msgp.ReadStr(b, i) // read above
		v, after, _ := msgp.ReadStr(b, next)
		i = after
		x, c := channelOf(k)
		if x < 0 {
			c = 0
		}
		// The customer id and the request id in one allocation (the
		// channel id is the one of ids).
		var sb strings.Builder
		sb.Grow(len(k) - c + len(v))
		sb.Write(k[c:])
		sb.Write(v)
		s := sb.String()
		key, rid := s[:len(k)-c], s[len(k)-c:]
		if x >= 0 {
			inner[x][key] = rid
		} else {
			open.loose[key] = rid
		}
	}
	o.open, o.end, o.ok = open, i, true
}

// interner keeps one copy of each string that names configuration (a
// channel, a list, an MRD, an agent), up to maxInterned strings of at
// most maxInternLen bytes; a small cache in front of its map answers most
// look-ups with one comparison (requests next to each other often share
// their channel, list and MRD).
type interner struct {
	m     map[string]string
	cache [256]string
}

// get returns the interned copy of b, or false when b is not to be
// interned (too long, or the interner is full).
func (in *interner) get(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", true
	}
	if len(b) > maxInternLen {
		return "", false
	}
	h := (len(b)*31 + int(b[0])*7 + int(b[len(b)-1])*3 + int(b[len(b)/2])) & 255
	if s := in.cache[h]; s == string(b) {
		return s, true
	}
	s, ok := in.m[string(b)]
	if !ok {
		if len(in.m) >= maxInterned {
			return "", false
		}
		s = string(b)
		in.m[s] = s
	}
	in.cache[h] = s
	return s, true
}

// reqDecoder decodes requests one at a time, reusing its scratch space.
// Each request's strings, its key in the map included, share one
// allocation made once the request is read (except those interned):
// they live and die with the request. Nothing is allocated in bulk
// across requests: a slab or chunk shared by neighbouring requests
// would be kept whole by any one of them still open, long after the
// others closed (docs/PERFORMANCE.md "Restore").
type reqDecoder struct {
	key     string       // the request's key in the map, once flushed
	pending []pendingStr // the request's strings to allocate
	bytes   []byte       // their bytes, in order
	intern  interner
	// The pending customer's id and name (-1: none), which its
	// messages repeat.
	custID, custName int
}

// pendingStr is a string field waiting for its request's allocation: its
// bytes are bytes[off:off+n] of the decoder.
type pendingStr struct {
	dst    *string
	off, n int
}

func newReqDecoder() *reqDecoder {
	return &reqDecoder{intern: interner{m: make(map[string]string, 64)}}
}

// requests decodes the requests map (or nil) at i.
func (d *reqDecoder) requests(b []byte, i int) (map[string]*Request, int, bool) {
	if isNil(b, i) {
		return nil, i + 1, true
	}
	n, i, ok := msgp.ReadMapLen(b, i)
	if !ok || n > (len(b)-i)/2 {
		return nil, i, false
	}
	m := make(map[string]*Request, n)
	var prev []byte
	for e := range n {
		k, next, ok := msgp.ReadStr(b, i)
		if !ok || e > 0 && !inOrder(prev, k) {
			return nil, i, false // a key twice, or not Marshal's order
		}
		prev = k
		if isNil(b, next) {
			m[string(k)] = nil
			i = next + 1
			continue
		}
		r, after, ok := d.request(b, next, k)
		if !ok {
			return nil, i, false
		}
		m[d.key] = r
		i = after
	}
	return m, i, true
}

func isNil(b []byte, i int) bool { return i < len(b) && b[i] == 0xc0 }

// fields reads the header of a map at i: its number of entries.
func fields(b []byte, i int) (int, int, bool) {
	return msgp.ReadMapLen(b, i)
}

// field reads the e-th key of a map at i; the keys must be in Marshal's
// order (inOrder), so none is there twice: msgpack would merge a struct
// read twice into the first.
func field(b []byte, i, e int, prev []byte) ([]byte, int, bool) {
	k, next, ok := msgp.ReadStr(b, i)
	if !ok || e > 0 && !inOrder(prev, k) {
		return nil, i, false
	}
	return k, next, true
}

// eachField reads a map at i, calling field with each key and the offset
// of its value; field reads the value and returns the offset after it.
func eachField(b []byte, i int, fn func(key []byte, i int) (int, bool)) (int, bool) {
	n, i, ok := fields(b, i)
	if !ok {
		return i, false
	}
	var k []byte
	for e := range n {
		if k, i, ok = field(b, i, e, k); !ok {
			return i, false
		}
		if i, ok = fn(k, i); !ok {
			return i, false
		}
	}
	return i, true
}

// inOrder says whether the str key b comes after a in the order of
// Marshal's maps: by encoded bytes, so shorter first (a str's header
// grows with its length), then bytewise.
func inOrder(a, b []byte) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return bytes.Compare(a, b) < 0
}

// readStr reads a str (or nil: nil, and ok) at i.
func readStr(b []byte, i int) ([]byte, int, bool) {
	if isNil(b, i) {
		return nil, i + 1, true
	}
	return msgp.ReadStr(b, i)
}

// str reads a str (or nil: "") at i into *dst, once the request is
// done; it returns the string's index among the pending ones (-1 for "").
func (d *reqDecoder) str(b []byte, i int, dst *string) (int, int, bool) {
	s, next, ok := readStr(b, i)
	if !ok {
		return -1, i, false
	}
	*dst = ""
	if len(s) == 0 {
		return -1, next, true
	}
	d.pending = append(d.pending, pendingStr{dst, len(d.bytes), len(s)})
	d.bytes = append(d.bytes, s...)
	return len(d.pending) - 1, next, true
}

// field1 reads a str field (see str).
func (d *reqDecoder) field1(b []byte, i int, dst *string) (int, bool) {
	_, next, ok := d.str(b, i, dst)
	return next, ok
}

// name reads a str (or nil) that names configuration (a channel, a list,
// an agent): interned.
func (d *reqDecoder) name(b []byte, i int, dst *string) (int, bool) {
	s, next, ok := readStr(b, i)
	if !ok {
		return i, false
	}
	if v, ok := d.intern.get(s); ok {
		*dst = v
		return next, true
	}
	return d.field1(b, i, dst)
}

// strLike reads a str (or nil) that is often the pending string like
// (-1: none): equal, it shares like's bytes; if not, it is interned when
// intern is set.
func (d *reqDecoder) strLike(b []byte, i int, dst *string, like int, intern bool) (int, bool) {
	s, next, ok := readStr(b, i)
	if !ok {
		return i, false
	}
	if like >= 0 {
		if p := d.pending[like]; string(d.bytes[p.off:p.off+p.n]) == string(s) {
			*dst = ""
			d.pending = append(d.pending, pendingStr{dst, p.off, p.n})
			return next, true
		}
	}
	if intern {
		return d.name(b, i, dst)
	}
	return d.field1(b, i, dst)
}

// flush gives the pending strings their values, all in one allocation.
func (d *reqDecoder) flush() {
	all := string(d.bytes)
	for _, p := range d.pending {
		*p.dst = all[p.off : p.off+p.n]
	}
	clear(d.pending) // drop the pointers
	d.pending, d.bytes = d.pending[:0], d.bytes[:0]
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

// strArray reads an array of str (or nil) at i. With intern set its
// elements name configuration (agent ids) and are read as name reads them;
// otherwise each is copied into a string of its own (a list's request ids:
// a closed request's id is freed with it, docs/PERFORMANCE.md "Restore").
// The branch on intern is taken the same way for every element; a
// function value per element would cost a call each on the restore path.
func (d *reqDecoder) strArray(b []byte, i int, dst *[]string, intern bool) (int, bool) {
	if isNil(b, i) {
		*dst = nil
		return i + 1, true
	}
	n, i, ok := msgp.ReadArrayLen(b, i)
	if !ok || n > len(b)-i {
		return i, false
	}
	out := make([]string, n)
	for j := range out {
		if intern {
			i, ok = d.name(b, i, &out[j])
		} else {
			var s []byte
			s, i, ok = readStr(b, i)
			out[j] = string(s)
		}
		if !ok {
			return i, false
		}
	}
	*dst = out
	return i, true
}

// lists decodes the lists map (or nil) at i: the ids of their open
// requests, a million in all for a million open requests, are copied one
// by one (strArray).
func (d *reqDecoder) lists(b []byte, i int) (map[string]*List, int, bool) {
	if isNil(b, i) {
		return nil, i + 1, true
	}
	n, i, ok := msgp.ReadMapLen(b, i)
	if !ok || n > (len(b)-i)/2 {
		return nil, i, false
	}
	m := make(map[string]*List, n)
	var prev []byte
	for e := range n {
		k, next, ok := msgp.ReadStr(b, i)
		if !ok || e > 0 && !inOrder(prev, k) {
			return nil, i, false
		}
		prev = k
		key := string(k)
		if isNil(b, next) {
			m[key] = nil
			i = next + 1
			continue
		}
		l := &List{}
		if i, ok = eachField(b, next, func(k []byte, i int) (int, bool) {
			switch string(k) {
			case "id", "name":
				s, next, ok := readStr(b, i)
				if !ok {
					return i, false
				}
				v := key // the list's id is its key
				if k[0] == 'n' || string(s) != key {
					v = string(s)
				}
				if k[0] == 'n' {
					l.Name = v
				} else {
					l.ID = v
				}
				return next, true
			case "access":
				return d.name(b, i, (*string)(&l.Access))
			case "sla_ms":
				return int64At(b, i, &l.SLAMs)
			case "granted":
				return d.strArray(b, i, &l.Granted, true)
			case "requests":
				return d.strArray(b, i, &l.Requests, false)
			case "subscribers":
				return d.strArray(b, i, &l.Subscribers, true)
			case "sla_warn_pct":
				return intAt(b, i, &l.SLAWarnPct)
			case "close_inactive_ms":
				return int64At(b, i, &l.CloseInactiveMs)
			case "remind_inactive_ms":
				return int64At(b, i, &l.RemindInactiveMs)
			}
			return i, false
		}); !ok {
			return nil, i, false
		}
		d.flush() // names not interned
		m[key] = l
	}
	return m, i, true
}

// request decodes one request at i (a map, as appendRequest writes it)
// whose key in the requests map is key.
func (d *reqDecoder) request(b []byte, i int, key []byte) (*Request, int, bool) {
	r := &Request{}
	d.pending = append(d.pending[:0], pendingStr{&d.key, 0, len(key)})
	d.bytes = append(d.bytes[:0], key...)
	d.custID, d.custName = -1, -1
	n, i, ok := fields(b, i)
	if !ok {
		return nil, i, false
	}
	var k []byte
	for e := range n {
		if k, i, ok = field(b, i, e, k); !ok {
			return nil, i, false
		}
		switch string(k) {
		case "id":
			i, ok = d.strLike(b, i, &r.ID, 0, false) // the map's key
		case "mrd":
			i, ok = d.name(b, i, &r.MRD)
		case "sla":
			i, ok = d.name(b, i, (*string)(&r.SLA))
		case "list":
			i, ok = d.name(b, i, &r.List)
		case "queue":
			i, ok = d.name(b, i, &r.Queue)
		case "state":
			i, ok = d.name(b, i, (*string)(&r.State))
		case "channel":
			i, ok = d.name(b, i, &r.Channel)
		case "offer":
			i, ok = d.offer(b, i, &r.Offer)
		case "queued":
			i, ok = boolAt(b, i, &r.Queued)
		case "reminded":
			i, ok = boolAt(b, i, &r.Reminded)
		case "strict_decline":
			i, ok = boolAt(b, i, &r.StrictDecline)
		case "sla_at":
			i, ok = int64At(b, i, &r.SLAAt)
		case "sla_due":
			i, ok = int64At(b, i, &r.SLADue)
		case "queued_at":
			i, ok = int64At(b, i, &r.QueuedAt)
		case "created_at":
			i, ok = int64At(b, i, &r.CreatedAt)
		case "updated_at":
			i, ok = int64At(b, i, &r.UpdatedAt)
		case "sla_warn_at":
			i, ok = int64At(b, i, &r.SLAWarnAt)
		case "inactive_since":
			i, ok = int64At(b, i, &r.InactiveSince)
		case "agent_requested_at":
			i, ok = int64At(b, i, &r.AgentRequestedAt)
		case "unread":
			i, ok = intAt(b, i, &r.Unread)
		case "priority":
			i, ok = intAt(b, i, &r.Priority)
		case "customer":
			i, ok = eachField(b, i, func(k []byte, i int) (int, bool) {
				var next int
				var ok bool
				switch string(k) {
				case "id":
					d.custID, next, ok = d.str(b, i, &r.Customer.ID)
				case "name":
					d.custName, next, ok = d.str(b, i, &r.Customer.Name)
				}
				return next, ok
			})
		case "declined":
			i, ok = d.strArray(b, i, &r.Declined, true)
		case "participants":
			i, ok = d.strArray(b, i, &r.Participants, true)
		case "transcript":
			i, ok = d.transcript(b, i, &r.Transcript)
		default:
			ok = false // a field this decoder does not know
		}
		if !ok {
			return nil, i, false
		}
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
	*dst = o // the request's keys are in order: "offer" is read once
	return eachField(b, i, func(k []byte, i int) (int, bool) {
		switch string(k) {
		case "id":
			return d.field1(b, i, &o.ID)
		case "from":
			return d.name(b, i, &o.From)
		case "kind":
			return d.name(b, i, (*string)(&o.Kind))
		case "agent":
			return d.name(b, i, &o.Agent)
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

// transcript decodes a request's messages (or nil) at i. A customer's
// messages carry the customer's id and name (Marshal writes "customer"
// before "transcript"): they share the customer's bytes.
func (d *reqDecoder) transcript(b []byte, i int, dst *[]api.Message) (int, bool) {
	if isNil(b, i) {
		*dst = nil
		return i + 1, true
	}
	n, i, ok := msgp.ReadArrayLen(b, i)
	if !ok || n > len(b)-i {
		return i, false
	}
	out := make([]api.Message, n)
	*dst = out
	for j := range out {
		m := &out[j]
		nf, at, ok := fields(b, i)
		if !ok {
			return i, false
		}
		i = at
		var k []byte
		for e := range nf {
			if k, i, ok = field(b, i, e, k); !ok {
				return i, false
			}
			switch string(k) {
			case "at":
				i, ok = int64At(b, i, &m.At)
			case "name":
				i, ok = d.strLike(b, i, &m.Name, d.custName, false)
			case "text":
				i, ok = d.field1(b, i, &m.Text)
			case "from":
				i, ok = eachField(b, i, func(k []byte, i int) (int, bool) {
					switch string(k) {
					case "id":
						// The customer's id, or an agent's (interned).
						return d.strLike(b, i, &m.From.ID, d.custID, true)
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
			default:
				ok = false
			}
			if !ok {
				return i, false
			}
		}
	}
	return i, true
}
