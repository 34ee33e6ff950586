package explore

import (
	"cmp"
	"slices"
	"time"
)

// Result is what one scan found: the JSON of the API and the input of `cardinal suggest`.
type Result struct {
	// Started and Ended bound the scan; Complete is false for a scan still running, whose
	// figures are counts so far without per-label estimates.
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
	Complete bool      `json:"complete"`
	// Series and Samples count everything the scan saw, in all metrics.
	Series           uint64  `json:"series"`
	Samples          uint64  `json:"samples"`
	SamplesPerSecond float64 `json:"samples_per_second"`
	// Metrics are sorted by series, most first.
	Metrics []Metric `json:"metrics"`
	// MetricsTotal is the number of metric names seen; Metrics may hold fewer (a limit).
	MetricsTotal int `json:"metrics_total"`
	// ShedMetrics lost their per-label detail to the memory budget; Untracked counts the
	// series and samples of metrics the budget could not hold even by name.
	ShedMetrics      int    `json:"shed_metrics"`
	UntrackedSeries  uint64 `json:"untracked_series"`
	UntrackedSamples uint64 `json:"untracked_samples"`
	// MemoryBytes is what the scan's sketches were charged, at most BudgetBytes.
	MemoryBytes int64 `json:"memory_bytes"`
	BudgetBytes int64 `json:"budget_bytes"`
}

// Metric is one metric name of a scan.
type Metric struct {
	Name string `json:"name"`
	// Type is what the agents' metadata says of the metric's family (counter, gauge,
	// histogram, summary, ...), "" when none came.
	Type             string  `json:"type,omitempty"`
	Series           uint64  `json:"series"`
	SamplesPerSecond float64 `json:"samples_per_second"`
	// Detailed is false when only the counts were kept (memory budget, or a scan in
	// progress): Labels and Drops are then empty.
	Detailed bool `json:"detailed"`
	// Labels are ranked by what dropping each alone saves, most first.
	Labels []Label `json:"labels,omitempty"`
	// Drops are cumulative: the series left after dropping the first label, the first two,
	// and so on, in the order of the previous scan's ranking (empty in a metric's first
	// scan). `cardinal suggest` picks its drop lists from them.
	Drops []Drop `json:"drops,omitempty"`
	// Rules are the rules that already select this metric, with what they achieve.
	Rules []RuleCoverage `json:"rules,omitempty"`
}

// Label is one label of a metric.
type Label struct {
	Name string `json:"name"`
	// Values is the label's distinct values; Series the series that carry it.
	Values uint64 `json:"values"`
	Series uint64 `json:"series"`
	// SeriesWithout is the series that remain when the label is dropped, and Reduction
	// the metric's series divided by that.
	SeriesWithout uint64  `json:"series_without"`
	Reduction     float64 `json:"reduction"`
}

// Drop is the series left after dropping Labels together.
type Drop struct {
	Labels    []string `json:"labels"`
	Series    uint64   `json:"series"`
	Reduction float64  `json:"reduction"`
}

// RuleCoverage is a rule that selects a metric, and its actual series in and out.
type RuleCoverage struct {
	Rule         string  `json:"rule"`
	InputSeries  int64   `json:"input_series"`
	OutputSeries int64   `json:"output_series"`
	Reduction    float64 `json:"reduction"`
}

// chainOrder is the order in which a scan drops the metric's labels one after another: the
// most distinct values first (pod and instance before job and code), leaving out le, which a
// histogram rule keeps, and labels with one value, whose dropping saves nothing.
func (m *Metric) chainOrder() []string {
	ranked := slices.Clone(m.Labels)
	slices.SortStableFunc(ranked, func(a, b Label) int { return cmp.Compare(b.Values, a.Values) })
	var order []string
	for _, l := range ranked {
		if l.Name != "le" && l.Values > 1 {
			order = append(order, l.Name)
		}
	}
	return order
}

// reduction is before/after, 0 when after is 0.
func reduction(before, after uint64) float64 {
	if after == 0 {
		return 0
	}
	return float64(before) / float64(after)
}

// result summarises the scan, ended at end. Per-label estimates are read only from a
// complete scan: estimating compacts sparse sketches, which is no work for a running one.
func (s *scan) result(end time.Time, complete bool) Result {
	r := Result{
		Started: s.started, Ended: end, Complete: complete,
		Series: s.series, Samples: s.samples.Load(),
		MetricsTotal: len(s.metrics), ShedMetrics: s.shed,
		UntrackedSeries: s.other.series, UntrackedSamples: s.other.samples,
		MemoryBytes: s.charged, BudgetBytes: s.budget,
	}
	secs := end.Sub(s.started).Seconds()
	if secs > 0 {
		r.SamplesPerSecond = float64(r.Samples) / secs
	}
	r.Metrics = make([]Metric, 0, len(s.metrics))
	for _, ms := range s.metrics {
		m := Metric{Name: ms.name, Series: ms.series}
		if secs > 0 {
			m.SamplesPerSecond = float64(ms.samples.Load()) / secs
		}
		if complete && ms.detail != nil {
			m.Detailed = true
			m.Labels, m.Drops = ms.detail.estimates(ms.series)
		}
		r.Metrics = append(r.Metrics, m)
	}
	slices.SortFunc(r.Metrics, func(a, b Metric) int {
		return cmp.Or(cmp.Compare(b.Series, a.Series), cmp.Compare(a.Name, b.Name))
	})
	return r
}

// estimates reads the detail's sketches for a metric of series series.
func (d *detail) estimates(series uint64) ([]Label, []Drop) {
	labels := make([]Label, 0, len(d.labels))
	for _, ls := range d.labels {
		without := max(ls.without.estimate(series), 1)
		labels = append(labels, Label{
			Name: ls.name, Values: ls.values.estimate(ls.series), Series: ls.series,
			SeriesWithout: without, Reduction: reduction(series, without),
		})
	}
	slices.SortFunc(labels, func(a, b Label) int {
		return cmp.Or(cmp.Compare(a.SeriesWithout, b.SeriesWithout), cmp.Compare(b.Values, a.Values), cmp.Compare(a.Name, b.Name))
	})
	var drops []Drop
	names := make([]string, 0, len(d.chain))
	limit := series
	for i, ls := range d.chain {
		names = append(names, ls.name)
		left := max(d.prefix[i].estimate(limit), 1)
		limit = left // dropping more labels never adds series
		drops = append(drops, Drop{Labels: slices.Clone(names), Series: left, Reduction: reduction(series, left)})
	}
	return labels, drops
}
