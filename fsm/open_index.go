package fsm

import "strings"

// The open-request index: State.Open (channel + customer → request) also
// kept by channel, so that a connector's view (views.go) visits the open
// requests of its own channels rather than every open request. It is
// derived: not encoded in snapshots (the hand encoder and msgpack skip
// unexported fields), rebuilt by ReadState, and kept in step by setOpen
// and deleteOpen, the only writers of Open. It is never iterated in an
// order that reaches the state or its events (View sorts), so it changes
// nothing that Apply decides.

// setOpen records rid as customer's open request on channel.
func (s *State) setOpen(channel, customer, rid string) {
	key := openKey(channel, customer)
	if old, ok := s.Open[key]; ok {
		s.unindexOpen(channel, old)
	}
	s.Open[key] = rid
	if s.openByChannel == nil {
		s.openByChannel = map[string]map[string]struct{}{}
	}
	ids := s.openByChannel[channel]
	if ids == nil {
		ids = map[string]struct{}{}
		s.openByChannel[channel] = ids
	}
	ids[rid] = struct{}{}
}

// deleteOpen forgets customer's open request on channel.
func (s *State) deleteOpen(channel, customer string) {
	key := openKey(channel, customer)
	if rid, ok := s.Open[key]; ok {
		delete(s.Open, key)
		s.unindexOpen(channel, rid)
	}
}

func (s *State) unindexOpen(channel, rid string) {
	ids := s.openByChannel[channel]
	delete(ids, rid)
	if len(ids) == 0 {
		delete(s.openByChannel, channel)
	}
}

// indexOpen rebuilds the index from Open (after decoding a snapshot).
func (s *State) indexOpen() {
	// Count first, so that each channel's set is made at its size: a
	// million open requests on a few channels would otherwise grow their
	// sets step by step.
	counts := map[string]int{}
	for k := range s.Open {
		if i := strings.IndexByte(k, 0); i >= 0 {
			counts[k[:i]]++
		}
	}
	s.openByChannel = make(map[string]map[string]struct{}, len(counts))
	for ch, n := range counts {
		s.openByChannel[ch] = make(map[string]struct{}, n)
	}
	for k, rid := range s.Open {
		i := strings.IndexByte(k, 0)
		if i < 0 {
			continue // not an openKey: no connector's view lists it
		}
		s.openByChannel[k[:i]][rid] = struct{}{}
	}
}

// openOn appends the ids of the open requests on channel to ids, in no
// particular order.
func (s *State) openOn(channel string, ids []string) []string {
	for rid := range s.openByChannel[channel] {
		ids = append(ids, rid)
	}
	return ids
}
