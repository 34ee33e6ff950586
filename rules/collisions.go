package rules

import (
	"fmt"
	"slices"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// warnCollisions warns when two rules write the same output series: the same output metric
// name, grouping and added labels, with nothing that tells their inputs apart (an equality
// matcher with different values on a label both keep). Downstream, their samples would
// overwrite each other. Rules whose metric name is a regexp are not compared.
func warnCollisions(srcs []*ruleSource, rules []*Rule, p *setting.Problems) {
	seen := map[string][]int{} // output series key → indexes of the rules writing it
	warned := map[[2]int]bool{}
	for i, r := range rules {
		if r == nil {
			continue
		}
		grouping := fmt.Sprint(r.ByMode, r.Without, r.By, r.AddLabels)
		for _, in := range r.MetricNames {
			if r.Type == Summary && in == r.BaseName {
				continue // quantile series are dropped, not written
			}
			for _, o := range r.Outputs {
				out := r.OutputMetricName(in, o)
				key := out + "\x00" + grouping
				for _, j := range seen[key] {
					if j == i || warned[[2]int{j, i}] || distinguishable(rules[j], r) {
						continue
					}
					warned[[2]int{j, i}] = true
					p.Warnf(srcs[i].at.File(), srcs[i].line(), "this rule%s writes the same output series as %s: %s with the same labels; give one an output_name or add_labels",
						srcs[i].nameNote(r), srcs[j].describe(rules[j]), out)
				}
				seen[key] = append(seen[key], i)
			}
		}
	}
}

// distinguishable reports whether a and b (with equal grouping) select inputs that differ on
// a label they keep, so that their outputs are different series.
func distinguishable(a, b *Rule) bool {
	for _, ma := range a.Matchers {
		if ma.Type != MatchEqual || ma.Name == MetricNameLabel || !keeps(a, ma.Name) {
			continue
		}
		for _, mb := range b.Matchers {
			if mb.Type == MatchEqual && mb.Name == ma.Name && mb.Value != ma.Value {
				return true
			}
		}
	}
	return false
}

// keeps reports whether the rule's outputs carry the label (when its inputs do).
func keeps(r *Rule, label string) bool {
	if r.ByMode {
		return slices.Contains(r.By, label)
	}
	return !slices.Contains(r.Without, label)
}

// nameNote is how a warning at a rule's own line names it: by the name its author gave, or
// by the automatic one, said to be so (it is what metrics and the status page show).
func (s *ruleSource) nameNote(r *Rule) string {
	if s.cfg.Name != "" {
		return fmt.Sprintf(" (%q)", r.Name)
	}
	return fmt.Sprintf(" (automatically named %q)", r.Name)
}

// describe names another rule in a warning: where it is written first, then its name.
func (s *ruleSource) describe(r *Rule) string {
	if s.cfg.Name != "" {
		return fmt.Sprintf("rule %q at %s", r.Name, r.Source)
	}
	return fmt.Sprintf("the rule at %s (automatically named %q)", r.Source, r.Name)
}
