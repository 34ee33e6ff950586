package config

import (
	"slices"
	"testing"
)

func TestWarnings(t *testing.T) {
	// withRules puts the first rule on line 3 of cardinal.yaml.
	tests := []struct {
		name  string
		rules string
		want  []string
	}{
		{"summary_quantiles_are_dropped", `
  - metric_name: rpc_latency_seconds
    type: summary
    drop_labels: [pod]`[1:], []string{
			"cardinal.yaml:4: summary rule: only the _sum and _count series of rpc_latency_seconds are aggregated; quantile series cannot be added up and are dropped"}},
		{"regexp_metric_name", `
  - match: '{__name__=~"http_.+_total"}'
    type: counter
    drop_labels: [pod]`[1:], []string{
			"cardinal.yaml:3: match has no exact metric name: every incoming series is tested against this rule (slower than an exact name), and each output keeps its input's metric name"}},
		{"conflicting_equality_matchers_never_match", `
  - match: 'x{env="prod", env="dev"}'
    type: counter
    drop_labels: [pod]`[1:], []string{
			`cardinal.yaml:3: match can never select a series: env="dev" and env="prod" cannot both hold`}},
		{"equality_rejected_by_a_regexp_never_matches", `
  - match: 'x{code="200", code=~"5.."}'
    type: counter
    drop_labels: [pod]`[1:], []string{
			`cardinal.yaml:3: match can never select a series: code="200" and code=~"5.." cannot both hold`}},
		{"empty_metric_name_never_matches", `
  - match: '{__name__="", job="api"}'
    type: counter
    drop_labels: [pod]`[1:], []string{
			"cardinal.yaml:3: match has no exact metric name: every incoming series is tested against this rule (slower than an exact name), and each output keeps its input's metric name",
			`cardinal.yaml:3: match can never select a series: __name__="": every series has a metric name`}},
		{"name_matcher_rejecting_the_selected_names_never_matches", `
  - match: '{__name__="x", __name__!~"x.*"}'
    type: counter
    drop_labels: [pod]`[1:], []string{
			`cardinal.yaml:3: match can never select a series: __name__!~"x.*" rejects x`}},
		{"histogram_named_by_its_count_series", `
  - metric_name: request_count
    type: histogram
    drop_labels: [pod]`[1:], []string{
			`cardinal.yaml:3: metric_name "request_count" ends in _count: aggregating the histogram "request" (request_bucket, request_count, request_sum); if the histogram itself is named "request_count", select "request_count_bucket" instead`}},
		{"two_rules_write_the_same_series", `
  - metric_name: x_total
    type: counter
    drop_labels: [pod]
  - name: again
    match: 'x_total{job="api"}'
    type: counter
    without: [pod]`[1:], []string{
			`cardinal.yaml:6: this rule ("again") writes the same output series as the rule at cardinal.yaml:3 (automatically named "x_total"): x_total with the same labels; give one an output_name or add_labels`}},
		{"rules_told_apart_by_a_kept_label_do_not_collide", `
  - match: 'x_total{env="prod"}'
    type: counter
    drop_labels: [pod]
  - match: 'x_total{env="dev"}'
    type: counter
    drop_labels: [pod]`[1:], nil},
		{"lone_outputs_keep_the_plain_name_so_they_collide", `
  - metric_name: g
    type: gauge
    outputs: [max]
    drop_labels: [pod]
  - metric_name: g
    type: gauge
    outputs: [sum]
    drop_labels: [pod]`[1:], []string{
			`cardinal.yaml:7: this rule (automatically named "g_2") writes the same output series as the rule at cardinal.yaml:3 (automatically named "g"): g with the same labels; give one an output_name or add_labels`}},
		{"rules_with_different_output_names_do_not_collide", `
  - metric_name: g
    type: gauge
    outputs: [max]
    output_name: g_max
    drop_labels: [pod]
  - metric_name: g
    type: gauge
    outputs: [sum, max]
    drop_labels: [pod]`[1:], nil},
		{"rules_with_different_grouping_do_not_collide", `
  - metric_name: x_total
    type: counter
    drop_labels: [pod]
  - metric_name: x_total
    type: counter
    drop_labels: [pod, instance]`[1:], nil},
		{"collision_between_named_rules_names_both_and_the_first_one's_place", `
  - name: first
    metric_name: x_total
    type: counter
    drop_labels: [pod]
  - name: second
    metric_name: x_total
    type: counter
    drop_labels: [pod]`[1:], []string{
			`cardinal.yaml:7: this rule ("second") writes the same output series as rule "first" at cardinal.yaml:3: x_total with the same labels; give one an output_name or add_labels`}},
		{"rule_without_drop_or_keep_labels_reduces_nothing", `
  - metric_name: x_total
    type: counter`[1:], []string{
			"cardinal.yaml:3: the rule has neither drop_labels nor keep_labels: it keeps every label, so each input series is its own output series and nothing is reduced; list the labels to drop (drop_labels) or to keep (keep_labels)"}},
		{"empty_drop_labels_reduces_nothing", `
  - metric_name: x_total
    type: counter
    drop_labels: []`[1:], []string{
			"cardinal.yaml:5: drop_labels is empty: it keeps every label, so each input series is its own output series and nothing is reduced; list the labels to drop (drop_labels) or to keep (keep_labels)"}},
		{"empty_keep_labels_sums_everything_and_is_no_warning", `
  - metric_name: x_total
    type: counter
    keep_labels: []`[1:], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, withRules(tt.rules+"\n"))
			if !slices.Equal(cfg.Warnings, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q", cfg.Warnings, tt.want)
			}
		})
	}
}

func TestWarningForAConfigWithoutRules(t *testing.T) {
	cfg := mustParse(t, "aggregator: {unmatched: drop}\ndownstream: {file: {path: \"-\"}}\n")
	want := []string{"cardinal.yaml:1: no rules: every series is dropped (aggregator.unmatched: drop)"}
	if !slices.Equal(cfg.Warnings, want) {
		t.Errorf("warnings:\n got %q\nwant %q", cfg.Warnings, want)
	}
}

func TestDefaultRuleNames(t *testing.T) {
	cfg := mustParse(t, withRules(`
  - metric_name: x_total
    type: counter
  - metric_name: x_total
    type: counter
    drop_labels: [pod]
  - metric_name: h_bucket
    type: histogram
  - metric_name: y
    type: gauge
    output_name: y_agg
  - match: '{__name__=~"z.+"}'
    type: gauge
  - name: x_total_2
    metric_name: w
    type: gauge
`[1:]))
	var got []string
	for _, r := range cfg.Rules {
		got = append(got, r.Name)
	}
	want := []string{"x_total", "x_total_3", "h", "y_agg", `{__name__=~"z.+"}`, "x_total_2"}
	if !slices.Equal(got, want) {
		t.Errorf("names = %q, want %q (explicit names are reserved before defaults are numbered)", got, want)
	}
}
