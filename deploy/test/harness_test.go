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

	"github.com/cardinal-proxy/cardinal/downstream/timescale/pgtest"
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
// write downstream (downstream_*; nothing listens there, so it retries), a TimescaleDB
// downstream with its policy jobs (timescale_*), a memory limit (memory_*), a rule with both
// series limits and a short interval (aggregator_*, including the per-flush gauges once a
// window has closed), and a cluster of two (cluster_*, forwarding and a handoff included).
const exportConfig = `
server:
  listen_addr: %q
  memory_limit: 512MiB
cluster:
  name: %s
  peers: [%q, %q]
  refresh_interval: 1s
  probe_timeout: 1s
  join_after: 1s
  leave_after: 10s
  handoff_timeout: 5s
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
  timescaledb:
    - name: tsdb
      dsn: %q
      compression: true
      retention: 30d
rules:
  - metric_name: loadgen_counter_0_total
    type: counter
    drop_labels: [pod, instance]
    max_input_series: 100000
    max_output_series: 1000
    ha: {enabled: true}
`

// exposition is what a /metrics page holds: for each sample name (histograms with their
// _bucket, _sum and _count suffixes), each label name and the values seen for it.
type exposition map[string]map[string]map[string]bool

var (
	scrapeOnce sync.Once
	scraped    exposition
	scrapeErr  error
)

// exportedMetrics returns the /metrics of real cardinals that have ingested data and
// flushed a window, the union of two members of a cluster, started once per test run.
func exportedMetrics(t *testing.T) exposition {
	t.Helper()
	bin := cardinalBinary(t)
	scrapeOnce.Do(func() {
		pg := pgtest.Start(t, pgtest.TimescaleDB())
		scraped, scrapeErr = scrapeRunningCardinal(bin, pg.CreateDatabase(t, "cardinal"))
	})
	if scrapeErr != nil {
		t.Fatal(scrapeErr)
	}
	return scraped
}

func scrapeRunningCardinal(bin, dsn string) (exposition, error) {
	dir, err := os.MkdirTemp("", "cardinal-deploytest-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var addrs [2]string
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return nil, err
		}
	}
	deadAddr, err := freeAddr() // a downstream that refuses connections
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logs []string
	fail := func(format string, args ...any) error {
		for _, l := range logs {
			out, _ := os.ReadFile(l)
			format += "\ncardinal's log " + l + ":\n" + strings.ReplaceAll(string(out), "%", "%%")
		}
		return fmt.Errorf(format, args...)
	}
	// start runs member i of the cluster, in a directory of its own (its WAL).
	start := func(i int) error {
		mdir := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(mdir, 0o700); err != nil {
			return err
		}
		cfg := filepath.Join(mdir, "cardinal.yaml")
		name := fmt.Sprintf("member-%d", i)
		if err := os.WriteFile(cfg, fmt.Appendf(nil, exportConfig, addrs[i], name, addrs[0], addrs[1], deadAddr, dsn), 0o600); err != nil {
			return err
		}
		log, err := os.Create(filepath.Join(mdir, "cardinal.log"))
		if err != nil {
			return err
		}
		logs = append(logs, log.Name())
		cmd := exec.CommandContext(ctx, bin, "--config.file="+cfg, "--log.level=warn")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() { _ = cmd.Wait(); log.Close() }()
		if !poll(ctx, func() bool { return httpOK("http://" + addrs[i] + "/-/ready") }) {
			return fail("cardinal %d did not become ready", i)
		}
		return nil
	}
	// load sends 50 series of one counter in 16 groups: 16 outputs, so that each member of
	// two owns some (all 16 on one member has a chance of 2^-15) whatever the placement. They
	// come from one replica of an HA pair, so that the elections' metrics exist.
	load := func() error {
		out, err := exec.CommandContext(ctx, bin, "loadgen", "--url", "http://"+addrs[0]+"/api/v1/write", "--duration", "1s",
			"--series", "50", "--metrics", "1", "--groups", "16",
			"--labels", "job=loadgen,cluster=deploytest,__replica__=replica-0").CombinedOutput()
		if err != nil {
			return fail("cardinal loadgen: %v\n%s", err, out)
		}
		return nil
	}
	defer cancel() // stops both members (CommandContext)
	// The first member takes data alone; the second joins and is handed its share, then
	// receives forwarded series.
	if err := start(0); err != nil {
		return nil, err
	}
	if err := load(); err != nil {
		return nil, err
	}
	if err := start(1); err != nil {
		return nil, err
	}
	exps := make([]exposition, 2)
	var scrapeErr error
	want := [2][]string{
		{"cardinal_aggregator_last_flush_timestamp_seconds", "cardinal_wal_checkpoint_bytes", "cardinal_cluster_handoffs_total",
			"cardinal_cluster_forward_sent_samples_total", "cardinal_timescale_job_failures"},
		{"cardinal_cluster_handoffs_received_total", "cardinal_cluster_received_requests_total"},
	}
	loaded := false
	if !poll(ctx, func() bool {
		for i := range exps {
			if exps[i], scrapeErr = scrape("http://" + addrs[i] + "/metrics"); scrapeErr != nil {
				return false
			}
		}
		if exps[0]["cardinal_cluster_handoffs_total"] != nil && !loaded {
			loaded = load() == nil // forwarded to the member that joined
		}
		for i, names := range want {
			for _, n := range names {
				if exps[i][n] == nil {
					scrapeErr = fmt.Errorf("member %d does not export %s yet", i, n)
					return false
				}
			}
		}
		return true
	}) {
		return nil, fail("the metrics never got complete (last: %v)", scrapeErr)
	}
	union := exposition{}
	for _, e := range exps {
		for name, ls := range e {
			if union[name] == nil {
				union[name] = map[string]map[string]bool{}
			}
			for l, vs := range ls {
				if union[name][l] == nil {
					union[name][l] = map[string]bool{}
				}
				for v := range vs {
					union[name][l][v] = true
				}
			}
		}
	}
	return union, nil
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
