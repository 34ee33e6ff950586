package aggregator

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

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

// The outputs get the metadata of their inputs, typed by what each output is: a counter's
// total a counter, its rate a gauge without the unit; a histogram's total a histogram of
// the family its components share.
func TestOutputsGetTheirInputsMetadata(t *testing.T) {
	req := counterRule("req_total", rules.OutputTotal, rules.OutputRate)
	hist := counterRule("lat")
	hist.Type, hist.MetricNames, hist.BaseName = rules.Histogram, []string{"lat_bucket", "lat_count", "lat_sum"}, "lat"
	hist.Outputs = []string{rules.OutputTotal}
	temp := gaugeRule("temp", rules.OutputMax)
	temp.OutputName = "room_temp"
	a := New(Options{Output: &collectSink{}})
	if err := a.SetRules([]*rules.Rule{req, hist, temp}); err != nil {
		t.Fatal(err)
	}
	a.CheckMetadata([]prompb.MetricMetadata{
		{MetricFamilyName: "req", Type: prompb.MetricMetadata_COUNTER, Help: "Requests served.", Unit: "requests"},
		{MetricFamilyName: "lat", Type: prompb.MetricMetadata_HISTOGRAM, Help: "Latency.", Unit: "seconds"},
		{MetricFamilyName: "temp", Type: prompb.MetricMetadata_GAUGE, Help: "Temperature.", Unit: "celsius"},
		{MetricFamilyName: "other", Type: prompb.MetricMetadata_GAUGE, Help: "No rule."},
	})
	want := map[string]prompb.MetricMetadata{
		"req_total":      {MetricFamilyName: "req_total", Type: prompb.MetricMetadata_COUNTER, Help: "Requests served.", Unit: "requests"},
		"req_total:rate": {MetricFamilyName: "req_total:rate", Type: prompb.MetricMetadata_GAUGE, Help: "Requests served. (rate per window, aggregated by cardinal)"},
		"lat_bucket":     {MetricFamilyName: "lat", Type: prompb.MetricMetadata_HISTOGRAM, Help: "Latency.", Unit: "seconds"},
		"lat_count":      {MetricFamilyName: "lat", Type: prompb.MetricMetadata_HISTOGRAM, Help: "Latency.", Unit: "seconds"},
		"lat":            {MetricFamilyName: "lat", Type: prompb.MetricMetadata_HISTOGRAM, Help: "Latency.", Unit: "seconds"}, // native
		"room_temp":      {MetricFamilyName: "room_temp", Type: prompb.MetricMetadata_GAUGE, Help: "Temperature.", Unit: "celsius"},
	}
	for name, w := range want {
		got, ok := a.MetadataOf(name)
		if !ok || got.String() != w.String() {
			t.Errorf("%s: got %v (%v), want %v", name, got, ok, w)
		}
	}
	for _, name := range []string{"other", "temp", "req"} {
		if got, ok := a.MetadataOf(name); ok {
			t.Errorf("%s is no output, has metadata %v", name, got)
		}
	}
	var fams []string
	for _, m := range a.Metadata() {
		fams = append(fams, m.MetricFamilyName)
	}
	if got := strings.Join(fams, " "); got != "lat req_total req_total:rate room_temp" {
		t.Errorf("families %q", got)
	}

	// A rule that a reload removes takes its outputs' metadata with it.
	if err := a.SetRules([]*rules.Rule{req}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.MetadataOf("room_temp"); ok {
		t.Error("room_temp kept its metadata after its rule was removed")
	}
	if _, ok := a.MetadataOf("req_total"); !ok {
		t.Error("req_total lost its metadata in a reload that kept its rule")
	}
}

// Agents that disagree on a metric's help change it at most once a minute; a new type is
// taken at once.
func TestOutputMetadataChangesAreBounded(t *testing.T) {
	a, _, _, clk := newTestAggregator(t, 1, counterRule("req_total"))
	declare := func(help string, typ prompb.MetricMetadata_MetricType) {
		a.CheckMetadata([]prompb.MetricMetadata{{MetricFamilyName: "req_total", Type: typ, Help: help}})
	}
	help := func() string { m, _ := a.MetadataOf("req_total"); return m.Help }
	declare("v1", prompb.MetricMetadata_COUNTER)
	declare("v2", prompb.MetricMetadata_COUNTER)
	if help() != "v1" {
		t.Errorf("help %q right after v1, want v1", help())
	}
	clk.t = clk.t.Add(time.Minute)
	declare("v2", prompb.MetricMetadata_COUNTER)
	if help() != "v2" {
		t.Errorf("help %q a minute later, want v2", help())
	}
	declare("v3", prompb.MetricMetadata_UNKNOWN)
	if help() != "v3" {
		t.Errorf("help %q after a change of type, want v3", help())
	}
}
