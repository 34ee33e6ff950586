package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Hints appended to the messages about a server that cannot be run here.
const (
	installHint            = "install the Debian postgresql package (apt-get install postgresql)"
	installTimescaleDBHint = "build and install it with ../shared/timescaledb/install.sh (as .ci/run does), or a timescaledb package for this PostgreSQL"
)

// cannotRun skips the test, or fails it under CI=true, where a missing server must not pass
// unnoticed.
func cannotRun(tb testing.TB, why, hint string) {
	tb.Helper()
	msg := "pgtest: " + why + "; " + hint
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

// timescaleDBMissing says what is missing for the server in bin to preload TimescaleDB: the
// extension's control file and its library, where pg_config of that server says they go. It
// returns "" when both are there.
func timescaleDBMissing(bin string) string {
	pgConfig := filepath.Join(bin, "pg_config")
	dirs := map[string]string{}
	for _, flag := range []string{"--sharedir", "--pkglibdir"} {
		out, err := exec.Command(pgConfig, flag).Output()
		if err != nil {
			return fmt.Sprintf("%s %s failed (%v): cannot tell where extensions are installed", pgConfig, flag, err)
		}
		dirs[flag] = strings.TrimSpace(string(out))
	}
	control := filepath.Join(dirs["--sharedir"], "extension", "timescaledb.control")
	library := filepath.Join(dirs["--pkglibdir"], "timescaledb.so")
	for _, f := range []string{control, library} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Sprintf("TimescaleDB is not installed for the PostgreSQL in %s (%s missing)", bin, f)
		}
	}
	return ""
}
