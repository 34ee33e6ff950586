package e2e

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// TestRealClient_agent_through_cardinal runs the deployment shape cardinal exists for: a
// Prometheus agent scrapes node_exporter and remote-writes to cardinal, which drops the cpu
// label and writes one series per mode downstream. The same agent also writes raw to a
// reference Prometheus, so the aggregate can be checked against the raw data.
func TestRealClient_agent_through_cardinal(t *testing.T) {
	downstream := startPrometheus(t, prometheusOptions{})
	reference := startPrometheus(t, prometheusOptions{})
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 2s
  flush_delay: 1s
  unmatched: drop
downstream:
  remote_write:
    - url: %s
rules:
  - metric_name: node_cpu_seconds_total
    type: counter
    drop_labels: [cpu, instance]
`, downstream.WriteURL))
	node := startNodeExporter(t)
	startPrometheus(t, prometheusOptions{
		Agent:       true,
		Scrape:      map[string][]string{"node": {node.Addr}},
		RemoteWrite: []string{card.WriteURL, reference.WriteURL},
	})

	// Wait until the aggregate has been flowing for a while.
	var agg map[string]float64
	eventually(t, 90*time.Second, "aggregated node_cpu_seconds_total downstream", func() (bool, error) {
		agg = query(t, downstream.URL, `count_over_time(node_cpu_seconds_total[1m])`, time.Now())
		for _, n := range agg {
			if n >= 24 {
				return true, nil
			}
		}
		return false, nil
	})
	modes := query(t, reference.URL, `count by (mode) (node_cpu_seconds_total)`, time.Now())
	if len(agg) != len(modes) {
		t.Errorf("aggregated series: %d (%v), want one per mode: %d (%v)", len(agg), keys(agg), len(modes), keys(modes))
	}
	for key := range agg {
		if strings.Contains(key, "cpu=") || strings.Contains(key, "instance=") {
			t.Errorf("aggregated series %s still carries a dropped label", key)
		}
		if !strings.Contains(key, `job="node"`) || !strings.Contains(key, "mode=") {
			t.Errorf("aggregated series %s lost a kept label", key)
		}
	}
	if n := query(t, downstream.URL, `count({__name__=~"node_.+", __name__!="node_cpu_seconds_total"})`, time.Now()); len(n) != 0 {
		t.Errorf("unmatched series were forwarded despite unmatched: drop: %v", n)
	}

	// Idle CPU time grows about one second per second per CPU: compare the aggregate's
	// increase with the raw per-CPU increases over the same 45 s.
	at := time.Now().Add(-10 * time.Second)
	got := query(t, downstream.URL, `increase(node_cpu_seconds_total{mode="idle"}[45s])`, at)
	want := query(t, reference.URL, `sum without (cpu, instance) (increase(node_cpu_seconds_total{mode="idle"}[45s]))`, at)
	if len(got) != 1 || len(want) != 1 {
		t.Fatalf("idle increase: aggregated %v, raw %v", got, want)
	}
	for _, g := range got {
		for _, w := range want {
			// Different sample alignment (2 s windows vs 1 s scrapes) and extrapolation: 15%.
			if w <= 0 || math.Abs(g-w)/w > 0.15 {
				t.Errorf("idle CPU increase over 45s: aggregated %.2f, raw %.2f", g, w)
			}
			t.Logf("idle CPU increase over 45s: aggregated %.3f, raw %.3f", g, w)
		}
	}
}
