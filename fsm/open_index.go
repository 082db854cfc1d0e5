package fsm

import (
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// OpenRequests holds each customer's open request on each channel
// (State.Open): channel id → customer id → request id, one map entry per
// open request. A connector's view (views.go) visits the inner map of
// each of its channels rather than every open request; a restore inserts
// each open request once.
//
// Its snapshot form is the flat map the state held before, keyed by
// openKey(channel, customer) = channel+"\x00"+customer, and the two are
// in one-to-one correspondence: a flat key is split at its first NUL
// byte, so a stored channel id never holds one (a channel or customer
// given with a NUL in it is split the same way: see slot), and a key
// without NUL, which no command writes but a snapshot may hold, is kept
// aside in loose. So a snapshot decodes and encodes back to its bytes
// (appendOpen), and every look-up answers what the flat map answered.
//
// Nothing iterates it in an order that reaches the state or its events
// (the encoder and the views sort), so it changes nothing Apply decides.
// Write it only through State.setOpen and State.deleteOpen (and the
// snapshot decoders).
type OpenRequests struct {
	// byChannel: channel → customer → request id. Nil only in a zero
	// OpenRequests (which encodes as msgpack nil, as a nil map did); an
	// inner map is dropped when it empties, so none is empty.
	byChannel map[string]map[string]string
	// loose holds the flat keys without a NUL byte (nil when there are
	// none): not a channel and customer, so no view lists them.
	loose map[string]string
	// n counts the entries: both maps' (what len of the flat map was).
	n int
}

// openKey is the snapshot form's key of customer's entry on channel.
func openKey(channel, customer string) string { return channel + "\x00" + customer }

// Len is the number of open entries (the flat map's length).
func (o *OpenRequests) Len() int { return o.n }

// slot is where openKey(channel, customer) lives: split at its first NUL
// byte, which is channel's own only for a channel id that holds one (no
// command creates such an id: checkID).
func slot(channel, customer string) (ch, cust string) {
	if i := strings.IndexByte(channel, 0); i >= 0 {
		return channel[:i], channel[i+1:] + "\x00" + customer
	}
	return channel, customer
}

// Get returns customer's open request on channel.
func (o *OpenRequests) Get(channel, customer string) (string, bool) {
	ch, cust := slot(channel, customer)
	rid, ok := o.byChannel[ch][cust]
	return rid, ok
}

// put sets ch's entry for cust, ch being NUL-free (a slot's).
func (o *OpenRequests) put(ch, cust, rid string) {
	if o.byChannel == nil {
		o.byChannel = map[string]map[string]string{}
	}
	m := o.byChannel[ch]
	if m == nil {
		m = map[string]string{}
		o.byChannel[ch] = m
	}
	if _, ok := m[cust]; !ok {
		o.n++
	}
	m[cust] = rid
}

// putKey sets the entry of flat key k, as the snapshot form has it.
func (o *OpenRequests) putKey(k, rid string) {
	if i := strings.IndexByte(k, 0); i >= 0 {
		o.put(k[:i], k[i+1:], rid)
		return
	}
	if o.byChannel == nil {
		o.byChannel = map[string]map[string]string{}
	}
	if o.loose == nil {
		o.loose = map[string]string{}
	}
	if _, ok := o.loose[k]; !ok {
		o.n++
	}
	o.loose[k] = rid
}

func (o *OpenRequests) delete(channel, customer string) {
	ch, cust := slot(channel, customer)
	m := o.byChannel[ch]
	if _, ok := m[cust]; !ok {
		return
	}
	delete(m, cust)
	o.n--
	if len(m) == 0 {
		delete(o.byChannel, ch)
	}
}

// EncodeMsgpack writes the flat map, for msgpack's reflection encoder
// (in map order: appendCanonical sorts it; the snapshot's own encoder is
// appendOpen).
func (o OpenRequests) EncodeMsgpack(e *msgpack.Encoder) error {
	if o.byChannel == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeMapLen(o.n); err != nil {
		return err
	}
	for ch, m := range o.byChannel {
		for cust, rid := range m {
			if err := e.EncodeString(openKey(ch, cust)); err != nil {
				return err
			}
			if err := e.EncodeString(rid); err != nil {
				return err
			}
		}
	}
	for k, rid := range o.loose {
		if err := e.EncodeString(k); err != nil {
			return err
		}
		if err := e.EncodeString(rid); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack reads the flat map, for ReadState's reflection path. Like
// msgpack's decoding into a map, it adds to what o holds (a later entry
// for a key replaces the earlier one); msgpack nil never reaches it (it
// sets o to its zero value).
func (o *OpenRequests) DecodeMsgpack(d *msgpack.Decoder) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	if n < 0 {
		*o = OpenRequests{}
		return nil
	}
	if o.byChannel == nil {
		o.byChannel = map[string]map[string]string{}
	}
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			return err
		}
		rid, err := d.DecodeString()
		if err != nil {
			return err
		}
		o.putKey(k, rid)
	}
	return nil
}

// setOpen records rid as customer's open request on channel.
func (s *State) setOpen(channel, customer, rid string) {
	ch, cust := slot(channel, customer)
	s.Open.put(ch, cust, rid)
}

// deleteOpen forgets customer's open request on channel.
func (s *State) deleteOpen(channel, customer string) {
	s.Open.delete(channel, customer)
}

// openOn appends the ids of the open requests on channel to ids, in no
// particular order.
func (s *State) openOn(channel string, ids []string) []string {
	for _, rid := range s.Open.byChannel[channel] {
		ids = append(ids, rid)
	}
	return ids
}
