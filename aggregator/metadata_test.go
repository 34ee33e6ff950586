package aggregator

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

func TestCheckMetadataCountsAndLogsTypeMismatchesOnce(t *testing.T) {
	var logs bytes.Buffer
	hist := counterRule("lat")
	hist.Type, hist.MetricNames, hist.BaseName = rules.Histogram, []string{"lat_bucket", "lat_count", "lat_sum"}, "lat"
	a := New(Options{Output: &collectSink{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := a.SetRules([]*rules.Rule{counterRule("req_total"), gaugeRule("temp"), hist, counterRule("lat_count")}); err != nil {
		t.Fatal(err)
	}
	md := func(name string, typ prompb.MetricMetadata_MetricType) prompb.MetricMetadata {
		return prompb.MetricMetadata{MetricFamilyName: name, Type: typ}
	}
	for range 3 {
		a.CheckMetadata([]prompb.MetricMetadata{
			md("req", prompb.MetricMetadata_GAUGE),         // counter rule on req_total: wrong
			md("temp", prompb.MetricMetadata_COUNTER),      // gauge rule: wrong
			md("lat", prompb.MetricMetadata_HISTOGRAM),     // histogram rule, and a counter rule on lat_count: right
			md("other", prompb.MetricMetadata_GAUGE),       // no rule
			md("req_total", prompb.MetricMetadata_UNKNOWN), // not judged
		})
	}
	want := map[string]uint64{"req_total": 3, "temp": 3, "lat": 0, "lat_count": 0}
	for _, s := range a.Stats() {
		if s.TypeMismatches != want[s.Name] {
			t.Errorf("rule %s: %d mismatches, want %d", s.Name, s.TypeMismatches, want[s.Name])
		}
	}
	if n := strings.Count(logs.String(), "its type disagrees"); n != 2 {
		t.Errorf("%d warnings, want one per rule that disagrees:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "declared_type=gauge") || !strings.Contains(logs.String(), "rule_type=counter") {
		t.Errorf("the warning does not name both types:\n%s", logs.String())
	}
	// A gauge histogram under a histogram rule (counter semantics) disagrees too.
	a.CheckMetadata([]prompb.MetricMetadata{md("lat", prompb.MetricMetadata_GAUGEHISTOGRAM)})
	for _, s := range a.Stats() {
		if s.Name == "lat" && s.TypeMismatches != 1 {
			t.Errorf("lat: %d mismatches for a gauge histogram, want 1", s.TypeMismatches)
		}
	}
}
