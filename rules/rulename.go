package rules

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// assignNames names the compiled rules (rules[i] compiled from srcs[i], nil if it failed). An
// explicit name is used as written and may not repeat; a rule without one is named after its
// output_name, else its base metric name, else its match string, with _2, _3... appended when
// that name is already taken.
func assignNames(srcs []*ruleSource, rules []*Rule, p *setting.Problems) {
	taken := map[string]*ruleSource{}
	for _, s := range srcs {
		name := s.cfg.Name
		switch first := taken[name]; {
		case name == "":
		case strings.TrimSpace(name) == "":
			s.errorf(p, "name", "name must not be blank")
		case first != nil:
			s.errorf(p, "name", "rule name %q is already used at %s:%d: names must be unique", name, first.at.File(), first.line("name"))
		default:
			taken[name] = s
		}
	}
	for i, s := range srcs {
		r := rules[i]
		if r == nil {
			continue
		}
		if s.cfg.Name != "" {
			r.Name = s.cfg.Name
			continue
		}
		base := cmp.Or(s.cfg.OutputName, r.BaseName, strings.TrimSpace(s.cfg.Match))
		name := base
		for n := 2; taken[name] != nil; n++ {
			name = fmt.Sprintf("%s_%d", base, n)
		}
		taken[name] = s
		r.Name = name
	}
}
