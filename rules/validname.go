package rules

import "github.com/prometheus/common/model"

// Metric and label names follow Prometheus's classic (legacy) character rules, which every
// remote-write receiver and PromQL without quoting accept.

// validMetricName reports whether s is a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool { return model.IsValidLegacyMetricName(s) }

// validLabelName reports whether s is a valid label name: [a-zA-Z_][a-zA-Z0-9_]*.
func validLabelName(s string) bool { return model.LabelName(s).IsValidLegacy() }
