package loadgen

import (
	"testing"
	"time"
)

// BenchmarkPatch measures the per-request work of the timed loop: rewriting the values and
// timestamps of one pre-encoded 2000-sample request (with churning pod values).
func BenchmarkPatch(b *testing.B) {
	cfg, err := parseConfig([]string{"--metrics=10", "--series=200", "--churn=0.1", "--requests=1"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := newPlan(cfg, testStartMs, 15*time.Second)
	templates, err := buildTemplates(p, 2000)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	r := int64(0)
	for b.Loop() {
		r++
		if err := templates[0].patch(p, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(templates[0].samples)), "ns/sample")
}

// BenchmarkBuild measures pre-encoding (before the clock starts) per sample.
func BenchmarkBuild(b *testing.B) {
	cfg, err := parseConfig([]string{"--metrics=10", "--series=1000", "--requests=1"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := newPlan(cfg, testStartMs, 15*time.Second)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := buildTemplates(p, 2000); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*p.seriesPerRound()), "ns/sample")
}
