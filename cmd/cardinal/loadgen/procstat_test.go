package loadgen

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadProcUsage_parses_stat_and_status(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "42")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A command name with spaces and parentheses; utime 250 and stime 50 ticks.
	stat := "42 (my (weird) proc) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 100000 2000\n"
	status := "Name:\tcardinal\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t8\n"
	for name, content := range map[string]string{"stat": stat, "status": status} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	u, err := readProcUsage(root, 42)
	if err != nil {
		t.Fatal(err)
	}
	if u.cpuSeconds != 3 || u.rssBytes != 100<<20 || u.peakRSSBytes != 200<<20 {
		t.Fatalf("got %+v, want 3 CPU s, RSS 100 MiB, peak 200 MiB", u)
	}
	if _, err := readProcUsage(root, 43); err == nil {
		t.Fatal("missing process: want an error")
	}
}
