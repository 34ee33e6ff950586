package rules

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary documents to the loader (with every variable set and no rule
// files) and checks that it never panics, that every error is located in the file, and that
// a configuration it accepts is fully compiled.
func FuzzParse(f *testing.F) {
	l := Loader{
		LookupEnv: func(string) (string, bool) { return "v", true },
		ReadFile:  func(string) ([]byte, error) { return []byte("rules: []\n"), nil },
		Glob:      func(string) ([]string, error) { return nil, nil },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := l.Parse(data, "fuzz.yaml")
		if err != nil {
			for _, line := range errorLines(err) {
				if !strings.HasPrefix(line, "fuzz.yaml") {
					t.Fatalf("error not located in the file: %q", line)
				}
			}
			return
		}
		names := map[string]bool{}
		for _, r := range cfg.Rules {
			if r.Name == "" || names[r.Name] || len(r.Outputs) == 0 || r.Interval <= 0 || r.FlushDelay > r.Interval {
				t.Fatalf("badly compiled rule %+v", r)
			}
			if r.BaseName == "" && len(r.Matchers) == 0 {
				t.Fatalf("rule %q selects every series", r.Name)
			}
			names[r.Name] = true
		}
	})
}

// FuzzSelector checks that the selector parser never panics and that what it accepts prints
// back (Matcher.String) to a selector that parses to the same matchers.
func FuzzSelector(f *testing.F) {
	for _, s := range []string{
		`http_requests_total`, `x{a="b",c!="d",e=~"f.*",g!~"h"}`, `{__name__=~"x.+"}`,
		`x{a='it\'s'}`, "x{a=`raw\\d`}", `x{a="\u00e9\n\x41"}`, `x{a="b",}`, ` x { } `,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseSelector(s)
		if err != nil {
			return
		}
		printed := make([]string, len(ms))
		for i, m := range ms {
			printed[i] = m.String()
		}
		again, err := ParseSelector("{" + strings.Join(printed, ",") + "}")
		if err != nil {
			t.Fatalf("%q parsed, but its printed form %q does not: %v", s, printed, err)
		}
		if len(again) != len(ms) {
			t.Fatalf("%q: %d matchers, reparsed %d", s, len(ms), len(again))
		}
		for i := range ms {
			if again[i].Type != ms[i].Type || again[i].Name != ms[i].Name || again[i].Value != ms[i].Value {
				t.Fatalf("%q: matcher %d %v reparsed as %v", s, i, ms[i], again[i])
			}
		}
	})
}
