package explore

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// SuggestOptions shape the rules Suggest writes.
type SuggestOptions struct {
	// Top is how many metric families (a histogram's _bucket, _sum and _count are one) are
	// considered, most series first.
	Top int
	// Target is the series a rule should leave each family with, at most.
	Target uint64
	// Keep are labels never dropped (besides le, which histogram rules always keep).
	Keep []string
	// Source names where the scan came from, for the header comment.
	Source string
}

// Suggestion is Suggest's answer: the rules, and a note for each family it left alone.
type Suggestion struct {
	Result  Result
	Options SuggestOptions
	Rules   []SuggestedRule
	Skipped []string
}

// SuggestedRule is one rule: the family it aggregates and what it drops.
type SuggestedRule struct {
	// Metric is the rule's metric_name: the family's base name for a histogram or summary.
	Metric string
	// Type is counter, gauge, histogram or summary, by the name and labels.
	Type string
	Drop []string
	// Members are the metric names of the family, each with its series.
	Members []Metric
	// SeriesIn is the family's series; SeriesOut the estimate of what the rule leaves.
	SeriesIn, SeriesOut uint64
	// Keeps lists the labels the series keep (besides __name__), for the tests.
	Keeps []string
	// Note says why the rule falls short of the target, if it does.
	Note string
}

// family is the metric names one rule covers.
type family struct {
	base, typ string
	lead      *Metric   // the member whose labels decide: the _bucket of a histogram
	members   []*Metric // lead first
	series    uint64
}

// families groups a scan's metrics into what one rule each would select.
func families(ms []Metric) []*family {
	byName := map[string]*Metric{}
	for i := range ms {
		byName[ms[i].Name] = &ms[i]
	}
	taken := map[string]bool{}
	var out []*family
	add := func(f *family) {
		for _, m := range f.members {
			taken[m.Name] = true
			f.series += m.Series
		}
		out = append(out, f)
	}
	for i := range ms {
		m := &ms[i]
		base, ok := strings.CutSuffix(m.Name, "_bucket")
		if !ok || !hasLabel(m, "le") || taken[m.Name] {
			continue
		}
		f := &family{base: base, typ: "histogram", lead: m, members: []*Metric{m}}
		for _, s := range []string{"_count", "_sum"} {
			if o := byName[base+s]; o != nil {
				f.members = append(f.members, o)
			}
		}
		add(f)
	}
	for i := range ms {
		m := &ms[i]
		if hasLabel(m, "quantile") && !taken[m.Name] {
			f := &family{base: m.Name, typ: "summary", lead: m, members: []*Metric{m}}
			for _, s := range []string{"_count", "_sum"} {
				if o := byName[m.Name+s]; o != nil && !taken[o.Name] {
					f.members = append(f.members, o)
				}
			}
			add(f)
		}
	}
	for i := range ms {
		m := &ms[i]
		if taken[m.Name] {
			continue
		}
		f := &family{base: m.Name, typ: "gauge", lead: m, members: []*Metric{m}}
		switch {
		case strings.HasSuffix(m.Name, "_total"):
			f.typ = "counter"
		case strings.HasSuffix(m.Name, "_count") || strings.HasSuffix(m.Name, "_sum"):
			// _sum and _count without buckets: a histogram rule on the base name covers both.
			base := m.Name[:strings.LastIndexByte(m.Name, '_')]
			f = &family{base: base, typ: "histogram", lead: m}
			for _, s := range []string{"_count", "_sum"} {
				if o := byName[base+s]; o != nil && !taken[o.Name] {
					f.members = append(f.members, o)
				}
			}
		}
		add(f)
	}
	slices.SortStableFunc(out, func(a, b *family) int {
		return cmp.Or(cmp.Compare(b.series, a.series), cmp.Compare(a.base, b.base))
	})
	return out
}

// ruleType is the type of the family's rule: the agents' metadata where it names a type a
// rule has (a counter not named _total, a gauge that is), else what the names say.
func (f *family) ruleType() string {
	for _, m := range f.members {
		switch m.Type {
		case "counter", "gauge":
			if f.typ == "counter" || f.typ == "gauge" {
				return m.Type
			}
		case "histogram", "summary":
			return m.Type
		}
	}
	return f.typ
}

func hasLabel(m *Metric, name string) bool {
	for _, l := range m.Labels {
		if l.Name == name {
			return true
		}
	}
	return false
}

func labelOf(m *Metric, name string) *Label {
	for i := range m.Labels {
		if m.Labels[i].Name == name {
			return &m.Labels[i]
		}
	}
	return nil
}

// Suggest picks, for each of the top families of a complete scan, the labels to drop that
// bring it under the target while keeping the Keep labels: the shortest of the scan's
// cumulative drops that reaches the target, or the longest allowed when none does.
// Families already selected by a rule, already under the target, or without detail are
// skipped with a note.
func Suggest(r Result, o SuggestOptions) Suggestion {
	s := Suggestion{Result: r, Options: o}
	keep := map[string]bool{"le": true}
	for _, k := range o.Keep {
		keep[k] = true
	}
	fams := families(r.Metrics)
	if o.Top > 0 && len(fams) > o.Top {
		fams = fams[:o.Top]
	}
	for _, f := range fams {
		if bad := unruly(f); bad != "" {
			s.Skipped = append(s.Skipped, fmt.Sprintf("%q: %d series, but %s: a rule cannot name it", f.base, f.series, bad))
			continue
		}
		if rules := coveredBy(f); rules != "" {
			s.Skipped = append(s.Skipped, fmt.Sprintf("%s: already aggregated (%s)", f.base, rules))
			continue
		}
		if f.series <= o.Target {
			s.Skipped = append(s.Skipped, fmt.Sprintf("%s: %d series, already within the target", f.base, f.series))
			continue
		}
		if !f.lead.Detailed {
			s.Skipped = append(s.Skipped, fmt.Sprintf("%s: %d series, but the explorer kept only counts for it (raise explore.memory_budget)", f.base, f.series))
			continue
		}
		drop, out, note := chooseDrop(f, keep, o.Target)
		if len(drop) == 0 {
			s.Skipped = append(s.Skipped, fmt.Sprintf("%s: %d series, and no label outside --keep saves any: %s", f.base, f.series, note))
			continue
		}
		rule := SuggestedRule{Metric: f.base, Type: f.ruleType(), Drop: drop, SeriesIn: f.series, SeriesOut: out, Note: note}
		for _, m := range f.members {
			rule.Members = append(rule.Members, *m)
		}
		for _, l := range f.lead.Labels {
			if !slices.Contains(drop, l.Name) {
				rule.Keeps = append(rule.Keeps, l.Name)
			}
		}
		slices.Sort(rule.Keeps)
		s.Rules = append(s.Rules, rule)
	}
	return s
}

// legacyMetric and legacyLabel are the names a rule may use (UTF-8 names reach the
// receiver, but rules take only these).
var (
	legacyMetric = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	legacyLabel  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// unruly says which name of a family a rule could not use, or "".
func unruly(f *family) string {
	if !legacyMetric.MatchString(f.base) {
		return fmt.Sprintf("the metric name %q", f.base)
	}
	for _, m := range f.members {
		for _, l := range m.Labels {
			if !legacyLabel.MatchString(l.Name) {
				return fmt.Sprintf("the label name %q", l.Name)
			}
		}
	}
	return ""
}

// coveredBy names the rules that already select a family's metrics, or "".
func coveredBy(f *family) string {
	var parts []string
	for _, m := range f.members {
		for _, rc := range m.Rules {
			parts = append(parts, fmt.Sprintf("rule %s: %d → %d series", rc.Rule, rc.InputSeries, rc.OutputSeries))
		}
	}
	return strings.Join(slices.Compact(parts), "; ")
}

// chooseDrop picks the labels of family f to drop and the series the family keeps after it,
// with a note when the target is out of reach.
func chooseDrop(f *family, keep map[string]bool, target uint64) (drop []string, out uint64, note string) {
	m := f.lead
	var best []string
	var bestOut uint64
	for _, d := range m.Drops {
		if slices.ContainsFunc(d.Labels, func(l string) bool { return keep[l] }) {
			break // the drops are cumulative: every later one drops this kept label too
		}
		best, bestOut = d.Labels, f.out(d.Labels, d.Series)
		if bestOut <= target {
			return best, bestOut, ""
		}
	}
	if best != nil {
		return best, bestOut, fmt.Sprintf("dropping more would drop a --keep label; %d series stay above the target of %d", bestOut, target)
	}
	// The metric's first scan has no cumulative drops: the best single label.
	for _, l := range m.Labels {
		if !keep[l.Name] && l.SeriesWithout < m.Series {
			drop, out = []string{l.Name}, f.out([]string{l.Name}, l.SeriesWithout)
			switch {
			case out <= target:
			case len(m.Drops) == 0:
				note = fmt.Sprintf("only one label is suggested: the explorer's first scan ranks labels, and the next one measures dropping several; %d series stay above the target of %d", out, target)
			default:
				note = fmt.Sprintf("the label with the most values is a --keep label, so one other is dropped; %d series stay above the target of %d", out, target)
			}
			return drop, out, note
		}
	}
	return nil, f.series, "every label that varies is kept"
}

// out estimates the series the family keeps when drop is dropped, given that its lead then
// keeps leadOut. A summary's quantile series are dropped by its rule, so they count nothing.
func (f *family) out(drop []string, leadOut uint64) uint64 {
	var n uint64
	for _, m := range f.members {
		if f.typ == "summary" && m == f.lead {
			continue
		}
		n += membersOut(m, f.lead, drop, leadOut)
	}
	return n
}

// membersOut estimates the series member m of a family keeps when drop is dropped, given
// that the lead keeps leadOut.
func membersOut(m, lead *Metric, drop []string, leadOut uint64) uint64 {
	if m == lead {
		return leadOut
	}
	for _, d := range m.Drops {
		if slices.Equal(d.Labels, drop) {
			return d.Series
		}
	}
	if len(drop) == 1 {
		if l := labelOf(m, drop[0]); l != nil {
			return l.SeriesWithout
		}
	}
	// A histogram's _sum or _count: the buckets' series without le; a summary's, its
	// quantile series' without quantile.
	for _, per := range []string{"le", "quantile"} {
		if l := labelOf(lead, per); l != nil && l.Values > 0 {
			return max(1, leadOut/l.Values)
		}
	}
	return leadOut
}

// oneLine keeps a comment on one line, whatever names it quotes.
func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// plainName matches what YAML reads as a plain string.
var plainName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_:]*$`)

// yamlString writes s as a YAML scalar: plain when it is a name, else double-quoted.
func yamlString(s string) string {
	if plainName.MatchString(s) && !slices.Contains([]string{"true", "false", "null", "yes", "no", "on", "off", "y", "n"}, strings.ToLower(s)) {
		return s
	}
	return fmt.Sprintf("%q", s)
}

func yamlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = yamlString(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// RulesYAML writes the suggestion as a rules file (a top-level rules: list), which
// `cardinal check config` accepts as a rule file and as an inline rules: section.
func (s Suggestion) RulesYAML() string {
	var b strings.Builder
	src := s.Options.Source
	if src == "" {
		src = "a saved scan"
	}
	fmt.Fprintf(&b, "# Rules suggested by `cardinal suggest` from %s, scan of %s (%s).\n", src,
		s.Result.Started.UTC().Format(time.RFC3339), s.Result.Ended.Sub(s.Result.Started).Round(time.Second))
	fmt.Fprintf(&b, "# Considered: the top %d metric families by series (a histogram's _bucket, _sum and _count\n# are one), each to be brought under %d series", s.Options.Top, s.Options.Target)
	if len(s.Options.Keep) > 0 {
		fmt.Fprintf(&b, ", keeping %s", strings.Join(s.Options.Keep, ", "))
	}
	b.WriteString(".\n# Series counts are the explorer's estimates. Check the file with `cardinal check config`.\n")
	for _, note := range s.Skipped {
		fmt.Fprintf(&b, "# Left alone: %s.\n", oneLine(note))
	}
	if len(s.Rules) == 0 {
		b.WriteString("rules: []\n")
		return b.String()
	}
	b.WriteString("rules:\n")
	for i, r := range s.Rules {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "  # %s: %d series -> about %d (%.1fx fewer).", r.Metric, r.SeriesIn, r.SeriesOut, reduction(r.SeriesIn, r.SeriesOut))
		if len(r.Members) > 1 {
			names := make([]string, len(r.Members))
			for j, m := range r.Members {
				names[j] = fmt.Sprintf("%s %d", m.Name, m.Series)
			}
			fmt.Fprintf(&b, " Series in: %s.", strings.Join(names, ", "))
		}
		b.WriteString("\n")
		if r.Note != "" {
			fmt.Fprintf(&b, "  # Note: %s.\n", oneLine(r.Note))
		}
		fmt.Fprintf(&b, "  - metric_name: %s\n    type: %s\n    drop_labels: %s\n", yamlString(r.Metric), r.Type, yamlList(r.Drop))
	}
	return b.String()
}
