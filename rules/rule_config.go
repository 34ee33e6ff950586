package rules

import "github.com/cardinal-proxy/cardinal/config/setting"

// RuleConfig is one rule as written in YAML, before validation and compilation into a Rule.
// Pointer fields are nil when the key is absent, so the rule inherits the aggregator default.
type RuleConfig struct {
	// Name identifies the rule; default: output_name, else the base metric name, else the
	// match string (with _2, _3... appended to repeated defaults).
	Name string `yaml:"name"`
	// MetricName selects series by exact metric name; Match by a Prometheus series selector
	// (`name{a="b",c=~"re"}`). Exactly one of them is set.
	MetricName string `yaml:"metric_name"`
	Match      string `yaml:"match"`
	// Type is counter, gauge, histogram or summary.
	Type Type `yaml:"type"`
	// DropLabels (alias Without) or KeepLabels (alias By) say how to group series.
	DropLabels []string `yaml:"drop_labels"`
	Without    []string `yaml:"without"`
	KeepLabels []string `yaml:"keep_labels"`
	By         []string `yaml:"by"`
	// Outputs are the output kinds (default: total, or sum for gauges).
	Outputs []string `yaml:"outputs"`
	// Interval, FlushDelay and Staleness override the aggregator defaults.
	Interval   *setting.Duration `yaml:"interval"`
	FlushDelay *setting.Duration `yaml:"flush_delay"`
	Staleness  *setting.Duration `yaml:"staleness"`
	// OutputName renames the output metric.
	OutputName string `yaml:"output_name"`
	// AddLabels are set on every output series.
	AddLabels map[string]string `yaml:"add_labels"`
	// KeepInput also forwards the selected input series raw.
	KeepInput bool `yaml:"keep_input"`
	// FirstSample is baseline (default) or count; counters and histograms only.
	FirstSample FirstSample `yaml:"first_sample"`
	// MaxInputSeries and MaxOutputSeries cap the rule's cardinality (0 = unlimited).
	MaxInputSeries  int `yaml:"max_input_series"`
	MaxOutputSeries int `yaml:"max_output_series"`
	// Exemplars is how many of the newest exemplars each output series keeps per window
	// (0, the default, drops them and counts them).
	Exemplars int `yaml:"exemplars"`
	// HA overrides keys of the aggregator's ha block for this rule.
	HA *RuleHAConfig `yaml:"ha"`
}
