package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The configs shipped in configs/ must stay valid, and the cookbook's rule tests must pass:
// `make test` runs them here.
func TestShippedConfigsAreValid(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	if len(files) < 2 {
		t.Fatalf("found %d configs", len(files))
	}
	var out, errOut strings.Builder
	if code := run(append([]string{"check", "config"}, files...), &out, &errOut); code != 0 {
		t.Fatalf("check config exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	if n := strings.Count(out.String(), "SUCCESS"); n != len(files) {
		t.Errorf("%d successes for %d files:\n%s", n, len(files), out.String())
	}
}

func TestCookbookRuleTestsPass(t *testing.T) {
	files, _ := filepath.Glob("../../configs/cookbook/*_test.yaml")
	if len(files) == 0 {
		t.Fatal("no cookbook tests found")
	}
	var out, errOut strings.Builder
	if code := run(append([]string{"test", "rules"}, files...), &out, &errOut); code != 0 {
		t.Fatalf("test rules exit %d:\n%s%s", code, out.String(), errOut.String())
	}
}

func TestCheckConfigReportsFileAndLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("downstream:\n  file: {path: \"-\"}\nrules:\n  - metric_name: x\n    type: counter\n    drop_labels: [pod]\n    keep_labels: [job]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run([]string{"check", "config", bad}, &out, &errOut); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), bad+":7:") || !strings.Contains(errOut.String(), "mutually exclusive") {
		t.Errorf("error lacks file:line and reason:\n%s", errOut.String())
	}
}

func TestCheckConfigWarnsAboutSummaryQuantiles(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"check", "config", "../../configs/cookbook/rules_test.yaml"}, &out, &errOut); code == 0 {
		t.Error("a rule test file passed as a config")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("downstream:\n  file: {path: \"-\"}\nrules:\n  - metric_name: rpc\n    type: summary\n    drop_labels: [pod]\n"), 0o644)
	out.Reset()
	if code := run([]string{"check", "config", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "WARNING: "+cfg+":5:") || !strings.Contains(out.String(), "quantile") {
		t.Errorf("no summary warning with file:line:\n%s", out.String())
	}
}

func TestVersion(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "cardinal, version ") {
		t.Errorf("exit %d, output %q", code, out.String())
	}
}
