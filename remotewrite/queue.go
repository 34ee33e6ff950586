package remotewrite

import (
	"sync"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"
)

// Approximate in-memory sizes of what a queue holds, for its byte bound.
const (
	seriesOverhead    = int64(unsafe.Sizeof(prompb.TimeSeries{}))
	labelOverhead     = int64(unsafe.Sizeof(prompb.Label{}))
	sampleSize        = int64(unsafe.Sizeof(prompb.Sample{}))
	exemplarOverhead  = int64(unsafe.Sizeof(prompb.Exemplar{}))
	histogramOverhead = int64(unsafe.Sizeof(prompb.Histogram{})) + 16 // + the oneof wrappers
	spanSize          = int64(unsafe.Sizeof(prompb.BucketSpan{}))
)

// maxIdleQueueEntries bounds the capacity an empty queue keeps for the next burst.
const maxIdleQueueEntries = 1 << 12

// seriesQueue is one shard's FIFO of series waiting to be sent. Series are only ever taken
// from the head, so the samples of one series leave in the order they were queued.
type seriesQueue struct {
	// wake receives a token (without blocking the sender) whenever series are pushed.
	wake chan struct{}

	mu      sync.Mutex
	items   []prompb.TimeSeries
	head    int // items[:head] have been taken
	pending int // sample units in items[head:], see sampleUnits
}

func newSeriesQueue() *seriesQueue {
	return &seriesQueue{wake: make(chan struct{}, 1)}
}

// push appends ts to the queue.
func (q *seriesQueue) push(ts prompb.TimeSeries) {
	q.mu.Lock()
	if len(q.items) == cap(q.items) && q.head > len(q.items)/2 {
		// Reuse the taken half instead of growing.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, ts)
	q.pending += sampleUnits(&ts)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// size returns the sample units waiting in the queue.
func (q *seriesQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}

// take moves series from the head of the queue into dst until maxUnits sample units are taken.
// A series that does not fit whole waits for the next batch, unless the batch is empty: then
// its first maxUnits samples are taken and the rest stays at the head. It returns the batch,
// how many queue entries left the queue entirely and the bytes (per seriesBytes) they and
// the split-off part accounted for.
func (q *seriesQueue) take(dst []prompb.TimeSeries, maxUnits int) (batch []prompb.TimeSeries, entries int, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	units := 0
	for q.head < len(q.items) && units < maxUnits {
		ts := &q.items[q.head]
		u := sampleUnits(ts)
		if units+u <= maxUnits {
			dst = append(dst, *ts)
			bytes += seriesBytes(ts)
			*ts = prompb.TimeSeries{}
			q.head++
			entries++
			units += u
			continue
		}
		if units == 0 {
			part, rest := splitSeries(*ts, maxUnits)
			bytes += seriesBytes(ts) - seriesBytes(&rest)
			*ts = rest
			dst = append(dst, part)
			units += sampleUnits(&part)
		}
		break
	}
	q.pending -= units
	if q.head == len(q.items) {
		q.reset()
	}
	return dst, entries, bytes
}

// takeAll empties the queue and returns what it held: entries, samples and bytes.
func (q *seriesQueue) takeAll() (entries, samples int, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := q.head; i < len(q.items); i++ {
		ts := &q.items[i]
		samples += len(ts.Samples) + len(ts.Histograms)
		bytes += seriesBytes(ts)
	}
	entries = len(q.items) - q.head
	clear(q.items)
	q.reset()
	q.pending = 0
	return entries, samples, bytes
}

// reset empties the queue, whose taken slots are already cleared, releasing the memory of a
// past burst.
func (q *seriesQueue) reset() {
	if cap(q.items) > maxIdleQueueEntries {
		q.items = nil
	} else {
		q.items = q.items[:0]
	}
	q.head = 0
}

// sampleUnits is what a series counts against a batch's sample limit: its float and
// histogram samples, and at least one so that empty series cannot make a batch unbounded.
func sampleUnits(ts *prompb.TimeSeries) int {
	return max(1, len(ts.Samples)+len(ts.Histograms))
}

// splitSeries cuts a series into its first n sample units and the rest (float samples
// first, then histograms). Both share the labels; exemplars go with the first part.
func splitSeries(ts prompb.TimeSeries, n int) (part, rest prompb.TimeSeries) {
	ns := min(n, len(ts.Samples))
	nh := min(n-ns, len(ts.Histograms))
	part = prompb.TimeSeries{
		Labels:     ts.Labels,
		Samples:    ts.Samples[:ns:ns],
		Histograms: ts.Histograms[:nh:nh],
		Exemplars:  ts.Exemplars,
	}
	rest = prompb.TimeSeries{
		Labels:     ts.Labels,
		Samples:    ts.Samples[ns:],
		Histograms: ts.Histograms[nh:],
	}
	return part, rest
}

// seriesBytes approximates the memory a queued series holds.
func seriesBytes(ts *prompb.TimeSeries) int64 {
	n := seriesOverhead + int64(len(ts.Labels))*labelOverhead + int64(len(ts.Samples))*sampleSize
	for _, l := range ts.Labels {
		n += int64(len(l.Name) + len(l.Value))
	}
	for i := range ts.Exemplars {
		ex := &ts.Exemplars[i]
		n += exemplarOverhead + int64(len(ex.Labels))*labelOverhead
		for _, l := range ex.Labels {
			n += int64(len(l.Name) + len(l.Value))
		}
	}
	for i := range ts.Histograms {
		h := &ts.Histograms[i]
		n += histogramOverhead +
			int64(len(h.NegativeSpans)+len(h.PositiveSpans))*spanSize +
			8*int64(len(h.NegativeDeltas)+len(h.NegativeCounts)+len(h.PositiveDeltas)+len(h.PositiveCounts)+len(h.CustomValues))
	}
	return n
}

// shardOf assigns a series to one of n shards by its labels. The hash ignores label order,
// so the same series always lands on the same shard and its samples stay in order.
func shardOf(labels []prompb.Label, n int) int {
	if n <= 1 {
		return 0
	}
	var sum uint64
	var d xxhash.Digest
	for _, l := range labels {
		d.Reset()
		_, _ = d.WriteString(l.Name)
		_, _ = d.WriteString("\xff")
		_, _ = d.WriteString(l.Value)
		sum += d.Sum64()
	}
	return int(sum % uint64(n))
}
