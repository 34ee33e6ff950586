package rules

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/prompb"
	"gopkg.in/yaml.v3"
)

// ruleSource is one rule as decoded, with where it was written.
type ruleSource struct {
	cfg  RuleConfig
	file string
	// node is the rule's mapping in its document, for line numbers.
	node *yaml.Node
}

// line returns the line of the first of keys written in the rule, else the rule's own line.
func (s *ruleSource) line(keys ...string) int {
	for _, k := range keys {
		if kn, _ := child(s.node, k); k != "" && kn != nil {
			return kn.Line
		}
	}
	return lineOf(s.node)
}

// errorf records an error about the rule at the line of key ("" or absent: the rule's line).
func (s *ruleSource) errorf(p *problems, key string, format string, args ...any) {
	p.errorf(s.file, s.line(key), format, args...)
}

// compileRule validates one rule against the aggregator defaults and compiles it. Every
// problem is recorded in p; the result is nil when there was an error. Name is left for
// assignNames, which needs every rule.
func compileRule(src *ruleSource, agg AggregatorConfig, p *problems) *Rule {
	before := len(p.errs)
	c := &src.cfg
	r := &Rule{
		Source:          fmt.Sprintf("%s:%d", src.file, src.line()),
		Type:            c.Type,
		OutputName:      c.OutputName,
		KeepInput:       c.KeepInput,
		MaxInputSeries:  c.MaxInputSeries,
		MaxOutputSeries: c.MaxOutputSeries,
	}
	typeOK := src.checkType(p)
	src.compileSelection(r, p)
	src.warnSummary(r, p)
	src.compileGrouping(r, p)
	if typeOK {
		src.compileOutputs(r, p)
		src.compileFirstSample(r, p)
	}
	src.compileTiming(r, agg, p)
	src.compileAddLabels(r, p)
	if c.OutputName != "" && !validMetricName(c.OutputName) {
		src.errorf(p, "output_name", "output_name %q is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", c.OutputName)
	}
	if c.MaxInputSeries < 0 {
		src.errorf(p, "max_input_series", "max_input_series must not be negative (0 means unlimited)")
	}
	if c.MaxOutputSeries < 0 {
		src.errorf(p, "max_output_series", "max_output_series must not be negative (0 means unlimited)")
	}
	if len(p.errs) > before {
		return nil
	}
	r.Fingerprint = fingerprint(r)
	return r
}

func (s *ruleSource) checkType(p *problems) bool {
	switch t := s.cfg.Type; {
	case t == "":
		s.errorf(p, "type", "type is required: counter, gauge, histogram or summary")
	case t.Outputs() == nil:
		s.errorf(p, "type", "unknown type %q: use counter, gauge, histogram or summary", string(t))
	default:
		return true
	}
	return false
}

// warnSummary tells the author of a summary rule that quantiles are not aggregated.
func (s *ruleSource) warnSummary(r *Rule, p *problems) {
	if r.Type != Summary {
		return
	}
	what := "the selected summaries"
	if r.BaseName != "" {
		what = r.BaseName
	}
	p.warnf(s.file, s.line("type"), "summary rule: only the _sum and _count series of %s are aggregated; quantile series cannot be added up and are dropped", what)
}

func (s *ruleSource) compileOutputs(r *Rule, p *problems) {
	valid := r.Type.Outputs()
	for i, o := range s.cfg.Outputs {
		line := lineOf(s.node, "outputs", i)
		switch {
		case !slices.Contains(valid, o):
			p.errorf(s.file, line, "outputs: %q is not an output of a %s rule (valid: %s)", o, r.Type, strings.Join(valid, ", "))
		case slices.Contains(s.cfg.Outputs[:i], o):
			p.errorf(s.file, line, "outputs lists %q twice", o)
		}
	}
	r.Outputs = slices.Sorted(slices.Values(s.cfg.Outputs))
	if len(r.Outputs) == 0 {
		r.Outputs = []string{r.Type.DefaultOutput()}
	}
}

func (s *ruleSource) compileFirstSample(r *Rule, p *problems) {
	switch fs := s.cfg.FirstSample; {
	case fs == "":
		r.FirstSample = FirstSampleBaseline
	case fs != FirstSampleBaseline && fs != FirstSampleCount:
		s.errorf(p, "first_sample", "first_sample must be baseline or count, not %q", string(fs))
	case r.Type != Counter && r.Type != Histogram:
		s.errorf(p, "first_sample", "first_sample applies to counter and histogram rules only, not %s", r.Type)
	default:
		r.FirstSample = fs
	}
}

func (s *ruleSource) compileAddLabels(r *Rule, p *problems) {
	for _, name := range slices.Sorted(maps.Keys(s.cfg.AddLabels)) {
		value := s.cfg.AddLabels[name]
		line := lineOf(s.node, "add_labels", name)
		switch {
		case name == MetricNameLabel:
			p.errorf(s.file, line, "add_labels cannot set __name__: use output_name to rename the output")
		case !validLabelName(name):
			p.errorf(s.file, line, "add_labels: %q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", name)
		case name == "le" && r.Type == Histogram:
			p.errorf(s.file, line, "add_labels cannot set le on a histogram rule: le holds the bucket bounds")
		case r.ByMode && slices.Contains(r.By, name):
			p.errorf(s.file, line, "add_labels sets %q, which the rule also keeps from its inputs: remove it from one of them", name)
		case value == "":
			p.errorf(s.file, line, "add_labels: %q has an empty value, which Prometheus treats as no label", name)
		default:
			r.AddLabels = append(r.AddLabels, prompb.Label{Name: name, Value: value})
		}
	}
}
