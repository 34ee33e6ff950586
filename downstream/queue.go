package downstream

import (
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
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

// maxIdleQueueEntries bounds the capacity an empty shard keeps for the next burst.
const maxIdleQueueEntries = 1 << 12

// Queue holds the series handed to a sink until they are written. It is one FIFO per shard
// (a series always goes to the same shard, so its samples leave in order) under one bound in
// bytes, an estimate of the memory the series hold. A batch's bytes stay counted from Take
// until Release, so a batch retried through an outage still counts.
//
// The overflow policy every sink shares: Push always queues (what reaches a sink has been
// acknowledged to the agents), even past the bound; at the bound Full reports true, so the
// receiver answers 503 and the agents keep their data; only Close, at shutdown, makes Push
// refuse, and the sink counts what it drops then.
//
// The queue copies the series structs into its own slots and never modifies what they point
// to, so the same series may be queued by other sinks too.
type Queue struct {
	limit  int64
	bytes  atomic.Int64 // queued and taken but not released
	series atomic.Int64 // entries queued and taken but not released
	shards []*fifo

	// mu orders Push against Close: Push holds it shared.
	mu     sync.RWMutex
	closed bool
}

// fifo is one shard of a Queue. Series are only ever taken from the head.
type fifo struct {
	// ready receives a token (without blocking the pusher) whenever series are pushed.
	ready chan struct{}

	mu      sync.Mutex
	items   []prompb.TimeSeries
	head    int // items[:head] have been taken
	pending int // sample units in items[head:], see sampleUnits
	// inflight are the series of the batches taken and not released yet, by batch id, for
	// Snapshot: a checkpoint must keep what is being written as well as what waits.
	inflight map[uint64][]prompb.TimeSeries
	nextID   uint64
	// seen and skipped are TakeDistinct's scratch space, kept for the next batch.
	seen    map[uint64]struct{}
	skipped []prompb.TimeSeries
}

// Batch is series taken from a Queue to be written. Its bytes stay counted against the
// queue's bound until Release.
type Batch struct {
	// Series are the batch's series; a series bigger than the batch limit is split.
	Series []prompb.TimeSeries
	// Hashes are the SeriesHash of each of Series, from TakeDistinct only.
	Hashes  []uint64
	entries int   // queue entries that left the queue entirely
	bytes   int64 // what the series (and split-off parts) accounted for
	shard   int
	id      uint64 // its key in the shard's inflight; 0 for an empty batch
}

// Samples is the number of float and histogram samples in the batch.
func (b Batch) Samples() int { return remotewrite.CountSamples(b.Series) }

// NewQueue returns an empty queue of shards FIFOs (at least one) that is Full at maxBytes.
func NewQueue(maxBytes int64, shards int) *Queue {
	q := &Queue{limit: maxBytes, shards: make([]*fifo, max(shards, 1))}
	for i := range q.shards {
		q.shards[i] = &fifo{ready: make(chan struct{}, 1)}
	}
	return q
}

// Push queues series, each on the shard of its labels. It never blocks and never refuses
// for being over the bound; it returns false, queuing nothing, only after Close. Each shard
// takes its part of series at once, so a sender sees a Send whole or not at all.
func (q *Queue) Push(series []prompb.TimeSeries) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return false
	}
	var bytes int64
	for i := range series {
		bytes += seriesBytes(&series[i])
	}
	q.bytes.Add(bytes)
	q.series.Add(int64(len(series)))
	if len(q.shards) == 1 {
		q.shards[0].push(series, nil, 0)
		return true
	}
	shardOfSeries := make([]int, len(series))
	for i := range series {
		shardOfSeries[i] = shardOf(series[i].Labels, len(q.shards))
	}
	for shard, f := range q.shards {
		f.push(series, shardOfSeries, shard)
	}
	return true
}

// Full reports whether the queue holds its bound or more: the receiver should then answer
// 503 so that agents keep their data and retry.
func (q *Queue) Full() bool { return q.bytes.Load() >= q.limit }

// Bytes is the estimated memory of the queued and in-flight series.
func (q *Queue) Bytes() int64 { return q.bytes.Load() }

// Series is the number of series queued or in flight.
func (q *Queue) Series() int64 { return q.series.Load() }

// Shards is the number of FIFOs, numbered from 0.
func (q *Queue) Shards() int { return len(q.shards) }

// Ready receives a token after series are pushed to shard.
func (q *Queue) Ready(shard int) <-chan struct{} { return q.shards[shard].ready }

// Pending is the number of sample units (see Take) queued on shard and not taken yet.
func (q *Queue) Pending(shard int) int {
	f := q.shards[shard]
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending
}

// Take moves series from the head of shard into dst until maxUnits sample units are taken:
// a series counts its float and histogram samples, and at least one. A series that does not
// fit whole waits for the next batch, unless the batch is empty: then its first maxUnits
// samples are taken and the rest stays at the head. Release the batch once it is written or
// dropped.
func (q *Queue) Take(shard int, dst []prompb.TimeSeries, maxUnits int) Batch {
	f := q.shards[shard]
	f.mu.Lock()
	defer f.mu.Unlock()
	b := Batch{Series: dst}
	units := 0
	for f.head < len(f.items) && units < maxUnits {
		ts := &f.items[f.head]
		u := sampleUnits(ts)
		if units+u <= maxUnits {
			b.Series = append(b.Series, *ts)
			b.bytes += seriesBytes(ts)
			*ts = prompb.TimeSeries{} // the queue's own slot; the caller's series are untouched
			f.head++
			b.entries++
			units += u
			continue
		}
		if units == 0 {
			part, rest := splitSeries(*ts, maxUnits)
			b.bytes += seriesBytes(ts) - seriesBytes(&rest)
			*ts = rest
			b.Series = append(b.Series, part)
			units += sampleUnits(&part)
		}
		break
	}
	f.pending -= units
	if f.head == len(f.items) {
		f.reset()
	}
	f.track(&b, shard)
	return b
}

// TakeDistinct is Take for a downstream that must never receive two samples of one series in
// one request: it takes at most one sample unit of each series (by SeriesHash), leaving the
// rest of a multi-sample series and later entries of a series already taken in order for the
// next batches, so every series' samples still leave in order. It looks past such repeats
// (at most maxUnits of them) to fill the batch with other series. hashes is reused for
// Batch.Hashes.
//
// Prometheus refuses a whole request holding a sample older than the newest of its series,
// so a request it acknowledged that is sent again (after a crash, before the sender could
// note the acknowledgement) is accepted only if it holds each series' newest sample alone.
func (q *Queue) TakeDistinct(shard int, dst []prompb.TimeSeries, hashes []uint64, maxUnits int) Batch {
	f := q.shards[shard]
	f.mu.Lock()
	defer f.mu.Unlock()
	b := Batch{Series: dst, Hashes: hashes[:0]}
	if f.seen == nil {
		f.seen = map[uint64]struct{}{}
	}
	skipped := f.skipped[:0]
	units := 0
	i := f.head
	for ; i < len(f.items) && units < maxUnits; i++ {
		ts := &f.items[i]
		h := SeriesHash(ts.Labels)
		if _, repeat := f.seen[h]; repeat {
			if len(skipped) == maxUnits {
				break
			}
			skipped = append(skipped, *ts)
			continue
		}
		f.seen[h] = struct{}{}
		part := *ts
		if sampleUnits(ts) > 1 {
			var rest prompb.TimeSeries
			part, rest = splitSeries(*ts, 1)
			b.bytes += seriesBytes(ts) - seriesBytes(&rest)
			skipped = append(skipped, rest)
		} else {
			b.bytes += seriesBytes(ts)
			b.entries++
		}
		b.Series = append(b.Series, part)
		b.Hashes = append(b.Hashes, h)
		units++
	}
	clear(f.seen)
	// What stays (repeats and the rest of split series) moves, in order, to just before the
	// first entry not looked at, and starts the new head.
	newHead := i - len(skipped)
	clear(f.items[f.head:newHead])
	copy(f.items[newHead:i], skipped)
	clear(skipped)
	f.skipped = skipped[:0]
	f.head = newHead
	f.pending -= units
	if f.head == len(f.items) {
		f.reset()
	}
	f.track(&b, shard)
	return b
}

// track registers a non-empty batch as in flight, for Snapshot.
func (f *fifo) track(b *Batch, shard int) {
	if len(b.Series) == 0 {
		return
	}
	if f.inflight == nil {
		f.inflight = map[uint64][]prompb.TimeSeries{}
	}
	f.nextID++
	b.shard, b.id = shard, f.nextID
	f.inflight[b.id] = b.Series
}

// Release gives back the bytes of a batch that has been written or dropped.
func (q *Queue) Release(b Batch) {
	if b.id != 0 {
		f := q.shards[b.shard]
		f.mu.Lock()
		delete(f.inflight, b.id)
		f.mu.Unlock()
	}
	q.bytes.Add(-b.bytes)
	q.series.Add(-int64(b.entries))
}

// Snapshot returns every series the queue holds, taken (being written) and waiting, shard by
// shard and in order within a shard, for a checkpoint: pushed again into a new queue, they
// are written again. Some may have been written after the snapshot: the SQL sink stores a
// row written twice once, and a remote-write sink leaves out what its Delivery says the
// receiver already has (Prometheus refuses a sample older than the newest of its series).
// The series structs are copies; what they point to is shared and never modified.
func (q *Queue) Snapshot() []prompb.TimeSeries {
	var out []prompb.TimeSeries
	for _, f := range q.shards {
		f.mu.Lock()
		ids := make([]uint64, 0, len(f.inflight))
		for id := range f.inflight {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			out = append(out, f.inflight[id]...)
		}
		out = append(out, f.items[f.head:]...)
		f.mu.Unlock()
	}
	return out
}

// Close makes Push refuse from now on; what is queued can still be taken.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// DropAll empties every shard and returns what it held: series and samples. Their bytes are
// released.
func (q *Queue) DropAll() (series, samples int) {
	for _, f := range q.shards {
		entries, n, bytes := f.takeAll()
		series += entries
		samples += n
		q.bytes.Add(-bytes)
		q.series.Add(-int64(entries))
	}
	return series, samples
}

// push appends the series whose entry in shardOf is shard (all of them when shardOf is nil)
// and wakes the sender when there were any.
func (f *fifo) push(series []prompb.TimeSeries, shardOf []int, shard int) {
	f.mu.Lock()
	pushed := 0
	for i := range series {
		if shardOf != nil && shardOf[i] != shard {
			continue
		}
		if len(f.items) == cap(f.items) && f.head > len(f.items)/2 {
			// Reuse the taken half instead of growing.
			n := copy(f.items, f.items[f.head:])
			clear(f.items[n:])
			f.items, f.head = f.items[:n], 0
		}
		f.items = append(f.items, series[i])
		f.pending += sampleUnits(&series[i])
		pushed++
	}
	f.mu.Unlock()
	if pushed == 0 {
		return
	}
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

// takeAll empties the FIFO and returns what it held: entries, samples and bytes.
func (f *fifo) takeAll() (entries, samples int, bytes int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := f.head; i < len(f.items); i++ {
		ts := &f.items[i]
		samples += len(ts.Samples) + len(ts.Histograms)
		bytes += seriesBytes(ts)
	}
	entries = len(f.items) - f.head
	clear(f.items)
	f.reset()
	f.pending = 0
	return entries, samples, bytes
}

// reset empties the FIFO, whose taken slots are already cleared, releasing the memory of a
// past burst.
func (f *fifo) reset() {
	if cap(f.items) > maxIdleQueueEntries {
		f.items = nil
	} else {
		f.items = f.items[:0]
	}
	f.head = 0
}

// sampleUnits is what a series counts against a batch's sample limit: its float and
// histogram samples, and at least one so that empty series cannot make a batch unbounded.
func sampleUnits(ts *prompb.TimeSeries) int {
	return max(1, len(ts.Samples)+len(ts.Histograms))
}

// splitSeries cuts a series into its first n sample units and the rest (float samples
// first, then histograms). Both share the labels and the arrays of ts, which neither
// modifies: part's slices are capped, so appending to them copies. Exemplars go with the
// first part.
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

// shardOf assigns a series to one of n shards by its labels, so the same series always lands
// on the same shard and its samples stay in order.
func shardOf(labels []prompb.Label, n int) int {
	if n <= 1 {
		return 0
	}
	return int(SeriesHash(labels) % uint64(n))
}

// SeriesHash identifies a series by its labels: a 64-bit hash that ignores their order and
// is the same in every process (it is stored in the write-ahead log).
func SeriesHash(labels []prompb.Label) uint64 {
	var sum uint64
	var d xxhash.Digest
	for _, l := range labels {
		d.Reset()
		_, _ = d.WriteString(l.Name)
		_, _ = d.WriteString("\xff")
		_, _ = d.WriteString(l.Value)
		sum += d.Sum64()
	}
	return sum
}
