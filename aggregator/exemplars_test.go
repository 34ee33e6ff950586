package aggregator

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// withExemplars gives ts exemplars trace_id=id at each (seconds, value).
func withExemplars(ts prompb.TimeSeries, id string, tv ...float64) prompb.TimeSeries {
	for i := 0; i+1 < len(tv); i += 2 {
		ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{
			Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprintf("%s%g", id, tv[i])}}, Timestamp: int64(tv[i] * 1000), Value: tv[i+1]})
	}
	return ts
}

// exemplarsAt lists "series@t: trace_id..." for every sample that carries exemplars.
func exemplarsAt(c *collectSink) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ts := range c.series {
		if len(ts.Exemplars) == 0 {
			continue
		}
		s := labelString(ts.Labels) + "@"
		if len(ts.Samples) > 0 {
			s += fmt.Sprint(ts.Samples[0].Timestamp / 1000)
		} else {
			s += fmt.Sprint(ts.Histograms[0].Timestamp / 1000)
		}
		var ids []string
		for _, ex := range ts.Exemplars {
			ids = append(ids, ex.Labels[0].Value)
		}
		slices.Sort(ids)
		out = append(out, s+" "+fmt.Sprint(ids))
	}
	slices.Sort(out)
	return out
}

// A rule that keeps exemplars passes the newest of each window on with the output's sample
// (the first output kind's), in the window of their own timestamps; the rest are counted.
func TestExemplarsPassedOnNewestPerWindow(t *testing.T) {
	r := counterRule("req_total", rules.OutputTotal, rules.OutputRate)
	r.Exemplars = 2
	a, out, _ := runSteps(t, r, []step{
		ingestAt(2, series("req_total{pod=a}", 1, 0), series("req_total{pod=b}", 1, 0)),
		ingestAt(12,
			withExemplars(series("req_total{pod=a}", 11, 1), "a", 11, 0.5, 12, 0.7),
			withExemplars(series("req_total{pod=b}", 11, 1), "b", 13, 0.2, 25, 0.9)), // 25 s: the next window's
		ingestAt(22, series("req_total{pod=a}", 21, 2)),
		flushWall(35),
	})
	want := []string{"req_total{}@20 [a12 b13]", "req_total{}@30 [b25]"}
	if got := exemplarsAt(out); !slices.Equal(got, want) {
		t.Errorf("exemplars %q, want %q", got, want)
	}
	if got := a.Stats()[0].ExemplarsDropped; got != 1 { // a11: the oldest of three in window 20
		t.Errorf("%d exemplars dropped, want 1", got)
	}
}

// By default a rule drops exemplars, and counts them.
func TestExemplarsDroppedByDefault(t *testing.T) {
	a, out, _ := runSteps(t, counterRule("req_total"), []step{
		ingestAt(2, series("req_total{pod=a}", 1, 0)),
		ingestAt(12, withExemplars(series("req_total{pod=a}", 11, 1), "a", 11, 0.5, 12, 0.7)),
		flushWall(25),
	})
	if got := exemplarsAt(out); len(got) != 0 {
		t.Errorf("exemplars passed on: %q", got)
	}
	if got := a.Stats()[0].ExemplarsDropped; got != 2 {
		t.Errorf("%d exemplars dropped, want 2", got)
	}
	if !slices.Contains(out.points(), "req_total{}@20=1") {
		t.Errorf("the samples of series with exemplars were not aggregated: %q", out.points())
	}
}

// Native histogram outputs carry exemplars too.
func TestExemplarsOnNativeHistograms(t *testing.T) {
	r := counterRule("lat")
	r.Exemplars = 1
	_, out, _ := runSteps(t, r, []step{
		ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 1, 0, 1)))),
		ingestAt(12, withExemplars(nseries("lat{pod=a}", at(11, nh(0, 2, 0, 2))), "a", 11, 0.9)),
		flushWall(25),
	})
	if got, want := exemplarsAt(out), []string{"lat{}@20 [a11]"}; !slices.Equal(got, want) {
		t.Errorf("exemplars %q, want %q", got, want)
	}
}
