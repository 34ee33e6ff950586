package config

import (
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// memLoader is a Loader over an in-memory environment and file system.
func memLoader(env, files map[string]string) Loader {
	return Loader{
		LookupEnv: func(name string) (string, bool) {
			v, ok := env[name]
			return v, ok
		},
		ReadFile: func(path string) ([]byte, error) {
			if d, ok := files[path]; ok {
				return []byte(d), nil
			}
			return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		},
		Glob: func(pattern string) ([]string, error) {
			if _, err := filepath.Match(pattern, ""); err != nil {
				return nil, err
			}
			var out []string
			for name := range files {
				if ok, _ := filepath.Match(pattern, name); ok {
					out = append(out, name)
				}
			}
			slices.Sort(out)
			return out, nil
		},
	}
}

// parseYAML parses text as cardinal.yaml with an empty environment and file system.
func parseYAML(t *testing.T, text string) (*Config, error) {
	t.Helper()
	return memLoader(nil, nil).Parse([]byte(text), "cardinal.yaml")
}

// mustParse parses text and fails the test on error.
func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := parseYAML(t, text)
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	return cfg
}

// errorLines splits a joined error into its lines (nil for no error).
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// withRules is a minimal valid config (a file downstream) followed by a rules: list; the
// first line of rulesYAML is line 3 of the file.
func withRules(rulesYAML string) string {
	return "downstream: {file: {path: \"-\"}}\nrules:\n" + rulesYAML
}

// labelsOf turns a map into a sorted label set.
func labelsOf(m map[string]string) []prompb.Label {
	var out []prompb.Label
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, prompb.Label{Name: k, Value: m[k]})
	}
	return out
}
