package rules

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// LimitsConfig bounds what one remote-write request may hold (server.limits). Each limit is
// counted when it bites; 0 turns it off. Per-rule cardinality limits are max_input_series and
// max_output_series on the rule.
type LimitsConfig struct {
	// MaxSeriesPerRequest refuses a whole request with more series: 413 (default 50000).
	MaxSeriesPerRequest Limit `yaml:"max_series_per_request"`
	// MaxLabelsPerSeries refuses a series with more labels, __name__ included; the rest of
	// its request is kept and the answer is 400 (default 64).
	MaxLabelsPerSeries Limit `yaml:"max_labels_per_series"`
	// MaxLabelNameLength and MaxLabelValueLength refuse a series with a longer label name or
	// value, in bytes, like MaxLabelsPerSeries (defaults 1024 and 4096).
	MaxLabelNameLength  Limit `yaml:"max_label_name_length"`
	MaxLabelValueLength Limit `yaml:"max_label_value_length"`
}

// Limit is a count that bounds something; 0 means no bound. A negative value is an error at
// its line.
type Limit int

// UnmarshalYAML parses a non-negative integer.
func (l *Limit) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "expected a number (0 for no limit)")
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 0 {
		return nodeError(n, "invalid limit "+strconv.Quote(n.Value)+": write a whole number, 0 for no limit")
	}
	*l = Limit(v)
	return nil
}
