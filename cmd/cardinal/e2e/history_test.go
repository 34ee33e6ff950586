package e2e

import (
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestPrometheusHarness_rate_of_pushed_history_is_exact pushes an hour of synthetic counter
// history (15 s steps, constant slopes) into a real Prometheus and checks that
// rate(x[5m]) over the whole range equals each slope, also after a restart of Prometheus on
// the same data directory. It proves pushRW, queryRange, query and Stop/Start.
func TestPrometheusHarness_rate_of_pushed_history_is_exact(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})

	const step = 15 * time.Second
	const steps = 240 // one hour: 241 samples per series, both ends included
	end := time.Now().Truncate(step)
	start := end.Add(-steps * step)
	slopes := map[string]float64{"a": 1, "b": 2.5, "c": 0.125} // per second, by pod
	offset := 1000.0                                           // counters do not start at zero

	// Push in time order (20 steps per request, every series in each), as a sender
	// catching up would: the TSDB head refuses samples older than an hour before its newest.
	for from := 0; from <= steps; from += 20 {
		var series []prompb.TimeSeries
		for pod, slope := range slopes {
			ts := prompb.TimeSeries{Labels: labelSet("e2e_requests_total", "job", "e2e", "pod", pod)}
			for k := from; k < min(from+20, steps+1); k++ {
				secs := float64(k) * step.Seconds()
				ts.Samples = append(ts.Samples, prompb.Sample{
					Value:     offset + slope*secs,
					Timestamp: start.Add(time.Duration(k) * step).UnixMilli(),
				})
			}
			series = append(series, ts)
		}
		if code := pushRW(t, prom.WriteURL, series); code != http.StatusNoContent {
			t.Fatalf("push of steps %d..%d: status %d, want 204", from, from+19, code)
		}
	}

	check := func(when string) {
		t.Helper()
		counts := query(t, prom.URL, `count_over_time(e2e_requests_total[61m])`, end)
		if len(counts) != len(slopes) {
			t.Fatalf("%s: count_over_time gives %d series, want %d: %v", when, len(counts), len(slopes), counts)
		}
		for key, n := range counts {
			if n != steps+1 {
				t.Errorf("%s: %s holds %v samples, want %d", when, key, n, steps+1)
			}
		}
		// From 5 minutes in, every window holds 20 intervals of a straight line, so the
		// extrapolated rate is exactly the slope at every step.
		got := queryRange(t, prom.URL, `rate(e2e_requests_total[5m])`, start.Add(5*time.Minute), end, step)
		if len(got) != len(slopes) {
			t.Fatalf("%s: rate gives %d series, want %d: %v", when, len(got), len(slopes), keys(got))
		}
		for pod, slope := range slopes {
			key := seriesKey(map[string]string{"job": "e2e", "pod": pod})
			points := got[key]
			if want := steps - 20 + 1; len(points) != want {
				t.Fatalf("%s: %s has %d points, want %d", when, key, len(points), want)
			}
			for i, p := range points {
				if wantT := start.Add(5*time.Minute + time.Duration(i)*step).UnixMilli(); p.T != wantT {
					t.Fatalf("%s: %s point %d at %d, want %d", when, key, i, p.T, wantT)
				}
				if rel := math.Abs(p.V-slope) / slope; rel > 1e-9 {
					t.Fatalf("%s: %s at %s: rate %v, want %v (relative error %.3g)", when, key,
						time.UnixMilli(p.T).UTC().Format(time.RFC3339), p.V, slope, rel)
				}
			}
		}
		last := query(t, prom.URL, `e2e_requests_total{pod="b"}`, end)
		if v := last[labelKey(labelSet("e2e_requests_total", "job", "e2e", "pod", "b"))]; v != offset+2.5*steps*step.Seconds() {
			t.Errorf("%s: last value of pod b = %v, want %v (%v)", when, v, offset+2.5*steps*step.Seconds(), last)
		}
	}
	check("after push")

	// The downstream can be stopped and started again mid-test on the same data directory.
	prom.Stop()
	prom.Start()
	check("after restart")
}

// TestPrometheusHarness_rejects_out_of_bounds_history pins the limit that the history test's
// push order works around: the head takes no sample older than an hour before its newest.
func TestPrometheusHarness_rejects_out_of_bounds_history(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	now := time.Now()
	push := func(at time.Time) int {
		return pushRW(t, prom.WriteURL, []prompb.TimeSeries{{
			Labels:  labelSet("e2e_bounds", "job", "e2e"),
			Samples: []prompb.Sample{{Value: 1, Timestamp: at.UnixMilli()}},
		}})
	}
	if code := push(now); code != http.StatusNoContent {
		t.Fatalf("push at now: %d", code)
	}
	if code := push(now.Add(-3 * time.Hour)); code != http.StatusBadRequest {
		t.Fatalf("push 3h before the newest sample: status %d, want 400 (out of bounds)", code)
	}
	if got := query(t, prom.URL, `count_over_time(e2e_bounds[4h])`, now); fmt.Sprint(got) != fmt.Sprintf("map[%s:1]", seriesKey(map[string]string{"job": "e2e"})) {
		t.Fatalf("count_over_time = %v, want the one in-bounds sample", got)
	}
}
