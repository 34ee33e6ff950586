package deploytest

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
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

// exposition is what a /metrics page holds: for each sample name (histograms with their
// _bucket, _sum and _count suffixes), each label name and the values seen for it.
type exposition map[string]map[string]map[string]bool

var (
	scrapeOnce sync.Once
	scraped    exposition
	scrapeErr  error
)

// exportedMetrics returns the /metrics of a real cardinal that has ingested data and
// flushed a window, started once per test run.
func exportedMetrics(t *testing.T) exposition {
	t.Helper()
	bin := cardinalBinary(t)
	scrapeOnce.Do(func() { scraped, scrapeErr = scrapeRunningCardinal(bin) })
	if scrapeErr != nil {
		t.Fatal(scrapeErr)
	}
	return scraped
}

func scrapeRunningCardinal(bin string) (exposition, error) {
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
	var exp exposition
	// Per-flush gauges appear once a window has closed, the checkpoint's size once one ran.
	if !poll(ctx, func() bool {
		exp, err = scrape(base + "/metrics")
		return err == nil && exp["cardinal_aggregator_last_flush_timestamp_seconds"] != nil && exp["cardinal_wal_checkpoint_bytes"] != nil
	}) {
		return nil, fail("no flush in the scraped metrics (last error %v): %v", err, exp)
	}
	return exp, nil
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

// labelPair is one name="value" of the text exposition format.
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrape reads a text-format exposition.
func scrape(url string) (exposition, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	exp := exposition{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		if i <= 0 {
			continue
		}
		name := line[:i]
		labels := exp[name]
		if labels == nil {
			labels = map[string]map[string]bool{}
			exp[name] = labels
		}
		if line[i] == '{' {
			end := strings.LastIndexByte(line, '}')
			for _, m := range labelPair.FindAllStringSubmatch(line[i:end+1], -1) {
				if labels[m[1]] == nil {
					labels[m[1]] = map[string]bool{}
				}
				labels[m[1]][m[2]] = true
			}
		}
	}
	return exp, sc.Err()
}

// targetLabels are added by Prometheus to every scraped series (job, instance) or by the
// usual Kubernetes relabelling (namespace, pod, node).
var targetLabels = []string{"job", "instance", "namespace", "pod", "node"}

// literalAlternatives matches a regexp that is a plain list of values: a|b|c.
var literalAlternatives = regexp.MustCompile(`^[a-zA-Z0-9_]+(\|[a-zA-Z0-9_]+)*$`)

// checkQuery checks a PromQL expression against a real cardinal's exposition: every metric
// it selects is exported, every label it matches on or aggregates by exists on the metrics
// concerned, and every literal value it matches (reason="limit", result=~"ok|failed") is one
// cardinal exports, so that a renamed metric, label or reason fails here and not in a
// silent alert or an empty panel. It returns the metric names it selects.
func checkQuery(t *testing.T, where string, expr parser.Expr, exp exposition) []string {
	t.Helper()
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			name := metricName(n)
			names = append(names, name)
			seen, ok := exp[name]
			if !ok {
				t.Errorf("%s: selects %s, which cardinal does not export", where, name)
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name == model.MetricNameLabel || slices.Contains(targetLabels, m.Name) {
					continue
				}
				values, ok := seen[m.Name]
				if !ok {
					t.Errorf("%s: %s has no label %s", where, name, m.Name)
					continue
				}
				var want []string
				switch {
				case m.Type == labels.MatchEqual || m.Type == labels.MatchNotEqual:
					want = []string{m.Value}
				case literalAlternatives.MatchString(m.Value):
					want = strings.Split(m.Value, "|")
				}
				for _, v := range want {
					if !values[v] && !strings.Contains(v, "$") {
						t.Errorf("%s: %s never has %s=%q (cardinal exports %v)", where, name, m.Name, v, slices.Sorted(maps.Keys(values)))
					}
				}
			}
		case *parser.AggregateExpr:
			if n.Without || len(n.Grouping) == 0 {
				return nil
			}
			have := map[string]bool{}
			parser.Inspect(n.Expr, func(c parser.Node, _ []parser.Node) error {
				if vs, ok := c.(*parser.VectorSelector); ok {
					for l := range exp[metricName(vs)] {
						have[l] = true
					}
				}
				return nil
			})
			for _, l := range n.Grouping {
				if !have[l] && !slices.Contains(targetLabels, l) {
					t.Errorf("%s: aggregates by %s, which none of the metrics in %s has", where, l, n.Expr)
				}
			}
		}
		return nil
	})
	return names
}

func metricName(vs *parser.VectorSelector) string {
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			return m.Value
		}
	}
	return vs.Name
}
