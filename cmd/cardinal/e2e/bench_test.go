package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkEndToEnd is the docs/design.md §6 scenario against the built binary: 100 counter
// metrics × 10,000 pods = 1M active input series in 2000-sample requests from 4 concurrent
// senders, one rule per metric dropping pod and instance, 100 groups per metric kept (10k
// output series). Run it with `make bench` (-benchtime=3x: three scenarios, medians reported).
//
// Sample timestamps never run ahead of the clock, so windows close as they would in
// production. A warm-up sends three rounds of history starting 13 minutes ago (creating
// the 1M series). Then the steady state: the following 12 minutes of history, 49 rounds
// of 1M samples sent as fast as possible, like an agent catching up after an outage; every
// round closes a window of 1M inputs. It reports receiver CPU per sample and RSS per active
// series. Then live data at 300k samples/s for 40 s, during which windows of 1M inputs
// close every 15 s: ack latency, CPU per sample including those flushes, and the longest
// shard-lock hold of any flush, read from cardinal's own metrics.
//
// The cardinality explorer is off here, so that these figures stay comparable across
// versions; BenchmarkEndToEndExplore measures what it adds.
func BenchmarkEndToEnd(b *testing.B) { benchScenario(b, exploreOff) }

// exploreOff switches the cardinality explorer off.
const exploreOff = "explore: {enabled: false}\n"

// BenchmarkEndToEndExplore is BenchmarkEndToEnd with the cardinality explorer off and then
// scanning for the whole run (scan_for = scan_every = 1h): the difference in CPU per sample
// is what the explorer adds while it scans. With the default duty cycle (scan_for 2m of
// every scan_every 15m) it adds 2/15 of that on average.
func BenchmarkEndToEndExplore(b *testing.B) {
	b.Run("explore=off", func(b *testing.B) { benchScenario(b, exploreOff) })
	b.Run("explore=scanning", func(b *testing.B) { benchScenario(b, "explore: {scan_for: 1h, scan_every: 1h}\n") })
}

// BenchmarkEndToEndWAL is BenchmarkEndToEnd with a write-ahead log, for each fsync mode that
// changes the request path (never behaves as interval but for the background fsync): the
// same figures, plus the checkpoint's size and time at 1M input series and the restart time
// after a kill -9 at the end of the live phase (checkpoint load + log replay, to ready).
func BenchmarkEndToEndWAL(b *testing.B) {
	for _, fsync := range []string{"interval", "always"} {
		b.Run("fsync="+fsync, func(b *testing.B) {
			benchScenario(b, exploreOff+fmt.Sprintf("wal:\n  dir: %s\n  fsync: %s\n  checkpoint_interval: 30s\n  max_bytes: 4GiB\n", b.TempDir(), fsync))
		})
	}
}

// benchScenario runs the scenario of BenchmarkEndToEnd with extraYAML (top-level sections:
// wal, explore) in cardinal's configuration.
func benchScenario(b *testing.B, extraYAML string) {
	var cfg strings.Builder
	cfg.WriteString("aggregator:\n  flush_interval: 15s\n  flush_delay: 10s\ndownstream:\n  file: {path: /dev/null}\n" + extraYAML + "rules:\n")
	for m := range 100 {
		fmt.Fprintf(&cfg, "  - metric_name: loadgen_counter_%d_total\n    type: counter\n    drop_labels: [pod, instance]\n", m)
	}
	shape := []string{"--metrics=100", "--series=10000", "--groups=100", "--samples-per-request=2000", "--concurrency=4"}
	// Each iteration is a whole scenario against a fresh cardinal; with several
	// (-benchtime=3x in make bench) every figure reported is the median of the runs, each
	// run is logged, and a run on a momentarily busy host moves the result less.
	figures := map[string][]float64{} // unit -> one value per run
	add := func(unit string, v float64) { figures[unit] = append(figures[unit], v) }
	run := 0
	for b.Loop() {
		run++
		card := startCardinal(b, cfg.String())
		pid := strconv.Itoa(card.PID())

		runLoadgen(b, append(shape, "--url="+card.WriteURL, "--history=13m", "--requests=1500")...)
		steady := runLoadgen(b, append(shape, "--url="+card.WriteURL, "--history=12m", "--pid="+pid)...)
		if steady.Receiver == nil || steady.Samples != steady.SamplesAttempted {
			b.Fatalf("throughput run: %d of %d samples acknowledged, errors %v", steady.Samples, steady.SamplesAttempted, steady.Errors)
		}
		if dropped := maxMetric(b, card.URL, "cardinal_aggregator_samples_dropped_total"); dropped > 0 {
			b.Fatalf("the aggregator dropped samples of the steady state (up to %.0f for one rule and reason): the scenario is not what it claims", dropped)
		}
		add("cpu-us/sample", steady.Receiver.CPUSecondsPerMillionSamples)
		add("rss-bytes/series", steady.Receiver.RSSBytesPerActiveSeries)
		add("samples/s", steady.SamplesPerSecond)

		stopWatch := watchFlushHold(card.URL)
		live := runLoadgen(b, append(shape, "--url="+card.WriteURL, "--rate=300000", "--duration=40s", "--pid="+pid)...)
		if live.Samples != live.SamplesAttempted {
			b.Fatalf("300k/s run: %d of %d samples acknowledged, errors %v", live.Samples, live.SamplesAttempted, live.Errors)
		}
		flushLock := max(stopWatch(), maxMetric(b, card.URL, flushHoldMetric)) * 1000
		add("p50-ms@300k/s", live.Latency.P50*1000)
		add("p99-ms@300k/s", live.Latency.P99*1000)
		add("max-ms@300k/s", live.Latency.Max*1000)
		add("cpu-us/sample@300k/s", live.Receiver.CPUSecondsPerMillionSamples)
		add("flush-lock-ms", flushLock)
		b.Logf("run %d, steady state: %.0f samples/s, %.3f CPU µs/sample, RSS %d MiB for %d active series (%.0f B/series), p50 %.1f ms p99 %.1f ms",
			run, steady.SamplesPerSecond, steady.Receiver.CPUSecondsPerMillionSamples, steady.Receiver.RSSBytes>>20, steady.Receiver.ActiveSeries,
			steady.Receiver.RSSBytesPerActiveSeries, steady.Latency.P50*1000, steady.Latency.P99*1000)
		b.Logf("run %d, at 300k samples/s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %.3f CPU µs/sample, longest flush lock hold %.2f ms",
			run, live.Latency.P50*1000, live.Latency.P99*1000, live.Latency.Max*1000, live.Receiver.CPUSecondsPerMillionSamples, flushLock)
		if strings.Contains(extraYAML, "wal:") {
			cpBytes := maxMetric(b, card.URL, "cardinal_wal_checkpoint_bytes")
			cpSeconds := histogramMean(b, card.URL, "cardinal_wal_checkpoint_duration_seconds")
			if err := card.Signal(syscall.SIGKILL); err != nil {
				b.Fatal(err)
			}
			if _, err := card.Wait(10 * time.Second); err != nil {
				b.Fatal(err)
			}
			restartStart := time.Now()
			card.Start()
			restart := time.Since(restartStart)
			replayed := maxMetric(b, card.URL, "cardinal_wal_replayed_samples_total")
			add("checkpoint-bytes/series", cpBytes/float64(steady.Receiver.ActiveSeries))
			add("checkpoint-ms", cpSeconds*1000)
			add("restart-s", restart.Seconds())
			b.Logf("run %d, WAL: checkpoint %.1f MB (%.1f B/series) in %.0f ms; restart after kill -9 ready in %.2f s, %.0f samples replayed",
				run, cpBytes/1e6, cpBytes/float64(steady.Receiver.ActiveSeries), cpSeconds*1000, restart.Seconds(), replayed)
		}
		card.Stop()
	}
	for unit, vs := range figures {
		b.ReportMetric(median(vs), unit)
	}
	if run > 1 {
		b.Logf("medians of %d runs: %.3f CPU µs/sample (runs %s), %.0f B/series, p99 %.1f ms at 300k samples/s, flush lock %.2f ms",
			run, median(figures["cpu-us/sample"]), formatRuns(figures["cpu-us/sample"]), median(figures["rss-bytes/series"]),
			median(figures["p99-ms@300k/s"]), median(figures["flush-lock-ms"]))
	}
}

// histogramMean returns a histogram's sum divided by its count on a /metrics page.
func histogramMean(tb testing.TB, baseURL, name string) float64 {
	tb.Helper()
	sum, count := maxMetric(tb, baseURL, name+"_sum"), maxMetric(tb, baseURL, name+"_count")
	if count == 0 {
		return 0
	}
	return sum / count
}

// median returns the middle value of vs (the mean of the middle two when even).
func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// formatRuns lists per-run values in run order.
func formatRuns(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatFloat(v, 'f', 3, 64)
	}
	return strings.Join(parts, ", ")
}

// flushHoldMetric is, per rule, the longest time its latest flush held one shard lock.
const flushHoldMetric = "cardinal_aggregator_last_flush_max_lock_hold_seconds"

// watchFlushHold polls flushHoldMetric once a second until the returned function is called,
// which returns the largest value seen. A rule's gauge keeps its value until the rule's next
// window closes (every 15 s in the live phase), so the polls see every window close; they
// run only in the live phase, whose CPU figure is not a target, not in the steady state.
func watchFlushHold(baseURL string) (stop func() float64) {
	done := make(chan struct{})
	result := make(chan float64)
	go func() {
		best := 0.0
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- best
				return
			case <-tick.C:
				if v, err := scrapeMax(baseURL, flushHoldMetric); err == nil {
					best = max(best, v)
				}
			}
		}
	}()
	return func() float64 {
		close(done)
		return <-result
	}
}

// maxMetric returns the largest value of a metric on a /metrics page.
func maxMetric(tb testing.TB, baseURL, name string) float64 {
	tb.Helper()
	v, err := scrapeMax(baseURL, name)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// scrapeMax is maxMetric returning its error.
func scrapeMax(baseURL, name string) (float64, error) {
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		return 0, err
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
	return best, sc.Err()
}
