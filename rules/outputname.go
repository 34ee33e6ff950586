package rules

import (
	"slices"
	"strings"
)

// OutputMetricName is the metric name of the series that output (one of r.Outputs) emits for
// the input metric named input, so that dashboards keep working:
//   - the name is the input's, or output_name (for a histogram or summary, output_name
//     replaces the base name and the component suffix stays: x_bucket → y_bucket);
//   - the type's default output (total, or sum for gauges), or a rule's only output, keeps
//     that name; any other output appends ":" and its kind (mem:max). When several outputs
//     are listed without the default, the first of r.Outputs keeps the plain name.
//
// The aggregator names the series it emits this way; the collision warnings rely on it.
func (r *Rule) OutputMetricName(input, output string) string {
	return r.outputBaseName(input) + r.outputSuffix(output)
}

// outputBaseName is the output metric name before any output-kind suffix.
func (r *Rule) outputBaseName(input string) string {
	if r.OutputName == "" {
		return input
	}
	if (r.Type == Histogram || r.Type == Summary) && r.BaseName != "" && strings.HasPrefix(input, r.BaseName) {
		return r.OutputName + input[len(r.BaseName):]
	}
	return r.OutputName
}

// PlainOutput reports whether output keeps the plain metric name (no ":" kind suffix).
func (r *Rule) PlainOutput(output string) bool { return r.outputSuffix(output) == "" }

// outputSuffix is "" for the output that keeps the plain name, else ":" + output.
func (r *Rule) outputSuffix(output string) string {
	def := r.Type.DefaultOutput()
	switch {
	case len(r.Outputs) <= 1 || output == def:
		return ""
	case !slices.Contains(r.Outputs, def) && output == r.Outputs[0]:
		return ""
	}
	return ":" + output
}

// ComponentSuffix is the part of a histogram or summary series name that names the component
// (_bucket, _sum, _count), or "".
func ComponentSuffix(t Type, name string) string {
	var suffixes []string
	switch t {
	case Histogram:
		suffixes = []string{"_bucket", "_sum", "_count"}
	case Summary:
		suffixes = []string{"_sum", "_count"}
	}
	for _, s := range suffixes {
		if len(name) > len(s) && strings.HasSuffix(name, s) {
			return s
		}
	}
	return ""
}

// componentNames are the input series names of a rule of type t on base metric name base.
func componentNames(t Type, base string) []string {
	switch t {
	case Histogram:
		return []string{base + "_bucket", base + "_count", base + "_sum"}
	case Summary:
		return []string{base, base + "_count", base + "_sum"}
	}
	return []string{base}
}
