package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkEndToEnd is the DESIGN.md §6 scenario against the built binary: 100 counter
// metrics × 10,000 pods = 1M active input series in 2000-sample requests from 4 concurrent
// senders, one rule per metric dropping pod and instance, 100 groups per metric kept (10k
// output series). Run it with `make bench` (-benchtime=1x: one scenario per run).
//
// Sample timestamps never run ahead of the clock, so windows close as they would in
// production. A warm-up sends three rounds of history starting 13 minutes ago (creating
// the 1M series). Then the steady state: the following 12 minutes of history, 49 rounds
// of 1M samples sent as fast as possible, like an agent catching up after an outage; every
// round closes a window of 1M inputs. It reports receiver CPU per sample and RSS per active
// series. Then live data at 300k samples/s for 40 s, during which windows of 1M inputs
// close every 15 s: ack latency, CPU per sample including those flushes, and the longest
// shard-lock hold of any flush, read from cardinal's own metrics.
func BenchmarkEndToEnd(b *testing.B) {
	var cfg strings.Builder
	cfg.WriteString("aggregator:\n  flush_interval: 15s\n  flush_delay: 10s\ndownstream:\n  file: {path: /dev/null}\nrules:\n")
	for m := range 100 {
		fmt.Fprintf(&cfg, "  - metric_name: loadgen_counter_%d_total\n    type: counter\n    drop_labels: [pod, instance]\n", m)
	}
	shape := []string{"--metrics=100", "--series=10000", "--groups=100", "--samples-per-request=2000", "--concurrency=4"}
	for b.Loop() {
		card := startCardinal(b, cfg.String())
		pid := strconv.Itoa(card.PID())

		runLoadgen(b, append(shape, "--url="+card.WriteURL, "--history=13m", "--requests=1500")...)
		run := runLoadgen(b, append(shape, "--url="+card.WriteURL, "--history=12m", "--pid="+pid)...)
		if run.Receiver == nil || run.Samples != run.SamplesAttempted {
			b.Fatalf("throughput run: %d of %d samples acknowledged, errors %v", run.Samples, run.SamplesAttempted, run.Errors)
		}
		if dropped := maxMetric(b, card.URL, "cardinal_aggregator_samples_dropped_total"); dropped > 0 {
			b.Fatalf("the aggregator dropped samples of the steady state (up to %.0f for one rule and reason): the scenario is not what it claims", dropped)
		}
		b.ReportMetric(run.Receiver.CPUSecondsPerMillionSamples, "cpu-us/sample")
		b.ReportMetric(run.Receiver.RSSBytesPerActiveSeries, "rss-bytes/series")
		b.ReportMetric(run.SamplesPerSecond, "samples/s")

		live := runLoadgen(b, append(shape, "--url="+card.WriteURL, "--rate=300000", "--duration=40s", "--pid="+pid)...)
		if live.Samples != live.SamplesAttempted {
			b.Fatalf("300k/s run: %d of %d samples acknowledged, errors %v", live.Samples, live.SamplesAttempted, live.Errors)
		}
		b.ReportMetric(live.Latency.P50*1000, "p50-ms@300k/s")
		b.ReportMetric(live.Latency.P99*1000, "p99-ms@300k/s")
		b.ReportMetric(live.Latency.Max*1000, "max-ms@300k/s")
		b.ReportMetric(live.Receiver.CPUSecondsPerMillionSamples, "cpu-us/sample@300k/s")
		b.ReportMetric(maxMetric(b, card.URL, "cardinal_aggregator_last_flush_max_lock_hold_seconds")*1000, "flush-lock-ms")
		b.Logf("steady state: %.0f samples/s, %.3f CPU µs/sample, RSS %d MiB for %d active series (%.0f B/series), p50 %.1f ms p99 %.1f ms",
			run.SamplesPerSecond, run.Receiver.CPUSecondsPerMillionSamples, run.Receiver.RSSBytes>>20, run.Receiver.ActiveSeries,
			run.Receiver.RSSBytesPerActiveSeries, run.Latency.P50*1000, run.Latency.P99*1000)
		b.Logf("at 300k samples/s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %.3f CPU µs/sample",
			live.Latency.P50*1000, live.Latency.P99*1000, live.Latency.Max*1000, live.Receiver.CPUSecondsPerMillionSamples)
		card.Stop()
	}
}

// maxMetric returns the largest value of a metric on a /metrics page.
func maxMetric(tb testing.TB, baseURL, name string) float64 {
	tb.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	best := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil && v > best {
			best = v
		}
	}
	return best
}
