package aggregator

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

func TestHistogramRuleAggregatesBucketsSumAndCount(t *testing.T) {
	r := counterRule("lat")
	r.Type, r.MetricNames, r.BaseName, r.OutputName = rules.Histogram, []string{"lat_bucket", "lat_count", "lat_sum"}, "lat", "agg_lat"
	_, out, _ := runSteps(t, r, []step{
		ingestAt(2,
			series("lat_bucket{pod=a,le=1}", 1, 1), series("lat_bucket{pod=a,le=+Inf}", 1, 2),
			series("lat_bucket{pod=b,le=1}", 1, 0), series("lat_bucket{pod=b,le=+Inf}", 1, 0),
			series("lat_sum{pod=a}", 1, 3), series("lat_count{pod=a}", 1, 2)),
		ingestAt(12,
			series("lat_bucket{pod=a,le=1}", 11, 2), series("lat_bucket{pod=a,le=+Inf}", 11, 4),
			series("lat_bucket{pod=b,le=1}", 11, 1), series("lat_bucket{pod=b,le=+Inf}", 11, 3),
			series("lat_sum{pod=a}", 11, 5), series("lat_count{pod=a}", 11, 4)),
		flushWall(25),
	})
	want := []string{"agg_lat_bucket{le=+Inf}@20=5", "agg_lat_bucket{le=1}@20=2", "agg_lat_count{}@20=2", "agg_lat_sum{}@20=2"}
	if got := out.points(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestSummaryQuantilesDroppedAndCounted(t *testing.T) {
	r := counterRule("rpc")
	r.Type, r.MetricNames, r.BaseName = rules.Summary, []string{"rpc", "rpc_count", "rpc_sum"}, "rpc"
	a, out, fwd := runSteps(t, r, []step{
		ingestAt(2, series("rpc{pod=a,quantile=0.9}", 1, 3), series("rpc_count{pod=a}", 1, 1)),
		ingestAt(12, series("rpc{pod=a,quantile=0.9}", 11, 3), series("rpc_count{pod=a}", 11, 4)),
		flushWall(25),
	})
	if got, want := out.points(), []string{"rpc_count{}@20=3"}; !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
	if n := a.Stats()[0].Dropped["unaggregatable"]; n != 2 {
		t.Errorf("unaggregatable drops = %d, want 2", n)
	}
	if len(fwd.series) != 0 {
		t.Errorf("matched series were forwarded raw: %v", fwd.points())
	}
}

func TestUnmatchedSeriesForwardedAndKeepInput(t *testing.T) {
	r := counterRule("req_total")
	r.KeepInput = true
	a, _, fwd, _ := newTestAggregator(t, 2, r)
	a.Ingest([]prompb.TimeSeries{series("req_total{pod=a}", 1, 1), series("other{pod=a}", 1, 7)})
	want := []string{"other{pod=a}@1=7", "req_total{pod=a}@1=1"}
	if got := fwd.points(); !slices.Equal(got, want) {
		t.Errorf("forwarded %q, want %q", got, want)
	}

	drop := New(Options{Forward: fwd, ForwardUnmatched: false})
	fwd.series = nil
	drop.Ingest([]prompb.TimeSeries{series("other{pod=a}", 1, 7)})
	if len(fwd.series) != 0 || drop.unmatchedDropped.Load() != 1 {
		t.Errorf("unmatched: drop forwarded %d series, counted %d drops", len(fwd.series), drop.unmatchedDropped.Load())
	}
}

func TestForwardedSeriesDoNotAliasRequestBuffers(t *testing.T) {
	a, _, fwd, _ := newTestAggregator(t, 2)
	buf := []byte("other")
	ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: rules.MetricNameLabel, Value: string(buf)}}, Samples: []prompb.Sample{{Timestamp: 1, Value: 1}}}
	req := []prompb.TimeSeries{ts}
	a.Ingest(req)
	req[0].Samples[0].Value = 99
	if fwd.series[0].Samples[0].Value != 1 {
		t.Error("forwarded series shares its samples with the request")
	}
}

func TestByModeAddLabelsAndOutputName(t *testing.T) {
	r := counterRule("req_total")
	r.ByMode, r.By, r.Without = true, []string{"job"}, nil
	r.OutputName = "job:req:total"
	r.AddLabels = []prompb.Label{{Name: "agg", Value: "cardinal"}}
	_, out, _ := runSteps(t, r, []step{
		ingestAt(2, series("req_total{pod=a,job=x,code=200}", 1, 1), series("req_total{pod=b,job=x,code=500}", 1, 1)),
		ingestAt(12, series("req_total{pod=a,job=x,code=200}", 11, 2), series("req_total{pod=b,job=x,code=500}", 11, 3)),
		flushWall(25),
	})
	if got, want := out.points(), []string{"job:req:total{agg=cardinal,job=x}@20=3"}; !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestSetRulesKeepsStateOfUnchangedRules(t *testing.T) {
	kept, changed := counterRule("a_total"), counterRule("b_total")
	a, out, _, clk := newTestAggregator(t, 2, kept, changed)
	a.Ingest([]prompb.TimeSeries{series("a_total{pod=x}", 1, 0), series("b_total{pod=x}", 1, 0)})
	clk.t = time.Unix(12, 0)
	a.Ingest([]prompb.TimeSeries{series("a_total{pod=x}", 11, 10), series("b_total{pod=x}", 11, 10)})
	flushAt(a, clk, 25)

	// Reload: a_total's definition is the same (a new *Rule with the same fingerprint);
	// b_total's changed.
	kept2, changed2 := counterRule("a_total"), counterRule("b_total")
	changed2.Without = []string{"pod"}
	changed2.Fingerprint++
	if err := a.SetRules([]*rules.Rule{kept2, changed2}); err != nil {
		t.Fatal(err)
	}
	clk.t = time.Unix(32, 0)
	a.Ingest([]prompb.TimeSeries{series("a_total{pod=x}", 31, 15), series("b_total{pod=x}", 31, 15)})
	flushAt(a, clk, 45)
	got := out.points()
	// a_total continues from 10 (+5 in window 4); b_total starts afresh (baseline, first window not emitted).
	for _, want := range []string{"a_total{}@20=10", "a_total{}@30=10", "a_total{}@40=15"} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %s in %q", want, got)
		}
	}
	// The changed rule's old output ends with a stale marker right after its last window.
	if !slices.Contains(got, "b_total{}@20=stale") {
		t.Errorf("changed rule's old output was not ended with a stale marker: %q", got)
	}
	for _, p := range got {
		if p == "b_total{}@40=15" || p == "b_total{}@40=5" {
			t.Errorf("changed rule kept old state: %s", p)
		}
	}
}

func TestLimitsDropOnlyNewSeries(t *testing.T) {
	r := counterRule("req_total")
	r.MaxInputSeries = 2
	a, out, _ := runSteps(t, r, []step{
		ingestAt(2, series("req_total{pod=a}", 1, 0), series("req_total{pod=b}", 1, 0), series("req_total{pod=c}", 1, 0)),
		ingestAt(12, series("req_total{pod=a}", 11, 1), series("req_total{pod=b}", 11, 1), series("req_total{pod=c}", 11, 50)),
		flushWall(25),
	})
	if got, want := out.points(), []string{"req_total{}@20=2"}; !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
	if n := a.Stats()[0].Dropped["limit"]; n != 2 {
		t.Errorf("limit drops = %d, want 2", n)
	}
}

// A forced flush (shutdown without a WAL) closes the open window early: it is stamped with
// its newest sample (21), not its end (30), which lies in the future and which the next
// process would write again when it continues the window.
func TestForcedFlushStampsThePartialWindowAtItsNewestSample(t *testing.T) {
	_, out, _ := runSteps(t, counterRule("req_total"), []step{
		ingestAt(2, series("req_total{pod=a}", 1, 0)),
		ingestAt(12, series("req_total{pod=a}", 11, 4)),
		ingestAt(22, series("req_total{pod=a}", 21, 6)),
		{wall: 23, force: true},
	})
	if got, want := out.points(), []string{"req_total{}@20=4", "req_total{}@21=6"}; !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestFirstSampleCountAfterWarmup(t *testing.T) {
	r := counterRule("req_total")
	r.FirstSample = rules.FirstSampleCount
	_, out, _ := runSteps(t, r, []step{
		ingestAt(2, series("req_total{pod=a}", 1, 0)),
		ingestAt(12, series("req_total{pod=a}", 11, 1), series("req_total{pod=early}", 11, 7)),
		ingestAt(42, series("req_total{pod=a}", 41, 1), series("req_total{pod=late}", 41, 3)),
		flushWall(55),
	})
	// pod=early appears within the staleness period: baseline. pod=late appears after: counted.
	for _, want := range []string{"req_total{}@20=1", "req_total{}@50=4"} {
		if !slices.Contains(out.points(), want) {
			t.Errorf("missing %s in %q", want, out.points())
		}
	}
}

// The decoder's label strings point into a pooled request buffer that the next request
// overwrites: output series must not keep any of them.
func TestOutputLabelsDoNotAliasRequestBuffers(t *testing.T) {
	a, out, _, clk := newTestAggregator(t, 2, counterRule("req_total"))
	buf := []byte("req_totaljobapipoda")
	str := func(from, to int) string { return unsafe.String(&buf[from], to-from) }
	req := []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: rules.MetricNameLabel, Value: str(0, 9)}, {Name: str(9, 12), Value: str(12, 15)}, {Name: str(15, 18), Value: str(18, 19)}},
		Samples: []prompb.Sample{{Timestamp: 1000, Value: 1}},
	}}
	a.Ingest(req)
	copy(buf, "XXXXXXXXXXXXXXXXXXX") // the next request reuses the buffer
	clk.t = time.Unix(12, 0)
	a.Ingest([]prompb.TimeSeries{series("req_total{job=api,pod=a}", 11, 3)})
	flushAt(a, clk, 25)
	if got, want := out.points(), []string{"req_total{job=api}@20=2"}; !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

// While the receiver refuses data (503 for a full queue), the rule is not quiet: the data is
// waiting upstream. The wall clock must not close its windows or expire its inputs.
func TestRefusalsKeepTheWallClockFromClosingWindows(t *testing.T) {
	a, out, _, clk := newTestAggregator(t, 2, counterRule("req_total"))
	a.Ingest([]prompb.TimeSeries{series("req_total{pod=a}", 1, 0)})
	clk.t = time.Unix(12, 0)
	a.Ingest([]prompb.TimeSeries{series("req_total{pod=a}", 11, 5)})
	// An outage: every request is refused for 10 minutes (staleness is 30 s).
	for sec := int64(13); sec <= 600; sec++ {
		clk.t = time.Unix(sec, 0)
		a.NoteRefused()
		a.Flush(false)
	}
	// The agent's backlog arrives; the total continues.
	clk.t = time.Unix(601, 0)
	a.Ingest([]prompb.TimeSeries{series("req_total{pod=a}", 21, 7, 31, 9)})
	flushAt(a, clk, 700)
	got := out.points()
	for _, want := range []string{"req_total{}@20=5", "req_total{}@30=7", "req_total{}@40=9"} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %s; got %q", want, got)
		}
	}
	for _, p := range got[:min(len(got), 3)] {
		if strings.HasSuffix(p, "=stale") {
			t.Errorf("output went stale during the outage: %q", got)
		}
	}
}

// A rule selecting by a regexp on __name__ sees several metrics: series that differ only in
// their name are different inputs and feed different outputs.
func TestNameRegexpRuleKeepsMetricsApart(t *testing.T) {
	m, err := rules.NewMatcher(rules.MatchRegexp, rules.MetricNameLabel, "req_.+_total")
	if err != nil {
		t.Fatal(err)
	}
	r := counterRule("req")
	r.MetricNames, r.BaseName, r.Matchers = nil, "", []*rules.Matcher{m}
	_, out, _ := runSteps(t, r, []step{
		ingestAt(2, series("req_a_total{pod=a}", 1, 1), series("req_b_total{pod=a}", 1, 10)),
		ingestAt(12, series("req_a_total{pod=a}", 11, 3), series("req_b_total{pod=a}", 11, 15)),
		flushWall(25),
	})
	want := []string{"req_a_total{}@20=2", "req_b_total{}@20=5"}
	if got := out.points(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
