package explore

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// metric builds a Metric with labels (name, values, series without) and cumulative drops.
func metric(name string, series uint64, labels []Label, drops ...Drop) Metric {
	return Metric{Name: name, Series: series, Detailed: true, Labels: labels, Drops: drops}
}

func TestSuggestGroupsFamiliesKeepsLabelsAndMeetsTheTarget(t *testing.T) {
	r := Result{Metrics: []Metric{
		metric("req_seconds_bucket", 50000, []Label{{Name: "pod", Values: 1000, SeriesWithout: 500}, {Name: "le", Values: 10, SeriesWithout: 5000}, {Name: "code", Values: 5, SeriesWithout: 50000}},
			Drop{Labels: []string{"pod"}, Series: 500}, Drop{Labels: []string{"pod", "code"}, Series: 10}),
		metric("req_seconds_count", 5000, []Label{{Name: "pod", Values: 1000, SeriesWithout: 50}, {Name: "code", Values: 5, SeriesWithout: 5000}},
			Drop{Labels: []string{"pod"}, Series: 50}),
		metric("req_seconds_sum", 5000, []Label{{Name: "pod", Values: 1000, SeriesWithout: 50}}),
		metric("jobs_total", 20000, []Label{{Name: "request_id", Values: 20000, SeriesWithout: 400}, {Name: "instance", Values: 40, SeriesWithout: 20000}},
			Drop{Labels: []string{"request_id"}, Series: 400}, Drop{Labels: []string{"request_id", "instance"}, Series: 10}),
		metric("temperature", 3000, []Label{{Name: "sensor", Values: 3000, SeriesWithout: 3}}),
		{Name: "covered_total", Series: 9000, Detailed: true, Rules: []RuleCoverage{{Rule: "covered_total", InputSeries: 9000, OutputSeries: 9}}},
		metric("tiny", 10, nil),
	}}
	s := Suggest(r, SuggestOptions{Top: 10, Target: 600, Keep: []string{"code"}})
	byMetric := map[string]SuggestedRule{}
	for _, rule := range s.Rules {
		byMetric[rule.Metric] = rule
	}
	h := byMetric["req_seconds"]
	if h.Type != "histogram" || strings.Join(h.Drop, ",") != "pod" || h.SeriesIn != 60000 || h.SeriesOut != 600 || len(h.Members) != 3 {
		t.Errorf("histogram rule %+v: want pod dropped (code kept), 60000 in, 500+50+50 out", h)
	}
	if c := byMetric["jobs_total"]; c.Type != "counter" || strings.Join(c.Drop, ",") != "request_id" || c.SeriesOut != 400 {
		t.Errorf("counter rule %+v: want request_id only, which reaches the target", c)
	}
	if g := byMetric["temperature"]; g.Type != "gauge" || strings.Join(g.Drop, ",") != "sensor" || g.SeriesOut != 3 {
		t.Errorf("gauge rule from the first scan's single labels %+v", g)
	}
	if len(s.Rules) != 3 || len(s.Skipped) != 2 {
		t.Errorf("rules %d, skipped %q", len(s.Rules), s.Skipped)
	}

	tight := Suggest(r, SuggestOptions{Top: 1, Target: 100, Keep: []string{"code"}})
	if len(tight.Rules) != 1 || !strings.Contains(tight.Rules[0].Note, "--keep") {
		t.Errorf("a target out of reach while keeping code: %+v", tight.Rules)
	}

	text := s.RulesYAML()
	var parsed struct {
		Rules []struct {
			MetricName string   `yaml:"metric_name"`
			Type       string   `yaml:"type"`
			DropLabels []string `yaml:"drop_labels"`
		} `yaml:"rules"`
	}
	if err := yaml.Unmarshal([]byte(text), &parsed); err != nil || len(parsed.Rules) != 3 || parsed.Rules[0].MetricName != "req_seconds" {
		t.Errorf("rules YAML does not read back (%v):\n%s", err, text)
	}
	for _, want := range []string{"# req_seconds: 60000 series -> about 600 (100.0x fewer).", "# Left alone: covered_total: already aggregated (rule covered_total: 9000 → 9 series).", "# Left alone: tiny: 10 series, already within the target."} {
		if !strings.Contains(text, want) {
			t.Errorf("rules YAML lacks %q:\n%s", want, text)
		}
	}
	tests := s.TestsYAML("rules.yaml")
	if !strings.Contains(tests, `req_seconds_bucket{code="example",le="+Inf",pod="a"}`) || !strings.Contains(tests, "rule_files: [\"rules.yaml\"]") {
		t.Errorf("tests YAML:\n%s", tests)
	}
}
