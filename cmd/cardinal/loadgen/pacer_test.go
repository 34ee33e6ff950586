package loadgen

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestPacer_releases_requests_at_the_target_rate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		p := newPacer(1000, start) // 1000 samples/s
		var mu sync.Mutex
		var released []time.Duration
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 5 {
					if err := p.wait(context.Background(), 100); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					released = append(released, time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		// 20 requests of 100 samples: the k-th is due at k·100ms, whatever the worker.
		if len(released) != 20 {
			t.Fatalf("%d requests released, want 20", len(released))
		}
		if last := time.Since(start); last != 1900*time.Millisecond {
			t.Fatalf("last request released at %v, want 1.9s", last)
		}
		for i := range released {
			if due := time.Duration(i) * 100 * time.Millisecond; released[i] > due {
				// released is in release order; the i-th released is no later than the i-th due.
				t.Fatalf("request %d released at %v, after its due time %v", i, released[i], due)
			}
		}
	})
}

func TestPacer_stops_waiting_when_the_run_ends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(10, time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		sent := 0
		for p.wait(ctx, 1) == nil {
			sent++
		}
		// Due at 0, 100ms, 200ms; the fourth (300ms) is past the end.
		if sent != 3 {
			t.Fatalf("%d requests released before the end, want 3", sent)
		}
	})
}
