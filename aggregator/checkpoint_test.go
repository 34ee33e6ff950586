package aggregator

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// A checkpoint scenario is a synthetic history: at step i the clock is at 5i+2 s and one
// request carries samples stamped 5i+1 s. Windows are 10 s, so a checkpoint between two steps
// falls with a window open, and every step starts with the flush the flusher would run.

const historySteps = 30

// stepWall is the wall clock (s) of step i; its samples are a second older.
func stepWall(i int) int64 { return int64(5*i + 2) }

// stepSec is the sample timestamp (s) of step i.
func stepSec(i int) float64 { return float64(5*i + 1) }

// counterHistory has resets, an input that goes quiet (stale by staleness), one that sends a
// stale marker and comes back, an output whose only input leaves (it ends), and an input that
// appears late.
func counterHistory(i int) []prompb.TimeSeries {
	t := stepSec(i)
	var out []prompb.TimeSeries
	add := func(spec string, v float64) { out = append(out, series(spec, t, v)) }
	add("req_total{pod=a,job=x}", 0.3+1.1*float64(i))
	if i < 6 {
		add("req_total{pod=b,job=x}", 10+2.3*float64(i))
	} else {
		add("req_total{pod=b,job=x}", 0.9*float64(i-6)) // reset at step 6
	}
	if i < 9 { // c outlives d's stale marker, so only the marker can make d leave in time
		add("req_total{pod=c,job=y}", 7+0.01*float64(i*i))
	}
	switch {
	case i == 10:
		add("req_total{pod=d,job=v}", stale)
	case i < 10 || i >= 14:
		add("req_total{pod=d,job=v}", 1e6+1.7*float64(i))
	}
	if i < 4 {
		add("req_total{pod=e,job=z}", 3.3*float64(i)) // job z ends once e is stale
	}
	if i >= 8 {
		add("req_total{pod=f,job=w}", 100+0.1*float64(i))
	}
	return out
}

// gaugeHistory has inputs scraped every step and every other step (carried over), one that
// goes quiet and one that sends a stale marker.
func gaugeHistory(i int) []prompb.TimeSeries {
	t := stepSec(i)
	var out []prompb.TimeSeries
	add := func(spec string, v float64) { out = append(out, series(spec, t, v)) }
	add("temp{pod=a,job=x}", float64(i%7)*1.3+0.1)
	if i%2 == 0 {
		add("temp{pod=b,job=x}", -float64(i%5)*0.7)
	}
	if i < 9 {
		add("temp{pod=c,job=y}", 20+float64(i)/3)
	}
	if i == 12 {
		add("temp{pod=d,job=y}", stale)
	} else if i < 12 || i > 16 {
		add("temp{pod=d,job=y}", 1/float64(i+3))
	}
	return out
}

// classicHistory is a classic histogram: buckets, sum and count of two pods, one reset.
func classicHistory(i int) []prompb.TimeSeries {
	t := stepSec(i)
	var out []prompb.TimeSeries
	for p, pod := range []string{"a", "b"} {
		n := float64(i*(p+2)) + 0.5
		if pod == "b" && i >= 7 {
			n = float64(i - 7)
		}
		out = append(out,
			series(fmt.Sprintf("lat_bucket{pod=%s,job=x,le=0.1}", pod), t, n/3),
			series(fmt.Sprintf("lat_bucket{pod=%s,job=x,le=+Inf}", pod), t, n),
			series(fmt.Sprintf("lat_sum{pod=%s,job=x}", pod), t, n*0.037),
			series(fmt.Sprintf("lat_count{pod=%s,job=x}", pod), t, n))
	}
	return out
}

// nativeHistory has native counter histograms (two schemas, a reset, a stale marker, a new
// input) for one rule and gauge histograms for another.
func nativeHistory(i int) []prompb.TimeSeries {
	t := stepSec(i)
	c := int64(i)
	out := []prompb.TimeSeries{
		nseries("nlat{pod=a,job=x}", at(t, nh(0, 1.5*t, 0, c, 2*c, 1))),
		nseries("ngauge{pod=a,job=x}", gaugeAt(t, nh(0, float64(i%4), 0, c%3, 1))),
	}
	if i < 6 {
		out = append(out, nseries("nlat{pod=b,job=x}", at(t, nh(1, 0.25*t, 1, c, c, 3))))
	} else {
		out = append(out, nseries("nlat{pod=b,job=x}", at(t, nh(1, 0.1*t, 1, c-6, 1, 1)))) // reset
	}
	switch {
	case i == 11:
		out = append(out, nseries("nlat{pod=c,job=y}", staleAt(t)))
	case i < 11:
		out = append(out, nseries("nlat{pod=c,job=y}", at(t, nh(0, t, -1, c, c))))
	}
	if i >= 9 {
		out = append(out, nseries("nlat{pod=d,job=z}", at(t, nh(2, t/7, 0, c, 1))))
	}
	if i%3 != 0 {
		out = append(out, nseries("ngauge{pod=b,job=y}", gaugeAt(t, nh(0, 2, 0, 1, c%2))))
	}
	return out
}

// checkpointScenarios are the rule sets the checkpoint tests run, each with its history.
func checkpointScenarios() []struct {
	name    string
	rules   func() []*rules.Rule
	history func(int) []prompb.TimeSeries
} {
	return []struct {
		name    string
		rules   func() []*rules.Rule
		history func(int) []prompb.TimeSeries
	}{
		{"counter", func() []*rules.Rule { return []*rules.Rule{counterRule("req_total", "total", "increase", "rate")} }, counterHistory},
		{"gauge", func() []*rules.Rule {
			r := gaugeRule("temp", "sum", "avg", "min", "max", "count", "last")
			// Samples of the next window arrive while the last is open: the open window
			// holds values carried over when the checkpoint is taken.
			r.FlushDelay = 8 * time.Second
			return []*rules.Rule{r}
		}, gaugeHistory},
		{"classic_histogram", func() []*rules.Rule { return []*rules.Rule{histogramRule("lat", "total", "rate")} }, classicHistory},
		{"native_histogram", func() []*rules.Rule {
			return []*rules.Rule{histogramRule("nlat", "total", "increase", "count"), gaugeRule("ngauge", "sum", "count")}
		}, nativeHistory},
	}
}

// historyRun drives one aggregator through steps of a history with the test clock.
type historyRun struct {
	a   *Aggregator
	out *collectSink
	clk *testClock
}

func newHistoryRun(t *testing.T, rs []*rules.Rule) *historyRun {
	t.Helper()
	a, out, _, clk := newTestAggregator(t, 0, rs...)
	return &historyRun{a: a, out: out, clk: clk}
}

// steps runs steps [from, to): each flushes at its wall clock, then ingests its request.
func (h *historyRun) steps(history func(int) []prompb.TimeSeries, from, to int) {
	for i := from; i < to; i++ {
		flushAt(h.a, h.clk, stepWall(i))
		h.a.Ingest(history(i))
	}
}

// finish closes every window the history left open, well after its end: inputs go stale and
// outputs end.
func (h *historyRun) finish() {
	for w := stepWall(historySteps); w <= stepWall(historySteps)+60; w += 5 {
		flushAt(h.a, h.clk, w)
	}
}

// checkpoint writes the run's checkpoint.
func (h *historyRun) checkpoint(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := h.a.Checkpoint(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// restoredRun is a new aggregator with rules rs, at wall clock wall, restored from ckpt.
func restoredRun(t *testing.T, rs []*rules.Rule, wall int64, ckpt []byte) (*historyRun, RestoreStats) {
	t.Helper()
	h := newHistoryRun(t, rs)
	h.clk.t = time.Unix(wall, 0)
	st, err := h.a.Restore(bytes.NewReader(ckpt))
	if err != nil {
		t.Fatal(err)
	}
	return h, st
}

// exactPoints returns every sample a sink received as "labels@ms=bits", float values as their
// bit patterns and histograms with every field, sorted.
func exactPoints(c *collectSink) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ts := range c.series {
		for _, s := range ts.Samples {
			out = append(out, fmt.Sprintf("%s@%d=%016x", labelString(ts.Labels), s.Timestamp, math.Float64bits(s.Value)))
		}
		for _, h := range ts.Histograms {
			fh := h.ToFloatHistogram() // every field; %v prints floats so that they read back exactly
			out = append(out, fmt.Sprintf("%s@%d=h%+v sum=%016x", labelString(ts.Labels), h.Timestamp, *fh, math.Float64bits(fh.Sum)))
		}
	}
	sort.Strings(out)
	return out
}

// checkOncePerTimestamp fails if a series has two samples at one timestamp.
func checkOncePerTimestamp(t *testing.T, points []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range points {
		at := strings.LastIndex(p, "@")
		key := p[:at+strings.Index(p[at:], "=")] // labels@ms
		if seen[key] {
			t.Errorf("emitted twice: %s", key)
		}
		seen[key] = true
	}
}

// checkTotalsNeverFall fails if a float total output (a series without a ":kind" suffix of a
// counter rule) ever decreases: a counter reset downstream.
func checkTotalsNeverFall(t *testing.T, c *collectSink) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	last := map[string]prompb.Sample{}
	for _, ts := range c.series {
		l := labelString(ts.Labels)
		if strings.Contains(l, ":") || strings.HasPrefix(l, "temp") || strings.HasPrefix(l, "ngauge") {
			continue
		}
		for _, s := range ts.Samples {
			if value.IsStaleNaN(s.Value) {
				delete(last, l)
				continue
			}
			if p, ok := last[l]; ok && s.Timestamp > p.Timestamp && s.Value < p.Value {
				t.Errorf("%s falls from %g@%d to %g@%d", l, p.Value, p.Timestamp, s.Value, s.Timestamp)
			}
			last[l] = s
		}
	}
}

// TestCheckpointRestoreContinuesExactly cuts each history at every step: checkpoint, restore
// into a new aggregator with the same rules, continue. What the two aggregators emit together
// must be exactly what one uninterrupted aggregator emits.
func TestCheckpointRestoreContinuesExactly(t *testing.T) {
	for _, sc := range checkpointScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			whole := newHistoryRun(t, sc.rules())
			whole.steps(sc.history, 0, historySteps)
			whole.finish()
			want := exactPoints(whole.out)
			if len(want) < 20 {
				t.Fatalf("the history emits only %d samples", len(want))
			}
			checkOncePerTimestamp(t, want)
			checkTotalsNeverFall(t, whole.out)
			for cut := 1; cut < historySteps; cut++ {
				before := newHistoryRun(t, sc.rules())
				before.steps(sc.history, 0, cut)
				after, st := restoredRun(t, sc.rules(), stepWall(cut-1), before.checkpoint(t))
				if st.Restored != len(sc.rules()) || st.Skipped != 0 || st.Fresh != 0 {
					t.Fatalf("cut %d: restore stats %+v", cut, st)
				}
				after.steps(sc.history, cut, historySteps)
				after.finish()
				got := append(exactPoints(before.out), exactPoints(after.out)...)
				sort.Strings(got)
				if !slices.Equal(got, want) {
					t.Errorf("cut at step %d: emitted\n%s\nwant\n%s", cut, diffLines(got, want), "")
				}
				checkOncePerTimestamp(t, got)
				checkTotalsNeverFall(t, after.out)
			}
		})
	}
}

// diffLines lists the lines only in got (+) or only in want (-).
func diffLines(got, want []string) string {
	var b strings.Builder
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "+ %s\n", g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "- %s\n", w)
		}
	}
	return b.String()
}

// TestRestoredStateMatchesTheCheckpoint checks that restoring and checkpointing again gives
// the same bytes (float state: native state is in maps, written in no fixed order), and that
// the live-series counts are rebuilt.
func TestRestoredStateMatchesTheCheckpoint(t *testing.T) {
	rs := func() []*rules.Rule {
		return []*rules.Rule{counterRule("req_total", "total", "rate"), gaugeRule("temp", "sum", "max"), histogramRule("lat")}
	}
	history := func(i int) []prompb.TimeSeries {
		return slices.Concat(counterHistory(i), gaugeHistory(i), classicHistory(i))
	}
	for _, cut := range []int{3, 7, 12, 21} {
		before := newHistoryRun(t, rs())
		before.steps(history, 0, cut)
		ckpt := before.checkpoint(t)
		after, st := restoredRun(t, rs(), stepWall(cut-1), ckpt)
		if again := after.checkpoint(t); !bytes.Equal(again, ckpt) {
			t.Errorf("cut %d: the restored state checkpoints as %d bytes that differ from the %d restored", cut, len(again), len(ckpt))
		}
		var inputs, outputs int64
		for i, s := range before.a.Stats() {
			got := after.a.Stats()[i]
			if got.InputSeries != s.InputSeries || got.OutputSeries != s.OutputSeries {
				t.Errorf("cut %d: rule %s restored with %d inputs and %d outputs, want %d and %d",
					cut, s.Name, got.InputSeries, got.OutputSeries, s.InputSeries, s.OutputSeries)
			}
			inputs, outputs = inputs+s.InputSeries, outputs+s.OutputSeries
		}
		if st.InputSeries != inputs || st.OutputSeries != outputs || inputs == 0 {
			t.Errorf("cut %d: stats say %d inputs and %d outputs, want %d and %d", cut, st.InputSeries, st.OutputSeries, inputs, outputs)
		}
	}
}

// TestChangedRuleStartsFreshUnchangedContinues restores a checkpoint into a rule set where
// one rule kept its definition and the other changed.
func TestChangedRuleStartsFreshUnchangedContinues(t *testing.T) {
	const cut = 10
	history := func(i int) []prompb.TimeSeries { return slices.Concat(counterHistory(i), gaugeHistory(i)) }
	old := []*rules.Rule{counterRule("req_total"), gaugeRule("temp", "sum")}
	changed := func() []*rules.Rule { return []*rules.Rule{counterRule("req_total"), gaugeRule("temp", "max")} }

	before := newHistoryRun(t, old)
	before.steps(history, 0, cut)
	after, st := restoredRun(t, changed(), stepWall(cut-1), before.checkpoint(t))
	if st.Restored != 1 || st.Skipped != 1 || st.Fresh != 1 {
		t.Fatalf("restore stats %+v, want 1 restored, 1 skipped, 1 fresh", st)
	}
	after.steps(history, cut, historySteps)
	after.finish()

	// The unchanged counter continues as if never interrupted.
	whole := newHistoryRun(t, []*rules.Rule{counterRule("req_total")})
	whole.steps(counterHistory, 0, historySteps)
	whole.finish()
	var got []string
	for _, p := range append(exactPoints(before.out), exactPoints(after.out)...) {
		if strings.HasPrefix(p, "req_total") {
			got = append(got, p)
		}
	}
	sort.Strings(got)
	if want := exactPoints(whole.out); !slices.Equal(got, want) {
		t.Errorf("unchanged rule:\n%s", diffLines(got, want))
	}

	// The changed gauge starts fresh, as a new rule does: its first window, the one the cut
	// falls in, is partial and not emitted; it emits what a new aggregator started at the cut
	// would.
	fresh := newHistoryRun(t, []*rules.Rule{gaugeRule("temp", "max")})
	fresh.steps(gaugeHistory, cut, historySteps)
	fresh.finish()
	var gotMax []string
	for _, p := range exactPoints(after.out) {
		if strings.HasPrefix(p, "temp") {
			gotMax = append(gotMax, p)
		}
	}
	if want := exactPoints(fresh.out); !slices.Equal(gotMax, want) || len(want) == 0 {
		t.Errorf("changed rule:\n%s", diffLines(gotMax, want))
	}
	if s := after.a.Stats()[1]; s.Name != "temp" {
		t.Fatalf("rule order: %s", s.Name)
	}
}

// TestCorruptCheckpointIsRefusedAndLoadsNothing truncates and damages a checkpoint: Restore
// fails with ErrCorruptCheckpoint and the aggregator stays empty, working as a fresh one.
func TestCorruptCheckpointIsRefusedAndLoadsNothing(t *testing.T) {
	rs := func() []*rules.Rule { return []*rules.Rule{counterRule("req_total"), histogramRule("nlat", "total")} }
	history := func(i int) []prompb.TimeSeries { return slices.Concat(counterHistory(i), nativeHistory(i)) }
	before := newHistoryRun(t, rs())
	before.steps(history, 0, 12)
	ckpt := before.checkpoint(t)

	flip := func(at int) []byte {
		b := slices.Clone(ckpt)
		b[at] ^= 0x20
		return b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"magic_only", ckpt[:len(checkpointMagic)]},
		{"truncated_after_header", ckpt[:12]},
		{"truncated_in_the_middle", ckpt[:len(ckpt)/2]},
		{"truncated_by_one_byte", ckpt[:len(ckpt)-1]},
		{"byte_flipped_in_a_frame", flip(len(ckpt) / 3)},
		{"byte_flipped_near_the_end", flip(len(ckpt) - 6)},
		{"unknown_version", append([]byte(checkpointMagic), append([]byte{checkpointVersion + 1}, ckpt[len(checkpointMagic)+1:]...)...)},
		{"trailing_data", append(slices.Clone(ckpt), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistoryRun(t, rs())
			_, err := h.a.Restore(bytes.NewReader(tt.data))
			if !errors.Is(err, ErrCorruptCheckpoint) {
				t.Fatalf("Restore: %v, want ErrCorruptCheckpoint", err)
			}
			for _, s := range h.a.Stats() {
				if s.InputSeries != 0 || s.OutputSeries != 0 {
					t.Errorf("rule %s holds %d inputs and %d outputs after a failed restore", s.Name, s.InputSeries, s.OutputSeries)
				}
			}
			for _, st := range h.a.rules {
				if st.started.Load() {
					t.Errorf("rule %s started by a failed restore", st.rule.Name)
				}
			}
			// It then works as a new aggregator does.
			h.steps(history, 12, historySteps)
			h.finish()
			fresh := newHistoryRun(t, rs())
			fresh.steps(history, 12, historySteps)
			fresh.finish()
			if got, want := exactPoints(h.out), exactPoints(fresh.out); !slices.Equal(got, want) {
				t.Errorf("after a failed restore:\n%s", diffLines(got, want))
			}
		})
	}
}

// TestRestoreRefusesAnAggregatorWithState: a checkpoint is loaded before any ingestion.
func TestRestoreRefusesAnAggregatorWithState(t *testing.T) {
	h := newHistoryRun(t, []*rules.Rule{counterRule("req_total")})
	h.steps(counterHistory, 0, 3)
	ckpt := h.checkpoint(t)
	if _, err := h.a.Restore(bytes.NewReader(ckpt)); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Restore into a busy aggregator: %v, want ErrNotEmpty", err)
	}
}

// TestReplayOfCheckpointedSamplesChangesNothing replays the request the checkpoint already
// holds (a request the write-ahead log has from just before the checkpoint): every sample is
// a duplicate, and the output is that of an uninterrupted run.
func TestReplayOfCheckpointedSamplesChangesNothing(t *testing.T) {
	for _, sc := range checkpointScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			whole := newHistoryRun(t, sc.rules())
			whole.steps(sc.history, 0, historySteps)
			whole.finish()
			for _, cut := range []int{4, 11, 17} {
				before := newHistoryRun(t, sc.rules())
				before.steps(sc.history, 0, cut)
				ckpt := before.checkpoint(t)
				after, _ := restoredRun(t, sc.rules(), stepWall(cut-1), ckpt)
				after.a.Ingest(sc.history(cut - 1)) // the replay, before the flusher runs
				if !strings.HasPrefix(sc.name, "native") {
					if again := after.checkpoint(t); !bytes.Equal(again, ckpt) {
						t.Errorf("cut %d: the replay changed the state", cut)
					}
				}
				after.steps(sc.history, cut, historySteps)
				after.finish()
				got := append(exactPoints(before.out), exactPoints(after.out)...)
				sort.Strings(got)
				if want := exactPoints(whole.out); !slices.Equal(got, want) {
					t.Errorf("cut %d:\n%s", cut, diffLines(got, want))
				}
			}
		})
	}
}

// TestCheckpointDuringIngestionIsRepairedByReplay takes a checkpoint while requests are being
// ingested, so it holds some of them in part, then restores it and replays every request:
// the result is the state of the aggregator that took all of them.
func TestCheckpointDuringIngestionIsRepairedByReplay(t *testing.T) {
	rs := func() []*rules.Rule {
		return []*rules.Rule{counterRule("req_total", "total"), gaugeRule("temp", "sum")}
	}
	const pods, rounds = 400, 4
	reqs := make([][]prompb.TimeSeries, 0, rounds*8)
	for r := range rounds {
		var req []prompb.TimeSeries
		for p := range pods {
			sec := float64(10*r + 1 + p%5)
			req = append(req,
				series(fmt.Sprintf("req_total{pod=p%d,job=j%d}", p, p%13), sec, float64(r*p)+0.5),
				series(fmt.Sprintf("temp{pod=p%d,job=j%d}", p, p%7), sec, float64(p%11)/4))
			if len(req) >= 100 {
				reqs, req = append(reqs, req), nil
			}
		}
		reqs = append(reqs, req)
	}
	live := newHistoryRun(t, rs())
	live.clk.t = time.Unix(100, 0)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, req := range reqs {
			live.a.Ingest(req)
		}
	}()
	var ckpt []byte
	for range 5 { // the last one that finds ingestion under way, or after it
		ckpt = live.checkpoint(t)
	}
	wg.Wait()
	live.a.Flush(true)

	after, _ := restoredRun(t, rs(), 100, ckpt)
	for _, req := range reqs {
		after.a.Ingest(req)
	}
	after.a.Flush(true)
	// Values are multiples of 1/4, so sums do not depend on the order inputs are added in
	// (the replay may lay the input tables out differently).
	got, want := exactPoints(after.out), exactPoints(live.out)
	if !slices.Equal(got, want) || len(want) == 0 {
		t.Errorf("restored and replayed:\n%s", diffLines(got, want))
	}
}

// TestCheckpointEncodesEveryHistogramField round-trips histograms with every field set: an
// exponential one, and one of custom buckets (the only kind with custom bounds). One whose
// spans and buckets disagree is refused.
func TestCheckpointEncodesEveryHistogramField(t *testing.T) {
	exp := &histogram.FloatHistogram{
		CounterResetHint: histogram.NotCounterReset, Schema: -3, ZeroThreshold: 1e-9, ZeroCount: 2.5,
		Count: 19.25, Sum: -4.125,
		PositiveSpans: []histogram.Span{{Offset: -2, Length: 2}, {Offset: 3, Length: 1}}, PositiveBuckets: []float64{1, 2, 3},
		NegativeSpans: []histogram.Span{{Offset: 1, Length: 1}}, NegativeBuckets: []float64{math.Inf(1)},
	}
	custom := &histogram.FloatHistogram{
		CounterResetHint: histogram.CounterReset, Schema: histogram.CustomBucketsSchema, Count: 6, Sum: 2,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []float64{1, 2, 3},
		CustomValues: []float64{0.5, 1},
	}
	for _, h := range []*histogram.FloatHistogram{exp, custom} {
		var e shardEncoder
		e.reset()
		e.histogram(h)
		var d frameDecoder
		d.reset(e.buf)
		got := d.histogram()
		if d.err != nil || len(d.b) != 0 || fmt.Sprintf("%#v", *got) != fmt.Sprintf("%#v", *h) {
			t.Errorf("round trip: %#v (err %v), want %#v", *got, d.err, *h)
		}
	}
	bad := exp.Copy()
	bad.PositiveSpans[0].Length = 5
	var e shardEncoder
	e.reset()
	e.histogram(bad)
	var d frameDecoder
	d.reset(e.buf)
	if d.histogram(); d.err == nil {
		t.Error("a histogram with more span than buckets was decoded")
	}
}

// TestAVersion3CheckpointStillRestores: a checkpoint written before shard frames held the
// wait state for handoffs (version 3) restores, with nothing held.
func TestAVersion3CheckpointStillRestores(t *testing.T) {
	rs := []*rules.Rule{counterRule("req", "total")}
	a, _, _, _ := newTestAggregator(t, 0, rs...)
	a.SetOwnership(all{owns: true, awaits: true})
	a.Ingest([]prompb.TimeSeries{series("req{job=a,pod=p1}", 1, 10)})
	var v3 bytes.Buffer
	if _, err := a.checkpointAs(&v3, 3); err != nil {
		t.Fatal(err)
	}
	b, _, _, _ := newTestAggregator(t, 0, rs...)
	st, err := b.Restore(bytes.NewReader(v3.Bytes()))
	if err != nil || st.Restored != 1 || st.OutputSeries != 1 {
		t.Fatalf("version 3: %+v, %v", st, err)
	}
	for i := range b.rules[0].shards {
		for _, o := range b.rules[0].shards[i].outputs {
			if o != nil && o.held {
				t.Error("an output restored from version 3 is held")
			}
		}
	}
}
