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

	// CPU time grows by one second per second per CPU whatever the machine does, but how it
	// splits into modes depends on the load: on a busy machine idle hardly grows at all.
	// So every mode's aggregated increase over 45 s is compared with the raw per-CPU
	// increases within 15% of all the CPU time that passed (the raw sum over every mode),
	// for the different sample alignment (2 s windows vs 1 s scrapes) and extrapolation,
	// rather than 15% of the mode's own share, which may be next to nothing.
	at := time.Now().Add(-10 * time.Second)
	for _, p := range []*prometheusServer{downstream, reference} {
		eventually(t, 60*time.Second, "samples after the compared range in "+p.URL, func() (bool, error) {
			v := query(t, p.URL, `min(timestamp(node_cpu_seconds_total))`, time.Now())
			return v["{}"] >= float64(at.Unix()), fmt.Errorf("oldest newest sample at %v", v)
		})
	}
	got := query(t, downstream.URL, `increase(node_cpu_seconds_total[45s])`, at)
	want := query(t, reference.URL, `sum without (cpu, instance) (increase(node_cpu_seconds_total[45s]))`, at)
	cpuTime := query(t, reference.URL, `sum(increase(node_cpu_seconds_total[45s]))`, at)["{}"]
	if cpuTime <= 0 || len(want) == 0 {
		t.Fatalf("raw CPU time over 45s: %v in all, by mode %v", cpuTime, want)
	}
	if len(got) != len(want) {
		t.Errorf("increase by mode: aggregated %v, raw %v", got, want)
	}
	gotTime := 0.0
	for key, w := range want {
		g, ok := got[key]
		if !ok {
			t.Errorf("%s: no aggregated increase (aggregated: %v)", key, keys(got))
			continue
		}
		gotTime += g
		if math.Abs(g-w) > 0.15*cpuTime {
			t.Errorf("%s: CPU increase over 45s: aggregated %.3f, raw %.3f, more than 15%% of the %.3f CPU seconds that passed apart", key, g, w, cpuTime)
		}
	}
	if math.Abs(gotTime-cpuTime) > 0.15*cpuTime {
		t.Errorf("CPU time over 45s, all modes: aggregated %.3f, raw %.3f", gotTime, cpuTime)
	}
	t.Logf("CPU time over 45s: aggregated %.3f, raw %.3f; idle: aggregated %.3f, raw %.3f", gotTime, cpuTime,
		got[`{job="node", mode="idle"}`], want[`{job="node", mode="idle"}`])
}
