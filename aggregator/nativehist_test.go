package aggregator

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// nh is an integer native histogram of the given schema with one span of positive buckets
// starting at bucket index offset, and Sum sum. Count is the sum of the buckets.
func nh(schema int32, sum float64, offset int32, counts ...int64) *histogram.Histogram {
	h := &histogram.Histogram{Schema: schema, Sum: sum, ZeroThreshold: 1e-128,
		PositiveSpans: []histogram.Span{{Offset: offset, Length: uint32(len(counts))}}}
	prev := int64(0)
	for _, c := range counts {
		h.Count += uint64(c)
		h.PositiveBuckets = append(h.PositiveBuckets, c-prev) // deltas
		prev = c
	}
	return h
}

// hpoint is one native histogram sample of a test series.
type hpoint struct {
	sec  float64
	h    *histogram.Histogram // nil: a stale marker
	hint histogram.CounterResetHint
}

func at(sec float64, h *histogram.Histogram) hpoint { return hpoint{sec: sec, h: h} }

// gaugeAt is a sample of a gauge histogram (reset hint GAUGE).
func gaugeAt(sec float64, h *histogram.Histogram) hpoint {
	return hpoint{sec: sec, h: h, hint: histogram.GaugeType}
}

// resetAt is a sample whose reset hint says the counter was reset.
func resetAt(sec float64, h *histogram.Histogram) hpoint {
	return hpoint{sec: sec, h: h, hint: histogram.CounterReset}
}

func staleAt(sec float64) hpoint { return hpoint{sec: sec} }

// nseries builds a series carrying native histograms from "name{a=b}" and samples.
func nseries(spec string, ps ...hpoint) prompb.TimeSeries {
	ts := series(spec)
	for _, p := range ps {
		t := int64(p.sec * 1000)
		if p.h == nil {
			ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(t, &histogram.Histogram{Sum: stale}))
			continue
		}
		h := p.h.Copy()
		h.CounterResetHint = p.hint
		ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(t, h))
	}
	return ts
}

// nativePoints returns "labels@t=HINT s<schema> {count:.., sum:.., buckets}" strings, sorted,
// for every native histogram sample received ("labels@t=stale" for a stale marker).
func (c *collectSink) nativePoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ts := range c.series {
		for _, h := range ts.Histograms {
			v := "stale"
			if !value.IsStaleNaN(h.Sum) {
				v = fmt.Sprintf("%s s%d %s", h.ResetHint, h.Schema, h.ToFloatHistogram())
			}
			out = append(out, fmt.Sprintf("%s@%d=%s", labelString(ts.Labels), h.Timestamp/1000, v))
		}
	}
	sort.Strings(out)
	return out
}

func histogramRule(base string, outputs ...string) *rules.Rule {
	r := counterRule(base, outputs...)
	r.Type, r.MetricNames = rules.Histogram, []string{base + "_bucket", base + "_count", base + "_sum"}
	r.Fingerprint = hashString(base + "histogram")
	return r
}

func TestNativeHistograms(t *testing.T) {
	tests := []struct {
		name      string
		rule      *rules.Rule
		steps     []step
		want      []string // native histogram samples
		wantFloat []string // float samples
		dropped   map[string]uint64
		resets    uint64
	}{
		{
			// Schema 1 buckets 1..4 are (2^0, 2^0.5], (2^0.5, 2], (2, 2^1.5], (2^1.5, 4]: in
			// schema 0 they merge pairwise into (1,2] and (2,4].
			name: "different_schemas_add_in_the_coarser",
			rule: histogramRule("lat"),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(1, 4, 1, 1, 1, 1, 1))), nseries("lat{pod=b}", at(1, nh(0, 3, 1, 1, 1)))),
				ingestAt(12, nseries("lat{pod=a}", at(11, nh(1, 20, 1, 2, 3, 1, 4))), nseries("lat{pod=b}", at(11, nh(0, 10, 1, 3, 2)))),
				flushWall(35),
			},
			// a: +1 +2 +0 +3 (sum +16); b: +2 +1 (sum +7). The first emitted sample may follow
			// a reset for all downstream knows; the next continues it.
			want: []string{
				"lat{}@20=UNKNOWN s0 {count:9, sum:23, (1,2]:5, (2,4]:4}",
				"lat{}@30=NO s0 {count:9, sum:23, (1,2]:5, (2,4]:4}",
			},
		},
		{
			name: "counter_reset_detected_or_hinted_counts_the_new_histogram",
			rule: counterRule("lat"),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 10, 0, 5, 5)))),
				ingestAt(12, nseries("lat{pod=a}", at(11, nh(0, 3, 0, 1, 2)))),      // fewer observations: reset
				ingestAt(22, nseries("lat{pod=a}", resetAt(21, nh(0, 6, 0, 2, 3)))), // grew, but the hint says reset
				flushWall(35),
			},
			want: []string{
				"lat{}@20=UNKNOWN s0 {count:3, sum:3, (0.5,1]:1, (1,2]:2}",
				"lat{}@30=NO s0 {count:8, sum:9, (0.5,1]:3, (1,2]:5}",
			},
			resets: 2,
		},
		{
			name: "first_sample_is_a_baseline",
			rule: counterRule("lat"),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 1, 0, 1)))),
				ingestAt(16, nseries("lat{pod=a}", at(11, nh(0, 2, 0, 2))), nseries("lat{pod=b}", at(15, nh(0, 500, 0, 100)))),
				ingestAt(22, nseries("lat{pod=b}", at(21, nh(0, 505, 0, 101)))),
				flushWall(35),
			},
			want: []string{
				"lat{}@20=UNKNOWN s0 {count:1, sum:1, (0.5,1]:1}",
				"lat{}@30=NO s0 {count:2, sum:6, (0.5,1]:2}",
			},
		},
		{
			// pod=b began at zero after the rule started (a Remote Write 2.0 created
			// timestamp says so): its first histogram counts in full.
			name: "created_timestamp_counts_the_first_sample_from_zero",
			rule: counterRule("lat"),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 1, 0, 1)))),
				ingestAt(16, nseries("lat{pod=a}", at(11, nh(0, 2, 0, 2))), created(nseries("lat{pod=b}", at(15, nh(0, 500, 0, 100))), 14)),
				ingestAt(22, nseries("lat{pod=b}", at(21, nh(0, 505, 0, 101)))),
				flushWall(35),
			},
			want: []string{
				"lat{}@20=UNKNOWN s0 {count:101, sum:501, (0.5,1]:101}",
				"lat{}@30=NO s0 {count:102, sum:506, (0.5,1]:102}",
			},
		},
		{
			name: "duplicate_samples_are_ignored",
			rule: counterRule("lat"),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 1, 0, 1)))),
				ingestAt(12, nseries("lat{pod=a}", at(11, nh(0, 3, 0, 3)))),
				ingestAt(13, nseries("lat{pod=a}", at(11, nh(0, 3, 0, 3)))), // a retry
				ingestAt(14, nseries("lat{pod=a}", at(11, nh(0, 3, 0, 3)), at(14, nh(0, 4, 0, 4)))),
				flushWall(25),
			},
			want:    []string{"lat{}@20=UNKNOWN s0 {count:3, sum:3, (0.5,1]:3}"},
			dropped: map[string]uint64{"duplicate": 2},
		},
		{
			name: "stale_marker_ends_the_input_and_the_output_dies_with_one_marker",
			rule: counterRule("lat"),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 1, 0, 1)))),
				ingestAt(12, nseries("lat{pod=a}", at(11, nh(0, 2, 0, 2)))),
				ingestAt(22, nseries("lat{pod=a}", staleAt(21))),
				flushWall(60),
			},
			want: []string{
				"lat{}@20=UNKNOWN s0 {count:1, sum:1, (0.5,1]:1}",
				"lat{}@30=NO s0 {count:1, sum:1, (0.5,1]:1}",
				"lat{}@40=stale",
			},
		},
		{
			name: "input_expires_after_staleness_without_samples",
			rule: counterRule("lat"),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 1, 0, 1)))),
				ingestAt(12, nseries("lat{pod=a}", at(11, nh(0, 2, 0, 2)))),
				flushWall(70), // staleness 30 s: gone at the window ending 50
			},
			want: []string{
				"lat{}@20=UNKNOWN s0 {count:1, sum:1, (0.5,1]:1}",
				"lat{}@30=NO s0 {count:1, sum:1, (0.5,1]:1}",
				"lat{}@40=NO s0 {count:1, sum:1, (0.5,1]:1}",
				"lat{}@50=stale",
			},
		},
		{
			name: "increase_and_rate_are_gauge_histograms",
			rule: counterRule("lat", "total", "increase", "rate"),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 0, 0, 0, 0)))),
				ingestAt(12, nseries("lat{pod=a}", at(11, nh(0, 40, 0, 10, 20)))),
				flushWall(25),
			},
			want: []string{
				"lat:increase{}@20=GAUGE s0 {count:30, sum:40, (0.5,1]:10, (1,2]:20}",
				"lat:rate{}@20=GAUGE s0 {count:3, sum:4, (0.5,1]:1, (1,2]:2}",
				"lat{}@20=UNKNOWN s0 {count:30, sum:40, (0.5,1]:10, (1,2]:20}",
			},
		},
		{
			name: "late_counter_histogram_credited_to_oldest_open_window",
			rule: counterRule("lat"),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 0, 0, 0))), nseries("lat{pod=b}", at(1, nh(0, 0, 0, 0)))),
				ingestAt(12, nseries("lat{pod=a}", at(11, nh(0, 5, 0, 5)))),
				ingestAt(25, nseries("lat{pod=a}", at(24, nh(0, 6, 0, 6)))), // closes window 2
				ingestAt(26, nseries("lat{pod=b}", at(15, nh(0, 9, 0, 9)))), // late: goes to window 3
				flushWall(35),
			},
			want: []string{
				"lat{}@20=UNKNOWN s0 {count:5, sum:5, (0.5,1]:5}",
				"lat{}@30=NO s0 {count:15, sum:15, (0.5,1]:15}",
			},
		},
		{
			// b is scraped every 30 s: its histogram is carried forward, so the sum does not
			// dip. max cannot aggregate histograms: their samples count as unaggregatable.
			name: "gauge_histograms_sum_and_count_carried_forward_until_stale",
			rule: gaugeRule("queue", "sum", "count", "max"),
			steps: []step{
				ingestAt(2, nseries("queue{pod=a}", gaugeAt(1, nh(0, 3, 0, 1, 1))), nseries("queue{pod=b}", gaugeAt(1, nh(0, 4, 1, 2)))),
				ingestAt(12, nseries("queue{pod=a}", gaugeAt(11, nh(0, 2, 0, 2, 0)))),
				ingestAt(22, nseries("queue{pod=a}", gaugeAt(21, nh(0, 1, 0, 1))), nseries("queue{pod=b}", staleAt(21))),
				ingestAt(32, nseries("queue{pod=a}", staleAt(31))),
				flushWall(60),
			},
			want: []string{
				"queue{}@20=GAUGE s0 {count:4, sum:6, (0.5,1]:2, (1,2]:2}",
				"queue{}@30=GAUGE s0 {count:1, sum:1, (0.5,1]:1}",
				"queue{}@40=stale",
			},
			wantFloat: []string{"queue:count{}@20=2", "queue:count{}@30=1", "queue:count{}@40=stale"},
			dropped:   map[string]uint64{"unaggregatable": 6}, // every sample, stale markers too
		},
		{
			name: "future_and_nan_histograms_dropped",
			rule: counterRule("lat"),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 0, 0, 0)))),
				ingestAt(12, nseries("lat{pod=a}", at(11, nh(0, nan, 0, 7)), at(12, nh(0, 2, 0, 2))),
					nseries("lat{pod=b}", at(13+3600, nh(0, 1, 0, 1)))),
				flushWall(25),
			},
			want:    []string{"lat{}@20=UNKNOWN s0 {count:2, sum:2, (0.5,1]:2}"},
			dropped: map[string]uint64{"nan": 1, "future": 1},
		},
		{
			// Each kind has its own state, so a float and a histogram output of one name.
			name: "series_with_floats_and_histograms_aggregates_each",
			rule: counterRule("lat"),
			steps: []step{
				ingestAt(2, func() prompb.TimeSeries {
					ts := nseries("lat{pod=a}", at(1, nh(0, 0, 0, 0)))
					ts.Samples = series("lat{pod=a}", 2, 10).Samples
					return ts
				}()),
				ingestAt(12, func() prompb.TimeSeries {
					ts := nseries("lat{pod=a}", at(11, nh(0, 1, 0, 1)))
					ts.Samples = series("lat{pod=a}", 12, 14).Samples
					return ts
				}()),
				flushWall(25),
			},
			want:      []string{"lat{}@20=UNKNOWN s0 {count:1, sum:1, (0.5,1]:1}"},
			wantFloat: []string{"lat{}@20=4"},
		},
		{
			name: "histogram_rule_renames_native_output_and_refuses_floats_of_the_base_name",
			rule: func() *rules.Rule {
				r := histogramRule("lat")
				r.OutputName = "agg_lat"
				return r
			}(),
			steps: []step{
				ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 0, 0, 0))), series("lat_count{pod=a}", 1, 0), series("lat{pod=b}", 1, 5)),
				ingestAt(12, nseries("lat{pod=a}", at(11, nh(0, 1, 0, 1))), series("lat_count{pod=a}", 11, 1), series("lat{pod=b}", 11, 6)),
				flushWall(25),
			},
			want:      []string{"agg_lat{}@20=UNKNOWN s0 {count:1, sum:1, (0.5,1]:1}"},
			wantFloat: []string{"agg_lat_count{}@20=1"},
			dropped:   map[string]uint64{"unaggregatable": 2},
		},
		{
			name: "summary_and_gauge_rules_without_histogram_outputs_count_them_unaggregatable",
			rule: gaugeRule("queue", "avg", "max"),
			steps: []step{
				ingestAt(2, nseries("queue{pod=a}", gaugeAt(1, nh(0, 0, 0, 1)))),
				ingestAt(12, nseries("queue{pod=a}", gaugeAt(11, nh(0, 1, 0, 1)))),
				flushWall(25),
			},
			dropped: map[string]uint64{"unaggregatable": 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, out, fwd := runSteps(t, tt.rule, tt.steps)
			if got := out.nativePoints(); !slices.Equal(got, tt.want) {
				t.Errorf("native outputs\n got: %q\nwant: %q", got, tt.want)
			}
			if got := out.points(); !slices.Equal(got, tt.wantFloat) {
				t.Errorf("float outputs\n got: %q\nwant: %q", got, tt.wantFloat)
			}
			st := a.Stats()[0]
			for reason, want := range tt.dropped {
				if got := st.Dropped[reason]; got != want {
					t.Errorf("dropped %s = %d, want %d", reason, got, want)
				}
			}
			if st.CounterResets != tt.resets {
				t.Errorf("counter resets = %d, want %d", st.CounterResets, tt.resets)
			}
			if len(fwd.series) != 0 {
				t.Errorf("matched series were forwarded raw: %v", fwd.series)
			}
		})
	}
}

// A summary does not aggregate native histograms.
func TestNativeHistogramsOfSummaryRuleAreUnaggregatable(t *testing.T) {
	r := counterRule("rpc")
	r.Type, r.MetricNames, r.BaseName = rules.Summary, []string{"rpc", "rpc_count", "rpc_sum"}, "rpc"
	a, out, _ := runSteps(t, r, []step{
		ingestAt(2, nseries("rpc_count{pod=a}", at(1, nh(0, 0, 0, 1)))),
		ingestAt(12, nseries("rpc_count{pod=a}", at(11, nh(0, 1, 0, 2)))),
		flushWall(25),
	})
	if got := out.nativePoints(); len(got) != 0 {
		t.Errorf("emitted %q", got)
	}
	if n := a.Stats()[0].Dropped["unaggregatable"]; n != 2 {
		t.Errorf("unaggregatable drops = %d, want 2", n)
	}
}

// Memory follows the live series: when the last native input and output are gone, the rule
// shard holds no native-histogram state at all.
func TestNativeStateFreedWhenSeriesGo(t *testing.T) {
	r := counterRule("lat")
	a, out, _ := runSteps(t, r, []step{
		ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 0, 0, 0))), nseries("lat{pod=b,job=x}", at(1, nh(0, 0, 0, 0)))),
		ingestAt(12, nseries("lat{pod=a}", at(11, nh(0, 1, 0, 1)), staleAt(12)), nseries("lat{pod=b,job=x}", staleAt(11))),
		flushWall(60),
	})
	st := a.rules[0]
	for s := range numShards {
		if ns := st.shards[s].native; ns != nil {
			t.Errorf("shard %d keeps native state: %d inputs, %d outputs", s, len(ns.inputs), len(ns.outputs))
		}
	}
	if n := st.inputs.Load(); n != 0 {
		t.Errorf("live inputs = %d, want 0", n)
	}
	if n := st.outputN.Load(); n != 0 {
		t.Errorf("live outputs = %d, want 0", n)
	}
	// A stale marker is a sample of its window, as for floats: each output emits that window,
	// then its stale marker.
	want := []string{
		"lat{job=x}@20=UNKNOWN s0 {count:0, sum:0}", "lat{job=x}@30=stale",
		"lat{}@20=UNKNOWN s0 {count:1, sum:1, (0.5,1]:1}", "lat{}@30=stale",
	}
	if got := out.nativePoints(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// A float histogram's buckets point into the request buffer, which the decoder reuses.
func TestNativeHistogramsDoNotAliasRequestBuffers(t *testing.T) {
	a, out, _, clk := newTestAggregator(t, 2, counterRule("lat"))
	fh := &histogram.FloatHistogram{Count: 2, Sum: 2, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []float64{2}}
	req := []prompb.TimeSeries{series("lat{pod=a}")}
	req[0].Histograms = []prompb.Histogram{prompb.FromFloatHistogram(1000, fh)}
	a.Ingest(req)
	req[0].Histograms[0].PositiveCounts[0] = 1000 // the next request reuses the buffer
	clk.t = time.Unix(12, 0)
	next := series("lat{pod=a}")
	fh.Count, fh.PositiveBuckets = 5, []float64{5}
	next.Histograms = []prompb.Histogram{prompb.FromFloatHistogram(11000, fh)}
	a.Ingest([]prompb.TimeSeries{next})
	flushAt(a, clk, 25)
	if got, want := out.nativePoints(), []string{"lat{}@20=UNKNOWN s0 {count:3, sum:0, (0.5,1]:3}"}; !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

// A Go map never shrinks: after churn the native inputs map is rebuilt at its live size.
func TestNativeInputsRebuiltAfterChurn(t *testing.T) {
	var first, second []prompb.TimeSeries
	for p := range 100 {
		spec := fmt.Sprintf("lat{pod=p%03d}", p)
		first = append(first, nseries(spec, at(1, nh(0, 0, 0, 0))))
		if p < 5 {
			second = append(second, nseries(spec, at(11, nh(0, 1, 0, 1))))
		} else {
			second = append(second, nseries(spec, staleAt(11)))
		}
	}
	a, _, _ := runSteps(t, counterRule("lat"), []step{ingestAt(2, first...), ingestAt(12, second...), flushWall(25)})
	st := a.rules[0]
	for s := range numShards {
		if ns := st.shards[s].native; ns != nil {
			if len(ns.inputs) != 5 || ns.peak != 5 {
				t.Errorf("shard %d: %d inputs, peak %d; want 5 and 5 (rebuilt)", s, len(ns.inputs), ns.peak)
			}
			return
		}
	}
	t.Fatal("no native state")
}

// Histograms with custom buckets (schema -53, as converted classic histograms) add when
// their bounds are equal; an input whose bounds differ cannot join the output's sum.
func TestNativeCustomBucketHistograms(t *testing.T) {
	cb := func(sec float64, bounds []float64, counts ...int64) hpoint {
		h := nh(histogram.CustomBucketsSchema, float64(len(counts)), 0, counts...)
		h.ZeroThreshold, h.CustomValues = 0, bounds
		return at(sec, h)
	}
	withBounds := func(ts prompb.TimeSeries, bounds []float64) prompb.TimeSeries {
		for i := range ts.Histograms {
			ts.Histograms[i].CustomValues = bounds // prompb.FromIntHistogram leaves them out
		}
		return ts
	}
	same, other := []float64{0.1, 1}, []float64{0.2, 2}
	a, out, _ := runSteps(t, counterRule("lat"), []step{
		ingestAt(2, withBounds(nseries("lat{pod=a}", cb(1, same, 0, 0, 0)), same),
			withBounds(nseries("lat{pod=b}", cb(1, same, 0, 0, 0)), same)),
		ingestAt(12, withBounds(nseries("lat{pod=a}", cb(11, same, 1, 2, 3)), same),
			withBounds(nseries("lat{pod=b}", cb(11, same, 4, 0, 1)), same),
			withBounds(nseries("lat{pod=c}", cb(11, other, 1, 1, 1)), other)),
		// c's increase comes first in window 3: it must not keep a's from being added.
		ingestAt(22, withBounds(nseries("lat{pod=c}", cb(21, other, 2, 2, 2)), other),
			withBounds(nseries("lat{pod=a}", cb(22, same, 2, 2, 3)), same)),
		flushWall(35),
	})
	want := []string{
		"lat{}@20=UNKNOWN s-53 {count:11, sum:0, [-Inf,0.1]:5, (0.1,1]:2, (1,+Inf]:4}",
		"lat{}@30=NO s-53 {count:12, sum:0, [-Inf,0.1]:6, (0.1,1]:2, (1,+Inf]:4}",
	}
	if got := out.nativePoints(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if n := a.Stats()[0].Dropped["unaggregatable"]; n != 1 {
		t.Errorf("unaggregatable = %d, want 1 (c's increase)", n)
	}
}
