package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestPrometheusHarness_agent_forwards_node_exporter_scrapes runs the pipeline the cardinal
// tests build on: node_exporter, scraped every second by a Prometheus agent, remote-written
// into a second Prometheus. It proves startNodeExporter, agent mode and remote_write wiring.
func TestPrometheusHarness_agent_forwards_node_exporter_scrapes(t *testing.T) {
	receiver := startPrometheus(t, prometheusOptions{})
	node := startNodeExporter(t)
	startPrometheus(t, prometheusOptions{
		Agent:       true,
		Scrape:      map[string][]string{"node": {node.Addr}},
		RemoteWrite: []string{receiver.WriteURL},
	})

	// Scraped series and the agent's own up series travel in separate batches: wait for both.
	var got, up map[string]float64
	eventually(t, 60*time.Second, "node_cpu_seconds_total and up at the receiver", func() (bool, error) {
		got = query(t, receiver.URL, `node_cpu_seconds_total{job="node"}`, time.Now())
		up = query(t, receiver.URL, `up{job="node"}`, time.Now())
		return len(got) > 0 && len(up) > 0, nil
	})
	idle := 0
	for key, v := range got {
		if !strings.Contains(key, `instance="`+node.Addr+`"`) {
			t.Errorf("series %s does not carry the scrape target's instance %s", key, node.Addr)
		}
		if v < 0 {
			t.Errorf("series %s = %v, want a non-negative CPU time", key, v)
		}
		if strings.Contains(key, `mode="idle"`) {
			idle++
		}
	}
	if idle == 0 {
		t.Errorf("no mode=\"idle\" series among %d: %v", len(got), keys(got))
	}
	if len(up) != 1 {
		t.Fatalf("up{job=\"node\"} = %v, want one series", up)
	}
	for key, v := range up {
		if v != 1 {
			t.Errorf("%s = %v, want 1", key, v)
		}
	}
}
