package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmeYAMLBlock returns the first yaml code block of the README after heading.
func readmeYAMLBlock(t *testing.T, heading string) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no heading %q", heading)
	}
	_, block, ok := strings.Cut(after, "\n```yaml\n")
	if !ok {
		t.Fatalf("README.md: no yaml block after %q", heading)
	}
	block, _, ok = strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatalf("README.md: the yaml block after %q does not end", heading)
	}
	return block + "\n"
}

// TestReadmeReferenceConfigChecksClean runs `cardinal check config` on the configuration
// reference of the README, as a reader would after copying it: it must be valid and draw no
// warning (a reference that warns teaches the reader to ignore warnings). The rule file its
// rule_files glob names is put next to it, and ${PGPASSWORD} is set.
func TestReadmeReferenceConfigChecksClean(t *testing.T) {
	ref := readmeYAMLBlock(t, "## Configuration")
	if !strings.Contains(ref, "\nwal:") || !strings.Contains(ref, "\ndownstream:") {
		t.Fatalf("the README's first yaml block under Configuration is not the reference config:\n%s", ref)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "cardinal.yaml")
	if err := os.WriteFile(path, []byte(ref), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	rules := "rules:\n  - metric_name: queue_depth\n    type: gauge\n    drop_labels: [pod]\n"
	if err := os.WriteFile(filepath.Join(dir, "rules", "queues.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", "secret")

	// The password file it names is not on this machine: a full check says so, and only
	// that; --syntax-only, for a config checked away from where it runs, passes.
	var stdout, stderr strings.Builder
	if code := checkConfig([]string{path}, &stdout, &stderr); code != 1 ||
		strings.Count(strings.TrimSpace(stderr.String()), "\n") != 1 || !strings.Contains(stderr.String(), "basic_auth.password_file: open /etc/secrets/pw") {
		t.Errorf("check config without the password file: exit %d, %q; want exit 1 and one problem, the password file", code, stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	code := checkConfig([]string{"--syntax-only", path}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("check config exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	if strings.Contains(stdout.String(), "WARNING") {
		t.Errorf("the README's reference config draws warnings:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "SUCCESS: ") || !strings.Contains(stdout.String(), "2 rules") {
		t.Errorf("check config output %q: want SUCCESS with the inline rule and the rule file's", stdout.String())
	}
}
