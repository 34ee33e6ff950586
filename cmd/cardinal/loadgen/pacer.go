package loadgen

import (
	"context"
	"sync"
	"time"
)

// pacer spaces requests so that the samples sent by time t never exceed rate·t plus one
// request. Requests are scheduled in the order they ask, each at the time the samples before
// it are due, so a burst of workers does not exceed the rate either.
type pacer struct {
	rate  float64 // samples per second; 0 disables pacing
	start time.Time

	mu        sync.Mutex
	scheduled float64 // samples handed out so far
}

// newPacer paces at rate samples per second from start; a zero rate never waits.
func newPacer(rate float64, start time.Time) *pacer {
	return &pacer{rate: rate, start: start}
}

// wait blocks until a request of n samples may go, or until ctx is done.
func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	p.mu.Lock()
	due := p.start.Add(time.Duration(p.scheduled / p.rate * float64(time.Second)))
	p.scheduled += float64(n)
	p.mu.Unlock()
	d := time.Until(due)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
