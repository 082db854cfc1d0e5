package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiterLetsOneLinePerIntervalAndCountsTheRest(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	l := New(time.Hour)
	for range 100 {
		l.Log(log, slog.LevelWarn, "refused")
	}
	if n := strings.Count(buf.String(), "refused"); n != 1 {
		t.Fatalf("%d lines logged for 100 events in one interval, want 1:\n%s", n, buf.String())
	}
	l.next = time.Time{} // the interval has passed
	l.Log(log, slog.LevelWarn, "refused")
	if !strings.Contains(buf.String(), "suppressed=99") {
		t.Fatalf("second line does not count the 99 suppressed:\n%s", buf.String())
	}
}
