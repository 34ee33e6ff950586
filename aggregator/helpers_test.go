package aggregator

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// collectSink records everything sent to it.
type collectSink struct {
	mu     sync.Mutex
	series []prompb.TimeSeries
}

func (c *collectSink) Send(s []prompb.TimeSeries) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.series = append(c.series, s...)
}

// points returns "labels@t=v" strings, sorted, for every sample received.
func (c *collectSink) points() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ts := range c.series {
		for _, s := range ts.Samples {
			v := fmt.Sprintf("%g", s.Value)
			if value.IsStaleNaN(s.Value) {
				v = "stale"
			}
			out = append(out, fmt.Sprintf("%s@%d=%s", labelString(ts.Labels), s.Timestamp/1000, v))
		}
	}
	sort.Strings(out)
	return out
}

func labelString(ls []prompb.Label) string {
	var parts []string
	name := ""
	for _, l := range ls {
		if l.Name == rules.MetricNameLabel {
			name = l.Value
			continue
		}
		parts = append(parts, l.Name+"="+l.Value)
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// testClock is a settable wall clock.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

// newTestAggregator returns an aggregator with the given rules, a clock at wall, and sinks.
func newTestAggregator(t *testing.T, wall int64, rs ...*rules.Rule) (*Aggregator, *collectSink, *collectSink, *testClock) {
	t.Helper()
	out, fwd := &collectSink{}, &collectSink{}
	clk := &testClock{t: time.Unix(wall, 0)}
	a := New(Options{Output: out, Forward: fwd, ForwardUnmatched: true, Now: clk.now})
	if err := a.SetRules(rs); err != nil {
		t.Fatal(err)
	}
	return a, out, fwd, clk
}

// counterRule is a counter rule on name dropping pod, 10 s windows, 2 s flush delay.
func counterRule(name string, outputs ...string) *rules.Rule {
	return &rules.Rule{
		Name: name, Type: rules.Counter, MetricNames: []string{name}, BaseName: name,
		Without: []string{"instance", "pod"}, Outputs: outputs,
		Interval: 10 * time.Second, FlushDelay: 2 * time.Second, Staleness: 30 * time.Second,
		Fingerprint: hashString(name + "counter" + strings.Join(outputs, ",")),
	}
}

func gaugeRule(name string, outputs ...string) *rules.Rule {
	r := counterRule(name, outputs...)
	r.Type = rules.Gauge
	r.Fingerprint = hashString(name + "gauge" + strings.Join(outputs, ","))
	return r
}

func hashString(s string) uint64 { return xxhash.Sum64String(s) }

// series builds one series from "name{a=b,c=d}" and (seconds, value) pairs.
func series(spec string, tv ...float64) prompb.TimeSeries {
	name, rest, _ := strings.Cut(spec, "{")
	ls := []prompb.Label{{Name: rules.MetricNameLabel, Value: name}}
	rest = strings.TrimSuffix(rest, "}")
	if rest != "" {
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			ls = append(ls, prompb.Label{Name: k, Value: v})
		}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	ts := prompb.TimeSeries{Labels: ls}
	for i := 0; i+1 < len(tv); i += 2 {
		ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: int64(tv[i] * 1000), Value: tv[i+1]})
	}
	return ts
}

var (
	stale = staleNaN()
	nan   = math.NaN()
)

// flushAt moves the wall clock to sec and runs a flush.
func flushAt(a *Aggregator, clk *testClock, sec int64) {
	clk.t = time.Unix(sec, 0)
	a.Flush(false)
}
