package e2e

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// linearTarget serves counters that grow at fixed rates from the moment it starts, so that
// whoever scrapes it, and whenever, reads the same counter: ha_requests_total{path} grows by
// scale×3 per second on /a and scale×5 on /b.
func linearTarget(t *testing.T, scale float64) string {
	t.Helper()
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s := time.Since(start).Seconds()
		fmt.Fprintf(w, "# TYPE ha_requests_total counter\nha_requests_total{path=\"/a\"} %g\nha_requests_total{path=\"/b\"} %g\n", 3*scale*s, 5*scale*s)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestHA_pair_of_agents_counted_once_through_failover runs a Prometheus HA pair as
// kube-prometheus does: two agents (Debian's prometheus in agent mode) scrape the same two
// targets and remote-write everything, with external labels prometheus (the group) and
// prometheus_replica. cardinal, with ha on those labels, drops the instance label. The
// elected agent is stopped mid-run and later restarted. Throughout, the aggregated rate must
// equal what a raw Prometheus fed by both agents gives with max without (prometheus_replica),
// never twice it; the counters never reset; and the dedup and failover metrics say what
// happened.
func TestHA_pair_of_agents_counted_once_through_failover(t *testing.T) {
	downstream := startPrometheus(t, prometheusOptions{})
	reference := startPrometheus(t, prometheusOptions{})
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 5s
  flush_delay: 2s
  unmatched: drop
  ha:
    enabled: true
    group_label: prometheus
    replica_label: prometheus_replica
    failover_timeout: 5s
downstream:
  remote_write:
    - url: %s
rules:
  - metric_name: ha_requests_total
    type: counter
    drop_labels: [instance]
`, downstream.WriteURL))
	targets := []string{linearTarget(t, 1), linearTarget(t, 2)}
	agents := map[string]*prometheusServer{}
	for _, replica := range []string{"a", "b"} {
		agents[replica] = startPrometheus(t, prometheusOptions{
			Agent:          true,
			Scrape:         map[string][]string{"app": targets},
			RemoteWrite:    []string{card.WriteURL, reference.WriteURL},
			ExternalLabels: map[string]string{"prometheus": "monitoring/k8s", "prometheus_replica": replica},
		})
	}
	start := time.Now()
	metric := func(name string, pairs ...string) (float64, int) {
		return metricValue(scrapeCardinal(t, card.URL), name, pairs...)
	}
	electedReplica := func() string {
		for _, m := range scrapeCardinal(t, card.URL) {
			if m.Name == "cardinal_ha_elected_replica" && m.Labels["group"] == "monitoring/k8s" {
				return m.Labels["replica"]
			}
		}
		return ""
	}

	// Both replicas write; one is elected, the other's samples are deduplicated.
	eventually(t, 90*time.Second, "30 s of aggregated output", func() (bool, error) {
		n := query(t, downstream.URL, `count_over_time(ha_requests_total[40s])`, time.Now())
		for _, c := range n {
			if c >= 7 {
				return true, nil
			}
		}
		return false, fmt.Errorf("windows per series: %v", n)
	})
	first := electedReplica()
	other := map[string]string{"a": "b", "b": "a"}[first]
	if first == "" {
		t.Fatal("no elected replica in cardinal_ha_elected_replica")
	}
	if d, _ := metric("cardinal_ha_samples_deduplicated_total", "rule", "ha_requests_total"); d == 0 {
		t.Errorf("replica %s elected but nothing deduplicated", first)
	}

	// The elected agent stops; the other takes over after failover_timeout.
	stopped := time.Now()
	agents[first].Stop()
	eventually(t, 60*time.Second, "replica "+other+" elected", func() (bool, error) {
		f, _ := metric("cardinal_ha_failovers_total", "group", "monitoring/k8s")
		return electedReplica() == other && f == 1, fmt.Errorf("elected %q after %v failovers", electedReplica(), f)
	})
	t.Logf("replica %s stopped; %s elected %s later", first, other, time.Since(stopped).Round(time.Second))
	time.Sleep(30*time.Second - time.Since(stopped))

	// The stopped agent comes back: it is not elected again, its samples are deduplicated.
	agents[first].Start()
	restarted := time.Now()
	dedupAtRestart, _ := metric("cardinal_ha_samples_deduplicated_total", "rule", "ha_requests_total")
	time.Sleep(30 * time.Second)
	if e := electedReplica(); e != other {
		t.Errorf("elected %q after %s came back, want %s to stay", e, first, other)
	}
	if f, _ := metric("cardinal_ha_failovers_total", "group", "monitoring/k8s"); f != 1 {
		t.Errorf("%v failovers, want 1", f)
	}
	if d, _ := metric("cardinal_ha_samples_deduplicated_total", "rule", "ha_requests_total"); d <= dedupAtRestart {
		t.Errorf("deduplicated %v at the restart and %v 30 s later: the restarted replica's samples were not deduplicated", dedupAtRestart, d)
	}
	if n, _ := metric("cardinal_ha_samples_without_replica_total", "rule", "ha_requests_total"); n != 0 {
		t.Errorf("%v samples without a replica label, want 0", n)
	}

	// Compare the whole run, each 5 s, once both Prometheus servers have it.
	end := time.Now().Add(-10 * time.Second)
	for _, p := range []*prometheusServer{downstream, reference} {
		eventually(t, 60*time.Second, "samples past the compared range in "+p.URL, func() (bool, error) {
			v := query(t, p.URL, `min(timestamp(ha_requests_total))`, time.Now())
			return v["{}"] >= float64(end.Unix()), fmt.Errorf("oldest newest sample at %v", v)
		})
	}
	from := start.Add(40 * time.Second)
	agg := queryRange(t, downstream.URL, `rate(ha_requests_total[30s])`, from, end, 5*time.Second)
	raw := queryRange(t, reference.URL, `sum without (instance) (max without (prometheus_replica) (rate(ha_requests_total[30s])))`, from, end, 5*time.Second)
	if len(agg) != 2 || len(raw) != 2 {
		t.Fatalf("aggregated series %v, raw %v: want one per path each", keys(agg), keys(raw))
	}
	// The failover leaves the aggregate without samples for failover_timeout plus a
	// window; the rate over 30 s ranges that end in that gap miss that stretch (the
	// increase is counted once the other replica takes over).
	gapFrom, gapTo := stopped, stopped.Add(5*time.Second+2*5*time.Second+30*time.Second)
	worst, worstGap := 0.0, 0.0
	for key, want := range raw {
		got := map[int64]float64{}
		for _, p := range agg[key] {
			got[p.T] = p.V
		}
		compared := 0
		for _, w := range want {
			g, ok := got[w.T]
			if !ok {
				continue
			}
			compared++
			at := time.UnixMilli(w.T)
			d := (g - w.V) / w.V
			if g > 1.1*w.V {
				t.Errorf("%s at %s: aggregated rate %.3f is over the single-replica rate %.3f", key, at.Format(time.TimeOnly), g, w.V)
			}
			if at.After(gapFrom) && at.Before(gapTo) {
				worstGap = math.Max(worstGap, math.Abs(d))
				continue
			}
			worst = math.Max(worst, math.Abs(d))
			if math.Abs(d) > 0.05 {
				t.Errorf("%s at %s: aggregated rate %.3f, raw max without (prometheus_replica) %.3f: %.1f%% apart", key, at.Format(time.TimeOnly), g, w.V, 100*d)
			}
		}
		if compared < len(want)*3/4 {
			t.Errorf("%s: only %d of %d points have an aggregated value", key, compared, len(want))
		}
	}
	t.Logf("aggregated vs raw rate: worst %.2f%% apart outside the failover, %.2f%% within it", 100*worst, 100*worstGap)

	// Across the failover, the increase is the counters' own: no reset, no jump.
	for key, v := range query(t, downstream.URL, fmt.Sprintf(`resets(ha_requests_total[%ds])`, int(time.Since(start).Seconds())), time.Now()) {
		if v != 0 {
			t.Errorf("%s: %v resets in the aggregate", key, v)
		}
	}
	// The range starts 15 s before the stop, well after the aggregate's first window.
	across := stopped.Add(45 * time.Second)
	got := query(t, downstream.URL, `increase(ha_requests_total[60s])`, across)
	want := query(t, reference.URL, `sum without (instance) (max without (prometheus_replica) (increase(ha_requests_total[60s])))`, across)
	for key, w := range want {
		if g := got[key]; math.Abs(g-w) > 0.05*w {
			t.Errorf("%s: increase over the 60 s around the failover: aggregated %.1f, raw %.1f", key, g, w)
		}
	}
	for _, truth := range []struct {
		path string
		rate float64
	}{{"/a", 9}, {"/b", 15}} {
		key := fmt.Sprintf(`{job="app", path=%q, prometheus="monitoring/k8s"}`, truth.path)
		if g := got[key]; math.Abs(g-60*truth.rate) > 0.05*60*truth.rate {
			t.Errorf("%s: increase over 60 s %.1f, want the targets' %.0f", key, g, 60*truth.rate)
		}
	}
	t.Logf("increase over the 60 s around the failover: aggregated %v, raw %v; restarted at +%s", got, want, restarted.Sub(start).Round(time.Second))
}
