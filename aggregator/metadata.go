package aggregator

import (
	"github.com/prometheus/prometheus/prompb"
)

// metadataFamilySuffixes are what a metric family's samples add to its name: a rule selects
// the samples, metadata names the family (http_requests, or http_requests_total as the
// Prometheus text format writes it).
var metadataFamilySuffixes = []string{"", "_total", "_bucket", "_sum", "_count"}

// CheckMetadata reads the metadata agents declare for their metrics (remote-write metadata:
// 1.0's metadata messages, 2.0's inline metadata) for the rules that select those metrics by
// name. It keeps the type, unit and help for the outputs those rules make of them (see
// MetadataOf), and compares the declared type with the rule's: a rule with counter semantics (counter, histogram, summary) on a metric declared a
// gauge (or gauge histogram), or a gauge rule on one declared a counter, histogram or
// summary, aggregates with the wrong arithmetic: each such declaration is counted for the
// rule (cardinal_aggregator_metadata_type_mismatches_total) and the first one is logged. A
// metric of unknown, info or stateset type, and a rule that selects by a regular expression
// on the name, are not judged.
func (a *Aggregator) CheckMetadata(md []prompb.MetricMetadata) {
	if len(md) == 0 {
		return
	}
	idx := a.index.Load()
	now := a.opts.Now()
	for i := range md {
		m := &md[i]
		var counterLike, judged bool
		switch m.Type {
		case prompb.MetricMetadata_COUNTER, prompb.MetricMetadata_HISTOGRAM, prompb.MetricMetadata_SUMMARY:
			counterLike, judged = true, true
		case prompb.MetricMetadata_GAUGE, prompb.MetricMetadata_GAUGEHISTOGRAM:
			judged = true
		}
		var seen []*ruleState
		for _, suffix := range metadataFamilySuffixes {
			name := m.MetricFamilyName + suffix
			for _, r := range idx.byName.lookup(name) {
				a.outMeta.record(r, name, m, now)
				if !judged || r.counter == counterLike || containsRule(seen, r) {
					continue
				}
				seen = append(seen, r)
				r.typeMismatches.Add(1)
				if r.typeMismatchLogged.CompareAndSwap(false, true) {
					a.opts.Logger.Warn(r.describe()+": its type disagrees with the type agents declare for the metric; it aggregates with the wrong arithmetic",
						"rule", r.rule.Name, "source", r.rule.Source, "rule_type", string(r.rule.Type),
						"metric", m.MetricFamilyName, "declared_type", metadataTypeName(m.Type))
				}
			}
		}
	}
}

func containsRule(rs []*ruleState, r *ruleState) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// metadataTypeName is the type as the Prometheus exposition formats write it.
func metadataTypeName(t prompb.MetricMetadata_MetricType) string {
	switch t {
	case prompb.MetricMetadata_COUNTER:
		return "counter"
	case prompb.MetricMetadata_GAUGE:
		return "gauge"
	case prompb.MetricMetadata_HISTOGRAM:
		return "histogram"
	case prompb.MetricMetadata_GAUGEHISTOGRAM:
		return "gaugehistogram"
	case prompb.MetricMetadata_SUMMARY:
		return "summary"
	}
	return "unknown"
}
