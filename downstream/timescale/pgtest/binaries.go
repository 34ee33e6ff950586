package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// installHint is appended to every message about a server that cannot be run here.
const installHint = "install the Debian postgresql package (apt-get install postgresql)"

// cannotRun skips the test, or fails it under CI=true, where a missing server must not pass
// unnoticed.
func cannotRun(tb testing.TB, why string) {
	tb.Helper()
	msg := "pgtest: " + why + "; " + installHint
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// findBinDir returns the directory that holds initdb and postgres: the one of initdb in PATH
// (symbolic links resolved, since Debian links only some programs into /usr/bin or
// /usr/local/bin), else the newest /usr/lib/postgresql/<version>/bin. It returns "" when
// there is none.
func findBinDir() string {
	var candidates []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
	}
	versioned, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versioned, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, dir := range append(candidates, versioned...) {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir
		}
	}
	return ""
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}
