package ruletest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadTestFileErrors pins the error quality of rule test files to the config file's:
// file:line, the key probably meant, YAML words instead of Go types.
func TestLoadTestFileErrors(t *testing.T) {
	rules, err := os.ReadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
		want string
	}{
		{"misspelt_expectation_key_suggests_eval_time", `
rule_files: [rules.yaml]
tests:
  - interval: 15s
    expected:
      - series: 'x'
        evaltime: 1m
        value: 1`[1:], `t.yaml:6: unknown key "evaltime" in an item of expected; did you mean "eval_time"?`},
		{"misspelt_top_level_key_suggests_rule_files", `
rule_file: [rules.yaml]
tests: []`[1:], `t.yaml:1: unknown key "rule_file" at the top level of a rule test file; did you mean "rule_files"?`},
		{"unknown_test_key_lists_the_valid_ones", `
rule_files: [rules.yaml]
tests:
  - name: a
    inputs: []`[1:], `t.yaml:4: unknown key "inputs" in a test (an item of tests); valid keys: name, interval, input_series, expected`},
		{"bad_duration_is_explained_at_its_line", `
rule_files: [rules.yaml]
tests:
  - interval: 15s
    expected:
      - series: 'x'
        eval_time: 5x
        value: 1`[1:], `t.yaml:6: invalid duration "5x": write a number and a unit (ms, s, m, h, d, w, y), e.g. 30s, 5m, 1h, 1d`},
		{"value_that_is_not_a_number", `
rule_files: [rules.yaml]
tests:
  - expected:
      - series: 'x'
        eval_time: 1m
        value: many`[1:], `t.yaml:6: expected a number, not the string "many"`},
		{"misspelt_aggregator_key_at_its_line_in_the_test_file", `
rule_files: [rules.yaml]
tests: []
aggregator:
  flush_intervall: 15s`[1:], `t.yaml:4: unknown key "flush_intervall" in aggregator; did you mean "flush_interval"?`},
		{"config_file_and_rule_files_together", `
config_file: c.yaml
rule_files: [rules.yaml]
tests: []`[1:], `t.yaml:2: config_file and rule_files are mutually exclusive`},
		{"neither_config_file_nor_rule_files", `
tests: []`[1:], `t.yaml: a test file needs config_file (a cardinal config) or rule_files`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "t.yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := loadTestFile(path)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", msg, tc.want)
			}
			for _, goWord := range []string{"ruletest.", "setting.", "float64", "not found in type"} {
				if strings.Contains(msg, goWord) {
					t.Errorf("error %q speaks of Go (%q)", msg, goWord)
				}
			}
		})
	}
}

// A test file written as one flow mapping still finds its rules.
func TestFlowStyleTestFileLoads(t *testing.T) {
	dir := t.TempDir()
	rules, err := os.ReadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(path, []byte("{rule_files: [rules.yaml], aggregator: {flush_interval: 30s}, tests: []}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, cfg, err := loadTestFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 2 {
		t.Fatalf("%d rules, want the 2 of rules.yaml", len(cfg.Rules))
	}
	if got := cfg.Rules[0].Interval.String(); got != "30s" {
		t.Errorf("interval %s, want the test file's 30s", got)
	}
}

// TestExpectationLinesNameTheItem checks that a failing expectation is reported at the line
// of its item in the test file.
func TestExpectationLinesNameTheItem(t *testing.T) {
	tf, _, err := loadTestFile("testdata/fail_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, e := range tf.Tests[0].Expected {
		lines = append(lines, e.line)
	}
	if len(lines) != 2 || lines[0] != 9 || lines[1] != 12 {
		t.Errorf("expectation lines %v, want [9 12]", lines)
	}
}
