package explore

import (
	"cmp"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// lightMetricBytes is what a metric without detail is charged: its map entry and name.
const lightMetricBytes = 160

// scan is one observation period: every series that arrives during it is observed once.
type scan struct {
	started time.Time
	seen    filter
	metrics map[string]*metricStats
	// history is the last complete scan's result per metric: the chain order and priority.
	history map[string]*Metric

	budget, charged int64
	shed            int    // metrics that lost their detail to the budget
	other           counts // metrics past the budget even without detail
	series          uint64
	samples         atomic.Uint64 // added to under the read lock

	// lowest is at most the lowest priority of a metric with detail (priorities only grow):
	// a new metric of no higher priority need not look for detail to shed.
	lowest uint64

	scratch []byte       // for the slow path, under the write lock
	last    *metricStats // the metric of the previous series, which the next often shares
}

// counts are the series and samples of metrics the scan could not keep apart.
type counts struct {
	series, samples uint64
}

// newScan starts a scan at now. last is the previous complete scan's result, if any.
func newScan(now time.Time, budget int64, last *Result) *scan {
	s := &scan{started: now, metrics: map[string]*metricStats{}, budget: budget, history: map[string]*Metric{}}
	expect := uint64(1 << 20)
	if last != nil {
		expect = last.Series + last.Series/4
		for i := range last.Metrics {
			s.history[last.Metrics[i].Name] = &last.Metrics[i]
		}
	}
	s.seen = newFilter(expect, budget/4)
	s.charged = s.seen.bytes()
	return s
}

// pending is a series the fast path leaves to the slow one: the i-th of its request, seen
// for the first time in the scan (fresh), or of a metric the scan has no stats for yet.
type pending struct {
	i     int32
	fresh bool
}

// observeFast reads the series of one request under the explorer's read lock, concurrently
// with other requests: it marks each series seen and counts the samples of series already
// seen, and leaves the others in b.todo, for the write lock (observeSlow). In the steady
// state of a scan (every series seen) that is all but nothing, so requests do not queue
// behind one another.
func (s *scan) observeFast(series []prompb.TimeSeries, b *buffers) {
	// First every series' hash, loading its filter word: the loads are independent, so the
	// processor overlaps their cache misses, which a test-and-set right after each hash
	// would wait out one by one.
	b.hashes = b.hashes[:0]
	var touched uint64
	for i := range series {
		key := b.key[:0]
		for _, l := range series[i].Labels {
			key = append(append(append(append(key, l.Name...), 0xff), l.Value...), 0xff)
		}
		b.key = key
		h := xxhash.Sum64(key)
		b.hashes = append(b.hashes, h)
		touched += atomic.LoadUint64(&s.seen.words[h>>s.seen.shift])
	}
	b.touched = touched
	var last *metricStats
	var lastName string
	var run, total uint64 // samples of last not yet added, and of the request
	for i := range series {
		ts := &series[i]
		n := uint64(len(ts.Samples) + len(ts.Histograms))
		total += n
		fresh := !s.seen.testAndSet(b.hashes[i])
		name := metricName(ts.Labels)
		if last == nil || name != lastName {
			if last != nil {
				last.samples.Add(run)
			}
			last, lastName, run = s.metrics[name], name, 0
		}
		if fresh || last == nil {
			b.todo = append(b.todo, pending{i: int32(i), fresh: fresh})
			continue
		}
		run += n
	}
	if last != nil {
		last.samples.Add(run)
	}
	s.samples.Add(total)
}

// observeSlow reads what observeFast left, under the explorer's write lock: it creates the
// stats of new metrics and adds new series to their metric's sketches.
func (s *scan) observeSlow(series []prompb.TimeSeries, todo []pending) {
	for _, p := range todo {
		ts := &series[p.i]
		n := uint64(len(ts.Samples) + len(ts.Histograms))
		m := s.metric(ts.Labels)
		if m == nil {
			s.other.samples += n
			if p.fresh {
				s.other.series++
				s.series++
			}
			continue
		}
		m.samples.Add(n)
		if !p.fresh {
			continue
		}
		s.series++
		m.series++
		m.priority = max(m.priority, m.series)
		if m.detail != nil {
			var c int64
			c, s.scratch = m.detail.observe(ts.Labels, s.scratch)
			s.charged += c
			if s.charged > s.budget {
				s.shedDetail()
			}
		}
	}
}

// metric returns the stats of the metric of a series, creating them if new; nil when the
// budget cannot hold even a name more.
func (s *scan) metric(lbls []prompb.Label) *metricStats {
	name := metricName(lbls)
	if s.last != nil && s.last.name == name {
		return s.last
	}
	m, ok := s.metrics[name]
	if !ok {
		var priority uint64
		var chain []string
		if h := s.history[name]; h != nil {
			priority, chain = h.Series, h.chainOrder()
		}
		cost := lightMetricBytes + int64(len(name))
		if s.charged+cost > s.budget {
			s.makeRoom(priority, cost)
			if s.charged+cost > s.budget {
				return nil
			}
		}
		m = &metricStats{name: string([]byte(name)), priority: priority} // name points into the request
		s.charged += cost
		if s.charged+detailFloor > s.budget {
			s.makeRoom(priority, detailFloor)
		}
		if s.charged+detailFloor <= s.budget {
			var c int64
			m.detail, c = newDetail(chain)
			s.charged += c
			s.lowest = min(s.lowest, priority)
		} else {
			s.shed++
		}
		s.metrics[m.name] = m
	}
	s.last = m
	return m
}

// detailFloor is the room a new metric's detail needs under the budget to be started.
const detailFloor = 64 << 10

// shedDetail drops the detail of the metrics with the lowest priority until the scan is
// charged at most nine tenths of its budget.
func (s *scan) shedDetail() { s.shedBelow(math.MaxUint64, s.budget/10*9) }

// makeRoom sheds the detail of metrics of lower priority than a new one's, for need more
// bytes: down to nine tenths of the budget less need, so that the next new metrics find
// room without shedding again. It does nothing (in constant time) when no detailed metric
// can have a lower priority: then the new one is the one to go without.
func (s *scan) makeRoom(priority uint64, need int64) {
	if priority <= s.lowest {
		return
	}
	s.shedBelow(priority, s.budget/10*9-need)
}

// shedBelow drops the detail of metrics of priority below limit, lowest first, until the
// scan is charged at most goal, and updates lowest.
func (s *scan) shedBelow(limit uint64, goal int64) {
	detailed := make([]*metricStats, 0, len(s.metrics))
	for _, m := range s.metrics {
		if m.detail != nil {
			detailed = append(detailed, m)
		}
	}
	slices.SortFunc(detailed, func(a, b *metricStats) int {
		return cmp.Or(cmp.Compare(a.priority, b.priority), cmp.Compare(a.name, b.name))
	})
	s.lowest = math.MaxUint64
	for _, m := range detailed {
		if s.charged <= goal || m.priority >= limit {
			s.lowest = m.priority
			return
		}
		s.charged -= m.detail.charged()
		m.detail = nil
		s.shed++
	}
}

// metricName returns the value of __name__.
func metricName(lbls []prompb.Label) string {
	for i := range lbls {
		if lbls[i].Name == rules.MetricNameLabel {
			return lbls[i].Value
		}
	}
	return ""
}
