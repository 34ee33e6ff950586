package loadgen

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestTemplates_decode_to_the_expected_write_request builds the expected WriteRequest by hand
// and checks that the pre-encoded bodies decode to exactly its protobuf bytes.
func TestTemplates_decode_to_the_expected_write_request(t *testing.T) {
	cfg := mustConfig(t, "--metrics=3", "--mix=counter=1,gauge=1,histogram=1", "--series=5",
		"--buckets=0.1,1", "--labels=job=loadgen,env=test", "--groups=2", "--instances=2",
		"--samples-per-request=7", "--requests=1")
	p, templates := mustBuild(t, cfg, 15*time.Second)

	const perSlot = 1 + 1 + (2 + 1 + 2) // counter, gauge, histogram (2 buckets, +Inf, sum, count)
	if got, want := p.seriesPerRound(), 5*perSlot; got != want {
		t.Fatalf("seriesPerRound = %d, want %d", got, want)
	}
	if got, want := len(templates), (5*perSlot+6)/7; got != want {
		t.Fatalf("%d requests, want %d", got, want)
	}

	var want []prompb.TimeSeries
	for j := range 5 {
		common := func(name string, extra ...prompb.Label) []prompb.Label {
			ls := []prompb.Label{{Name: "__name__", Value: name}, {Name: "env", Value: "test"},
				{Name: "group", Value: fmt.Sprintf("g%d", j%2)}, {Name: "instance", Value: fmt.Sprintf("node-%011d", j%2)},
				{Name: "job", Value: "loadgen"}}
			ls = append(ls, extra...)
			return append(ls, prompb.Label{Name: "pod", Value: fmt.Sprintf("pod-%012d", j)})
		}
		sample := func(v float64) []prompb.Sample { return []prompb.Sample{{Value: v, Timestamp: testStartMs}} }
		n := float64(1 + j%10)
		want = append(want,
			prompb.TimeSeries{Labels: common("loadgen_counter_0_total"), Samples: sample(n)},
			prompb.TimeSeries{Labels: common("loadgen_gauge_0"), Samples: sample(float64(1 + j))},
			prompb.TimeSeries{Labels: common("loadgen_histogram_0_bucket", prompb.Label{Name: "le", Value: "0.1"}), Samples: sample(n)},
			prompb.TimeSeries{Labels: common("loadgen_histogram_0_bucket", prompb.Label{Name: "le", Value: "1"}), Samples: sample(2 * n)},
			prompb.TimeSeries{Labels: common("loadgen_histogram_0_bucket", prompb.Label{Name: "le", Value: "+Inf"}), Samples: sample(3 * n)},
			prompb.TimeSeries{Labels: common("loadgen_histogram_0_sum"), Samples: sample(n * (0.1 + 1 + 2*1))},
			prompb.TimeSeries{Labels: common("loadgen_histogram_0_count"), Samples: sample(3 * n)},
		)
	}

	got := 0
	for i, tmpl := range templates {
		wr, raw := decodeBody(t, tmpl.body)
		if len(wr.Timeseries) > 7 {
			t.Errorf("request %d has %d series, more than --samples-per-request", i, len(wr.Timeseries))
		}
		end := min(got+7, len(want))
		expected := prompb.WriteRequest{Timeseries: want[got:end]}
		wantRaw, err := expected.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, wantRaw) {
			for k := range min(len(wr.Timeseries), len(expected.Timeseries)) {
				g, w := wr.Timeseries[k], expected.Timeseries[k]
				if labelString(g.Labels) != labelString(w.Labels) || fmt.Sprint(g.Samples) != fmt.Sprint(w.Samples) {
					t.Errorf("request %d series %d:\n got %s %v\nwant %s %v", i, k, labelString(g.Labels), g.Samples, labelString(w.Labels), w.Samples)
				}
			}
			t.Fatalf("request %d: decoded protobuf differs from prompb's encoding of the expected request", i)
		}
		got = end
	}
	if got != len(want) {
		t.Fatalf("requests carry %d series, want %d", got, len(want))
	}
}

func TestTemplates_counters_and_histograms_grow_every_round(t *testing.T) {
	cfg := mustConfig(t, "--metrics=4", "--mix=counter=1,gauge=1,histogram=2", "--series=30",
		"--samples-per-request=50", "--requests=1")
	p, templates := mustBuild(t, cfg, 10*time.Second)
	type last struct {
		v  float64
		ts int64
	}
	prev := map[string]last{}
	for r := range int64(12) {
		series := roundSeries(t, p, templates, r)
		if len(series) != p.seriesPerRound() {
			t.Fatalf("round %d: %d series, want %d", r, len(series), p.seriesPerRound())
		}
		for _, s := range series {
			key := labelString(s.Labels)
			v, ts := s.Samples[0].Value, s.Samples[0].Timestamp
			if ts != testStartMs+r*10_000 {
				t.Fatalf("round %d %s: timestamp %d, want %d", r, key, ts, testStartMs+r*10_000)
			}
			if pl, ok := prev[key]; ok && !strings.Contains(key, "_gauge_") && v <= pl.v {
				t.Fatalf("round %d %s: value %v after %v, want an increase", r, key, v, pl.v)
			}
			if r > 0 {
				if _, ok := prev[key]; !ok {
					t.Fatalf("round %d: new series %s without churn", r, key)
				}
			}
			prev[key] = last{v, ts}
		}
		// Histogram buckets are cumulative: +Inf equals _count and no bucket exceeds it.
		for j := range 30 {
			pod := fmt.Sprintf("pod-%012d", j)
			var inf, count float64
			for _, s := range series {
				if labelValue(s.Labels, "pod") != pod || !strings.HasPrefix(labelValue(s.Labels, "__name__"), "loadgen_histogram_1") {
					continue
				}
				switch {
				case labelValue(s.Labels, "le") == "+Inf":
					inf = s.Samples[0].Value
				case strings.HasSuffix(labelValue(s.Labels, "__name__"), "_count"):
					count = s.Samples[0].Value
				}
			}
			if inf == 0 || inf != count {
				t.Fatalf("round %d %s: +Inf bucket %v, _count %v", r, pod, inf, count)
			}
		}
	}
}

func TestTemplates_churn_replaces_the_stated_fraction_each_round(t *testing.T) {
	const slots, metrics = 20, 2
	cfg := mustConfig(t, "--metrics=2", "--series=20", "--churn=0.25", "--samples-per-request=13", "--requests=1")
	p, templates := mustBuild(t, cfg, 15*time.Second)
	if p.churnPerRnd != 5 {
		t.Fatalf("churnPerRnd = %d, want 5 (0.25 of 20)", p.churnPerRnd)
	}
	setOf := func(series []prompb.TimeSeries) map[string]prompb.TimeSeries {
		m := map[string]prompb.TimeSeries{}
		for _, s := range series {
			m[labelString(s.Labels)] = s
		}
		return m
	}
	prev := setOf(roundSeries(t, p, templates, 0))
	everReplaced := map[string]bool{}
	for r := int64(1); r <= 9; r++ {
		cur := setOf(roundSeries(t, p, templates, r))
		if len(cur) != slots*metrics {
			t.Fatalf("round %d: %d distinct series, want %d", r, len(cur), slots*metrics)
		}
		added := 0
		for key, s := range cur {
			old, ok := prev[key]
			if ok {
				if s.Samples[0].Value <= old.Samples[0].Value {
					t.Fatalf("round %d %s: surviving counter went from %v to %v", r, key, old.Samples[0].Value, s.Samples[0].Value)
				}
				continue
			}
			added++
			pod := labelValue(s.Labels, "pod")
			var j int
			if _, err := fmt.Sscanf(pod, "pod-%d", &j); err != nil {
				t.Fatal(err)
			}
			slot := j % slots
			everReplaced[fmt.Sprint(slot)] = true
			if want := step(slot); s.Samples[0].Value != want {
				t.Fatalf("round %d: new series %s starts at %v, want %v (a new pod's counter)", r, key, s.Samples[0].Value, want)
			}
		}
		if added != 5*metrics {
			t.Fatalf("round %d: %d new series, want %d (5 pods x %d metrics)", r, added, 5*metrics, metrics)
		}
		prev = cur
	}
	if len(everReplaced) != slots {
		t.Fatalf("after 9 rounds %d of %d slots were replaced, want all", len(everReplaced), slots)
	}
}

func TestTemplates_reject_timestamps_that_do_not_fit_six_bytes(t *testing.T) {
	cfg := mustConfig(t, "--requests=1", "--metrics=1", "--series=1")
	p := newPlan(cfg, 1000, time.Second)
	if _, err := buildTemplates(p, 10); err == nil {
		t.Fatal("buildTemplates accepted a 1970 timestamp that needs fewer varint bytes")
	}
}
