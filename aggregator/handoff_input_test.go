package aggregator

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// What a member takes in, from a client or a peer's handoff, must not stall or crash it.

// TestAHistogramWithAnEmptySpanAggregates: a span of length 0 is valid remote write (what
// Prometheus's Compact would remove); adding it to another histogram panicked in the
// bucket walk. It is compacted on the way in.
func TestAHistogramWithAnEmptySpanAggregates(t *testing.T) {
	mk := func(pod string, spans []histogram.Span, buckets []int64, count uint64) prompb.TimeSeries {
		s := series("nqueue{job=a,pod=" + pod + "}")
		h := &histogram.Histogram{CounterResetHint: histogram.GaugeType, ZeroThreshold: 1e-128,
			Count: count, Sum: float64(count), PositiveSpans: spans, PositiveBuckets: buckets}
		s.Histograms = append(s.Histograms, prompb.FromIntHistogram(1000, h))
		return s
	}
	clk := &testClock{t: time.Unix(0, 0)}
	out := &collectSink{}
	a := New(Options{Output: out, Now: clk.now})
	if err := a.SetRules([]*rules.Rule{gaugeRule("nqueue", "sum")}); err != nil {
		t.Fatal(err)
	}
	a.Ingest([]prompb.TimeSeries{
		mk("p0", []histogram.Span{{Offset: 0, Length: 0}}, nil, 0),
		mk("p1", []histogram.Span{{Offset: 0, Length: 1}}, []int64{1}, 1),
		mk("p2", []histogram.Span{{Offset: 0, Length: 0}, {Offset: 1, Length: 1}}, []int64{2}, 2),
	})
	flushAt(a, clk, 14)
	flushAt(a, clk, 24)
	if got := strings.Join(out.nativePoints(), " "); !strings.Contains(got, "count:3") {
		t.Errorf("sum of the two histograms: %s, want a count of 3", got)
	}
}

// TestAHandedOffWindowItsOwnerCannotAddIsNotCounted: a native gauge output whose inputs have
// custom buckets at the old owner and exponential ones at the new: the handed-off window's
// histogram is refused, and so must its count be, or the window claims a histogram it does
// not hold and the flush that closes it panics.
func TestAHandedOffWindowItsOwnerCannotAddIsNotCounted(t *testing.T) {
	clk := &testClock{t: time.Unix(0, 0)}
	var bodies [][]byte
	a := New(Options{Output: &collectSink{}, Now: clk.now, HandOff: func(h *Handoff) {
		bodies = append(bodies, h.Encode(func(uint64) bool { return true }))
	}})
	b := New(Options{Output: &collectSink{}, Now: clk.now})
	for _, m := range []*Aggregator{a, b} {
		if err := m.SetRules([]*rules.Rule{gaugeRule("nqueue", "sum", "count")}); err != nil {
			t.Fatal(err)
		}
	}
	a.SetOwnership(all{owns: true})
	b.SetOwnership(all{})
	for _, ts := range []float64{1, 11, 21, 31} {
		a.Ingest([]prompb.TimeSeries{customBucketsGauge("nqueue{job=a,pod=p1}", ts, 3)})
		b.Ingest([]prompb.TimeSeries{nseries("nqueue{job=b,pod=p9}", gaugeAt(ts, nh(0, 1, 0, 1)))})
		flushAt(a, clk, int64(ts)+3)
		b.Flush(false)
	}
	a.Ingest([]prompb.TimeSeries{customBucketsGauge("nqueue{job=a,pod=p1}", 41, 3)})
	a.SetOwnership(all{})
	b.SetOwnership(all{owns: true, awaits: true})
	b.Ingest([]prompb.TimeSeries{nseries("nqueue{job=a,pod=p2}", gaugeAt(41, nh(0, 4, 0, 4)))})
	a.HandOffNow()
	for _, body := range bodies {
		if _, err := b.Merge(body); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("the flush after the merge panicked: %v", p)
		}
	}()
	flushAt(b, clk, 44)
}

// customBucketsGauge is a gauge series with one custom-buckets histogram sample.
func customBucketsGauge(spec string, ts float64, v float64) prompb.TimeSeries {
	s := series(spec)
	fh := &histogram.FloatHistogram{Schema: histogram.CustomBucketsSchema, CounterResetHint: histogram.GaugeType,
		Count: v, Sum: v, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{v},
		CustomValues: []float64{1, 5}}
	h := prompb.FromFloatHistogram(int64(ts*1000), fh)
	h.CustomValues = fh.CustomValues
	s.Histograms = append(s.Histograms, h)
	return s
}

// TestARefusedHandoffChangesNothing: a body that fails to decode part-way is refused with an
// error, and none of the outputs before the fault are merged (the sender gets a 400 and
// goes on without it; half a handoff merged would count what it then counts again).
func TestARefusedHandoffChangesNothing(t *testing.T) {
	bodies := handoffBodies(t)
	body := bodies[len(bodies)-1]
	a := New(Options{Output: &collectSink{}, Now: (&testClock{t: time.Unix(30, 0)}).now})
	if err := a.SetRules(joinRules()); err != nil {
		t.Fatal(err)
	}
	cut := body[:len(body)-3] // the last output's tail is missing
	if _, err := a.Merge(cut); err == nil {
		t.Fatal("a truncated handoff was merged without an error")
	}
	for _, st := range a.Stats() {
		if st.OutputSeries != 0 || st.InputSeries != 0 {
			t.Errorf("rule %s holds %d outputs and %d inputs after a refused handoff, want none", st.Name, st.OutputSeries, st.InputSeries)
		}
	}
}

// TestAHandoffFromFarInThePastIsRefused: a handoff's closed window is its sender's last
// closed one, minutes old at most; one claiming a window years before now would have the
// receiver close every window since under a shard lock.
func TestAHandoffFromFarInThePastIsRefused(t *testing.T) {
	bodies := handoffBodies(t) // windows near the Unix epoch
	a := New(Options{Output: &collectSink{}, Now: (&testClock{t: time.Unix(30, 0).Add(maxHandoffAge + time.Hour)}).now})
	if err := a.SetRules(joinRules()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Merge(bodies[len(bodies)-1]); err == nil || !strings.Contains(err.Error(), "not within") {
		t.Errorf("a handoff of windows %s old: %v, want it refused", maxHandoffAge+time.Hour, err)
	}
}
