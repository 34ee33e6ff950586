package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardinal-proxy/cardinal/cmd/cardinal/loadgen"
)

// cardinalBuild is the cardinal binary built once per test binary run, into the directory
// TestMain creates.
var cardinalBuild struct {
	dir  string
	once sync.Once
	path string
	err  error
}

// buildCardinal builds ./cmd/cardinal from this module (once per test binary run) and returns
// the binary's path. A build failure fails the test.
func buildCardinal(t testing.TB) string {
	t.Helper()
	goBin := requireBinary(t, "go")
	cardinalBuild.once.Do(func() {
		out, err := exec.Command(goBin, "env", "GOMOD").Output()
		if err != nil {
			cardinalBuild.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		path := filepath.Join(cardinalBuild.dir, "cardinal")
		cmd := exec.Command(goBin, "build", "-trimpath", "-o", path, "./cmd/cardinal")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			cardinalBuild.err = fmt.Errorf("go build ./cmd/cardinal: %w\n%s", err, out)
			return
		}
		cardinalBuild.path = path
	})
	if cardinalBuild.err != nil {
		t.Fatal(cardinalBuild.err)
	}
	return cardinalBuild.path
}

// cardinalServer is a cardinal process owned by one test.
type cardinalServer struct {
	// URL is the base URL, http://127.0.0.1:PORT.
	URL string
	// WriteURL is the remote-write endpoint agents point at.
	WriteURL string
	// ConfigPath is the config file written from the test's YAML.
	ConfigPath string
	// Dir is the test-owned directory holding the config and the log.
	Dir  string
	proc *process
}

// startCardinal writes configYAML to a temp file and runs `cardinal --config.file=F
// --web.listen-address=127.0.0.1:PORT extraFlags...`, waiting for GET /-/ready to answer 200.
// It is stopped with SIGTERM when the test ends; its log is printed if the test fails.
func startCardinal(t testing.TB, configYAML string, extraFlags ...string) *cardinalServer {
	t.Helper()
	configPath := filepath.Join(t.TempDir(), "cardinal.yaml")
	if err := os.WriteFile(configPath, []byte(configYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return startCardinalWithConfig(t, configPath, extraFlags...)
}

// startCardinalWithConfig runs cardinal on an existing config file (which may be a symlink),
// with the same conventions as startCardinal.
func startCardinalWithConfig(t testing.TB, configPath string, extraFlags ...string) *cardinalServer {
	t.Helper()
	return startCardinalAt(t, fmt.Sprintf("127.0.0.1:%d", freePort(t)), configPath, extraFlags...)
}

// startCardinalAt is startCardinalWithConfig listening on addr, for a test that must know
// the address before cardinal starts (the peers of a cluster).
func startCardinalAt(t testing.TB, addr, configPath string, extraFlags ...string) *cardinalServer {
	t.Helper()
	bin := buildCardinal(t)
	dir := t.TempDir()
	args := append([]string{"--config.file=" + configPath, "--web.listen-address=" + addr}, extraFlags...)
	c := &cardinalServer{
		URL:        "http://" + addr,
		WriteURL:   "http://" + addr + "/api/v1/write",
		ConfigPath: configPath,
		Dir:        dir,
		proc:       newProcess(t, dir, "cardinal", bin, args...),
	}
	c.Start()
	t.Cleanup(func() {
		if t.Failed() && c.proc.running() {
			t.Logf("--- cardinal /metrics at failure ---\n%s", c.selfMetrics())
		}
	})
	return c
}

// selfMetrics returns cardinal's own metrics (cardinal_* lines whose value is not 0), or the
// error fetching them.
func (c *cardinalServer) selfMetrics() string {
	resp, err := http.Get(c.URL + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var keep []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "cardinal_") && !strings.HasSuffix(l, " 0") && !strings.Contains(l, "_bucket{") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// Start (re)starts cardinal with the same flags and port and waits until it is ready.
func (c *cardinalServer) Start() {
	c.proc.t.Helper()
	c.proc.start()
	c.proc.waitHTTP200(c.URL + "/-/ready")
}

// Stop sends SIGTERM, waits for the exit (killing it after a timeout) and returns the exit
// code (-1 if it had to be killed).
func (c *cardinalServer) Stop() int { return c.proc.stop() }

// Signal sends sig (e.g. SIGHUP to reload, SIGKILL to crash it) to the running process.
func (c *cardinalServer) Signal(sig os.Signal) error { return c.proc.signal(sig) }

// Wait waits up to timeout for cardinal to exit by itself (e.g. after Signal) and returns
// its exit code.
func (c *cardinalServer) Wait(timeout time.Duration) (int, error) { return c.proc.wait(timeout) }

// PID is the process id, e.g. for `cardinal loadgen --pid`.
func (c *cardinalServer) PID() int { return c.proc.pid() }

// Log returns everything cardinal has logged so far.
func (c *cardinalServer) Log() string { return c.proc.log() }

// runLoadgen runs `cardinal loadgen --output=json args...` with the built binary and returns
// its report; the run must exit 0.
func runLoadgen(t testing.TB, args ...string) loadgen.Report {
	t.Helper()
	cmd := exec.Command(buildCardinal(t), append([]string{"loadgen", "--output=json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cardinal loadgen %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	var rep loadgen.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("cardinal loadgen report: %v\n%s", err, stdout.String())
	}
	return rep
}
