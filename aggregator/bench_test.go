package aggregator

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/rules"
)

// benchSetup builds metrics×pods counter series in requests of perReq series, with one rule
// per metric dropping pod and instance (the docs/design.md §6 scenario, scaled by the arguments).
func benchSetup(b *testing.B, metrics, pods, perReq int) (*Aggregator, [][]prompb.TimeSeries) {
	return benchSetupWith(b, metrics, pods, perReq, nil, nil)
}

// benchSetupWith is benchSetup with extra labels on every series (sorted in) and, when ha is
// set, the election on every rule.
func benchSetupWith(b *testing.B, metrics, pods, perReq int, extra []prompb.Label, ha *rules.HA) (*Aggregator, [][]prompb.TimeSeries) {
	b.Helper()
	var rs []*rules.Rule
	names := make([]string, metrics)
	for m := range metrics {
		names[m] = fmt.Sprintf("bench_metric_%03d_total", m)
		r := counterRule(names[m])
		r.Interval, r.FlushDelay, r.Staleness = 15*time.Second, 10*time.Second, 5*time.Minute
		r.HA = ha
		rs = append(rs, r)
	}
	// Pod-major, as agents send a scrape: every metric of pod 0, then of pod 1, ... so a
	// request spreads over every rule, as in the end-to-end scenario.
	var all []prompb.TimeSeries
	for p := range pods {
		for _, name := range names {
			all = append(all, prompb.TimeSeries{
				Labels: []prompb.Label{
					{Name: rules.MetricNameLabel, Value: name},
					{Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:9100", p/250, p%250)},
					{Name: "job", Value: "bench"},
					{Name: "namespace", Value: "default"},
					{Name: "pod", Value: fmt.Sprintf("app-%08d", p)},
					{Name: "status", Value: fmt.Sprint(p % 4)},
				},
				Samples: []prompb.Sample{{}},
			})
			ls := &all[len(all)-1].Labels
			*ls = append(*ls, extra...)
			slices.SortFunc(*ls, func(x, y prompb.Label) int { return strings.Compare(x.Name, y.Name) })
		}
	}
	var reqs [][]prompb.TimeSeries
	for i := 0; i < len(all); i += perReq {
		reqs = append(reqs, all[i:min(i+perReq, len(all))])
	}
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	a := New(Options{Output: &collectSink{}, Now: clk.now})
	if err := a.SetRules(rs); err != nil {
		b.Fatal(err)
	}
	return a, reqs
}

// BenchmarkIngest measures the route + aggregate path per sample on warm state, with
// 100k and with 1M input series (the docs/design.md §6 scenario; the state no longer fits in
// the CPU caches).
func BenchmarkIngest(b *testing.B) {
	for _, pods := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("inputs=%d", 100*pods), func(b *testing.B) { benchIngest(b, pods) })
	}
}

func benchIngest(b *testing.B, pods int) {
	a, reqs := benchSetup(b, 100, pods, 2000)
	benchIngestReqs(b, a, reqs)
}

// benchIngestReqs ingests reqs round after round on warm state and reports ns per sample.
func benchIngestReqs(b *testing.B, a *Aggregator, reqs [][]prompb.TimeSeries) {
	ts := int64(1_700_000_000_000)
	round := func() {
		ts += 15000
		for _, req := range reqs {
			for i := range req {
				req[i].Samples[0] = prompb.Sample{Timestamp: ts, Value: float64(ts / 1000)}
			}
			a.Ingest(req)
		}
	}
	round() // create the state
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		req := reqs[n%len(reqs)]
		if n%len(reqs) == 0 {
			ts += 15000
		}
		for i := range req {
			req[i].Samples[0] = prompb.Sample{Timestamp: ts, Value: float64(ts / 1000)}
		}
		a.Ingest(req)
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*2000), "ns/sample")
}

// BenchmarkIngestHA is BenchmarkIngest's 1M inputs with each series carrying an HA pair's
// group and replica labels: without ha (the baseline), with ha and one replica writing (the
// cost of the election on counted samples), and with ha and both replicas writing in turn
// (half the samples deduplicated; ns/sample over all of them).
func BenchmarkIngestHA(b *testing.B) {
	set := &rules.HA{GroupLabel: "cluster", ReplicaLabel: "__replica__", FailoverTimeout: 30 * time.Second}
	labels := func(replica string) []prompb.Label {
		return []prompb.Label{{Name: "cluster", Value: "prod-eu-1"}, {Name: "__replica__", Value: replica}}
	}
	b.Run("ha=off", func(b *testing.B) {
		a, reqs := benchSetupWith(b, 100, 10000, 2000, labels("prometheus-0"), nil)
		benchIngestReqs(b, a, reqs)
	})
	b.Run("ha=on/one_replica", func(b *testing.B) {
		a, reqs := benchSetupWith(b, 100, 10000, 2000, labels("prometheus-0"), set)
		benchIngestReqs(b, a, reqs)
	})
	b.Run("ha=on/two_replicas", func(b *testing.B) {
		a, reqs := benchSetupWith(b, 100, 10000, 2000, labels("prometheus-0"), set)
		_, second := benchSetupWith(b, 100, 10000, 2000, labels("prometheus-1"), nil)
		var both [][]prompb.TimeSeries
		for i := range reqs {
			both = append(both, reqs[i], second[i])
		}
		benchIngestReqs(b, a, both)
	})
}

// BenchmarkFlush measures closing one window of 100k inputs feeding 100 outputs.
func BenchmarkFlush(b *testing.B) {
	a, reqs := benchSetup(b, 100, 1000, 2000)
	clk := &testClock{}
	a.opts.Now = clk.now
	ts := int64(1_700_000_000_000)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ts += 15000
		clk.t = time.UnixMilli(ts)
		for _, req := range reqs {
			for i := range req {
				req[i].Samples[0] = prompb.Sample{Timestamp: ts, Value: float64(ts / 1000)}
			}
			a.Ingest(req)
		}
		clk.t = time.UnixMilli(ts + 30000)
		b.StartTimer()
		a.Flush(false)
	}
}

// BenchmarkSeriesHashes measures placing one input series (its two hashes) with the labels
// of the end-to-end scenario in one slab, as the decoder leaves them.
func BenchmarkSeriesHashes(b *testing.B) {
	r, series := scenarioSeries(b)
	var kept, dropped []byte
	var sum uint64
	b.ReportAllocs()
	for b.Loop() {
		for _, ls := range series {
			var in, out uint64
			in, out, kept, dropped = r.seriesHashes(kept, dropped, ls)
			sum += in ^ out
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(series)), "ns/series")
	_ = sum
}

// BenchmarkPlaceKeyOfInput measures a cluster member's placement of one input series (the
// placement key of the output it feeds) with BenchmarkSeriesHashes' labels: a member
// computes it for every series its agents send, forwarded or not.
func BenchmarkPlaceKeyOfInput(b *testing.B) {
	r, series := scenarioSeries(b)
	var scratch []byte
	var sum uint64
	b.ReportAllocs()
	for b.Loop() {
		for _, ls := range series {
			var key, kept uint64
			key, kept, scratch = r.placeKeyOfInput(scratch, ls, "loadgen_counter_7_total")
			sum += key ^ kept
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(series)), "ns/series")
	_ = sum
}

// scenarioSeries returns a counter rule of the end-to-end scenario and the label sets of
// 2000 of its input series in one slab, as the decoder leaves them.
func scenarioSeries(b *testing.B) (*ruleState, [][]prompb.Label) {
	r, err := newRuleState(counterRule("loadgen_counter_7_total"))
	if err != nil {
		b.Fatal(err)
	}
	const n = 2000
	slab := make([]prompb.Label, 0, 5*n)
	series := make([][]prompb.Label, n)
	for i := range n {
		l0 := len(slab)
		slab = append(slab,
			prompb.Label{Name: rules.MetricNameLabel, Value: "loadgen_counter_7_total"},
			prompb.Label{Name: "group", Value: fmt.Sprintf("g%d", i%100)},
			prompb.Label{Name: "instance", Value: fmt.Sprintf("10.%d.%d.%d:9100", i>>16, i>>8&255, i&255)},
			prompb.Label{Name: "job", Value: "loadgen"},
			prompb.Label{Name: "pod", Value: fmt.Sprintf("loadgen-%06d", i)})
		series[i] = slab[l0:]
	}
	return r, series
}

// BenchmarkPipeline is the receiver's user-space work in the end-to-end scenario, without
// the network: a real remotewrite.Handler reads, snappy-decodes, decodes and validates each
// body and hands it to a real Aggregator. 100 counter metrics × 10,000 pods = 1M input
// series with the load generator's label set (__name__, group, instance, job, pod), in
// pod-major 2000-sample requests, a rule per metric dropping pod and instance. One iteration
// is one round, every series once, followed by the flush that closes the previous window; a
// round's bodies are encoded with the timer stopped. Comparing builds with benchstat, this
// shows changes of a few percent that the end-to-end benchmark's noise hides.
func BenchmarkPipeline(b *testing.B) {
	const metrics, pods, perReq = 100, 10000, 2000
	var rs []*rules.Rule
	for m := range metrics {
		r := counterRule(fmt.Sprintf("loadgen_counter_%d_total", m))
		r.Interval, r.FlushDelay, r.Staleness = 15*time.Second, 10*time.Second, 5*time.Minute
		rs = append(rs, r)
	}
	all := make([]prompb.TimeSeries, 0, metrics*pods)
	for p := range pods {
		for _, r := range rs {
			all = append(all, prompb.TimeSeries{
				Labels: []prompb.Label{
					{Name: rules.MetricNameLabel, Value: r.Name},
					{Name: "group", Value: fmt.Sprintf("g%d", p%100)},
					{Name: "instance", Value: fmt.Sprintf("instance-%07d", p%100)},
					{Name: "job", Value: "loadgen"},
					{Name: "pod", Value: fmt.Sprintf("pod-%012d", p)},
				},
				Samples: []prompb.Sample{{}},
			})
		}
	}
	clk := &testClock{}
	a := New(Options{Output: &collectSink{}, Now: clk.now})
	if err := a.SetRules(rs); err != nil {
		b.Fatal(err)
	}
	h := remotewrite.NewHandler(appendFunc(func(req *prompb.WriteRequest) { a.Ingest(req.Timeseries) }),
		remotewrite.HandlerOptions{Limits: remotewrite.DefaultLimits()}, nil, nil)

	ts := int64(1_700_000_000_000)
	var enc remotewrite.Encoder
	bodies := make([][]byte, (len(all)+perReq-1)/perReq) // reused: no garbage between rounds
	encodeRound := func() {
		ts += 15000
		clk.t = time.UnixMilli(ts + 11000) // the previous window is past its flush delay
		for i := 0; i < len(all); i += perReq {
			req := all[i:min(i+perReq, len(all))]
			for j := range req {
				req[j].Samples[0] = prompb.Sample{Timestamp: ts, Value: float64(ts/1000 + int64(j))}
			}
			body, err := enc.Encode(req)
			if err != nil {
				b.Fatal(err)
			}
			bodies[i/perReq] = append(bodies[i/perReq][:0], body...)
		}
	}
	sendRound := func() {
		for _, body := range bodies {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", remotewrite.WritePath, bytes.NewReader(body)))
			if rec.Code != http.StatusNoContent {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
		a.Flush(false)
	}
	encodeRound()
	sendRound() // creates the 1M inputs
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		encodeRound()
		b.StartTimer()
		sendRound()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(all)), "ns/sample")
	// The scenario is what it claims: every sample of every round counted, none dropped.
	var inputs, samples int64
	for _, st := range a.Stats() {
		inputs += st.InputSeries
		samples += int64(st.Samples)
		for reason, n := range st.Dropped {
			if n > 0 {
				b.Fatalf("rule %s dropped %d samples (%s)", st.Name, n, reason)
			}
		}
	}
	if inputs != int64(len(all)) || samples != int64((b.N+1)*len(all)) {
		b.Fatalf("%d inputs and %d samples, want %d and %d", inputs, samples, len(all), (b.N+1)*len(all))
	}
}

// appendFunc adapts a function to remotewrite.Appender.
type appendFunc func(*prompb.WriteRequest)

func (f appendFunc) Append(_ context.Context, req *prompb.WriteRequest, _ []byte) error {
	f(req)
	return nil
}
