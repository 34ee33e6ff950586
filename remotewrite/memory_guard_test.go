package remotewrite

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeHeap is a settable heap size that counts its readings and forced collections.
type fakeHeap struct {
	bytes       uint64
	reads       int
	collections int
}

func (h *fakeHeap) read() uint64 { h.reads++; return h.bytes }
func (h *fakeHeap) collect()     { h.collections++ }

func TestMemoryGuardRefusesAtTheThresholdAndReadsAtMostEvery100ms(t *testing.T) {
	heap := &fakeHeap{bytes: 500}
	clk := &manualClock{t: time.Unix(1000, 0)}
	g := newMemoryGuard(1000, clk.now, heap.read, heap.collect)

	steps := []struct {
		name            string
		advance         time.Duration
		heap            uint64
		wantErr         bool
		wantReads       int
		wantCollections int
	}{
		{"under_the_threshold_accepts", 0, 500, false, 1, 0},
		{"a_new_reading_waits_for_the_interval", 50 * time.Millisecond, 2000, false, 1, 0},
		{"at_the_threshold_refuses", 50 * time.Millisecond, 1000, true, 2, 0},
		{"still_over_within_the_interval", 10 * time.Millisecond, 10, true, 2, 0},
		{"over_the_threshold_a_collection_is_forced_before_reading", 100 * time.Millisecond, 1500, true, 3, 1},
		{"at_most_one_forced_collection_a_second", 100 * time.Millisecond, 1500, true, 4, 1},
		{"a_second_later_another", time.Second, 10, false, 5, 2},
		{"under_the_threshold_no_collection_is_forced", time.Second, 10, false, 6, 2},
	}
	for _, s := range steps {
		clk.t = clk.t.Add(s.advance)
		heap.bytes = s.heap
		err := g.Check()
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: err = %v, want error %v", s.name, err, s.wantErr)
		}
		if err != nil && (!errors.Is(err, ErrMemoryLimit) || !errors.Is(err, ErrUnavailable)) {
			t.Fatalf("%s: err = %v, want ErrMemoryLimit wrapping ErrUnavailable", s.name, err)
		}
		if heap.reads != s.wantReads || heap.collections != s.wantCollections {
			t.Fatalf("%s: heap read %d times with %d forced collections, want %d and %d", s.name, heap.reads, heap.collections, s.wantReads, s.wantCollections)
		}
	}
}

func TestMemoryGuardReadsTheRealHeap(t *testing.T) {
	runtime.GC() // the live heap is measured by a collection
	g := NewMemoryGuard(1)
	if g.Heap() == 0 {
		t.Fatal("live heap reads 0: the runtime/metrics name is wrong")
	}
	if err := g.Check(); !errors.Is(err, ErrMemoryLimit) {
		t.Errorf("threshold of 1 byte: err = %v, want ErrMemoryLimit", err)
	}
}

func TestHandlerAnswers503OverTheMemoryLimitWithoutAppending(t *testing.T) {
	heap := &fakeHeap{bytes: 2 << 20}
	clk := &manualClock{t: time.Unix(1000, 0)}
	app := &recordingAppender{}
	reg := prometheus.NewRegistry()
	h := NewHandler(app, HandlerOptions{MemoryGuard: newMemoryGuard(1<<20, clk.now, heap.read, heap.collect)}, reg, nil)
	post := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", WritePath, bytes.NewReader(encodeBody(t, series(1, "__name__", "up")))))
		return rec.Code
	}
	if code := post(); code != 503 {
		t.Fatalf("over the limit: status %d, want 503", code)
	}
	if app.calls != 0 {
		t.Errorf("appender called %d times over the limit", app.calls)
	}
	heap.bytes = 1 << 19
	clk.t = clk.t.Add(time.Second)
	if code := post(); code != 204 {
		t.Fatalf("back under the limit: status %d, want 204", code)
	}
	if got := metricValue(t, reg, "cardinal_receiver_rejected_requests_total", map[string]string{"reason": "memory_limit"}); got != 1 {
		t.Errorf("rejected_requests_total{reason=memory_limit} = %v, want 1", got)
	}
}

// manualClock is a settable clock.
type manualClock struct{ t time.Time }

func (c *manualClock) now() time.Time { return c.t }
