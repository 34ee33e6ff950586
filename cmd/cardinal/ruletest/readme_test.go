package ruletest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeExamplePasses runs the README's rule test file ("Testing rules") against the
// cookbook's rules, which its rule_files names: the example a reader copies must pass.
func TestReadmeExamplePasses(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Testing rules\n")
	if !ok {
		t.Fatal("README.md has no Testing rules section")
	}
	_, block, ok := strings.Cut(section, "\n```yaml\n")
	if !ok {
		t.Fatal("README.md: no yaml block in Testing rules")
	}
	block, _, _ = strings.Cut(block, "\n```\n")
	rules, err := os.ReadFile("../../../configs/cookbook/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"rules.yaml": rules, "example_test.yaml": []byte(block + "\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if !Run([]string{filepath.Join(dir, "example_test.yaml")}, &out) || !strings.Contains(out.String(), "SUCCESS: 1 tests") {
		t.Errorf("the README's example does not pass:\n%s", out.String())
	}
}
