package rules

import (
	"maps"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// nowhere is a Locator for rules compiled outside any file.
type nowhere struct{}

func (nowhere) File() string               { return "test" }
func (nowhere) Line(setting.Key) int       { return 0 }
func (nowhere) Written(k setting.Key) bool { return false }

// compileOne decodes a YAML list holding one rule and compiles it with the default defaults,
// failing the test on any error.
func compileOne(t *testing.T, rule string) *Rule {
	t.Helper()
	var cfgs []RuleConfig
	if err := yaml.Unmarshal([]byte(rule), &cfgs); err != nil || len(cfgs) != 1 {
		t.Fatalf("decoding %q: %v (%d rules)", rule, err, len(cfgs))
	}
	var p setting.Problems
	rules := Compile([]Source{{Config: cfgs[0], At: nowhere{}}}, DefaultDefaults(), &p)
	if p.Failed() {
		t.Fatalf("compiling:\n%v", p.Err())
	}
	return rules[0]
}

// labelsOf turns a map into a sorted label set.
func labelsOf(m map[string]string) []prompb.Label {
	var out []prompb.Label
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, prompb.Label{Name: k, Value: m[k]})
	}
	return out
}
