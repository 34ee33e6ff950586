package e2e

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/cardinal-proxy/cardinal/cmd/cardinal/loadgen"
)

// TestLoadgen_history_is_accepted_by_prometheus sends loadgen's pre-encoded requests (ten
// minutes of history, every metric type) to a real Prometheus and checks that it accepted
// every sample and stored the values loadgen means: a real receiver's decoder is the judge of
// the hand-made protobuf and snappy encoding.
func TestLoadgen_history_is_accepted_by_prometheus(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	var out bytes.Buffer
	err := loadgen.Run(t.Context(), []string{
		"--url=" + prom.WriteURL, "--output=json", "--history=10m", "--interval=15s",
		"--metrics=3", "--mix=counter=1,gauge=1,histogram=1", "--buckets=0.1,1", "--series=20",
		"--samples-per-request=50", "--concurrency=2", "--pid=" + strconv.Itoa(prom.proc.pid()),
	}, &out)
	if err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out.String())
	}
	var rep loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	const perRound = 20 * (1 + 1 + 5) // counter, gauge, histogram (2 buckets, +Inf, sum, count)
	if rep.Rounds != 41 || rep.Samples != 41*perRound || len(rep.Errors) != 0 {
		t.Fatalf("report: %d rounds, %d samples acknowledged, errors %v; want 41 rounds, %d samples, no errors",
			rep.Rounds, rep.Samples, rep.Errors, 41*perRound)
	}
	if rep.Receiver == nil || rep.Receiver.RSSBytes <= 0 {
		t.Errorf("receiver report %+v: want Prometheus's RSS", rep.Receiver)
	}

	start, end := time.UnixMilli(rep.FirstTimestampMs), time.UnixMilli(rep.LastTimestampMs)
	stored := queryRange(t, prom.URL, `{__name__=~"loadgen_.+"}`, start, end, 15*time.Second)
	if len(stored) != perRound {
		t.Errorf("Prometheus holds %d loadgen series, want %d", len(stored), perRound)
	}
	// Every loadgen series changes value every round, so a missing sample would show up as a
	// step repeating the previous value (filled in by the lookback).
	for key, points := range stored {
		if len(points) != 41 {
			t.Errorf("%s: %d points, want 41", key, len(points))
		}
		for i := 1; i < len(points); i++ {
			if points[i].V == points[i-1].V {
				t.Errorf("%s: value %v at both %d and %d: a sample is missing", key, points[i].V, points[i-1].T, points[i].T)
				break
			}
		}
	}
	// Slot 3's counter grows by 1+3 per 15 s round.
	rate := query(t, prom.URL, `rate(loadgen_counter_0_total{pod="pod-000000000003"}[5m])`, end)
	for key, v := range rate {
		if math.Abs(v-4.0/15) > 1e-12 {
			t.Errorf("%s = %v, want %v", key, v, 4.0/15)
		}
	}
	if len(rate) != 1 {
		t.Errorf("rate query gave %d series, want 1", len(rate))
	}
	// Each round adds the same number of observations to every bucket (and +Inf), so the
	// median lands in the second bucket, (0.1, 1].
	q := query(t, prom.URL, `histogram_quantile(0.5, sum by (le) (rate(loadgen_histogram_0_bucket[5m])))`, end)
	if v := q[seriesKey(nil)]; !(v > 0.1 && v <= 1) {
		t.Errorf("median of the histogram = %v (%v), want in (0.1, 1]", v, q)
	}
	t.Logf("loadgen -> prometheus: %.0f samples/s, p99 %.1fms, receiver %.2f CPU s per 1M samples",
		rep.SamplesPerSecond, rep.Latency.P99*1000, rep.Receiver.CPUSecondsPerMillionSamples)
}
