package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWatchedFilesFollowTheGlobsNotTheLastLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cardinal.yaml", "rule_files: [rules/*.yaml]\ndownstream:\n  file: {path: \"-\"}\n")
	write("rules/a.yaml", "rules:\n  - {metric_name: a_total, type: counter, drop_labels: [pod]}\n")
	cfg, err := Load(filepath.Join(dir, "cardinal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write("rules/b.yaml", "rules: []\n") // appears after the load
	want := []string{filepath.Join(dir, "cardinal.yaml"), filepath.Join(dir, "rules/a.yaml"), filepath.Join(dir, "rules/b.yaml")}
	if got := cfg.WatchedFiles(); !slices.Equal(got, want) {
		t.Errorf("WatchedFiles() = %q, want %q", got, want)
	}
}
