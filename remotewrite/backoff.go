package remotewrite

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// maxRetryAfter caps how long a downstream's Retry-After header can pause a shard.
const maxRetryAfter = time.Minute

// backoff computes the waits between retries: exponential growth from min to max, with full
// jitter (each wait is uniform in [0, ceiling)), so that shards and proxies that failed
// together do not retry together.
type backoff struct {
	min, max time.Duration
	// randN returns a uniform value in [0, n); rand.Int64N outside tests.
	randN func(n int64) int64
}

// ceiling is the upper bound of the wait before retry number attempt (0 for the first retry):
// min·2^attempt, capped at max.
func (b backoff) ceiling(attempt int) time.Duration {
	d := b.min
	for range attempt {
		if d >= b.max/2 {
			return b.max
		}
		d *= 2
	}
	return min(d, b.max)
}

// delay returns the wait before retry number attempt.
func (b backoff) delay(attempt int) time.Duration {
	c := b.ceiling(attempt)
	if c <= 0 {
		return 0
	}
	return time.Duration(b.randN(int64(c)))
}

// retryAfter reads a Retry-After header (delay in seconds, or an HTTP date), capped at
// maxRetryAfter; ok is false when there is none or it cannot be parsed.
func retryAfter(h http.Header, now time.Time) (wait time.Duration, ok bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// sleepCtx waits for d or until ctx is done, and reports whether the wait completed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
