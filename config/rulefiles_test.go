package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// writeFiles creates files (path → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRuleFilesAreGlobbedRelativeToTheConfigDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"conf/cardinal.yaml": `downstream: {file: {path: "-"}}
rule_files:
  - rules/*.yaml
  - extra.yaml
  - rules/a.yaml
  - none/*.yaml
rules:
  - metric_name: inline_total
    type: counter
    drop_labels: [pod]
`,
		"conf/rules/b.yaml": "rules:\n  - metric_name: b_total\n    type: counter\n    drop_labels: [pod]\n",
		"conf/rules/a.yaml": "# team A\nrules:\n  - metric_name: a_total\n    type: counter\n    drop_labels: [pod]\n  - metric_name: a2_total\n    type: counter\n    drop_labels: [pod]\n",
		"conf/extra.yaml":   "rules: []\n",
		"rules/decoy.yaml":  "rules:\n  - metric_name: decoy_total\n    type: counter\n",
	})
	t.Chdir(dir)

	cfg, err := Load("conf/cardinal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range cfg.Rules {
		got = append(got, r.Name+"@"+r.Source)
	}
	want := []string{
		"inline_total@conf/cardinal.yaml:8",
		"a_total@conf/rules/a.yaml:3",
		"a2_total@conf/rules/a.yaml:6",
		"b_total@conf/rules/b.yaml:2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules (inline first, then files in glob order, each file once):\n got %q\nwant %q", got, want)
	}
	wantFiles := []string{"conf/cardinal.yaml", "conf/rules/a.yaml", "conf/rules/b.yaml", "conf/extra.yaml"}
	if !slices.Equal(cfg.Files, wantFiles) {
		t.Errorf("files = %q, want %q", cfg.Files, wantFiles)
	}
	wantWarn := []string{`conf/cardinal.yaml:6: rule_files: "none/*.yaml" matches no files`}
	if !slices.Equal(cfg.Warnings, wantWarn) {
		t.Errorf("warnings = %q, want %q", cfg.Warnings, wantWarn)
	}
}

func TestRuleFileErrorsNameTheRuleFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"cardinal.yaml": `downstream: {file: {path: "-"}}
rule_files: ["rules/*.yml", "missing.yml"]
rules:
  - metric_name: x
    type: gauge
    outputs: [rate]
`,
		"rules/1-ok.yml": "rules:\n  - metric_name: ok_total\n    type: counter\n",
		"rules/2-bad.yml": `rules:
  - metric_name: a_total
    type: counter

  - metric_name: b_total
    type: counter
    keep_labels: [job]
    drop_labels: [pod]
`,
		"rules/3-unknown.yml": "groups:\n  - name: g\n",
		"rules/4-env.yml":     "rules:\n  - metric_name: ${CARDINAL_TEST_UNSET_VARIABLE}\n    type: counter\n",
		"rules/5-dup.yml":     "rules:\n  - name: x\n    metric_name: y\n    type: counter\n  - name: x\n    metric_name: z\n    type: counter\n",
	})
	cfgPath := filepath.Join(dir, "cardinal.yaml")
	_, err := Load(cfgPath)
	want := []string{
		cfgPath + ":2: rule_files: " + dir + "/missing.yml does not exist",
		cfgPath + `:6: outputs: "rate" is not an output of a gauge rule (valid: sum, avg, min, max, count, last)`,
		dir + "/rules/2-bad.yml:8: drop_labels and keep_labels are mutually exclusive: either drop some labels or keep some, not both",
		dir + `/rules/3-unknown.yml:1: unknown key "groups" in a rule file (it holds only a rules: list) (cardinal rule files are not Prometheus rule groups: write a top-level rules: list)`,
		dir + `/rules/4-env.yml:2: environment variable "CARDINAL_TEST_UNSET_VARIABLE" is not set (write $${CARDINAL_TEST_UNSET_VARIABLE} for the literal text)`,
		dir + `/rules/5-dup.yml:5: rule name "x" is already used at ` + dir + `/rules/5-dup.yml:2: names must be unique`,
	}
	if got := errorLines(err); !slices.Equal(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
}
