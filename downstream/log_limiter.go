package downstream

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logLimiter lets through at most one message per interval and reports how many it held back,
// so that a downstream failing every request does not flood the log.
type logLimiter struct {
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// log writes the message unless one was written less than interval ago.
func (l *logLimiter) log(logger *slog.Logger, level slog.Level, msg string, args ...any) {
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed_since_last", suppressed)
	}
	logger.Log(context.Background(), level, msg, args...)
}
