package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	// prom3Latency is the target's latency histogram: classic buckets and native ones.
	prom3Latency = "prom3_request_duration_seconds"
	// prom3Requests is the target's request counter, by pod and code.
	prom3Requests = "prom3_requests_total"
	// prom3Pods is the number of pods the target exposes (values of the label cardinal drops).
	prom3Pods = 5
	// rw2Message is the protobuf message of Remote Write 2.0.
	rw2Message = "io.prometheus.write.v2.Request"
)

// prom3Buckets are the classic buckets: the lowest holds about a sixth of the observations,
// so that no bucket of the aggregate stays near zero (see the test's comment).
var prom3Buckets = prometheus.ExponentialBuckets(0.01, 2, 8) // 0.01 … 1.28

// startShopTarget serves, on a loopback port, the metrics of prom3Pods pods of one service:
// prom3Latency with classic buckets and native ones (factor 1.1: schema 3), and prom3Requests
// by code. A goroutine feeds them every 20 ms from a seeded random generator, each pod's
// median latency moving on a slow wave of its own, until the test ends. A simulated minute
// of traffic precedes the first scrape. It returns the target's host:port.
func startShopTarget(t *testing.T) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                        prom3Latency,
		Help:                        "Request latency.",
		Buckets:                     prom3Buckets,
		NativeHistogramBucketFactor: 1.1,
	}, []string{"pod"})
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prom3Requests,
		Help: "Requests served.",
	}, []string{"pod", "code"})
	reg.MustRegister(latency, requests)

	rng := rand.New(rand.NewPCG(3, 7))
	step := func(tick int) {
		for p := range prom3Pods {
			pod := fmt.Sprintf("pod-%d", p)
			mu := math.Log(0.02*(1+float64(p)/2)) + 0.6*math.Sin(float64(tick)/250+float64(p))
			for range 1 + rng.IntN(3) {
				latency.WithLabelValues(pod).Observe(math.Exp(mu + 0.7*rng.NormFloat64()))
				code := "200"
				if rng.IntN(20) == 0 {
					code = "500"
				}
				requests.WithLabelValues(pod, code).Inc()
			}
		}
	}
	const tickEvery = 20 * time.Millisecond
	warmup := int(time.Minute / tickEvery)
	for tick := range warmup {
		step(tick)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(tickEvery)
		defer ticker.Stop()
		for tick := warmup; ; tick++ {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				step(tick)
			}
		}
	}()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return srv.Listener.Addr().String()
}

// rwTap is a reverse proxy in front of a remote-write receiver that records what crosses it:
// the Content-Type of each request, the status of each answer and its Remote Write 2.0
// -Written headers. A test reads the protocol off the wire instead of trusting either end.
type rwTap struct {
	// URL is the write URL to give senders in place of the receiver's.
	URL string

	mu             sync.Mutex
	contentTypes   map[string]int
	statuses       map[int]int
	withoutWritten int // 2xx answers without X-Prometheus-Remote-Write-Samples-Written
	samples        int64
	histograms     int64
}

// newRWTap starts a tap in front of the receiver at writeURL; it closes when the test ends.
func newRWTap(t *testing.T, writeURL string) *rwTap {
	t.Helper()
	target, err := url.Parse(writeURL)
	if err != nil {
		t.Fatal(err)
	}
	tap := &rwTap{contentTypes: map[string]int{}, statuses: map[int]int{}}
	srv := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host, r.Out.Host = target.Scheme, target.Host, target.Host
		},
		ModifyResponse: tap.record,
	})
	t.Cleanup(srv.Close)
	tap.URL = srv.URL + target.Path
	return tap
}

// record notes one request and its answer.
func (tap *rwTap) record(resp *http.Response) error {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	tap.contentTypes[resp.Request.Header.Get("Content-Type")]++
	tap.statuses[resp.StatusCode]++
	written := func(what string) (int64, bool) {
		v := resp.Header.Get("X-Prometheus-Remote-Write-" + what + "-Written")
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	samples, ok := written("Samples")
	histograms, _ := written("Histograms")
	if !ok && resp.StatusCode/100 == 2 {
		tap.withoutWritten++
	}
	tap.samples += samples
	tap.histograms += histograms
	return nil
}

// check fails the test unless every request crossing the tap was Remote Write 2.0, answered
// 2xx with -Written headers, and floats and native histograms were written.
func (tap *rwTap) check(t *testing.T, hop string) {
	t.Helper()
	tap.mu.Lock()
	defer tap.mu.Unlock()
	t.Logf("%s: requests by Content-Type %v, answers by status %v, written: %d samples, %d histograms",
		hop, tap.contentTypes, tap.statuses, tap.samples, tap.histograms)
	for ct := range tap.contentTypes {
		if !strings.Contains(ct, "proto="+rw2Message) {
			t.Errorf("%s: a request with Content-Type %q, want Remote Write 2.0 (proto=%s)", hop, ct, rw2Message)
		}
	}
	for code := range tap.statuses {
		if code/100 != 2 {
			t.Errorf("%s: answers by status %v, want only 2xx", hop, tap.statuses)
		}
	}
	if tap.withoutWritten > 0 {
		t.Errorf("%s: %d 2xx answers without X-Prometheus-Remote-Write-Samples-Written (a 1.0 receiver's answer)", hop, tap.withoutWritten)
	}
	if tap.samples == 0 || tap.histograms == 0 {
		t.Errorf("%s: written %d samples and %d native histograms, want both > 0", hop, tap.samples, tap.histograms)
	}
}

// TestProm3_agent_RW2_through_cardinal_into_prometheus3_matches_raw runs the deployment
// cardinal is for with Prometheus 3.7 at both ends: an agent scrapes a target exposing a
// latency histogram with classic and native buckets and a counter for five pods, and sends
// Remote Write 2.0 raw to one Prometheus 3 server and through cardinal, which drops pod and
// instance and sends 2.0 on, to another. Taps on both hops of cardinal check the protocol on
// the wire; the agent must count nothing failed.
//
// The comparison is exact but for rounding, because the windows are the scrapes: cardinal's
// interval equals the scrape interval, so each window holds one scrape and the aggregate at a
// window end T is the raw sum at the scrape just before it, less the sum at the first.
// Prometheus 3 ranges are left-open, so at T, (T-30s, T] holds the same six scrapes on both
// sides, and rate() extrapolates both to the whole range (each has a sample within one
// interval of each boundary): rate is the increase over the sampled interval, the same on
// both sides. All pods share a target, so they share timestamps, and the sum of their rates
// is the rate of their sum. Hence:
//   - histogram_quantile divides bucket rates by one another, so the sampled interval cancels:
//     only rounding (1e-9) may separate the quantiles;
//   - a counter's rate may also differ by the scrape timestamps that Prometheus left off the
//     schedule (it aligns those within 2 ms to it): a sampled interval off by d in 25 s is a
//     relative d/25s, so the bound is twice the largest offset measured, over 25 s.
//
// One condition is arranged rather than met: raw rate() stops extrapolating a float counter
// where it would reach zero, per series. The target's simulated minute before the first
// scrape keeps each pod's counters far from that, the comparison starts two windows after the
// aggregate's first sample, and the lowest classic bucket holds about a sixth of the
// observations, so that no bucket of the aggregate is near empty either. And one is assumed:
// every sample reaches cardinal within flush_delay (one interval, 5 s) of its window's end.
// The agent sends from one queue shard (InOrder), so a later scrape never overtakes an
// earlier one and closes its window first; it sends within a second, leaving 4 s for a
// loaded machine. (At 3 s windows and the default shards, a CI run under load once had 70
// samples arrive late: cardinal_aggregator_samples_late_total, which the failure prints.)
func TestProm3_agent_RW2_through_cardinal_into_prometheus3_matches_raw(t *testing.T) {
	prom3 := requirePrometheus3(t)
	const (
		every  = 5 * time.Second  // scrape interval and cardinal's window
		window = 30 * time.Second // the range of rate()
		points = 8                // evaluation times, one window apart
	)
	began := time.Now()
	target := startShopTarget(t)
	server := prometheusOptions{Prometheus3: prom3, NativeHistograms: true, ScrapeInterval: every}
	raw := startPrometheus(t, server)
	agg := startPrometheus(t, server)
	aggTap := newRWTap(t, agg.WriteURL)
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: %s
  flush_delay: %s
  unmatched: drop
downstream:
  remote_write:
    - name: aggregate
      url: %s
      protobuf_message: %s
rules:
  - metric_name: %s
    type: histogram
    drop_labels: [pod, instance]
  - metric_name: %s
    type: counter
    drop_labels: [pod, instance]
`, every, every, aggTap.URL, rw2Message, prom3Latency, prom3Requests))
	cardTap := newRWTap(t, card.WriteURL)
	agent := startPrometheus(t, prometheusOptions{
		Prometheus3:      prom3,
		Agent:            true,
		NativeHistograms: true,
		ScrapeInterval:   every,
		Scrape:           map[string][]string{"shop": {target}},
		RemoteWrite:      []string{cardTap.URL, raw.WriteURL},
		ProtobufMessage:  rw2Message,
		InOrder:          true,
	})

	// The first evaluation time: the range starts two windows after the aggregate's first
	// sample (see above).
	var first int64
	eventually(t, 60*time.Second, "the first aggregated sample", func() (bool, error) {
		ts := sampleTimes(t, agg.URL, prom3Requests+`{code="200"}[1m]`, time.Now())
		if len(ts) == 0 {
			return false, fmt.Errorf("no samples yet")
		}
		first = ts[0]
		return true, nil
	})
	start := time.UnixMilli(first).Add(window + 2*every)
	var times []time.Time
	for i := range points {
		times = append(times, start.Add(time.Duration(i)*every))
	}
	last := times[len(times)-1]
	// Wait for the last compared window downstream and, in the raw server, for every series'
	// scrape in it.
	reachedBy := func(promURL string) float64 { // every series has a sample this recent (s)
		oldest := math.Inf(1)
		for _, name := range []string{prom3Requests, prom3Latency, prom3Latency + "_bucket", prom3Latency + "_sum", prom3Latency + "_count"} {
			oldest = min(oldest, query(t, promURL, `min(timestamp(`+name+`))`, time.Now())["{}"])
		}
		return oldest
	}
	eventually(t, window+time.Duration(points+10)*every, "the last compared window in both servers", func() (bool, error) {
		a, r := reachedBy(agg.URL), reachedBy(raw.URL)
		return a >= float64(last.Unix()) && r > float64(last.Add(-every).Unix()),
			fmt.Errorf("newest samples at %v (aggregate), %v (raw); waiting for %v", a, r, last.Unix())
	})

	// The bound: how far raw scrape timestamps strayed from a fixed schedule.
	scrapes := sampleTimes(t, raw.URL, prom3Requests+`{pod="pod-0", code="200"}[5m]`, last)
	var stray int64
	for _, ts := range scrapes {
		off := (ts - scrapes[0]) % every.Milliseconds()
		stray = max(stray, min(off, every.Milliseconds()-off))
	}
	const rounding = 1e-9
	rateTol := rounding + 2*float64(stray)/float64((window-every).Milliseconds())
	t.Logf("%d raw scrapes, %s apart within %d ms: rate tolerance %.3g", len(scrapes), every, stray, rateTol)

	rangeSel := "[" + window.String() + "]"
	var report []string
	for _, c := range []struct {
		what, raw, agg string
		tol            float64
	}{
		{"classic histogram p90",
			`histogram_quantile(0.9, sum without (pod, instance) (rate(` + prom3Latency + `_bucket` + rangeSel + `)))`,
			`histogram_quantile(0.9, rate(` + prom3Latency + `_bucket` + rangeSel + `))`, rounding},
		{"native histogram p90",
			`histogram_quantile(0.9, sum without (pod, instance) (rate(` + prom3Latency + rangeSel + `)))`,
			`histogram_quantile(0.9, rate(` + prom3Latency + rangeSel + `))`, rounding},
		{"counter rate",
			`sum without (pod, instance) (rate(` + prom3Requests + rangeSel + `))`,
			`rate(` + prom3Requests + rangeSel + `)`, rateTol},
	} {
		report = append(report, compareAt(t, c.what, raw.URL, agg.URL, c.raw, c.agg, times, c.tol))
	}
	for _, line := range report {
		t.Log(line)
	}

	// The aggregate: one series per le, _sum, _count, one native histogram (stored as one)
	// and one counter per code, none of them reset.
	at := last
	series := query(t, agg.URL, `count by (__name__) ({__name__=~"prom3_.+"})`, at)
	want := map[string]float64{
		prom3Latency + "_bucket": float64(len(prom3Buckets) + 1),
		prom3Latency + "_sum":    1,
		prom3Latency + "_count":  1,
		prom3Latency:             1,
		prom3Requests:            2,
	}
	for name, n := range want {
		if got := series[`{__name__="`+name+`"}`]; got != n {
			t.Errorf("aggregated series named %s: %v, want %v", name, got, n)
		}
	}
	if len(series) != len(want) {
		t.Errorf("aggregated series by name: %v, want %d names", series, len(want))
	}
	if n := query(t, agg.URL, `count({__name__=~"prom3_.+", pod!=""} or {__name__=~"prom3_.+", instance!=""})`, at); len(n) != 0 {
		t.Errorf("aggregated series with pod or instance: %v", n)
	}
	if kinds := sampleKinds(t, agg.URL, prom3Latency, at); len(kinds) != 1 || kinds[0] != "histogram" {
		t.Errorf("%s in the aggregate: %v, want one native histogram", prom3Latency, kinds)
	}
	for name, n := range want {
		resets := query(t, agg.URL, `resets(`+name+`[5m])`, at)
		if float64(len(resets)) != n {
			t.Errorf("resets(%s[5m]): %d series, want %v", name, len(resets), n)
		}
		for key, v := range resets {
			if v != 0 {
				t.Errorf("resets(%s[5m]) of %s = %v, want 0", name, key, v)
			}
		}
	}

	// The protocol: 2.0 on both of cardinal's hops, and nothing the agent counts as failed
	// (it takes a 2.0 answer whose -Written headers count less than it sent as a failure).
	cardTap.check(t, "agent -> cardinal")
	aggTap.check(t, "cardinal -> aggregate Prometheus")
	agentMetrics := scrapeCardinal(t, agent.URL) // any /metrics page parses
	for _, u := range []string{cardTap.URL, raw.WriteURL} {
		for _, m := range []string{"samples", "histograms"} {
			sent, n := metricValue(agentMetrics, "prometheus_remote_storage_"+m+"_total", "url", u)
			failed, _ := metricValue(agentMetrics, "prometheus_remote_storage_"+m+"_failed_total", "url", u)
			if n != 1 || sent <= 0 || failed != 0 {
				t.Errorf("agent to %s: %s sent %v (%d series), failed %v; want > 0 sent, 0 failed", u, m, sent, n, failed)
			}
		}
	}
	ms := scrapeCardinal(t, card.URL)
	for _, name := range []string{"cardinal_receiver_rejected_series_total", "cardinal_receiver_rejected_requests_total",
		"cardinal_aggregator_samples_dropped_total", "cardinal_aggregator_samples_late_total", "cardinal_aggregator_metadata_type_mismatches_total",
		"cardinal_downstream_samples_failed_total"} {
		if v, _ := metricValue(ms, name); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
	if v, _ := metricValue(ms, "cardinal_downstream_samples_sent_total"); v <= 0 {
		t.Errorf("cardinal_downstream_samples_sent_total = %v, want > 0", v)
	}
	t.Logf("the test ran %s", time.Since(began).Round(time.Second))
}

// compareAt evaluates rawExpr on rawURL and aggExpr on aggURL at each of times and fails the
// test where a series is missing, not positive, or differs by more than tol (relative). It
// returns a line for the log: the largest difference and the values compared.
func compareAt(t *testing.T, what, rawURL, aggURL, rawExpr, aggExpr string, times []time.Time, tol float64) string {
	t.Helper()
	worst, worstAt := 0.0, ""
	var values []string
	n := 0
	for _, ts := range times {
		want, got := map[string]float64{}, map[string]float64{}
		for k, v := range query(t, rawURL, rawExpr, ts) {
			want[stripName(k)] = v
		}
		for k, v := range query(t, aggURL, aggExpr, ts) {
			got[stripName(k)] = v
		}
		if len(want) == 0 {
			t.Fatalf("%s at %s: the raw query %q returned nothing", what, ts.Format(time.TimeOnly), rawExpr)
		}
		if len(got) != len(want) {
			t.Errorf("%s at %s: aggregated series %v, raw %v", what, ts.Format(time.TimeOnly), keys(got), keys(want))
		}
		for _, key := range slices.Sorted(maps.Keys(want)) {
			w := want[key]
			g, ok := got[key]
			switch {
			case !ok:
				t.Errorf("%s at %s: %s missing from the aggregate", what, ts.Format(time.TimeOnly), key)
				continue
			case !(w > 0) || !(g > 0):
				t.Errorf("%s at %s: %s raw %v, aggregated %v, want both > 0", what, ts.Format(time.TimeOnly), key, w, g)
				continue
			}
			n++
			e := relErr(g, w)
			if e >= worst {
				worst, worstAt = e, fmt.Sprintf("%s at %s: raw %.17g, aggregated %.17g", key, ts.Format(time.TimeOnly), w, g)
			}
			if e > tol {
				t.Errorf("%s at %s: %s raw %.17g, aggregated %.17g: relative difference %.3g over %.3g",
					what, ts.Format(time.TimeOnly), key, w, g, e, tol)
			}
			values = append(values, strconv.FormatFloat(w, 'g', 5, 64))
		}
	}
	return fmt.Sprintf("%s: %d values at %d times, largest relative difference %.3g (%s); raw values %s",
		what, n, len(times), worst, worstAt, strings.Join(values, " "))
}

// sampleTimes returns the timestamps (ms) of the samples a range selector matching one series
// selects at ts, oldest first.
func sampleTimes(t *testing.T, promURL, selector string, ts time.Time) []int64 {
	t.Helper()
	resp := getAPI(t, promURL+"/api/v1/query", url.Values{"query": {selector}, "time": {apiTime(ts)}})
	var matrix []struct {
		Values     [][2]json.RawMessage `json:"values"`
		Histograms [][2]json.RawMessage `json:"histograms"`
	}
	decodeResult(t, selector, resp, &matrix)
	if len(matrix) > 1 {
		t.Fatalf("%s: %d series, want at most one", selector, len(matrix))
	}
	var out []int64
	for _, r := range matrix {
		for _, v := range append(r.Values, r.Histograms...) {
			var sec float64
			if err := json.Unmarshal(v[0], &sec); err != nil {
				t.Fatalf("%s: timestamp %s: %v", selector, v[0], err)
			}
			out = append(out, int64(math.Round(sec*1000)))
		}
	}
	slices.Sort(out)
	return out
}

// sampleKinds runs an instant query at ts and returns, per series, whether its value is a
// "float" or a "histogram".
func sampleKinds(t *testing.T, promURL, expr string, ts time.Time) []string {
	t.Helper()
	resp := getAPI(t, promURL+"/api/v1/query", url.Values{"query": {expr}, "time": {apiTime(ts)}})
	var vector []struct {
		Value     json.RawMessage `json:"value"`
		Histogram json.RawMessage `json:"histogram"`
	}
	decodeResult(t, expr, resp, &vector)
	var out []string
	for _, r := range vector {
		switch {
		case r.Histogram != nil && r.Value == nil:
			out = append(out, "histogram")
		case r.Value != nil && r.Histogram == nil:
			out = append(out, "float")
		default:
			out = append(out, "neither")
		}
	}
	return out
}
