package explore

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

// Explorer observes incoming series in scans and keeps the last complete scan's result.
// Its methods are safe for concurrent use.
type Explorer struct {
	cfg Config
	now func() time.Time

	scanning atomic.Bool // read by every request: the only cost between scans
	// mu guards the scans: requests observe under its read lock (observeFast), and take
	// the write lock only for what is new to the scan (observeSlow).
	mu      sync.RWMutex
	cur     *scan   // the scan in progress; nil between scans
	last    *Result // the last complete scan; nil before the first ends
	metrics *metrics
	buffers sync.Pool // of *buffers

	typesMu sync.Mutex
	types   map[string]string // metric family name -> type, from the agents' metadata
}

// maxTypes bounds the metric families whose type the explorer remembers.
const maxTypes = 100_000

// New returns an Explorer for cfg, registering its metrics with reg. now is the clock (nil:
// time.Now). It observes nothing until Run or StartScan starts a scan.
func New(cfg Config, reg prometheus.Registerer, now func() time.Time) *Explorer {
	if now == nil {
		now = time.Now
	}
	e := &Explorer{cfg: cfg, now: now, metrics: newMetrics(reg), types: map[string]string{}}
	e.buffers.New = func() any { return &buffers{} }
	return e
}

// Observe reads the series of a request an agent sent. Labels may point into the request's
// buffer: what is kept is copied.
func (e *Explorer) Observe(series []prompb.TimeSeries) {
	if e == nil || !e.scanning.Load() {
		return
	}
	b := e.buffers.Get().(*buffers)
	b.todo = b.todo[:0]
	s := e.observeFast(series, b)
	if s != nil && len(b.todo) > 0 {
		e.observeSlow(s, series, b.todo)
	}
	e.buffers.Put(b)
}

// observeFast runs the fast path of the scan in progress under the read lock and returns
// that scan (nil if none).
func (e *Explorer) observeFast(series []prompb.TimeSeries, b *buffers) *scan {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.cur != nil {
		e.cur.observeFast(series, b)
	}
	return e.cur
}

// observeSlow runs s.observeSlow under the write lock, if s is still the scan in progress.
func (e *Explorer) observeSlow(s *scan, series []prompb.TimeSeries, todo []pending) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == s { // the scan may have ended meanwhile
		s.observeSlow(series, todo)
	}
}

// buffers are one Observe call's scratch space.
type buffers struct {
	key     []byte
	hashes  []uint64
	todo    []pending
	touched uint64 // keeps observeFast's loads from being optimised away
}

// ObserveMetadata reads the metric metadata a request carried (Prometheus sends it every
// minute by default): the type of each metric family, which suggest prefers to the name.
func (e *Explorer) ObserveMetadata(md []prompb.MetricMetadata) {
	if e == nil || len(md) == 0 {
		return
	}
	e.typesMu.Lock()
	defer e.typesMu.Unlock()
	for i := range md {
		name := md[i].MetricFamilyName
		t := strings.ToLower(md[i].Type.String())
		if old, ok := e.types[name]; ok && old == t {
			continue
		}
		if _, ok := e.types[name]; ok || len(e.types) < maxTypes {
			e.types[strings.Clone(name)] = t
		}
	}
}

// typeOf returns the type the metadata gives the family of a metric name, or "": the name
// itself, or the name less the suffix of a counter, histogram or summary series.
func (e *Explorer) typeOf(name string) string {
	e.typesMu.Lock()
	defer e.typesMu.Unlock()
	if t, ok := e.types[name]; ok {
		return t
	}
	for _, suffix := range []string{"_total", "_bucket", "_sum", "_count", "_created"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if t, ok := e.types[base]; ok {
				return t
			}
		}
	}
	return ""
}

// StartScan starts a scan, ending the one in progress, if any.
func (e *Explorer) StartScan() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur != nil {
		e.endLocked()
	}
	e.cur = newScan(e.now(), int64(e.cfg.MemoryBudget), e.last)
	e.scanning.Store(true)
}

// EndScan ends the scan in progress, whose result becomes the one Result returns.
func (e *Explorer) EndScan() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur != nil {
		e.endLocked()
	}
}

func (e *Explorer) endLocked() {
	e.scanning.Store(false)
	start := time.Now()
	r := e.cur.result(e.now(), true)
	for i := range r.Metrics {
		r.Metrics[i].Type = e.typeOf(r.Metrics[i].Name)
	}
	e.cur = nil
	e.last = &r
	e.metrics.scanned(&r, time.Since(start))
}

// Result returns the last complete scan's result, and whether there is one.
func (e *Explorer) Result() (Result, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.last == nil {
		return Result{}, false
	}
	return *e.last, true
}

// Progress returns the counts so far of the scan in progress, and whether one runs.
func (e *Explorer) Progress() (Result, bool) {
	e.mu.RLock() // result of a running scan only reads what writers change under the lock
	defer e.mu.RUnlock()
	if e.cur == nil {
		return Result{}, false
	}
	return e.cur.result(e.now(), false), true
}

// Config returns the explorer's settings.
func (e *Explorer) Config() Config { return e.cfg }

// Run scans until ctx ends: two scans back to back (the second has the first's ranking for
// its drop chains), then one of scan_for every scan_every.
func (e *Explorer) Run(ctx context.Context) {
	scanFor, every := time.Duration(e.cfg.ScanFor), time.Duration(e.cfg.ScanEvery)
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	defer e.EndScan()
	for i := 0; ; i++ {
		e.StartScan()
		if !wait(scanFor) {
			return
		}
		e.EndScan()
		if i > 0 && !wait(every-scanFor) {
			return
		}
	}
}
