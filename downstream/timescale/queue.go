package timescale

import (
	"sync"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
)

// hardLimitFactor bounds the queue at this multiple of MaxQueueBytes. At MaxQueueBytes the
// sink reports Full and the receiver answers 503, which stops new data; what was already
// acknowledged (a flush in progress) is still queued past the soft bound, so it is not lost,
// and only beyond the hard bound, which that back-pressure keeps it from reaching, is a Send
// dropped and counted.
const hardLimitFactor = 2

// queue holds the series handed to Send until the writer has written them. It is bounded in
// bytes (an estimate of the memory the series hold); the bytes of a batch stay counted until
// the batch is written or dropped, so a batch retried through an outage still counts.
type queue struct {
	mu      sync.Mutex
	items   [][]prompb.TimeSeries // FIFO of Send calls
	head    int                   // next series in items[0]
	bytes   int64                 // queued plus in flight
	pending int                   // series queued, not yet taken
	max     int64
	closed  bool
	ready   chan struct{} // signalled (capacity 1) when series are pushed
}

func newQueue(maxBytes int64) *queue {
	return &queue{max: maxBytes, ready: make(chan struct{}, 1)}
}

// pushResult says whether push accepted the series, and why not.
type pushResult int

const (
	pushed pushResult = iota
	pushFull
	pushClosed
)

// push appends series. It accepts while the queue is below its bound (so it may go over by
// one push) and refuses when the queue is full or closed.
func (q *queue) push(series []prompb.TimeSeries) pushResult {
	if len(series) == 0 {
		return pushed
	}
	var n int64
	for i := range series {
		n += seriesBytes(&series[i])
	}
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return pushClosed
	case q.bytes >= hardLimitFactor*q.max:
		q.mu.Unlock()
		return pushFull
	}
	q.items = append(q.items, series)
	q.bytes += n
	q.pending += len(series)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return pushed
}

// full reports whether the queue has reached its bound.
func (q *queue) full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes >= q.max
}

// pop appends to dst queued series holding up to maxSamples samples (at least one series
// when any is queued) and returns them with their bytes, which stay counted until release.
func (q *queue) pop(dst []prompb.TimeSeries, maxSamples int) ([]prompb.TimeSeries, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var bytes int64
	samples := 0
	for len(q.items) > 0 && (samples < maxSamples || len(dst) == 0) {
		s := &q.items[0][q.head]
		dst = append(dst, *s)
		samples += max(len(s.Samples), 1)
		bytes += seriesBytes(s)
		// The caller's slice is not cleared: other downstreams may be reading it. It is
		// let go as a whole once its last series is taken.
		q.head++
		q.pending--
		if q.head == len(q.items[0]) {
			q.items[0] = nil
			q.items = q.items[1:]
			q.head = 0
		}
	}
	return dst, bytes
}

// release gives back the bytes of a batch that has been written or dropped.
func (q *queue) release(bytes int64) {
	q.mu.Lock()
	q.bytes -= bytes
	q.mu.Unlock()
}

// close makes further pushes fail; series already queued can still be popped.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// queuedSeries is the number of series not yet taken by the writer.
func (q *queue) queuedSeries() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}

// queuedBytes is the memory estimate of the queued and in-flight series.
func (q *queue) queuedBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// seriesBytes estimates the memory held by a series: its structs and label strings.
func seriesBytes(s *prompb.TimeSeries) int64 {
	n := int64(unsafe.Sizeof(*s)) +
		int64(len(s.Labels))*int64(unsafe.Sizeof(prompb.Label{})) +
		int64(len(s.Samples))*int64(unsafe.Sizeof(prompb.Sample{})) +
		int64(len(s.Histograms))*int64(unsafe.Sizeof(prompb.Histogram{}))
	for _, l := range s.Labels {
		n += int64(len(l.Name) + len(l.Value))
	}
	return n
}
