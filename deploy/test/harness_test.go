package deploytest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot and deployDir are relative to this package's directory, where go test runs.
const (
	repoRoot  = "../.."
	deployDir = ".."
)

// inCI follows cmd/cardinal/e2e: under CI=true a missing tool fails the test instead of
// skipping it, so that CI cannot pass by testing nothing.
func inCI() bool { return os.Getenv("CI") == "true" }

// requireTool returns the path of an external program, or skips (fails under CI=true).
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found in PATH (%v): %s", name, err, install)
	if inCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// cardinalBinary builds cmd/cardinal once per test run (go test has no -short here: the
// build is what the test is about).
func cardinalBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "cardinal-deploytest-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "cardinal")
		gotool := "go"
		if g := os.Getenv("GO"); g != "" {
			gotool = g
		}
		cmd := exec.Command(gotool, "build", "-o", buildPath, "./cmd/cardinal")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/cardinal: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// exportConfig makes a cardinal export every metric family it has: a WAL (wal_*), a remote
// write downstream (downstream_*; nothing listens there, so it retries), a memory limit
// (memory_*), and a rule with both series limits and a short interval (aggregator_*,
// including the per-flush gauges once a window has closed).
const exportConfig = `
server:
  listen_addr: %q
  memory_limit: 512MiB
aggregator:
  flush_interval: 1s
  flush_delay: 1s
  unmatched: forward
wal:
  dir: wal
  checkpoint_interval: 1s
downstream:
  remote_write:
    - name: prometheus
      url: http://%s/api/v1/write
rules:
  - metric_name: loadgen_counter_0_total
    type: counter
    drop_labels: [pod, instance]
    max_input_series: 100000
    max_output_series: 1000
`

var (
	scrapeOnce  sync.Once
	scrapeNames map[string]bool
	scrapeErr   error
)

// exportedMetrics returns the sample names (histograms with their _bucket, _sum and _count
// suffixes) on the /metrics of a real cardinal that has ingested data and flushed a
// window, started once per test run.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	bin := cardinalBinary(t)
	scrapeOnce.Do(func() { scrapeNames, scrapeErr = scrapeRunningCardinal(bin) })
	if scrapeErr != nil {
		t.Fatal(scrapeErr)
	}
	return scrapeNames
}

func scrapeRunningCardinal(bin string) (map[string]bool, error) {
	dir, err := os.MkdirTemp("", "cardinal-deploytest-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	deadAddr, err := freeAddr() // a downstream that refuses connections
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "cardinal.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, exportConfig, addr, deadAddr), 0o600); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log, err := os.Create(filepath.Join(dir, "cardinal.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfg, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	fail := func(format string, args ...any) error {
		out, _ := os.ReadFile(log.Name())
		return fmt.Errorf(format+"\ncardinal's log:\n%s", append(args, out)...)
	}
	base := "http://" + addr
	if !poll(ctx, func() bool { return httpOK(base + "/-/ready") }) {
		return nil, fail("cardinal did not become ready")
	}
	load := exec.CommandContext(ctx, bin, "loadgen", "--url", base+"/api/v1/write", "--duration", "1s",
		"--series", "50", "--metrics", "1")
	if out, err := load.CombinedOutput(); err != nil {
		return nil, fail("cardinal loadgen: %v\n%s", err, out)
	}
	var names map[string]bool
	// Per-flush gauges appear once a window has closed, checkpoint results once one ran.
	if !poll(ctx, func() bool {
		names, err = scrapeNamesAt(base + "/metrics")
		return err == nil && names["cardinal_aggregator_last_flush_timestamp_seconds"] && names["cardinal_wal_checkpoint_bytes"]
	}) {
		return nil, fail("no flush in the scraped metrics (last error %v): %v", err, names)
	}
	return names, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// poll calls cond every 100ms until it holds or ctx ends.
func poll(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// scrapeNamesAt returns the sample names of a text-format exposition.
func scrapeNamesAt(url string) (map[string]bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names, sc.Err()
}
