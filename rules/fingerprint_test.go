package rules

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// baseRuleYAML is a rule with every semantic field set; variants below change one thing.
const baseRuleYAML = `  - name: base
    match: 'http_requests_total{job="api"}'
    type: counter
    drop_labels: [pod, instance]
    outputs: [total, rate]
    interval: 30s
    flush_delay: 5s
    staleness: 10m
    output_name: http_requests_agg_total
    add_labels: {tier: agg}
    keep_input: false
    first_sample: baseline
    max_input_series: 100
    max_output_series: 10
`

func TestFingerprintIgnoresNameSourceAndSpelling(t *testing.T) {
	base := compileOne(t, baseRuleYAML)
	tests := []struct{ name, rule string }{
		{"renamed", strings.Replace(baseRuleYAML, "name: base", "name: other", 1)},
		{"unnamed", strings.Replace(baseRuleYAML, "  - name: base\n    match", "  - match", 1)},
		{"moved_down_a_line", "\n" + baseRuleYAML},
		{"labels_listed_in_another_order", strings.Replace(baseRuleYAML, "[pod, instance]", "[instance, pod]", 1)},
		{"alias_spelling", strings.Replace(baseRuleYAML, "drop_labels:", "without:", 1)},
		{"outputs_in_another_order", strings.Replace(baseRuleYAML, "[total, rate]", "[rate, total]", 1)},
		{"defaults_written_out", strings.Replace(baseRuleYAML, "    keep_input: false\n    first_sample: baseline\n", "", 1)},
		{"selector_spelled_differently", strings.Replace(baseRuleYAML, `'http_requests_total{job="api"}'`, `'{job=''api'', __name__="http_requests_total"}'`, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := compileOne(t, tt.rule).Fingerprint; got != base.Fingerprint {
				t.Errorf("fingerprint changed: %x, base %x", got, base.Fingerprint)
			}
		})
	}
}

func TestFingerprintChangesWithEverySemanticField(t *testing.T) {
	base := compileOne(t, baseRuleYAML)
	tests := []struct{ name, from, to string }{
		{"type", "type: counter", "type: histogram"},
		{"metric_name", "http_requests_total{", "http_requests_count{"},
		{"matcher_value", `job="api"`, `job="web"`},
		{"matcher_operator", `job="api"`, `job=~"api"`},
		{"extra_matcher", `job="api"`, `job="api",env="prod"`},
		{"dropped_labels", "[pod, instance]", "[pod]"},
		{"grouping_mode", "drop_labels: [pod, instance]", "keep_labels: [pod, instance]"},
		{"outputs", "[total, rate]", "[total]"},
		{"interval", "interval: 30s", "interval: 1m"},
		{"flush_delay", "flush_delay: 5s", "flush_delay: 6s"},
		{"staleness", "staleness: 10m", "staleness: 5m"},
		{"output_name", "output_name: http_requests_agg_total", "output_name: other_total"},
		{"add_label_value", "{tier: agg}", "{tier: agg2}"},
		{"add_label_name", "{tier: agg}", "{level: agg}"},
		{"keep_input", "keep_input: false", "keep_input: true"},
		{"first_sample", "first_sample: baseline", "first_sample: count"},
		{"max_input_series", "max_input_series: 100", "max_input_series: 101"},
		{"max_output_series", "max_output_series: 10", "max_output_series: 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(baseRuleYAML, tt.from) {
				t.Fatalf("base rule lacks %q", tt.from)
			}
			if got := compileOne(t, strings.Replace(baseRuleYAML, tt.from, tt.to, 1)).Fingerprint; got == base.Fingerprint {
				t.Errorf("changing %s did not change the fingerprint", tt.name)
			}
		})
	}
}

// TestFingerprintCoversEveryRuleField changes each field of Rule in turn, so that a field
// added to Rule without being added to the fingerprint fails here.
func TestFingerprintCoversEveryRuleField(t *testing.T) {
	notHashed := map[string]bool{"Name": true, "Source": true, "Fingerprint": true}
	base := compileOne(t, baseRuleYAML)
	extra, _ := NewMatcher(MatchNotEqual, "env", "dev")
	rt := reflect.TypeFor[Rule]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() || notHashed[f.Name] {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			r := *base
			v := reflect.ValueOf(&r).Elem().Field(i)
			switch x := v.Addr().Interface().(type) {
			case *Type:
				*x += "x"
			case *FirstSample:
				*x += "x"
			case *string:
				*x += "x"
			case *[]string:
				*x = append(append([]string(nil), *x...), "x")
			case *[]*Matcher:
				*x = append(append([]*Matcher(nil), *x...), extra)
			case *[]prompb.Label:
				*x = append(append([]prompb.Label(nil), *x...), prompb.Label{Name: "z", Value: "z"})
			case *bool:
				*x = !*x
			case *int:
				*x++
			case *time.Duration:
				*x++
			case **HA:
				*x = &HA{GroupLabel: "cluster", ReplicaLabel: "__replica__", FailoverTimeout: time.Minute}
			default:
				t.Fatalf("no mutation for field %s of type %s: teach this test and fingerprint() about it", f.Name, f.Type)
			}
			if fingerprint(&r) == fingerprint(base) {
				t.Errorf("fingerprint ignores Rule.%s", f.Name)
			}
		})
	}
	// Each setting of the election counts too.
	ha := HA{GroupLabel: "cluster", ReplicaLabel: "__replica__", FailoverTimeout: time.Minute}
	with := func(h HA) uint64 { r := *base; r.HA = &h; return fingerprint(&r) }
	for name, h := range map[string]HA{
		"group_label":      {GroupLabel: "prometheus", ReplicaLabel: ha.ReplicaLabel, FailoverTimeout: ha.FailoverTimeout},
		"replica_label":    {GroupLabel: ha.GroupLabel, ReplicaLabel: "prometheus_replica", FailoverTimeout: ha.FailoverTimeout},
		"failover_timeout": {GroupLabel: ha.GroupLabel, ReplicaLabel: ha.ReplicaLabel, FailoverTimeout: time.Second},
	} {
		if with(h) == with(ha) {
			t.Errorf("fingerprint ignores ha.%s", name)
		}
	}
	renamed := *base
	renamed.Name, renamed.Source = "other", "elsewhere.yaml:1"
	if fingerprint(&renamed) != fingerprint(base) {
		t.Error("fingerprint depends on Name or Source")
	}
}
