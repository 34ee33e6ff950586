package aggregator

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// BenchmarkCheckpoint checkpoints and restores the docs/design.md §6 scenario: 1M counter
// input series feeding 10k output series, either as 100 rules (one per metric, 100 outputs
// each) or as one rule holding them all. One iteration is one checkpoint; it reports the
// checkpoint's bytes per input series, its time, the longest it held one shard lock (the
// most it can delay a request; target ≤ 5 ms), and the time to restore it into a new
// aggregator (target well under 10 s).
func BenchmarkCheckpoint(b *testing.B) {
	for _, metrics := range []int{100, 1} {
		b.Run(fmt.Sprintf("rules=%d", metrics), func(b *testing.B) { benchCheckpoint(b, metrics, 1_000_000/metrics) })
	}
}

func benchCheckpoint(b *testing.B, metrics, pods int) {
	rs := make([]*rules.Rule, metrics)
	for m := range rs {
		rs[m] = counterRule(fmt.Sprintf("ckpt_counter_%d_total", m))
		rs[m].Interval, rs[m].FlushDelay, rs[m].Staleness = 15*time.Second, 10*time.Second, 5*time.Minute
	}
	groups := 10_000 / metrics // outputs per rule: 10k in all
	all := make([]prompb.TimeSeries, 0, metrics*pods)
	for p := range pods {
		for _, r := range rs {
			all = append(all, prompb.TimeSeries{
				Labels: []prompb.Label{
					{Name: rules.MetricNameLabel, Value: r.Name},
					{Name: "group", Value: fmt.Sprintf("g%d", p%groups)},
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
	ts := int64(1_700_000_000_000)
	for round := range 3 { // state with running totals, emitted outputs and an open window
		ts += 15000
		clk.t = time.UnixMilli(ts + 11000)
		for i := 0; i < len(all); i += 2000 {
			req := all[i:min(i+2000, len(all))]
			for j := range req {
				req[j].Samples[0] = prompb.Sample{Timestamp: ts, Value: float64(round*1000 + j)}
			}
			a.Ingest(req)
		}
		a.Flush(false)
	}

	var buf bytes.Buffer
	var st checkpointStats
	var maxHold time.Duration
	longHolds, holds := 0, 0
	var totalHold time.Duration
	runtime.GC() // the set-up's garbage is not the checkpoint's
	for b.Loop() {
		buf.Reset()
		var err error
		release := a.HoldFlushes()
		st, err = a.checkpoint(&buf)
		release()
		if err != nil {
			b.Fatal(err)
		}
		maxHold = max(maxHold, st.maxHold)
		longHolds += st.longHolds
		totalHold += st.totalHold
		holds += st.holds
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ckpt-ms")
	b.ReportMetric(float64(st.bytes)/float64(len(all)), "bytes/series")
	b.ReportMetric(float64(maxHold.Microseconds()), "max-hold-µs")
	b.ReportMetric(float64(longHolds)/float64(b.N), "holds>1ms/op")
	b.ReportMetric(float64(totalHold.Nanoseconds())/float64(holds)/1000, "mean-hold-µs")

	// Restore, timed apart: a new aggregator with the same rules, as at start-up.
	b.StopTimer()
	var restore time.Duration
	const restores = 3
	for range restores {
		fresh := New(Options{Output: &collectSink{}, Now: clk.now})
		if err := fresh.SetRules(rs); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rst, err := fresh.Restore(bytes.NewReader(buf.Bytes()))
		restore += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if rst.InputSeries != int64(len(all)) || rst.OutputSeries != 10_000 {
			b.Fatalf("restored %d inputs and %d outputs, want %d and 10000", rst.InputSeries, rst.OutputSeries, len(all))
		}
	}
	b.ReportMetric(float64(restore.Milliseconds())/restores, "restore-ms")
}
