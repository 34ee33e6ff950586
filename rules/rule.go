package rules

import (
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// Type is the kind of input a rule aggregates; it decides which outputs are valid.
type Type string

// The rule types of docs/design.md §3.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
	Summary   Type = "summary"
)

// MaxExemplars bounds a rule's exemplars: what each output series keeps per window.
const MaxExemplars = 100

// FirstSample says what the first sample of a new counter input series counts for.
type FirstSample string

const (
	// FirstSampleBaseline makes the first sample a baseline (increase 0), as PromQL does.
	FirstSampleBaseline FirstSample = "baseline"
	// FirstSampleCount counts the first sample's value as an increase for series that
	// appear after the rule has been running longer than its staleness period.
	FirstSampleCount FirstSample = "count"
)

// Rule is one validated, compiled aggregation rule: what it selects, how it groups and
// what it emits. A Rule is immutable once compiled; Fingerprint identifies its definition
// so a reload can keep the state of rules that did not change.
type Rule struct {
	// Name identifies the rule in logs, metrics and the status page.
	Name string
	// Source is "file:line" of the rule's definition.
	Source string
	// Type is counter, gauge, histogram or summary.
	Type Type

	// MetricNames are the exact input metric names the rule selects (for a histogram on base
	// x: x_bucket, x_sum, x_count; for a summary: x, x_sum, x_count). Empty when the selector
	// has no exact name (a regexp on __name__), in which case Matchers decide alone.
	MetricNames []string
	// BaseName is the metric name the output names derive from (x for histograms and
	// summaries, the metric name for counters and gauges, "" for name-regexp rules).
	BaseName string
	// Matchers are the selector's label matchers other than an exact __name__ match.
	Matchers []*Matcher

	// Without lists labels to drop (drop_labels/without); By lists labels to keep
	// (keep_labels/by). Exactly one mode is in effect: By is used when ByMode is true.
	// Both lists are sorted. __name__ is always kept, and le is never dropped for histograms.
	Without []string
	By      []string
	ByMode  bool

	// Outputs are the output kinds, validated against Type (counter: total, increase, rate;
	// gauge: sum, avg, min, max, count, last). Never empty after compilation.
	Outputs []string
	// OutputName renames the output metric ("" keeps the input name).
	OutputName string
	// AddLabels are added to every output series, sorted by name.
	AddLabels []prompb.Label
	// KeepInput forwards matched input series raw as well.
	KeepInput bool

	// Interval is the window length; FlushDelay how long after a window end it stays open
	// for late data (≤ Interval); Staleness how long an input lives without samples.
	Interval   time.Duration
	FlushDelay time.Duration
	Staleness  time.Duration
	// FirstSample is baseline (default) or count, for counters.
	FirstSample FirstSample

	// MaxInputSeries and MaxOutputSeries cap the rule's cardinality (0 = unlimited).
	MaxInputSeries  int
	MaxOutputSeries int
	// Exemplars is how many of the newest exemplars of its inputs each output series
	// carries per window; 0 drops them (counted).
	Exemplars int

	// HA, when set, makes the rule count the samples of one elected replica per Prometheus
	// HA group; the replica label never reaches an output.
	HA *HA

	// Fingerprint is a hash of every field that affects aggregation; two rules with the same
	// fingerprint aggregate identically.
	Fingerprint uint64
}

// MatchLabels reports whether the sorted label set satisfies every matcher of the rule.
func (r *Rule) MatchLabels(lbls []prompb.Label) bool {
	for _, m := range r.Matchers {
		if !m.Matches(labelValue(lbls, m.Name)) {
			return false
		}
	}
	return true
}

// labelValue returns the value of name in lbls, or "" when absent (as PromQL does).
func labelValue(lbls []prompb.Label, name string) string {
	for i := range lbls {
		if lbls[i].Name == name {
			return lbls[i].Value
		}
	}
	return ""
}
