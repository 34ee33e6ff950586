package config

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
