package remotewrite

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// ErrMemoryLimit is returned (wrapped) by MemoryGuard.Check while the live heap is over the
// guard's threshold. It wraps ErrUnavailable: the receiver answers 503 and agents keep their
// data and retry, instead of the process growing until it is OOM-killed.
var ErrMemoryLimit = fmt.Errorf("%w: memory limit reached", ErrUnavailable)

// memorySampleInterval is the least time between two readings of the heap size, so that a
// burst of requests costs one reading.
const memorySampleInterval = 100 * time.Millisecond

// overLimitCollectInterval is the least time between two garbage collections the guard
// forces while over its threshold. The live heap is only measured by a collection, and a
// process refusing all data allocates too little to start one: without them it would go on
// refusing after its memory was freed (e.g. a downstream queue drained).
const overLimitCollectInterval = time.Second

// liveHeapMetric is the heap the last garbage collection found reachable. Unlike the heap in
// use right now, it does not swing up to the collector's target between collections, so a
// process well within its budget is not refused just before each collection.
const liveHeapMetric = "/gc/heap/live:bytes"

// MemoryGuard refuses new data while the live heap is at or over a threshold. It reads the
// heap at most every memorySampleInterval. It is safe for concurrent use.
type MemoryGuard struct {
	threshold uint64
	now       func() time.Time
	read      func() uint64
	collect   func()

	next        atomic.Int64  // unix nanoseconds after which the heap is read again
	nextCollect atomic.Int64  // unix nanoseconds after which a collection may be forced again
	heap        atomic.Uint64 // last reading
}

// NewMemoryGuard returns a guard refusing data while the live heap is threshold bytes or
// more, read from runtime/metrics.
func NewMemoryGuard(threshold uint64) *MemoryGuard {
	return newMemoryGuard(threshold, time.Now, readLiveHeap, runtime.GC)
}

func newMemoryGuard(threshold uint64, now func() time.Time, read func() uint64, collect func()) *MemoryGuard {
	return &MemoryGuard{threshold: threshold, now: now, read: read, collect: collect}
}

// Check returns nil while the live heap is under the threshold, else an error wrapping
// ErrMemoryLimit.
func (g *MemoryGuard) Check() error {
	heap := g.Heap()
	if heap < g.threshold {
		return nil
	}
	return fmt.Errorf("%w: live heap %d bytes, refusing data from %d bytes", ErrMemoryLimit, heap, g.threshold)
}

// Heap returns the live heap, read again if the last reading is older than
// memorySampleInterval. While the last reading was over the threshold, it first forces a
// garbage collection, at most every overLimitCollectInterval, so that freed memory shows.
func (g *MemoryGuard) Heap() uint64 {
	now := g.now().UnixNano()
	if next := g.next.Load(); now >= next && g.next.CompareAndSwap(next, now+int64(memorySampleInterval)) {
		if g.heap.Load() >= g.threshold {
			if nc := g.nextCollect.Load(); now >= nc && g.nextCollect.CompareAndSwap(nc, now+int64(overLimitCollectInterval)) {
				g.collect()
			}
		}
		g.heap.Store(g.read())
	}
	return g.heap.Load()
}

// Threshold is the live heap size from which Check refuses.
func (g *MemoryGuard) Threshold() uint64 { return g.threshold }

// readLiveHeap reads liveHeapMetric.
func readLiveHeap() uint64 {
	s := []metrics.Sample{{Name: liveHeapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
