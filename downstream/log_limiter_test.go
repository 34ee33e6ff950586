package downstream

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogLimiterLetsOneMessagePerInterval(t *testing.T) {
	now := time.Unix(0, 0)
	l := &logLimiter{interval: 10 * time.Second, now: func() time.Time { return now }}
	logger, out := newTestLogger()

	l.log(logger, slog.LevelWarn, "failed")
	now = now.Add(3 * time.Second)
	l.log(logger, slog.LevelWarn, "failed")
	l.log(logger, slog.LevelWarn, "failed")
	if n := strings.Count(out.String(), "msg=failed"); n != 1 {
		t.Fatalf("%d lines within the interval, want 1", n)
	}
	now = now.Add(10 * time.Second)
	l.log(logger, slog.LevelWarn, "failed")
	if n := strings.Count(out.String(), "msg=failed"); n != 2 {
		t.Fatalf("%d lines after the interval, want 2", n)
	}
	if !strings.Contains(out.String(), "suppressed_since_last=2") {
		t.Errorf("the next line should count what was held back: %s", out)
	}
}
