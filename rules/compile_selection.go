package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// compileSelection turns metric_name or match into the rule's MetricNames, BaseName and
// Matchers, expanding a histogram or summary base name into its component series.
func (s *ruleSource) compileSelection(r *Rule, p *setting.Problems) {
	c := &s.cfg
	switch {
	case c.MetricName != "" && c.Match != "":
		s.errorf(p, "match", "metric_name and match are mutually exclusive: use metric_name for one metric, match for a selector")
	case c.MetricName == "" && c.Match == "":
		s.errorf(p, "", "a rule needs metric_name (an exact metric name) or match (a series selector)")
	case c.MetricName != "":
		if !validMetricName(c.MetricName) {
			s.errorf(p, "metric_name", "metric_name %q is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", c.MetricName)
			return
		}
		s.setMetricName(r, c.MetricName, "metric_name", p)
	default:
		s.compileMatch(r, p)
	}
}

func (s *ruleSource) compileMatch(r *Rule, p *setting.Problems) {
	ms, err := ParseSelector(s.cfg.Match)
	if err != nil {
		s.errorf(p, "match", "match: %v", err)
		return
	}
	name := ""
	for _, m := range ms {
		if name == "" && m.Name == MetricNameLabel && m.Type == MatchEqual && m.Value != "" {
			name = m.Value
			continue
		}
		r.Matchers = append(r.Matchers, m)
	}
	slices.SortStableFunc(r.Matchers, func(a, b *Matcher) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Value, b.Value))
	})
	if name != "" {
		if !validMetricName(name) {
			s.errorf(p, "match", "match: %q is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", name)
			return
		}
		s.setMetricName(r, name, "match", p)
	} else {
		outcome := "each output keeps its input's metric name"
		if s.cfg.OutputName != "" {
			outcome = "output_name gives the outputs of every selected metric one name"
		}
		p.Warnf(s.at.File(), s.line("match"), "match has no exact metric name: every incoming series is tested against this rule (slower than an exact name), and %s", outcome)
	}
	if why := neverMatches(r); why != "" {
		p.Warnf(s.at.File(), s.line("match"), "match can never select a series: %s", why)
	}
}

// setMetricName fills BaseName and MetricNames from the exact metric name the rule selects.
// For a histogram, x_bucket, x_sum and x_count all mean the histogram x (and a summary's
// x_sum and x_count the summary x); since a histogram can itself be named like request_count,
// stripping _sum or _count comes with a warning that says how to select such a histogram.
func (s *ruleSource) setMetricName(r *Rule, name, key string, p *setting.Problems) {
	base := name
	if suffix := ComponentSuffix(r.Type, name); suffix != "" {
		base = strings.TrimSuffix(name, suffix)
		if suffix != "_bucket" {
			whole := name + "_sum"
			if r.Type == Histogram {
				whole = name + "_bucket"
			}
			p.Warnf(s.at.File(), s.line(key), "%s %q ends in %s: aggregating the %s %q (%s); if the %s itself is named %q, select %q instead",
				key, name, suffix, r.Type, base, strings.Join(componentNames(r.Type, base), ", "), r.Type, name, whole)
		}
	}
	r.BaseName = base
	r.MetricNames = componentNames(r.Type, base)
}

// neverMatches explains why no series can satisfy the rule's selector, or returns "": an
// equality matcher whose value another matcher on the same label rejects (a="x", a="y";
// a="x", a!~"x"), an empty metric name, or a __name__ matcher that rejects every name the
// rule selects.
func neverMatches(r *Rule) string {
	for _, m := range r.Matchers {
		if m.Name != MetricNameLabel {
			continue
		}
		if m.Type == MatchEqual && m.Value == "" {
			return fmt.Sprintf("%s: every series has a metric name", m)
		}
		if len(r.MetricNames) > 0 && !slices.ContainsFunc(r.MetricNames, m.Matches) {
			return fmt.Sprintf("%s rejects %s", m, strings.Join(r.MetricNames, ", "))
		}
	}
	for _, eq := range r.Matchers {
		if eq.Type != MatchEqual {
			continue
		}
		for _, other := range r.Matchers {
			if other != eq && other.Name == eq.Name && !other.Matches(eq.Value) {
				return fmt.Sprintf("%s and %s cannot both hold", eq, other)
			}
		}
	}
	return ""
}
