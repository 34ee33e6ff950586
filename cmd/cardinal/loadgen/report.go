package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is the outcome of one run; `--output json` prints it as JSON.
type Report struct {
	// URL is the remote-write endpoint loaded.
	URL string `json:"url"`
	// Metrics and SeriesPerMetric are the generated layout; TimeSeries is the number of time
	// series (and samples) per round, a histogram series counting once per bucket, sum and count.
	Metrics         int    `json:"metrics"`
	SeriesPerMetric int    `json:"series_per_metric"`
	TimeSeries      int    `json:"time_series"`
	Mix             string `json:"mix"`
	// ChurnPerRound is the number of pods (per metric) replaced at every round.
	ChurnPerRound int `json:"churned_series_per_round"`
	// IntervalSeconds is the timestamp step between rounds.
	IntervalSeconds float64 `json:"interval_seconds"`
	// RequestsPerRound, CompressedBytes, RawBytes and BuildSeconds describe the pre-encoded
	// payload: bytes per sample on the wire and before snappy, and the encoding time.
	RequestsPerRound int     `json:"requests_per_round"`
	CompressedBytes  float64 `json:"compressed_bytes_per_sample"`
	RawBytes         float64 `json:"raw_bytes_per_sample"`
	BuildSeconds     float64 `json:"build_seconds"`
	// Rounds counts the rounds begun; Requests the requests attempted.
	Rounds   int64 `json:"rounds"`
	Requests int64 `json:"requests"`
	// Samples counts samples in requests answered 2xx; SamplesAttempted all samples sent.
	Samples          int64 `json:"samples"`
	SamplesAttempted int64 `json:"samples_attempted"`
	// DurationSeconds is the timed part of the run; SamplesPerSecond is Samples over it.
	DurationSeconds  float64 `json:"duration_seconds"`
	SamplesPerSecond float64 `json:"samples_per_second"`
	// Latency is the distribution of request latencies (requests that got a response).
	Latency LatencyReport `json:"latency_seconds"`
	// Errors counts failed requests by status code, "transport" for those without a
	// response; ErrorExamples holds the first body or error text for each.
	Errors        map[string]int64  `json:"errors"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`
	// FirstTimestampMs and LastTimestampMs bound the sample timestamps sent.
	FirstTimestampMs int64 `json:"first_timestamp_ms"`
	LastTimestampMs  int64 `json:"last_timestamp_ms"`
	// Receiver is the receiver's cost, with --pid.
	Receiver *ReceiverReport `json:"receiver,omitempty"`
	// Warnings explain settings that make the numbers misleading.
	Warnings []string `json:"warnings,omitempty"`
}

// LatencyReport holds request latency percentiles in seconds (nearest rank).
type LatencyReport struct {
	// P50, P90, P99 and Max are the percentiles and the maximum.
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// ReceiverReport is the receiver process's cost, from /proc/PID (with --pid).
type ReceiverReport struct {
	// PID is the process measured.
	PID int `json:"pid"`
	// CPUSeconds is the receiver's user+system CPU time during the timed run.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUSecondsPerMillionSamples equals CPU microseconds per acknowledged sample.
	CPUSecondsPerMillionSamples float64 `json:"cpu_seconds_per_million_samples"`
	// RSSBytes and PeakRSSBytes are VmRSS and VmHWM at the end of the run.
	RSSBytes     int64 `json:"rss_bytes"`
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// ActiveSeries estimates the series the receiver holds: those of the last round plus
	// those churned away within the last 5 minutes of sample time (Prometheus's staleness).
	ActiveSeries int64 `json:"active_series"`
	// RSSBytesPerActiveSeries is RSSBytes over ActiveSeries.
	RSSBytesPerActiveSeries float64 `json:"rss_bytes_per_active_series"`
}

// mergeStats folds the workers' stats into r.
func (r *Report) mergeStats(stats []*workerStats) {
	var lat []time.Duration
	r.Errors = map[string]int64{}
	examples := map[string]string{}
	maxRound := int64(-1)
	for _, st := range stats {
		lat = append(lat, st.latencies...)
		r.Requests += st.requests
		r.SamplesAttempted += st.samples
		r.Samples += st.okSamples
		maxRound = max(maxRound, st.maxRound)
		for code, n := range st.codes {
			key := statusKey(code)
			r.Errors[key] += n
			if _, ok := examples[key]; !ok && st.examples[code] != "" {
				examples[key] = st.examples[code]
			}
		}
	}
	if len(examples) > 0 {
		r.ErrorExamples = examples
	}
	r.Rounds = maxRound + 1
	slices.Sort(lat)
	r.Latency = LatencyReport{
		P50: quantile(lat, 0.5).Seconds(), P90: quantile(lat, 0.9).Seconds(),
		P99: quantile(lat, 0.99).Seconds(), Max: quantile(lat, 1).Seconds(),
	}
}

// statusKey names a status code in the error map.
func statusKey(code int) string {
	if code == 0 {
		return "transport"
	}
	return strconv.Itoa(code)
}

// quantile is the nearest-rank q-quantile of sorted durations (0 when empty).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// write prints the report as text or JSON.
func (r *Report) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "target:     %s\n", r.URL)
	fmt.Fprintf(&b, "series:     %d metrics (%s) x %d series = %d time series per round, %d pods churned per round, interval %s\n",
		r.Metrics, r.Mix, r.SeriesPerMetric, r.TimeSeries, r.ChurnPerRound, seconds(r.IntervalSeconds))
	fmt.Fprintf(&b, "payload:    %d requests per round, %.1f bytes/sample compressed (%.1f raw), pre-encoded in %s\n",
		r.RequestsPerRound, r.CompressedBytes, r.RawBytes, seconds(r.BuildSeconds))
	fmt.Fprintf(&b, "sent:       %d samples acknowledged (%d attempted) in %d requests, %d rounds, in %s: %.0f samples/s\n",
		r.Samples, r.SamplesAttempted, r.Requests, r.Rounds, seconds(r.DurationSeconds), r.SamplesPerSecond)
	fmt.Fprintf(&b, "latency:    p50 %s  p90 %s  p99 %s  max %s\n",
		seconds(r.Latency.P50), seconds(r.Latency.P90), seconds(r.Latency.P99), seconds(r.Latency.Max))
	b.WriteString("errors:     ")
	if len(r.Errors) == 0 {
		b.WriteString("none")
	}
	for i, key := range slices.Sorted(maps.Keys(r.Errors)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", key, r.Errors[key])
		if ex := r.ErrorExamples[key]; ex != "" {
			fmt.Fprintf(&b, " (%q)", ex)
		}
	}
	b.WriteString("\n")
	if r.Rounds > 0 {
		fmt.Fprintf(&b, "timestamps: %s .. %s\n", msTime(r.FirstTimestampMs), msTime(r.LastTimestampMs))
	}
	if rc := r.Receiver; rc != nil {
		fmt.Fprintf(&b, "receiver:   pid %d: %.2f CPU s in the run = %.3f CPU s per 1M samples (us/sample); RSS %s (peak %s) = %.0f bytes per active series (~%d active)\n",
			rc.PID, rc.CPUSeconds, rc.CPUSecondsPerMillionSamples, mib(rc.RSSBytes), mib(rc.PeakRSSBytes), rc.RSSBytesPerActiveSeries, rc.ActiveSeries)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning:    %s\n", w)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// seconds formats a duration given in seconds.
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

// msTime formats a millisecond timestamp in UTC.
func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

// mib formats bytes in MiB.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
