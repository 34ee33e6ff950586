package e2e

import (
	"math"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
)

// Synthetic scrape history: the remote-write requests a test builds by hand and pushes as an
// agent catching up would, oldest first, one request per scrape, with timestamps in the past
// so that no test waits for the wall clock to produce them. syntheticHistory keeps the
// requests and a ledger of what every counter sample adds to an aggregate, from which a test
// computes what cardinal's running total must be at each window end.

// staleMarker is Prometheus's stale NaN.
var staleMarker = math.Float64frombits(0x7ff0000000000002)

// scrapeEvery is the scrape interval of the histories compared against raw Prometheus.
const scrapeEvery = 15 * time.Second

// scrapeOffset is how far past an interval boundary those histories scrape, like a real
// scrape offset: no sample falls on a window end.
const scrapeOffset = 3 * time.Second

// scrapesBefore is the first scrape of steps scrapes, every apart and scrapeOffset past each
// boundary of every, the last one an interval before end's boundary.
func scrapesBefore(end time.Time, every time.Duration, steps int) time.Time {
	return end.Truncate(every).Add(-time.Duration(steps) * every).Add(scrapeOffset)
}

// counterSample is one pushed counter sample and the increase it adds to an aggregate that
// has seen its series from the series' first sample.
type counterSample struct {
	labels map[string]string // of the input series, __name__ included
	step   int               // the scrape (request) it was pushed in
	t      int64             // timestamp, ms
	inc    float64
}

// syntheticHistory is a hand-built scrape history: scrape i happens at start + i·every and
// is the remote-write request requests[i].
type syntheticHistory struct {
	start time.Time
	every time.Duration
	// requests[i] is the remote-write request of scrape i.
	requests [][]prompb.TimeSeries
	// held[i] are the series of scrape i added while holding (see hold), which a test sends
	// separately, e.g. late; requests[i] does not include them.
	held [][]prompb.TimeSeries
	// samples[i] counts the samples of scrape i (requests[i] and held[i]), float and
	// histogram, stale markers included: what cardinal's receiver counts.
	samples []int
	// counters is the ledger of every counter sample, in push order.
	counters []counterSample

	holding bool
	last    map[string]float64 // per counter series (labelKey): its previous value; NaN when stale
}

// newSyntheticHistory starts an empty history whose first scrape is at start.
func newSyntheticHistory(start time.Time, every time.Duration) *syntheticHistory {
	return &syntheticHistory{start: start, every: every, last: map[string]float64{}}
}

// at is the time of scrape i.
func (h *syntheticHistory) at(i int) time.Time { return h.start.Add(time.Duration(i) * h.every) }

// steps is the number of scrapes.
func (h *syntheticHistory) steps() int { return len(h.requests) }

// lastScrape is the time of the last scrape.
func (h *syntheticHistory) lastScrape() time.Time { return h.at(h.steps() - 1) }

// scrape begins the request of the next scrape; the samples added next belong to it.
func (h *syntheticHistory) scrape() {
	h.requests = append(h.requests, nil)
	h.held = append(h.held, nil)
	h.samples = append(h.samples, 0)
	h.holding = false
}

// current is the index of the scrape being built and its timestamp in ms.
func (h *syntheticHistory) current() (int, int64) {
	i := h.steps() - 1
	return i, h.at(i).UnixMilli()
}

// hold makes the series added next to the current scrape go to held instead of requests,
// until hold(false) or the next scrape.
func (h *syntheticHistory) hold(on bool) { h.holding = on }

// add appends a series to the current scrape.
func (h *syntheticHistory) add(ts prompb.TimeSeries) {
	i, _ := h.current()
	if h.holding {
		h.held[i] = append(h.held[i], ts)
	} else {
		h.requests[i] = append(h.requests[i], ts)
	}
	h.samples[i] += len(ts.Samples) + len(ts.Histograms)
}

// sample adds one float sample of a series that no counter ledger needs (a gauge, a
// histogram bucket) to the current scrape.
func (h *syntheticHistory) sample(ls []prompb.Label, v float64) {
	_, ms := h.current()
	h.add(prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Timestamp: ms, Value: v}}})
}

// histogram adds one native histogram sample to the current scrape.
func (h *syntheticHistory) histogram(ls []prompb.Label, hist *histogram.Histogram) {
	_, ms := h.current()
	h.add(prompb.TimeSeries{Labels: ls, Histograms: []prompb.Histogram{prompb.FromIntHistogram(ms, hist)}})
}

// counter adds one counter sample (v may be staleMarker) to the current scrape and records
// the increase it adds to an aggregate of its series, as docs/design.md §3 defines it: nothing for
// the first sample of a series (its baseline) or for a stale marker (which ends the series,
// so that a later sample is a baseline again), v itself after a reset (v below the previous
// value), else v minus the previous value.
func (h *syntheticHistory) counter(ls []prompb.Label, v float64) {
	h.sample(ls, v)
	key := labelKey(ls)
	prev, seen := h.last[key]
	var inc float64
	switch {
	case math.IsNaN(v), !seen, math.IsNaN(prev):
	case v < prev:
		inc = v
	default:
		inc = v - prev
	}
	h.last[key] = v
	labels := make(map[string]string, len(ls))
	for _, l := range ls {
		labels[l.Name] = l.Value
	}
	i, ms := h.current()
	h.counters = append(h.counters, counterSample{labels: labels, step: i, t: ms, inc: inc})
}

// sum adds the increases of the counter samples keep selects.
func (h *syntheticHistory) sum(keep func(counterSample) bool) float64 {
	total := 0.0
	for _, s := range h.counters {
		if keep(s) {
			total += s.inc
		}
	}
	return total
}

// totalAt is an aggregated counter's expected value at window end w (ms): the increases of
// the input samples keep selects with a timestamp at or before w (windows are closed on the
// right).
func (h *syntheticHistory) totalAt(w int64, keep func(counterSample) bool) float64 {
	return h.sum(func(s counterSample) bool { return s.t <= w && keep(s) })
}

// countCounters counts the counter samples (stale markers included) keep selects.
func (h *syntheticHistory) countCounters(keep func(counterSample) bool) int {
	n := 0
	for _, s := range h.counters {
		if keep(s) {
			n++
		}
	}
	return n
}

// rawSeries is what a series forwarded unaggregated must hold downstream.
type rawSeries struct {
	count int
	sum   float64
}

// forwarded sums, per series (labelKey) of the metric, the float samples pushed: what a
// downstream must hold of a series cardinal forwards raw.
func (h *syntheticHistory) forwarded(metric string) map[string]rawSeries {
	out := map[string]rawSeries{}
	for i := range h.requests {
		for _, part := range [][]prompb.TimeSeries{h.requests[i], h.held[i]} {
			for _, ts := range part {
				if metricName(ts.Labels) != metric {
					continue
				}
				r := out[labelKey(ts.Labels)]
				for _, s := range ts.Samples {
					r.count++
					r.sum += s.Value
				}
				out[labelKey(ts.Labels)] = r
			}
		}
	}
	return out
}

// metricName is the __name__ of a label set.
func metricName(ls []prompb.Label) string {
	for _, l := range ls {
		if l.Name == "__name__" {
			return l.Value
		}
	}
	return ""
}

// ofMetric selects the counter samples of a metric whose labels include the pairs given.
func ofMetric(metric string, pairs ...string) func(counterSample) bool {
	return func(s counterSample) bool {
		if s.labels["__name__"] != metric {
			return false
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			if s.labels[pairs[i]] != pairs[i+1] {
				return false
			}
		}
		return true
	}
}
