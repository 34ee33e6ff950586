package hashring

import "github.com/prometheus/client_golang/prometheus"

// collector turns a Membership's Stats into cardinal_cluster_* metrics at each scrape.
type collector struct {
	m     *Membership
	descs map[string]*prometheus.Desc
}

// metricHelp lists the metrics and their help texts.
func metricHelp() []struct{ name, help string } {
	return []struct{ name, help string }{
		{"cardinal_cluster_refreshes_total", "Membership refresh rounds (discovery and probing of every peer)."},
		{"cardinal_cluster_refresh_failures_total", "Refresh rounds in which a discovery source failed, or that were cut short; such a round changes no member."},
		{"cardinal_cluster_probes_total", "Identity probes of discovered peers."},
		{"cardinal_cluster_probe_failures_total", "Identity probes that got no valid answer (error, timeout, bad status or body)."},
		{"cardinal_cluster_probes_not_ready_total", "Identity probes answered by a peer that is not ready."},
		{"cardinal_cluster_peer_name_mismatches_total", "Probes of a peer listed as name=host:port that answered with another name."},
		{"cardinal_cluster_name_collisions_total", "Probes answered with this member's name by another process: two members configured with one name, which each run alone and write the same outputs."},
		{"cardinal_cluster_joins_total", "Peers that joined the ring."},
		{"cardinal_cluster_leaves_total", "Members that left the ring after leave_after unseen."},
		{"cardinal_cluster_address_changes_total", "Members that answered at a new address (the ring is unchanged)."},
		{"cardinal_cluster_members", "Members of the ring, this one included."},
		{"cardinal_cluster_candidates", "Peers answering ready that wait join_after before joining."},
		{"cardinal_cluster_last_refresh_success_timestamp_seconds", "Unix time of the last successful refresh round; 0 before the first."},
		{"cardinal_cluster_discovery_skipped_records_total", "Records a discovery left out as unusable (an SRV record of port 0 or target \".\"); the round goes on with the others."},
	}
}

// Collector returns a prometheus.Collector of the membership's metrics, for the server to
// register on its registry.
func (m *Membership) Collector() prometheus.Collector {
	c := &collector{m: m, descs: map[string]*prometheus.Desc{}}
	for _, mh := range metricHelp() {
		c.descs[mh.name] = prometheus.NewDesc(mh.name, mh.help, nil, nil)
	}
	return c
}

// Describe sends every metric's description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect sends the metrics of one Stats snapshot.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Stats()
	counter := func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v))
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v)
	}
	counter("cardinal_cluster_refreshes_total", s.Rounds)
	counter("cardinal_cluster_refresh_failures_total", s.FailedRounds)
	counter("cardinal_cluster_probes_total", s.Probes)
	counter("cardinal_cluster_probe_failures_total", s.ProbeFailures)
	counter("cardinal_cluster_probes_not_ready_total", s.NotReady)
	counter("cardinal_cluster_peer_name_mismatches_total", s.NameMismatches)
	counter("cardinal_cluster_name_collisions_total", s.NameCollisions)
	counter("cardinal_cluster_joins_total", s.Joins)
	counter("cardinal_cluster_leaves_total", s.Leaves)
	counter("cardinal_cluster_address_changes_total", s.AddressChanges)
	counter("cardinal_cluster_discovery_skipped_records_total", s.SkippedRecords)
	gauge("cardinal_cluster_members", float64(s.Members))
	gauge("cardinal_cluster_candidates", float64(s.Candidates))
	last := 0.0
	if !s.LastSuccess.IsZero() {
		last = float64(s.LastSuccess.UnixNano()) / 1e9
	}
	gauge("cardinal_cluster_last_refresh_success_timestamp_seconds", last)
}
