package rules

import (
	"slices"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// compileGrouping validates drop_labels/without or keep_labels/by into Without or By. The
// metric name is always kept, so __name__ may not be listed; a histogram's le is never
// dropped, so it may not be dropped and is kept automatically.
func (s *ruleSource) compileGrouping(r *Rule, p *setting.Problems) {
	c := &s.cfg
	without, withoutKey := s.alias(p, c.DropLabels, "drop_labels", c.Without, "without")
	by, byKey := s.alias(p, c.KeepLabels, "keep_labels", c.By, "by")
	if withoutKey != "" && byKey != "" {
		p.Errorf(s.at.File(), max(s.line(withoutKey), s.line(byKey)), "%s and %s are mutually exclusive: either drop some labels or keep some, not both", withoutKey, byKey)
		return
	}
	if byKey != "" {
		r.ByMode = true
		r.By = s.labelList(p, byKey, by, r.Type)
		if r.Type == Histogram && !slices.Contains(r.By, "le") {
			r.By = append(r.By, "le")
		}
		slices.Sort(r.By)
		return
	}
	if withoutKey != "" {
		r.Without = s.labelList(p, withoutKey, without, r.Type)
		slices.Sort(r.Without)
	}
	if len(without) == 0 {
		what := "the rule has neither drop_labels nor keep_labels"
		if withoutKey != "" {
			what = withoutKey + " is empty"
		}
		p.Warnf(s.at.File(), s.line(withoutKey), "%s: it keeps every label, so each input series is its own output series and nothing is reduced; list the labels to drop (drop_labels) or to keep (keep_labels)", what)
	}
}

// alias returns whichever of a setting and its alias is written, and its key; both is an
// error. A key is written when its list is non-nil (an empty list counts).
func (s *ruleSource) alias(p *setting.Problems, a []string, aKey string, b []string, bKey string) ([]string, string) {
	switch {
	case a != nil && b != nil:
		p.Errorf(s.at.File(), max(s.line(aKey), s.line(bKey)), "%s and %s are the same setting (%s is an alias): write only one", aKey, bKey, bKey)
		return a, aKey
	case a != nil:
		return a, aKey
	case b != nil:
		return b, bKey
	}
	return nil, ""
}

// labelList validates the label names listed under key and returns a copy.
func (s *ruleSource) labelList(p *setting.Problems, key string, labels []string, t Type) []string {
	out := make([]string, 0, len(labels))
	dropping := key == "drop_labels" || key == "without"
	for i, l := range labels {
		line := s.at.Line(setting.At(key, i))
		switch {
		case l == MetricNameLabel:
			p.Errorf(s.at.File(), line, "%s: __name__ cannot be listed: the metric name is always kept (use output_name to rename)", key)
		case !validLabelName(l):
			p.Errorf(s.at.File(), line, "%s: %q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", key, l)
		case dropping && l == "le" && t == Histogram:
			p.Errorf(s.at.File(), line, "%s: le cannot be dropped from a histogram: buckets are aggregated per le (histogram_quantile needs them)", key)
		case slices.Contains(out, l):
			p.Errorf(s.at.File(), line, "%s lists %q twice", key, l)
		default:
			out = append(out, l)
		}
	}
	return out
}
