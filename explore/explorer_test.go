package explore

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// population is a synthetic metric like the load generator's: series j has pod j, instance
// j mod instances and group j mod groups.
type population struct {
	name                      string
	series, instances, groups int
}

func (p population) series_(j int) prompb.TimeSeries {
	lbls := []prompb.Label{
		{Name: "__name__", Value: p.name},
		{Name: "group", Value: fmt.Sprintf("g%d", j%p.groups)},
		{Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:9100", j%p.instances/256, j%p.instances%256)},
		{Name: "job", Value: "loadgen"},
		{Name: "pod", Value: fmt.Sprintf("pod-%07d", j)},
	}
	return prompb.TimeSeries{Labels: lbls, Samples: []prompb.Sample{{Value: 1, Timestamp: int64(j)}}}
}

// truth counts the distinct label sets left after dropping the named labels.
func (p population) truth(drop ...string) uint64 {
	seen := map[string]bool{}
	for j := range p.series {
		key := ""
		for _, l := range p.series_(j).Labels {
			dropped := false
			for _, d := range drop {
				dropped = dropped || l.Name == d
			}
			if !dropped {
				key += l.Name + "=" + l.Value + ","
			}
		}
		seen[key] = true
	}
	return uint64(len(seen))
}

// send observes every series of the populations rounds times, in requests of 500.
func send(e *Explorer, rounds int, pops ...population) {
	for range rounds {
		var req []prompb.TimeSeries
		for _, p := range pops {
			for j := range p.series {
				req = append(req, p.series_(j))
				if len(req) == 500 {
					e.Observe(req)
					req = nil
				}
			}
		}
		e.Observe(req)
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func within(t *testing.T, what string, got, want uint64, tolerance float64) {
	t.Helper()
	if d := math.Abs(float64(got)-float64(want)) / float64(want); d > tolerance {
		t.Errorf("%s = %d, want %d within %.0f%% (off by %.2f%%)", what, got, want, tolerance*100, d*100)
	}
}

func TestEstimatesAreWithinTwoPercentOfKnownCardinalities(t *testing.T) {
	pops := []population{
		{name: "big_total", series: 60000, instances: 300, groups: 7},
		{name: "mid_total", series: 5000, instances: 100, groups: 4},
		{name: "small", series: 40, instances: 4, groups: 2},
	}
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	e := New(DefaultConfig(), nil, clk.now)
	for scanNo := range 2 {
		e.StartScan()
		send(e, 3, pops...)
		clk.t = clk.t.Add(60 * time.Second)
		e.EndScan()
		r, ok := e.Result()
		if !ok || !r.Complete {
			t.Fatalf("scan %d: no complete result", scanNo)
		}
		total := 0
		for _, p := range pops {
			total += p.series
		}
		within(t, "all series", r.Series, uint64(total), 0.002)
		if want := uint64(3 * total); r.Samples != want {
			t.Errorf("samples = %d, want %d", r.Samples, want)
		}
		for i, p := range pops {
			m := r.Metrics[i]
			if m.Name != p.name {
				t.Fatalf("metric %d is %s, want %s (sorted by series)", i, m.Name, p.name)
			}
			within(t, p.name+" series", m.Series, uint64(p.series), 0.002)
			if got, want := m.SamplesPerSecond, float64(3*p.series)/60; math.Abs(got-want) > 1e-9 {
				t.Errorf("%s samples/s = %g, want %g", p.name, got, want)
			}
			values := map[string]uint64{"pod": uint64(p.series), "instance": uint64(p.instances), "group": uint64(p.groups), "job": 1}
			for _, l := range m.Labels {
				within(t, p.name+" "+l.Name+" values", l.Values, values[l.Name], 0.02)
				within(t, p.name+" series without "+l.Name, l.SeriesWithout, p.truth(l.Name), 0.02)
			}
			if len(m.Labels) != 4 || m.Labels[0].Name != "pod" {
				t.Errorf("%s labels %+v, want 4 with pod first", p.name, m.Labels)
			}
			if scanNo == 0 {
				if len(m.Drops) != 0 {
					t.Errorf("%s: drops in the first scan: %+v", p.name, m.Drops)
				}
				continue
			}
			if len(m.Drops) < 2 {
				t.Fatalf("%s: second scan has drops %+v, want a chain", p.name, m.Drops)
			}
			for _, d := range m.Drops {
				within(t, fmt.Sprintf("%s series without %v", p.name, d.Labels), d.Series, p.truth(d.Labels...), 0.02)
			}
		}
	}
}

// TestMetadataGivesTheRuleType checks that the agents' metadata types a metric's family,
// by the family name alone or less a series suffix, and that suggest prefers it to the name.
func TestMetadataGivesTheRuleType(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	e := New(DefaultConfig(), nil, clk.now)
	e.ObserveMetadata([]prompb.MetricMetadata{
		{MetricFamilyName: "jobs_done", Type: prompb.MetricMetadata_COUNTER},       // a counter without _total
		{MetricFamilyName: "queue_depth_total", Type: prompb.MetricMetadata_GAUGE}, // a gauge that is
		{MetricFamilyName: "http_requests", Type: prompb.MetricMetadata_COUNTER},   // OpenMetrics: the family less _total
		{MetricFamilyName: "rpc_seconds", Type: prompb.MetricMetadata_SUMMARY},     // _sum and _count only
	})
	pops := []population{
		{name: "jobs_done", series: 300, instances: 3, groups: 2},
		{name: "queue_depth_total", series: 300, instances: 3, groups: 2},
		{name: "http_requests_total", series: 300, instances: 3, groups: 2},
		{name: "rpc_seconds_count", series: 300, instances: 3, groups: 2},
		{name: "untyped", series: 300, instances: 3, groups: 2},
	}
	e.StartScan()
	send(e, 1, pops...)
	e.EndScan()
	r, _ := e.Result()
	want := map[string]string{"jobs_done": "counter", "queue_depth_total": "gauge", "http_requests_total": "counter", "rpc_seconds_count": "summary", "untyped": ""}
	for _, m := range r.Metrics {
		if m.Type != want[m.Name] {
			t.Errorf("%s has type %q, want %q", m.Name, m.Type, want[m.Name])
		}
	}
	s := Suggest(r, SuggestOptions{Top: 10, Target: 10})
	rules := map[string]string{}
	for _, rule := range s.Rules {
		rules[rule.Metric] = rule.Type
	}
	wantRules := map[string]string{"jobs_done": "counter", "queue_depth_total": "gauge", "http_requests_total": "counter", "rpc_seconds": "summary", "untyped": "gauge"}
	for m, typ := range wantRules {
		if rules[m] != typ {
			t.Errorf("suggested rule for %s has type %q, want %q (all: %v)", m, rules[m], typ, rules)
		}
	}
}

// TestRunScansUntilCancelled runs the scan schedule with short periods: scans complete and
// their results replace one another, observation happens only while one runs, and Run
// returns when its context ends.
func TestRunScansUntilCancelled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ScanFor, cfg.ScanEvery = setting.Duration(20*time.Millisecond), setting.Duration(40*time.Millisecond)
	reg := prometheus.NewRegistry()
	e := New(cfg, reg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	p := population{name: "m_total", series: 50, instances: 5, groups: 2}
	deadline := time.Now().Add(10 * time.Second)
	for {
		send(e, 1, p)
		if r, ok := e.Result(); ok && r.Series == 50 && testutil.ToFloat64(e.metrics.scans) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no three scans with the series in 10s: %v", testutil.ToFloat64(e.metrics.scans))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if e.scanning.Load() {
		t.Error("still scanning after Run returned")
	}
}
