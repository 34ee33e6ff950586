package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// prometheusOptions configures a Prometheus started by a test.
type prometheusOptions struct {
	// Agent runs Prometheus in agent mode (--enable-feature=agent): it scrapes and remote-
	// writes but stores no queryable data and does not receive remote writes.
	Agent bool
	// ScrapeInterval is the global scrape and evaluation interval (default 1s).
	ScrapeInterval time.Duration
	// Scrape maps job names to static targets (host:port).
	Scrape map[string][]string
	// RemoteWrite lists remote_write URLs; they flush batches every second.
	RemoteWrite []string
	// RemoteWriteSettings are YAML lines added to every remote_write entry, indented as its
	// keys (e.g. "    tls_config: {...}\n").
	RemoteWriteSettings string
	// ExternalLabels are the global external_labels (an HA pair's replica label).
	ExternalLabels map[string]string
	// ExtraFlags are appended to the command line (e.g. --query.lookback-delta=1m).
	ExtraFlags []string

	// Prometheus3 is the path of a Prometheus 3.x binary (requirePrometheus3) to run instead
	// of Debian's 2.42 from PATH; its agent mode is --agent.
	Prometheus3 string
	// ProtobufMessage is the protobuf_message of every remote_write entry (Prometheus 3):
	// io.prometheus.write.v2.Request sends Remote Write 2.0. Empty leaves the key out (1.0).
	ProtobufMessage string
	// NativeHistograms (Prometheus 3) scrapes native histograms, protobuf first, keeping their
	// classic buckets (always_scrape_classic_histograms), sends them by remote write
	// (send_native_histograms) and stores those received: 3.7 needs
	// --enable-feature=native-histograms for the scraping and the storing.
	NativeHistograms bool
	// InOrder sends remote write from one queue shard (max_shards: 1), so that samples
	// arrive in the order they were scraped: with several shards, one can deliver a later
	// scrape before another delivers an earlier one, whose samples then reach cardinal
	// after their window closed.
	InOrder bool
}

// prometheusServer is a Prometheus process owned by one test.
type prometheusServer struct {
	// URL is the base URL, http://127.0.0.1:PORT.
	URL string
	// WriteURL is the remote-write receiver endpoint (server mode only).
	WriteURL string
	// Dir holds prometheus.yml, the data directory and the log.
	Dir  string
	proc *process
}

// startPrometheus writes a config for opts into a temp dir, starts Prometheus on a free
// loopback port with the remote-write receiver enabled (or in agent mode), and waits for
// /-/ready. The process is stopped when the test ends; its log is printed if the test fails.
func startPrometheus(t testing.TB, opts prometheusOptions) *prometheusServer {
	t.Helper()
	bin := opts.Prometheus3
	if bin == "" {
		bin = requireBinary(t, "prometheus")
	}
	dir := t.TempDir()
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(prometheusConfig(opts)), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := []string{"--config.file=" + configPath, "--web.listen-address=" + addr, "--log.level=info"}
	switch {
	case opts.Agent && opts.Prometheus3 != "":
		args = append(args, "--agent", "--storage.agent.path="+filepath.Join(dir, "agent"))
	case opts.Agent:
		args = append(args, "--enable-feature=agent", "--storage.agent.path="+filepath.Join(dir, "agent"))
	default:
		args = append(args, "--web.enable-remote-write-receiver", "--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--storage.tsdb.retention.time=1d")
	}
	if opts.NativeHistograms {
		args = append(args, "--enable-feature=native-histograms")
	}
	args = append(args, opts.ExtraFlags...)
	name := "prometheus"
	if opts.Prometheus3 != "" {
		name = "prometheus3"
	}
	if opts.Agent {
		name += "-agent"
	}
	p := &prometheusServer{
		URL:      "http://" + addr,
		WriteURL: "http://" + addr + "/api/v1/write",
		Dir:      dir,
		proc:     newProcess(t, dir, name, bin, args...),
	}
	p.Start()
	return p
}

// prometheusConfig renders prometheus.yml for opts.
func prometheusConfig(opts prometheusOptions) string {
	interval := opts.ScrapeInterval
	if interval == 0 {
		interval = time.Second
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n", interval, interval)
	if !opts.Agent {
		fmt.Fprintf(&b, "  evaluation_interval: %s\n", interval)
	}
	if len(opts.ExternalLabels) > 0 {
		b.WriteString("  external_labels:\n")
		for _, k := range slices.Sorted(maps.Keys(opts.ExternalLabels)) {
			fmt.Fprintf(&b, "    %s: %q\n", k, opts.ExternalLabels[k])
		}
	}
	if len(opts.Scrape) > 0 {
		b.WriteString("scrape_configs:\n")
		jobs := make([]string, 0, len(opts.Scrape))
		for job := range opts.Scrape {
			jobs = append(jobs, job)
		}
		slices.Sort(jobs)
		for _, job := range jobs {
			fmt.Fprintf(&b, "  - job_name: %q\n", job)
			if opts.NativeHistograms {
				b.WriteString("    always_scrape_classic_histograms: true\n")
			}
			b.WriteString("    static_configs:\n      - targets: [")
			for i, target := range opts.Scrape[job] {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%q", target)
			}
			b.WriteString("]\n")
		}
	}
	if len(opts.RemoteWrite) > 0 {
		b.WriteString("remote_write:\n")
		for _, u := range opts.RemoteWrite {
			fmt.Fprintf(&b, "  - url: %q\n", u)
			if opts.ProtobufMessage != "" {
				fmt.Fprintf(&b, "    protobuf_message: %s\n", opts.ProtobufMessage)
			}
			b.WriteString(opts.RemoteWriteSettings)
			if opts.NativeHistograms {
				b.WriteString("    send_native_histograms: true\n")
			}
			b.WriteString("    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n")
			if opts.InOrder {
				b.WriteString("      min_shards: 1\n      max_shards: 1\n")
			}
		}
	}
	return b.String()
}

// Start (re)starts Prometheus on the same port and data directory and waits until ready.
func (p *prometheusServer) Start() {
	p.proc.t.Helper()
	p.proc.start()
	p.proc.waitHTTP200(p.URL + "/-/ready")
}

// Stop stops Prometheus gracefully (SIGTERM, then kill) and fails the test on a non-zero exit.
func (p *prometheusServer) Stop() {
	p.proc.t.Helper()
	if code := p.proc.stop(); code != 0 {
		p.proc.t.Errorf("%s exited with code %d", p.proc.name, code)
	}
}

// point is one sample of a query result: T in milliseconds.
type point struct {
	T int64
	V float64
}

// seriesKey renders a label set as {a="1", b="2"} with names sorted (__name__ included),
// the key of query results.
func seriesKey(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Quote(labels[n])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// apiResponse is the envelope of Prometheus's query API.
type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// query runs an instant query at ts and returns the vector keyed by seriesKey (a scalar
// result is keyed by "").
func query(t testing.TB, promURL, expr string, ts time.Time) map[string]float64 {
	t.Helper()
	return queryWith(t, &http.Client{Timeout: 30 * time.Second}, promURL, expr, ts)
}

// queryWith is query through client (a Prometheus served over TLS).
func queryWith(t testing.TB, client *http.Client, promURL, expr string, ts time.Time) map[string]float64 {
	t.Helper()
	resp := getAPIWith(t, client, promURL+"/api/v1/query", url.Values{"query": {expr}, "time": {apiTime(ts)}})
	out := map[string]float64{}
	switch resp.Data.ResultType {
	case "vector":
		var vector []struct {
			Metric map[string]string  `json:"metric"`
			Value  [2]json.RawMessage `json:"value"`
		}
		decodeResult(t, expr, resp, &vector)
		for _, r := range vector {
			out[seriesKey(r.Metric)] = parseAPIPoint(t, r.Value).V
		}
	case "scalar":
		var scalar [2]json.RawMessage
		decodeResult(t, expr, resp, &scalar)
		out[""] = parseAPIPoint(t, scalar).V
	default:
		t.Fatalf("query %q: result type %q, want vector or scalar", expr, resp.Data.ResultType)
	}
	return out
}

// queryRange runs a range query and returns the matrix keyed by seriesKey.
func queryRange(t testing.TB, promURL, expr string, start, end time.Time, step time.Duration) map[string][]point {
	t.Helper()
	resp := getAPI(t, promURL+"/api/v1/query_range", url.Values{
		"query": {expr}, "start": {apiTime(start)}, "end": {apiTime(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	})
	if resp.Data.ResultType != "matrix" {
		t.Fatalf("query_range %q: result type %q, want matrix", expr, resp.Data.ResultType)
	}
	var matrix []struct {
		Metric map[string]string    `json:"metric"`
		Values [][2]json.RawMessage `json:"values"`
	}
	decodeResult(t, expr, resp, &matrix)
	out := map[string][]point{}
	for _, r := range matrix {
		points := make([]point, len(r.Values))
		for i, v := range r.Values {
			points[i] = parseAPIPoint(t, v)
		}
		out[seriesKey(r.Metric)] = points
	}
	return out
}

// decodeResult unmarshals the result of resp into v.
func decodeResult(t testing.TB, expr string, resp apiResponse, v any) {
	t.Helper()
	if err := json.Unmarshal(resp.Data.Result, v); err != nil {
		t.Fatalf("query %q: %s result: %v", expr, resp.Data.ResultType, err)
	}
}

// getAPI performs a query API call and fails the test on any error.
func getAPI(t testing.TB, endpoint string, params url.Values) apiResponse {
	t.Helper()
	return getAPIWith(t, &http.Client{Timeout: 30 * time.Second}, endpoint, params)
}

// getAPIWith is getAPI through client.
func getAPIWith(t testing.TB, client *http.Client, endpoint string, params url.Values) apiResponse {
	t.Helper()
	resp, err := client.Get(endpoint + "?" + params.Encode())
	if err != nil {
		t.Fatalf("GET %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", endpoint, err)
	}
	var out apiResponse
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s?%s: status %d, body %.500s: %v", endpoint, params.Encode(), resp.StatusCode, body, err)
	}
	if resp.StatusCode != http.StatusOK || out.Status != "success" {
		t.Fatalf("GET %s?%s: status %d: %s: %s", endpoint, params.Encode(), resp.StatusCode, out.ErrorType, out.Error)
	}
	return out
}

// apiTime formats a time for the query API (seconds with millisecond precision).
func apiTime(ts time.Time) string {
	return strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64)
}

// parseAPIPoint parses a [seconds, "value"] pair.
func parseAPIPoint(t testing.TB, raw [2]json.RawMessage) point {
	t.Helper()
	var sec float64
	var val string
	if err := json.Unmarshal(raw[0], &sec); err != nil {
		t.Fatalf("timestamp %s: %v", raw[0], err)
	}
	if err := json.Unmarshal(raw[1], &val); err != nil {
		t.Fatalf("value %s: %v", raw[1], err)
	}
	v, err := strconv.ParseFloat(val, 64)
	if err != nil {
		t.Fatalf("value %q: %v", val, err)
	}
	return point{T: int64(math.Round(sec * 1000)), V: v}
}
