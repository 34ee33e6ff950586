package aggregator

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// created gives ts the created timestamp sec (seconds), as a Remote Write 2.0 sender would.
func created(ts prompb.TimeSeries, sec float64) prompb.TimeSeries {
	remotewrite.SetCreatedTimestamp(&ts, int64(sec*1000))
	return ts
}

// A new counter input whose created timestamp says it began at zero after the rule started
// counts its first sample from zero; one created before the rule started, or longer ago than
// the staleness period (a counter that was already running, or one the rule let go stale),
// keeps the baseline.
func TestCreatedTimestampCountsFirstSample(t *testing.T) {
	r := counterRule("req_total") // staleness 30 s, windows of 10 s
	_, out, _ := runSteps(t, r, []step{
		ingestAt(2, series("req_total{pod=a}", 1, 0)), // the rule starts at 1 s
		ingestAt(12,
			series("req_total{pod=a}", 11, 1),
			created(series("req_total{pod=new}", 11, 7), 8),       // began after the rule: +7
			created(series("req_total{pod=before}", 11, 5), 0.5)), // began before it: baseline
		ingestAt(42,
			series("req_total{pod=a}", 41, 1),
			series("req_total{pod=before}", 41, 6),             // +1
			created(series("req_total{pod=old}", 41, 4), 5),    // 36 s before its first sample: baseline
			created(series("req_total{pod=late}", 41, 3), 40)), // +3
		ingestAt(52, series("req_total{pod=old}", 51, 6)), // +2
		flushWall(65),
	})
	want := []string{"req_total{}@20=8", "req_total{}@30=8", "req_total{}@40=8", "req_total{}@50=12", "req_total{}@60=14"}
	if got := out.points(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// A created timestamp means nothing to a gauge rule.
func TestCreatedTimestampLeavesGaugesAlone(t *testing.T) {
	r := gaugeRule("temp")
	_, out, _ := runSteps(t, r, []step{
		ingestAt(2, series("temp{pod=a}", 1, 10)),
		ingestAt(12, created(series("temp{pod=b}", 11, 5), 8)),
		flushWall(25),
	})
	if got := out.points(); !slices.Contains(got, "temp{}@20=15") {
		t.Errorf("got %q, want temp{}@20=15 among them", got)
	}
}
