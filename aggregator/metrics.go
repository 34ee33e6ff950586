package aggregator

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the aggregator's per-rule counters, read from the shard state at scrape
// time so the hot path does no metric bookkeeping of its own.
type collector struct {
	a                                                  *Aggregator
	inputs, outputs, samples, dropped, resets, flushed *prometheus.Desc
	lastFlush, flushDur, flushHold                     *prometheus.Desc
	interval, maxInputs, maxOutputs                    *prometheus.Desc
	forwarded, unmatchedDropped                        *prometheus.Desc
	notOwned, peerUnmatched                            *prometheus.Desc
	haDeduplicated, haUnnamed                          *prometheus.Desc
	haElected, haNewest, haFailovers                   *prometheus.Desc
	typeMismatches                                     *prometheus.Desc
	exemplarsDropped                                   *prometheus.Desc
	late                                               *prometheus.Desc
}

// Collector returns a prometheus.Collector for the aggregator's self-metrics.
func (a *Aggregator) Collector() prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("cardinal_aggregator_"+name, help, labels, nil)
	}
	return &collector{
		a:                a,
		inputs:           d("input_series", "Live input series per rule.", "rule"),
		outputs:          d("output_series", "Live output series per rule.", "rule"),
		samples:          d("samples_total", "Samples aggregated per rule.", "rule"),
		dropped:          d("samples_dropped_total", "Samples a rule did not count, by reason (duplicate, late, nan, future, unaggregatable, limit).", "rule", "reason"),
		resets:           d("counter_resets_total", "Counter resets seen in input series per rule.", "rule"),
		flushed:          d("series_flushed_total", "Output samples emitted per rule.", "rule"),
		lastFlush:        d("last_flush_timestamp_seconds", "Wall clock of the rule's last flush that closed a window.", "rule"),
		flushDur:         d("last_flush_duration_seconds", "Duration of the rule's last flush.", "rule"),
		flushHold:        d("last_flush_max_lock_hold_seconds", "Longest time the rule's last flush held one shard lock: the most it can have delayed a request.", "rule"),
		interval:         d("interval_seconds", "The rule's window length: a flush closes one window per interval, so a flush must take less.", "rule"),
		maxInputs:        d("max_input_series", "The rule's max_input_series; absent when unlimited. New input series over it are dropped (reason limit).", "rule"),
		maxOutputs:       d("max_output_series", "The rule's max_output_series; absent when unlimited. New output series over it are dropped (reason limit).", "rule"),
		forwarded:        d("forwarded_series_total", "Series forwarded raw (unmatched, or keep_input)."),
		unmatchedDropped: d("unmatched_samples_dropped_total", "Samples of series that matched no rule, dropped (unmatched: drop)."),
		notOwned:         d("peer_samples_not_owned_total", "Samples forwarded by a peer for a rule whose output another member owns by the sender's ring: aggregated there, not here.", "rule"),
		peerUnmatched:    d("peer_unmatched_samples_total", "Samples forwarded by a peer that match no rule here: the members' rules differ."),
		late:             d("samples_late_total", "Samples of counter inputs (classic or native) for a window already closed (later than flush_delay): their increase is counted in the oldest open window instead of their own. Gauge samples that late are dropped (samples_dropped_total, reason late).", "rule"),
		exemplarsDropped: d("exemplars_dropped_total", "Exemplars of series the rule selects that no output carries on: the rule keeps none (exemplars: 0, the default), or more came for an output in one window than it keeps (the oldest go).", "rule"),
		typeMismatches:   d("metadata_type_mismatches_total", "Metadata from agents that declares a metric the rule selects a gauge when the rule counts (counter, histogram, summary), or a counter-like type when the rule is a gauge rule. The first is logged.", "rule"),
		haDeduplicated: prometheus.NewDesc("cardinal_ha_samples_deduplicated_total",
			"Samples of a Prometheus HA replica that is not the elected one of its group, not counted by the rule (answered 2xx).", []string{"rule"}, nil),
		haUnnamed: prometheus.NewDesc("cardinal_ha_samples_without_replica_total",
			"Samples of a rule with ha whose series carry no replica label: counted as without ha.", []string{"rule"}, nil),
		haElected: prometheus.NewDesc("cardinal_ha_elected_replica",
			"The elected replica of each Prometheus HA group (1 per group): only its samples are counted.", []string{"group_label", "replica_label", "group", "replica"}, nil),
		haNewest: prometheus.NewDesc("cardinal_ha_elected_newest_sample_timestamp_seconds",
			"Timestamp of the newest sample counted from the elected replica of each HA group.", []string{"group_label", "replica_label", "group"}, nil),
		haFailovers: prometheus.NewDesc("cardinal_ha_failovers_total",
			"Elections of another replica after the elected one fell failover_timeout behind, per HA group.", []string{"group_label", "replica_label", "group"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.inputs, c.outputs, c.samples, c.dropped, c.resets, c.flushed, c.lastFlush, c.flushDur, c.flushHold, c.interval, c.maxInputs, c.maxOutputs, c.forwarded, c.unmatchedDropped, c.notOwned, c.peerUnmatched, c.haDeduplicated, c.haUnnamed, c.haElected, c.haNewest, c.haFailovers, c.typeMismatches, c.exemplarsDropped, c.late} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.a.Stats() {
		ch <- prometheus.MustNewConstMetric(c.inputs, prometheus.GaugeValue, float64(s.InputSeries), s.Name)
		ch <- prometheus.MustNewConstMetric(c.outputs, prometheus.GaugeValue, float64(s.OutputSeries), s.Name)
		ch <- prometheus.MustNewConstMetric(c.samples, prometheus.CounterValue, float64(s.Samples), s.Name)
		for reason, n := range s.Dropped {
			ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), s.Name, reason)
		}
		ch <- prometheus.MustNewConstMetric(c.resets, prometheus.CounterValue, float64(s.CounterResets), s.Name)
		ch <- prometheus.MustNewConstMetric(c.flushed, prometheus.CounterValue, float64(s.SeriesFlushed), s.Name)
		if !s.LastFlush.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastFlush, prometheus.GaugeValue, float64(s.LastFlush.UnixMilli())/1000, s.Name)
		}
		ch <- prometheus.MustNewConstMetric(c.flushDur, prometheus.GaugeValue, s.LastFlushDuration.Seconds(), s.Name)
		ch <- prometheus.MustNewConstMetric(c.flushHold, prometheus.GaugeValue, s.LastFlushMaxLockHold.Seconds(), s.Name)
		ch <- prometheus.MustNewConstMetric(c.notOwned, prometheus.CounterValue, float64(s.NotOwned), s.Name)
		ch <- prometheus.MustNewConstMetric(c.typeMismatches, prometheus.CounterValue, float64(s.TypeMismatches), s.Name)
		ch <- prometheus.MustNewConstMetric(c.exemplarsDropped, prometheus.CounterValue, float64(s.ExemplarsDropped), s.Name)
		ch <- prometheus.MustNewConstMetric(c.late, prometheus.CounterValue, float64(s.LateCounted), s.Name)
		ch <- prometheus.MustNewConstMetric(c.interval, prometheus.GaugeValue, s.Interval.Seconds(), s.Name)
		if s.HA != nil {
			ch <- prometheus.MustNewConstMetric(c.haDeduplicated, prometheus.CounterValue, float64(s.HADeduplicated), s.Name)
			ch <- prometheus.MustNewConstMetric(c.haUnnamed, prometheus.CounterValue, float64(s.HAUnnamed), s.Name)
		}
		if s.MaxInputSeries > 0 {
			ch <- prometheus.MustNewConstMetric(c.maxInputs, prometheus.GaugeValue, float64(s.MaxInputSeries), s.Name)
		}
		if s.MaxOutputSeries > 0 {
			ch <- prometheus.MustNewConstMetric(c.maxOutputs, prometheus.GaugeValue, float64(s.MaxOutputSeries), s.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.forwarded, prometheus.CounterValue, float64(c.a.forwarded.Load()))
	ch <- prometheus.MustNewConstMetric(c.unmatchedDropped, prometheus.CounterValue, float64(c.a.unmatchedDropped.Load()))
	ch <- prometheus.MustNewConstMetric(c.peerUnmatched, prometheus.CounterValue, float64(c.a.peerUnmatched.Load()))
	for _, g := range c.a.HAGroups() {
		ch <- prometheus.MustNewConstMetric(c.haElected, prometheus.GaugeValue, 1, g.GroupLabel, g.ReplicaLabel, g.Group, g.Elected)
		ch <- prometheus.MustNewConstMetric(c.haNewest, prometheus.GaugeValue, float64(g.Newest.UnixMilli())/1000, g.GroupLabel, g.ReplicaLabel, g.Group)
		ch <- prometheus.MustNewConstMetric(c.haFailovers, prometheus.CounterValue, float64(g.Failovers), g.GroupLabel, g.ReplicaLabel, g.Group)
	}
}
