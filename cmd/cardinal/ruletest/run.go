package ruletest

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/config"
	"github.com/cardinal-proxy/cardinal/rules"
)

// lookback is how far back an instant query at eval_time looks for a sample, as in PromQL.
const lookback = 5 * time.Minute

// Run runs the tests of each file, printing results to w, and reports whether all passed.
func Run(files []string, w io.Writer) bool {
	ok := true
	for _, f := range files {
		fmt.Fprintf(w, "Unit Testing: %s\n", f)
		tf, cfg, err := loadTestFile(f)
		if err != nil {
			fmt.Fprintf(w, "  FAILED:\n%v\n", err)
			ok = false
			continue
		}
		passed := 0
		for i, tc := range tf.Tests {
			name := tc.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			if errs := runCase(cfg, tc); len(errs) > 0 {
				ok = false
				fmt.Fprintf(w, "  FAILED: %s\n", name)
				for _, e := range errs {
					fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(e, "\n", "\n    "))
				}
				continue
			}
			passed++
		}
		if passed == len(tf.Tests) {
			fmt.Fprintf(w, "  SUCCESS: %d tests\n", passed)
		}
	}
	return ok
}

// recorder is the aggregator's sink in a test: every output sample, by series.
type recorder struct {
	mu     sync.Mutex
	series map[string][]prompb.Sample
}

func (r *recorder) Send(ss []prompb.TimeSeries) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ts := range ss {
		k := seriesString(ts.Labels)
		r.series[k] = append(r.series[k], ts.Samples...)
	}
}

// runCase feeds one test's input through a fresh aggregator and checks the expectations.
func runCase(cfg *config.Config, tc testCase) []string {
	interval := time.Duration(tc.Interval)
	if interval <= 0 {
		interval = 15 * time.Second
	}
	inputs := make([]prompb.TimeSeries, len(tc.InputSeries))
	values := make([][]value, len(tc.InputSeries))
	steps := 0
	for i, in := range tc.InputSeries {
		ls, err := parseSeries(in.Series)
		if err != nil {
			return []string{fmt.Sprintf("input series %q: %v", in.Series, err)}
		}
		vs, err := parseValues(in.Values)
		if err != nil {
			return []string{err.Error()}
		}
		inputs[i].Labels, values[i] = ls, vs
		steps = max(steps, len(vs))
	}

	// The wall clock follows the synthetic time, so windows close as they would live.
	var now time.Time
	rec := &recorder{series: map[string][]prompb.Sample{}}
	agg := aggregator.New(aggregator.Options{Output: rec, Now: func() time.Time { return now }})
	if err := agg.SetRules(cfg.Rules); err != nil {
		return []string{err.Error()}
	}
	for step := range steps {
		ts := int64(step) * interval.Milliseconds()
		now = time.UnixMilli(ts)
		var req []prompb.TimeSeries
		for i, vs := range values {
			if step >= len(vs) || vs[step].missing {
				continue
			}
			v := vs[step].v
			if vs[step].stale {
				v = math.Float64frombits(0x7ff0000000000002)
			}
			req = append(req, prompb.TimeSeries{Labels: inputs[i].Labels, Samples: []prompb.Sample{{Timestamp: ts, Value: v}}})
		}
		agg.Ingest(req)
		agg.Flush(false)
	}
	// Let the clock run on past every staleness period, then close what is still open.
	last := time.UnixMilli(int64(steps-1) * interval.Milliseconds())
	for _, r := range cfg.Rules {
		now = last.Add(r.Staleness + 2*r.Interval)
		agg.Flush(false)
	}
	agg.Flush(true)
	return check(rec, tc.Expected)
}

// check compares the recorded outputs with the expectations, as instant queries would.
func check(rec *recorder, exp []expectation) []string {
	var errs []string
	for _, e := range exp {
		ls, err := parseSeries(e.Series)
		if err != nil {
			errs = append(errs, fmt.Sprintf("line %d: expected series %q: %v", e.line, e.Series, err))
			continue
		}
		key := seriesString(ls)
		at := time.Duration(e.EvalTime).Milliseconds()
		got, found := instantValue(rec.series[key], at)
		switch {
		case e.Absent && found:
			errs = append(errs, fmt.Sprintf("line %d: %s at %s: expected no value, got %g", e.line, key, e.EvalTime, got))
		case e.Absent:
		case e.Value == nil:
			errs = append(errs, fmt.Sprintf("line %d: %s: an expectation needs value or absent: true", e.line, key))
		case !found:
			errs = append(errs, fmt.Sprintf("line %d: %s at %s: expected %g, got no value\n%s", e.line, key, e.EvalTime, *e.Value, describe(rec, key)))
		case !equal(got, *e.Value):
			errs = append(errs, fmt.Sprintf("line %d: %s at %s: expected %g, got %g\n%s", e.line, key, e.EvalTime, *e.Value, got, describe(rec, key)))
		}
	}
	return errs
}

// instantValue is the value an instant query at t sees: the newest sample at or before t
// within the lookback, unless that sample is a stale marker.
func instantValue(samples []prompb.Sample, t int64) (float64, bool) {
	var best *prompb.Sample
	for i := range samples {
		s := &samples[i]
		if s.Timestamp <= t && s.Timestamp > t-lookback.Milliseconds() && (best == nil || s.Timestamp >= best.Timestamp) {
			best = s
		}
	}
	if best == nil || math.Float64bits(best.Value) == 0x7ff0000000000002 {
		return 0, false
	}
	return best.Value, true
}

func equal(a, b float64) bool {
	if a == b || (math.IsNaN(a) && math.IsNaN(b)) {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// describe lists what the aggregator did produce, to make a failure readable.
func describe(rec *recorder, want string) string {
	var b strings.Builder
	if ss, ok := rec.series[want]; ok {
		b.WriteString("  output samples of " + want + ":")
		for _, s := range ss {
			v := fmt.Sprintf("%g", s.Value)
			if math.Float64bits(s.Value) == 0x7ff0000000000002 {
				v = "stale"
			}
			fmt.Fprintf(&b, " %s=%s", time.Duration(s.Timestamp)*time.Millisecond, v)
		}
		return b.String()
	}
	keys := make([]string, 0, len(rec.series))
	for k := range rec.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("  no such output series; the outputs were:")
	for _, k := range keys {
		b.WriteString("\n    " + k)
	}
	return b.String()
}

// parseSeries turns `name{a="b"}` into a sorted label set.
func parseSeries(s string) ([]prompb.Label, error) {
	ms, err := rules.ParseSelector(s)
	if err != nil {
		return nil, err
	}
	ls := make([]prompb.Label, 0, len(ms))
	for _, m := range ms {
		if m.Type != rules.MatchEqual {
			return nil, fmt.Errorf("a series needs equality matchers only, got %s", m)
		}
		ls = append(ls, prompb.Label{Name: m.Name, Value: m.Value})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls, nil
}

// seriesString renders a label set as `name{a="b", c="d"}`, labels sorted.
func seriesString(ls []prompb.Label) string {
	var name string
	var parts []string
	for _, l := range ls {
		if l.Name == "__name__" {
			name = l.Value
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%q", l.Name, l.Value))
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ", ") + "}"
}
