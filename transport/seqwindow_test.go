package transport

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// A write stuck unanswered holds back every seq SessionWindow or more
// above it, however many later writes are answered; releasing it lets the
// next seq go.
func TestSeqWindowHoldsBackPastTheOldestUnanswered(t *testing.T) {
	var w seqWindow
	ctx := context.Background()
	for want := uint64(1); want <= api.SessionWindow; want++ {
		got, err := w.acquire(ctx)
		if err != nil || got != want {
			t.Fatalf("acquire = %d, %v; want %d", got, err, want)
		}
	}
	for s := uint64(2); s <= api.SessionWindow; s++ {
		w.release(s) // every write answered but the first
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if got, err := w.acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("seq %d handed out %d above the unanswered seq 1; want a wait", got, got-1)
	}

	got := make(chan uint64, 1)
	go func() {
		s, _ := w.acquire(ctx)
		got <- s
	}()
	w.release(1)
	select {
	case s := <-got:
		if s != api.SessionWindow+1 {
			t.Fatalf("after seq 1 was answered: seq %d, want %d", s, api.SessionWindow+1)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("releasing the oldest seq did not let the next one go")
	}
}
