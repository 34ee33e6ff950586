package downstream

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// maxRetryAfter caps how long a receiver's Retry-After header can pause a sender.
const maxRetryAfter = time.Minute

// Backoff computes the waits between retries of one batch, for every sink: exponential
// growth from Min to Max, with full jitter (each wait is uniform in [0, ceiling)), so that
// senders that failed together do not retry together.
type Backoff struct {
	// Min is the ceiling of the first wait; it doubles with every attempt up to Max.
	Min, Max time.Duration
	// randN returns a uniform value in [0, n); rand.Int64N when nil (tests replace it).
	randN func(n int64) int64
}

// ceiling is the upper bound of the wait before retry number attempt (0 for the first retry):
// Min·2^attempt, capped at Max.
func (b Backoff) ceiling(attempt int) time.Duration {
	d := b.Min
	for range attempt {
		if d >= b.Max/2 {
			return b.Max
		}
		d *= 2
	}
	return min(d, b.Max)
}

// Delay returns the wait before retry number attempt, counted from 0 for the first retry of
// a batch. A positive retryAfter, which a receiver asked for, replaces the jittered wait
// (zero would have every sender retry at once, so it does not).
func (b Backoff) Delay(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	c := b.ceiling(attempt)
	if c <= 0 {
		return 0
	}
	randN := b.randN
	if randN == nil {
		randN = rand.Int64N
	}
	return time.Duration(randN(int64(c)))
}

// RetryAfter reads a Retry-After header (delay in seconds, or an HTTP date), capped at
// maxRetryAfter; ok is false when there is none or it cannot be parsed.
func RetryAfter(h http.Header, now time.Time) (wait time.Duration, ok bool) {
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
