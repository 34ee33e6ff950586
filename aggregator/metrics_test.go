package aggregator

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollectorExportsPerRuleState(t *testing.T) {
	a, _, _ := runSteps(t, counterRule("req_total"), []step{
		ingestAt(2, series("req_total{pod=a}", 1, 1), series("req_total{pod=b}", 1, 1)),
		ingestAt(12, series("req_total{pod=a}", 11, 0), series("req_total{pod=a}", 11, 5), series("req_total{pod=b}", 11, 2)),
		flushWall(25),
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.Collector())
	want := `
# HELP cardinal_aggregator_input_series Live input series per rule.
# TYPE cardinal_aggregator_input_series gauge
cardinal_aggregator_input_series{rule="req_total"} 2
# HELP cardinal_aggregator_output_series Live output series per rule.
# TYPE cardinal_aggregator_output_series gauge
cardinal_aggregator_output_series{rule="req_total"} 1
# HELP cardinal_aggregator_counter_resets_total Counter resets seen in input series per rule.
# TYPE cardinal_aggregator_counter_resets_total counter
cardinal_aggregator_counter_resets_total{rule="req_total"} 1
# HELP cardinal_aggregator_samples_total Samples aggregated per rule.
# TYPE cardinal_aggregator_samples_total counter
cardinal_aggregator_samples_total{rule="req_total"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"cardinal_aggregator_input_series", "cardinal_aggregator_output_series",
		"cardinal_aggregator_counter_resets_total", "cardinal_aggregator_samples_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(a.Collector(), "cardinal_aggregator_samples_dropped_total"); n != int(numDropReasons) {
		t.Errorf("%d drop-reason series, want %d", n, numDropReasons)
	}
	// The alerts compare flush duration with the interval and input series with the limit:
	// the interval is always there, a limit only when set (0 would read as "over it").
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP cardinal_aggregator_interval_seconds The rule's window length: a flush closes one window per interval, so a flush must take less.
# TYPE cardinal_aggregator_interval_seconds gauge
cardinal_aggregator_interval_seconds{rule="req_total"} 10
`), "cardinal_aggregator_interval_seconds", "cardinal_aggregator_max_input_series", "cardinal_aggregator_max_output_series"); err != nil {
		t.Error(err)
	}
}

func TestCollectorExportsSeriesLimitsWhenSet(t *testing.T) {
	r := counterRule("req_total")
	r.MaxInputSeries, r.MaxOutputSeries = 1000, 10
	a, _, _ := runSteps(t, r, []step{ingestAt(2, series("req_total{pod=a}", 1, 1))})
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP cardinal_aggregator_max_input_series The rule's max_input_series; absent when unlimited. New input series over it are dropped (reason limit).
# TYPE cardinal_aggregator_max_input_series gauge
cardinal_aggregator_max_input_series{rule="req_total"} 1000
# HELP cardinal_aggregator_max_output_series The rule's max_output_series; absent when unlimited. New output series over it are dropped (reason limit).
# TYPE cardinal_aggregator_max_output_series gauge
cardinal_aggregator_max_output_series{rule="req_total"} 10
`), "cardinal_aggregator_max_input_series", "cardinal_aggregator_max_output_series"); err != nil {
		t.Error(err)
	}
}
