package explore

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// population is a synthetic metric like the load generator's: series j has pod j, instance
// j mod instances and group j mod groups.
type population struct {
	name                      string
	series, instances, groups int
}

func (p population) series_(j int) prompb.TimeSeries {
	lbls := []prompb.Label{
		{Name: "__name__", Value: p.name},
		{Name: "group", Value: fmt.Sprintf("g%d", j%p.groups)},
		{Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:9100", j%p.instances/256, j%p.instances%256)},
		{Name: "job", Value: "loadgen"},
		{Name: "pod", Value: fmt.Sprintf("pod-%07d", j)},
	}
	return prompb.TimeSeries{Labels: lbls, Samples: []prompb.Sample{{Value: 1, Timestamp: int64(j)}}}
}

// truth counts the distinct label sets left after dropping the named labels.
func (p population) truth(drop ...string) uint64 {
	seen := map[string]bool{}
	for j := range p.series {
		key := ""
		for _, l := range p.series_(j).Labels {
			dropped := false
			for _, d := range drop {
				dropped = dropped || l.Name == d
			}
			if !dropped {
				key += l.Name + "=" + l.Value + ","
			}
		}
		seen[key] = true
	}
	return uint64(len(seen))
}

// send observes every series of the populations rounds times, in requests of 500.
func send(e *Explorer, rounds int, pops ...population) {
	for range rounds {
		var req []prompb.TimeSeries
		for _, p := range pops {
			for j := range p.series {
				req = append(req, p.series_(j))
				if len(req) == 500 {
					e.Observe(req)
					req = nil
				}
			}
		}
		e.Observe(req)
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func within(t *testing.T, what string, got, want uint64, tolerance float64) {
	t.Helper()
	if d := math.Abs(float64(got)-float64(want)) / float64(want); d > tolerance {
		t.Errorf("%s = %d, want %d within %.0f%% (off by %.2f%%)", what, got, want, tolerance*100, d*100)
	}
}

func TestEstimatesAreWithinTwoPercentOfKnownCardinalities(t *testing.T) {
	pops := []population{
		{name: "big_total", series: 60000, instances: 300, groups: 7},
		{name: "mid_total", series: 5000, instances: 100, groups: 4},
		{name: "small", series: 40, instances: 4, groups: 2},
	}
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	e := New(DefaultConfig(), nil, clk.now)
	for scanNo := range 2 {
		e.StartScan()
		send(e, 3, pops...)
		clk.t = clk.t.Add(60 * time.Second)
		e.EndScan()
		r, ok := e.Result()
		if !ok || !r.Complete {
			t.Fatalf("scan %d: no complete result", scanNo)
		}
		total := 0
		for _, p := range pops {
			total += p.series
		}
		within(t, "all series", r.Series, uint64(total), 0.002)
		if want := uint64(3 * total); r.Samples != want {
			t.Errorf("samples = %d, want %d", r.Samples, want)
		}
		for i, p := range pops {
			m := r.Metrics[i]
			if m.Name != p.name {
				t.Fatalf("metric %d is %s, want %s (sorted by series)", i, m.Name, p.name)
			}
			within(t, p.name+" series", m.Series, uint64(p.series), 0.002)
			if got, want := m.SamplesPerSecond, float64(3*p.series)/60; math.Abs(got-want) > 1e-9 {
				t.Errorf("%s samples/s = %g, want %g", p.name, got, want)
			}
			values := map[string]uint64{"pod": uint64(p.series), "instance": uint64(p.instances), "group": uint64(p.groups), "job": 1}
			for _, l := range m.Labels {
				within(t, p.name+" "+l.Name+" values", l.Values, values[l.Name], 0.02)
				within(t, p.name+" series without "+l.Name, l.SeriesWithout, p.truth(l.Name), 0.02)
			}
			if len(m.Labels) != 4 || m.Labels[0].Name != "pod" {
				t.Errorf("%s labels %+v, want 4 with pod first", p.name, m.Labels)
			}
			if scanNo == 0 {
				if len(m.Drops) != 0 {
					t.Errorf("%s: drops in the first scan: %+v", p.name, m.Drops)
				}
				continue
			}
			if len(m.Drops) < 2 {
				t.Fatalf("%s: second scan has drops %+v, want a chain", p.name, m.Drops)
			}
			for _, d := range m.Drops {
				within(t, fmt.Sprintf("%s series without %v", p.name, d.Labels), d.Series, p.truth(d.Labels...), 0.02)
			}
		}
	}
}
