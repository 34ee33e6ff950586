package rules

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// Locator tells where the keys of one rule are written, so that problems name a file and a
// line. Package config implements it over the YAML document; rules knows nothing of YAML.
type Locator interface {
	// File is the file the rule is written in.
	File() string
	// Line is the line of key in the rule; the rule's own line for an empty or absent key.
	Line(key setting.Key) int
	// Written reports whether key is written in the rule with a non-null value.
	Written(key setting.Key) bool
}

// Source is one rule as written, and where.
type Source struct {
	Config RuleConfig
	At     Locator
}

// Compile validates the rules against the aggregator defaults, compiles them, names them and
// warns about rules that write the same output series. Every problem is recorded in p; the
// result holds nil for a rule that failed, and is complete only when p has no errors.
func Compile(srcs []Source, defaults Defaults, p *setting.Problems) []*Rule {
	rs := make([]*ruleSource, len(srcs))
	for i, s := range srcs {
		rs[i] = &ruleSource{cfg: s.Config, at: s.At}
	}
	rules := make([]*Rule, len(rs))
	for i, s := range rs {
		rules[i] = compileRule(s, defaults, p)
	}
	assignNames(rs, rules, p)
	if !p.Failed() {
		warnCollisions(rs, rules, p)
	}
	return rules
}

// ruleSource is one rule being compiled.
type ruleSource struct {
	cfg RuleConfig
	at  Locator
}

// line returns the line of the first of keys written in the rule, else the rule's own line.
func (s *ruleSource) line(keys ...string) int {
	for _, k := range keys {
		if k != "" && s.at.Written(setting.At(k)) {
			return s.at.Line(setting.At(k))
		}
	}
	return s.at.Line(nil)
}

// errorf records an error about the rule at the line of key ("" or absent: the rule's line).
func (s *ruleSource) errorf(p *setting.Problems, key string, format string, args ...any) {
	p.Errorf(s.at.File(), s.line(key), format, args...)
}

// compileRule validates one rule against the aggregator defaults and compiles it. Every
// problem is recorded in p; the result is nil when there was an error. Name is left for
// assignNames, which needs every rule.
func compileRule(src *ruleSource, defaults Defaults, p *setting.Problems) *Rule {
	before := p.ErrorCount()
	c := &src.cfg
	r := &Rule{
		Source:          fmt.Sprintf("%s:%d", src.at.File(), src.line()),
		Type:            c.Type,
		OutputName:      c.OutputName,
		KeepInput:       c.KeepInput,
		MaxInputSeries:  c.MaxInputSeries,
		MaxOutputSeries: c.MaxOutputSeries,
		Exemplars:       c.Exemplars,
	}
	typeOK := src.checkType(p)
	src.compileSelection(r, p)
	src.warnSummary(r, p)
	src.compileGrouping(r, p)
	if typeOK {
		src.compileOutputs(r, p)
		src.compileFirstSample(r, p)
	}
	src.compileTiming(r, defaults, p)
	src.compileAddLabels(r, p)
	src.compileHA(r, defaults, p)
	if c.OutputName != "" && !validMetricName(c.OutputName) {
		src.errorf(p, "output_name", "output_name %q is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", c.OutputName)
	}
	if c.MaxInputSeries < 0 {
		src.errorf(p, "max_input_series", "max_input_series must not be negative (0 means unlimited)")
	}
	if c.MaxOutputSeries < 0 {
		src.errorf(p, "max_output_series", "max_output_series must not be negative (0 means unlimited)")
	}
	if c.Exemplars < 0 || c.Exemplars > MaxExemplars {
		src.errorf(p, "exemplars", "exemplars must be from 0 (drop them, the default) to %d, not %d", MaxExemplars, c.Exemplars)
	}
	if p.ErrorCount() > before {
		return nil
	}
	r.Fingerprint = fingerprint(r)
	return r
}

func (s *ruleSource) checkType(p *setting.Problems) bool {
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
func (s *ruleSource) warnSummary(r *Rule, p *setting.Problems) {
	if r.Type != Summary {
		return
	}
	what := "the selected summaries"
	if r.BaseName != "" {
		what = r.BaseName
	}
	p.Warnf(s.at.File(), s.line("type"), "summary rule: only the _sum and _count series of %s are aggregated; quantile series cannot be added up and are dropped", what)
}

func (s *ruleSource) compileOutputs(r *Rule, p *setting.Problems) {
	valid := r.Type.Outputs()
	for i, o := range s.cfg.Outputs {
		line := s.at.Line(setting.At("outputs", i))
		switch {
		case !slices.Contains(valid, o):
			p.Errorf(s.at.File(), line, "outputs: %q is not an output of a %s rule (valid: %s)", o, r.Type, strings.Join(valid, ", "))
		case slices.Contains(s.cfg.Outputs[:i], o):
			p.Errorf(s.at.File(), line, "outputs lists %q twice", o)
		}
	}
	r.Outputs = slices.Sorted(slices.Values(s.cfg.Outputs))
	if len(r.Outputs) == 0 {
		r.Outputs = []string{r.Type.DefaultOutput()}
	}
}

func (s *ruleSource) compileFirstSample(r *Rule, p *setting.Problems) {
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

func (s *ruleSource) compileAddLabels(r *Rule, p *setting.Problems) {
	for _, name := range slices.Sorted(maps.Keys(s.cfg.AddLabels)) {
		value := s.cfg.AddLabels[name]
		line := s.at.Line(setting.At("add_labels", name))
		switch {
		case name == MetricNameLabel:
			p.Errorf(s.at.File(), line, "add_labels cannot set __name__: use output_name to rename the output")
		case !validLabelName(name):
			p.Errorf(s.at.File(), line, "add_labels: %q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", name)
		case name == "le" && r.Type == Histogram:
			p.Errorf(s.at.File(), line, "add_labels cannot set le on a histogram rule: le holds the bucket bounds")
		case r.ByMode && slices.Contains(r.By, name):
			p.Errorf(s.at.File(), line, "add_labels sets %q, which the rule also keeps from its inputs: remove it from one of them", name)
		case value == "":
			p.Errorf(s.at.File(), line, "add_labels: %q has an empty value, which Prometheus treats as no label", name)
		default:
			r.AddLabels = append(r.AddLabels, prompb.Label{Name: name, Value: value})
		}
	}
}
