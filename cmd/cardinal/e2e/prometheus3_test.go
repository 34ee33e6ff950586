package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// prometheus3Env names a Prometheus 3.x binary to use instead of the one .ci/prometheus3.sh
// builds.
const prometheus3Env = "CARDINAL_PROMETHEUS3"

// requirePrometheus3 returns the path of a Prometheus 3.x binary: $CARDINAL_PROMETHEUS3, else
// the one .ci/prometheus3.sh builds into ~/.cache/prometheus-3 (Debian packages 2.42 only).
// Like requireBinary, it skips under -short, and when the binary is missing or is not 3.x it
// skips the test locally and fails it under CI=true.
func requirePrometheus3(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short runs unit tests only: this end-to-end test needs a Prometheus 3 binary (make test runs it)")
	}
	path, from := os.Getenv(prometheus3Env), "$"+prometheus3Env
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("no home directory to find ~/.cache/prometheus-3 in: %v", err)
		}
		path, from = filepath.Join(home, ".cache", "prometheus-3", "prometheus"), "the cache of .ci/prometheus3.sh"
	}
	out, err := exec.Command(path, "--version").CombinedOutput()
	first, _, _ := strings.Cut(string(out), "\n")
	switch {
	case err != nil:
		err = fmt.Errorf("%s (from %s): --version: %v", path, from, err)
	case !strings.HasPrefix(first, "prometheus, version 3."):
		err = fmt.Errorf("%s (from %s) is not Prometheus 3: --version says %q", path, from, first)
	default:
		return path
	}
	missingBinary(t, fmt.Sprintf("%v: run .ci/prometheus3.sh to build Prometheus 3 into ~/.cache/prometheus-3, or set %s", err, prometheus3Env))
	return ""
}
