package explore

import (
	"fmt"
	"strings"
)

// TestsYAML writes a `cardinal test rules` file for the suggested rules in rulesFile (as the
// test file names it): for each rule, two input series that differ only in the labels it
// drops, and the aggregate the rule must write. Label values are placeholders; the tests
// pass as written, and are meant to be edited into real cases.
func (s Suggestion) TestsYAML(rulesFile string) string {
	var b strings.Builder
	b.WriteString("# Unit tests for the rules `cardinal suggest` wrote: `cardinal test rules THIS-FILE`.\n")
	b.WriteString("# Each test feeds two series that differ only in the labels the rule drops, with\n")
	b.WriteString("# placeholder values (\"a\", \"b\", \"example\"): replace them with real ones.\n")
	b.WriteString("# Values use Prometheus's expanding notation: 0+10x20 is 0, 10, 20, ... 200.\n")
	fmt.Fprintf(&b, "rule_files: [%s]\n", yamlString(rulesFile))
	b.WriteString("aggregator:\n  flush_interval: 15s\n  flush_delay: 5s\n")
	if len(s.Rules) == 0 {
		b.WriteString("tests: []\n")
		return b.String()
	}
	b.WriteString("tests:\n")
	for _, r := range s.Rules {
		fmt.Fprintf(&b, "  - name: %q\n    interval: 15s\n    input_series:\n", r.Metric+" drops "+strings.Join(r.Drop, ", "))
		switch r.Type {
		case "counter":
			writeInput(&b, r.Metric, r, "a", "0+10x20")
			writeInput(&b, r.Metric, r, "b", "0+5x20")
			b.WriteString("    expected:\n")
			b.WriteString("      # a and b increase by 200 and 100 in 5 minutes\n")
			writeExpected(&b, r.Metric, r, "", "5m", "300")
		case "gauge":
			writeInput(&b, r.Metric, r, "a", "100x8")
			writeInput(&b, r.Metric, r, "b", "50x8")
			b.WriteString("    expected:\n")
			b.WriteString("      # the sum of the latest value of each input\n")
			writeExpected(&b, r.Metric, r, "", "1m", "150")
		case "histogram":
			writeInput(&b, r.Metric+"_bucket", r, "a", "0+4x8", `le="+Inf"`)
			writeInput(&b, r.Metric+"_bucket", r, "b", "0+2x8", `le="+Inf"`)
			writeInput(&b, r.Metric+"_count", r, "a", "0+4x8")
			writeInput(&b, r.Metric+"_count", r, "b", "0+2x8")
			b.WriteString("    expected:\n")
			b.WriteString("      # buckets and _count add up per le: (4+2) × 8 scrapes in 2 minutes\n")
			writeExpected(&b, r.Metric+"_bucket", r, `le="+Inf"`, "2m", "48")
			writeExpected(&b, r.Metric+"_count", r, "", "2m", "48")
		case "summary":
			writeInput(&b, r.Metric+"_count", r, "a", "0+4x8")
			writeInput(&b, r.Metric+"_count", r, "b", "0+2x8")
			b.WriteString("    expected:\n")
			b.WriteString("      # _count adds up; the quantile series cannot be added and are dropped\n")
			writeExpected(&b, r.Metric+"_count", r, "", "2m", "48")
		}
	}
	return b.String()
}

// selector writes name{labels}: the kept labels with placeholder values, extra, and, for an
// input series (which != ""), the dropped labels set to which.
func selector(name string, r SuggestedRule, which, extra string) string {
	var ls []string
	for _, k := range r.Keeps {
		if k == "le" || k == "quantile" {
			continue
		}
		ls = append(ls, fmt.Sprintf("%s=\"example\"", k))
	}
	if extra != "" {
		ls = append(ls, extra)
	}
	if which != "" {
		for _, d := range r.Drop {
			ls = append(ls, fmt.Sprintf("%s=%q", d, which))
		}
	}
	return name + "{" + strings.Join(ls, ",") + "}"
}

func writeInput(b *strings.Builder, name string, r SuggestedRule, which, values string, extra ...string) {
	fmt.Fprintf(b, "      - series: '%s'\n        values: '%s'\n", selector(name, r, which, strings.Join(extra, ",")), values)
}

func writeExpected(b *strings.Builder, name string, r SuggestedRule, extra, at, value string) {
	fmt.Fprintf(b, "      - {series: '%s', eval_time: %s, value: %s}\n", selector(name, r, "", extra), at, value)
}
