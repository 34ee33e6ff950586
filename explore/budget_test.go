package explore

import (
	"fmt"
	"testing"
	"time"
)

// TestBudgetKeepsTheBusiestMetrics sends many more metrics than the budget holds, small
// ones first: every scan stays within its budget and counts every series; the first scan
// keeps detail for what came first, and from the second on the largest metrics of the scan
// before keep theirs.
func TestBudgetKeepsTheBusiestMetrics(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MemoryBudget = 2 << 20
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	e := New(cfg, nil, clk.now)
	var pops []population
	for i := range 300 {
		pops = append(pops, population{name: fmt.Sprintf("small_%03d", i), series: 50, instances: 5, groups: 2})
	}
	for i := range 5 {
		pops = append(pops, population{name: fmt.Sprintf("big_%d", i), series: 20000 + 1000*i, instances: 100, groups: 3})
	}
	for scanNo := range 2 {
		e.StartScan()
		send(e, 1, pops...)
		clk.t = clk.t.Add(time.Minute)
		e.EndScan()
		r, _ := e.Result()
		if r.MemoryBytes > int64(cfg.MemoryBudget) {
			t.Errorf("scan %d charged %d bytes, over the budget of %d", scanNo, r.MemoryBytes, cfg.MemoryBudget)
		}
		if r.ShedMetrics == 0 {
			t.Errorf("scan %d shed nothing: the test does not reach the budget", scanNo)
		}
		for i, m := range r.Metrics[:5] {
			if want := fmt.Sprintf("big_%d", 4-i); m.Name != want || (scanNo > 0 && !m.Detailed) {
				t.Errorf("scan %d: metric %d is %s (detailed %v), want %s with detail", scanNo, i, m.Name, m.Detailed, want)
			}
			within(t, m.Name+" series", m.Series, uint64(24000-1000*i), 0.002)
		}
		var total uint64
		for _, m := range r.Metrics {
			total += m.Series
		}
		if total+r.UntrackedSeries != r.Series {
			t.Errorf("scan %d: metrics hold %d series and untracked %d, but the scan saw %d", scanNo, total, r.UntrackedSeries, r.Series)
		}
	}
}

// TestBetweenScansNothingIsObserved checks that Observe outside a scan changes nothing, and
// that a scan's result replaces the last one only when it ends.
func TestBetweenScansNothingIsObserved(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	e := New(DefaultConfig(), nil, clk.now)
	p := population{name: "m_total", series: 100, instances: 10, groups: 2}
	send(e, 1, p)
	if _, ok := e.Result(); ok {
		t.Fatal("a result before any scan")
	}
	e.StartScan()
	send(e, 2, p)
	if pr, ok := e.Progress(); !ok || pr.Series != 100 || pr.Complete || len(pr.Metrics) != 1 || pr.Metrics[0].Detailed {
		t.Errorf("progress = %+v, want 100 series, counts only", pr)
	}
	clk.t = clk.t.Add(10 * time.Second)
	e.EndScan()
	send(e, 1, population{name: "other", series: 10, instances: 1, groups: 1})
	r, ok := e.Result()
	if !ok || r.Series != 100 || r.Samples != 200 || r.SamplesPerSecond != 20 || len(r.Metrics) != 1 {
		t.Errorf("result = %+v", r)
	}
	if _, ok := e.Progress(); ok {
		t.Error("progress between scans")
	}
}
