package actors

import (
	"slices"
	"testing"
)

func histSeqs(es []*entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.seq
	}
	return out
}

func TestHistoryRing(t *testing.T) {
	h := newHistory(3)
	if !h.covers(0) {
		t.Fatal("a fresh history covers everything from 0")
	}
	for seq := uint64(1); seq <= 5; seq++ {
		h.push(&entry{seq: seq * 10})
	}
	// 10 and 20 were evicted: covered is 20.
	if h.covered != 20 {
		t.Fatalf("covered = %d, want 20", h.covered)
	}
	if h.covers(19) || !h.covers(20) {
		t.Fatal("covers must hold exactly from the last evicted seq")
	}
	for _, tc := range []struct {
		after uint64
		want  []uint64
	}{
		{0, []uint64{30, 40, 50}},
		{20, []uint64{30, 40, 50}},
		{30, []uint64{40, 50}},
		{45, []uint64{50}},
		{50, []uint64{}},
		{99, []uint64{}},
	} {
		if got := histSeqs(h.after(tc.after, nil)); !slices.Equal(got, tc.want) {
			t.Errorf("after(%d) = %v, want %v", tc.after, got, tc.want)
		}
	}
	h.reset(100)
	if h.n != 0 || len(h.after(0, nil)) != 0 {
		t.Fatal("reset must forget every entry")
	}
	if h.covers(99) || !h.covers(100) {
		t.Fatal("reset must raise covered")
	}
	h.reset(7) // never lowers
	if h.covered != 100 {
		t.Fatalf("covered lowered to %d", h.covered)
	}
	h.push(&entry{seq: 110})
	if got := histSeqs(h.after(100, nil)); !slices.Equal(got, []uint64{110}) {
		t.Fatalf("after reset: %v", got)
	}
}
