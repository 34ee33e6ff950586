package remotewrite

import (
	"sync"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
)

// requestScratch is the per-request memory a Handler reuses: body, decoded body and request.
type requestScratch struct {
	body []byte
	dec  Decoder
	req  prompb.WriteRequest
}

// footprint is the bytes s holds in its reusable buffers.
func (s *requestScratch) footprint() int {
	return cap(s.body) + cap(s.dec.buf) + cap(s.dec.facts)*int(unsafe.Sizeof(labelFacts{})) +
		cap(s.req.Timeseries)*int(unsafe.Sizeof(prompb.TimeSeries{})) +
		cap(s.dec.labels)*int(unsafe.Sizeof(prompb.Label{})) + cap(s.dec.samples)*int(unsafe.Sizeof(prompb.Sample{}))
}

// Bounds on the scratch memory a Handler keeps between requests.
const (
	maxPooledBytes  = 8 << 20 // larger buffers are left to the garbage collector
	maxPooledSeries = 1 << 16
	maxPooledLabels = 1 << 18 // slab elements: 16 MiB of labels (64 bytes each), 4 MiB of samples
	// Up to idleScratches scratches of maxIdleBytes in all are kept for good: a handful of
	// typical (2000-sample, about 1.5 MiB decoded) requests' scratches, or a few of the largest
	// a cluster peer forwards (a 1 MiB body, about 5 MiB decoded). A budget in all rather
	// than a bound on each: a member that owns outputs decodes forwarded batches of that
	// size all the time, and when their scratches were left to the sync.Pool they were
	// grown again after every other collection, which was a fifth of the member's CPU.
	idleScratches = 8
	maxIdleBytes  = 32 << 20
)

// scratchPool hands out requestScratch. A sync.Pool alone empties at every other garbage
// collection, and under load the collector runs several times a second, so each request
// would often start from empty slabs and grow a megabyte of garbage, which brings the next
// collection sooner. The pool keeps a few typical scratches for good, and leaves the rest
// (more at once, or larger) to a sync.Pool, which returns their memory when load falls.
type scratchPool struct {
	mu        sync.Mutex
	idle      []*requestScratch // a stack: the last returned is the most likely still in cache
	idleBytes int               // the footprint of idle
	overflow  sync.Pool         // of *requestScratch
}

func newScratchPool(newScratch func() *requestScratch) *scratchPool {
	p := &scratchPool{idle: make([]*requestScratch, 0, idleScratches)}
	p.overflow.New = func() any { return newScratch() }
	return p
}

// get returns a scratch, the most recently returned first.
func (p *scratchPool) get() *requestScratch {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		s := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.idleBytes -= s.footprint() // unchanged since put: an idle scratch is not used
		p.mu.Unlock()
		return s
	}
	p.mu.Unlock()
	return p.overflow.Get().(*requestScratch)
}

// put returns s to the pool unless it grew beyond what is worth keeping: for good while the
// idle scratches stay within their budget, else to the sync.Pool.
func (p *scratchPool) put(s *requestScratch) {
	if cap(s.body) > maxPooledBytes || cap(s.dec.buf) > maxPooledBytes || cap(s.req.Timeseries) > maxPooledSeries ||
		cap(s.dec.labels) > maxPooledLabels || cap(s.dec.samples) > maxPooledLabels {
		return
	}
	fp := s.footprint()
	p.mu.Lock()
	if len(p.idle) < cap(p.idle) && p.idleBytes+fp <= maxIdleBytes {
		p.idle = append(p.idle, s)
		p.idleBytes += fp
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.overflow.Put(s)
}
