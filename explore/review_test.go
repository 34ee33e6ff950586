package explore

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"gopkg.in/yaml.v3"
)

// TestLabelsBeforeNameAndLabelsSeenLate covers labels that sort before __name__ (upper
// case) and a label first seen after many series: observing them neither panics nor leaves
// the explorer locked, and dropping the late label saves nothing, as is true.
func TestLabelsBeforeNameAndLabelsSeenLate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	e := New(DefaultConfig(), nil, clk.now)
	e.StartScan()
	var req []prompb.TimeSeries
	for i := range 1000 {
		req = append(req, prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "Env", Value: "prod"}, {Name: "__name__", Value: "m"}, {Name: "pod", Value: strings.Repeat("p", 1+i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26))},
		}, Samples: []prompb.Sample{{Value: 1}}})
	}
	e.Observe(req)
	e.Observe([]prompb.TimeSeries{{Labels: []prompb.Label{
		{Name: "Env", Value: "prod"}, {Name: "__name__", Value: "m"}, {Name: "pod", Value: "late"}, {Name: "zone", Value: "z1"},
	}, Samples: []prompb.Sample{{Value: 1}}}})
	if !e.mu.TryLock() {
		t.Fatal("the explorer's lock is held after observing")
	}
	e.mu.Unlock()
	e.EndScan()
	r, _ := e.Result()
	m := r.Metrics[0]
	byName := map[string]Label{}
	for _, l := range m.Labels {
		byName[l.Name] = l
	}
	if z := byName["zone"]; z.SeriesWithout != m.Series || z.Series != 1 {
		t.Errorf("zone, seen in the last of %d series: %+v, want %d series without it", m.Series, z, m.Series)
	}
	if env := byName["Env"]; env.Values != 1 || env.SeriesWithout != m.Series {
		t.Errorf("Env: %+v", env)
	}
}

// TestSuggestWritesValidYAMLWhateverTheNames feeds names a rule cannot take (UTF-8, a
// newline) and names YAML would misread (on): the files parse, and such families are left
// alone with a note.
func TestSuggestWritesValidYAMLWhateverTheNames(t *testing.T) {
	var ms []Metric
	for _, name := range []string{"on", "http.server.duration", "evil\nrules: []\n#", "a:b_total"} {
		ms = append(ms, metric(name, 1000, []Label{{Name: "pod", Values: 1000, SeriesWithout: 1}}, Drop{Labels: []string{"pod"}, Series: 1}))
	}
	ms = append(ms, metric("k8s", 1000, []Label{{Name: "k8s.pod", Values: 1000, SeriesWithout: 1}}, Drop{Labels: []string{"k8s.pod"}, Series: 1}))
	s := Suggest(Result{Metrics: ms}, SuggestOptions{Top: 10, Target: 10})
	var parsed struct {
		Rules []map[string]any `yaml:"rules"`
	}
	if err := yaml.Unmarshal([]byte(s.RulesYAML()), &parsed); err != nil {
		t.Fatalf("rules: %v\n%s", err, s.RulesYAML())
	}
	if len(parsed.Rules) != 2 || len(s.Skipped) != 3 {
		t.Errorf("rules %v, skipped %q: want on and a:b_total, and three left alone", parsed.Rules, s.Skipped)
	}
	var tests map[string]any
	if err := yaml.Unmarshal([]byte(s.TestsYAML("r.yaml")), &tests); err != nil {
		t.Fatalf("tests: %v\n%s", err, s.TestsYAML("r.yaml"))
	}
}
