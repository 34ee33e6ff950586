package e2e

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// statusConfig is the status test's configuration: a named counter rule and an unnamed gauge
// rule (named after its metric), with a remote-write and a file downstream.
const statusConfig = `
aggregator:
  flush_interval: 15s
downstream:
  remote_write:
    - url: %s
      name: central
  file:
    path: %s
rules:
  - name: requests_by_job
    metric_name: st_requests_total
    type: counter
    drop_labels: [pod]
  - metric_name: st_mem_bytes
    type: gauge
    drop_labels: [pod, instance]
    outputs: [sum, max]
`

// TestStatus_page_health_and_metrics_show_rules_series_and_downstreams pushes a known set of
// series and checks what an operator looks at: the status page lists every rule with its
// input and output series counts and every downstream; /-/healthy and /-/ready answer 200;
// /metrics carries the build info, the reload status and per-rule series gauges with the same
// numbers; and POST /-/reload is refused (403) without --web.enable-lifecycle.
func TestStatus_page_health_and_metrics_show_rules_series_and_downstreams(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	card := startCardinal(t, fmt.Sprintf(statusConfig, prom.WriteURL, filepath.Join(t.TempDir(), "out.prom")))

	// The counter: 2 jobs × 2 codes × 5 pods = 20 inputs into 4 outputs (job, code). The
	// gauge: 2 zones × 3 pods × 2 instances = 12 inputs into 2 outputs (zone). One series no
	// rule selects, forwarded raw.
	ms := time.Now().UnixMilli()
	var series []prompb.TimeSeries
	for _, job := range []string{"api", "web"} {
		for _, code := range []string{"200", "500"} {
			for p := range 5 {
				series = append(series, prompb.TimeSeries{
					Labels:  labelSet("st_requests_total", "job", job, "code", code, "pod", fmt.Sprintf("%s-%d", job, p)),
					Samples: []prompb.Sample{{Timestamp: ms, Value: float64(10 + p)}},
				})
			}
		}
	}
	for _, zone := range []string{"a", "b"} {
		for p := range 3 {
			for _, inst := range []string{"i1", "i2"} {
				series = append(series, prompb.TimeSeries{
					Labels:  labelSet("st_mem_bytes", "zone", zone, "pod", fmt.Sprintf("%s-%d", zone, p), "instance", inst),
					Samples: []prompb.Sample{{Timestamp: ms, Value: 1000}},
				})
			}
		}
	}
	series = append(series, prompb.TimeSeries{
		Labels:  labelSet("st_unmatched", "job", "api"),
		Samples: []prompb.Sample{{Timestamp: ms, Value: 1}},
	})
	if code := pushRW(t, card.WriteURL, series); code/100 != 2 {
		t.Fatalf("push: status %d, want 2xx", code)
	}
	want := map[string]statusRuleRow{
		"requests_by_job": {Type: "counter", In: 20, Out: 4},
		"st_mem_bytes":    {Type: "gauge", In: 12, Out: 2},
	}

	// The status page.
	code, ctype, body := httpGet(t, card.URL+"/")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("GET /: %d %q, want 200 text/html; body:\n%.2000s", code, ctype, body)
	}
	rules, downstreams := parseStatusPage(t, body)
	t.Logf("status page: rules %+v, downstreams %v", rules, downstreams)
	if len(rules) != len(want) {
		t.Errorf("status page lists %d rules %v, want %d", len(rules), rules, len(want))
	}
	for name, w := range want {
		got, ok := rules[name]
		if !ok {
			t.Errorf("status page: rule %q missing (rules: %v)", name, rules)
			continue
		}
		if got.Type != w.Type || got.In != w.In || got.Out != w.Out {
			t.Errorf("status page: rule %q: type %s, %d input series, %d output series; want %s, %d, %d",
				name, got.Type, got.In, got.Out, w.Type, w.In, w.Out)
		}
		if wantRatio := fmt.Sprintf("%.1f×", float64(w.In)/float64(w.Out)); got.Ratio != wantRatio {
			t.Errorf("status page: rule %q: reduction %q, want %q", name, got.Ratio, wantRatio)
		}
	}
	wantDown := map[string]string{"central": "remote_write", "file": "file"}
	if len(downstreams) != len(wantDown) {
		t.Errorf("status page lists downstreams %v, want %v", downstreams, wantDown)
	}
	for name, kind := range wantDown {
		if got, ok := downstreams[name]; !ok || got[0] != kind || got[1] != "accepting" {
			t.Errorf("status page: downstream %q = %q, want [%s accepting] (all: %v)", name, got, kind, downstreams)
		}
	}

	// Health and readiness.
	for _, path := range []string{"/-/healthy", "/-/ready"} {
		if code, _, body := httpGet(t, card.URL+path); code != http.StatusOK {
			t.Errorf("GET %s: %d %q, want 200", path, code, body)
		}
	}

	// Self-metrics agree with the page.
	metrics := scrapeCardinal(t, card.URL)
	if v, n := metricValue(metrics, "cardinal_build_info"); n != 1 || v != 1 {
		t.Errorf("cardinal_build_info: %d series, value %v; want one series = 1", n, v)
	}
	for _, m := range metrics {
		if m.Name == "cardinal_build_info" && (m.Labels["version"] == "" || m.Labels["goversion"] == "") {
			t.Errorf("cardinal_build_info labels %v: want version and goversion", m.Labels)
		}
	}
	if v, n := metricValue(metrics, "cardinal_config_last_reload_successful"); n != 1 || v != 1 {
		t.Errorf("cardinal_config_last_reload_successful: %d series, value %v; want 1", n, v)
	}
	for name, w := range want {
		if v, n := metricValue(metrics, "cardinal_aggregator_input_series", "rule", name); n != 1 || v != float64(w.In) {
			t.Errorf("cardinal_aggregator_input_series{rule=%q}: %d series, value %v; want %d", name, n, v, w.In)
		}
		if v, n := metricValue(metrics, "cardinal_aggregator_output_series", "rule", name); n != 1 || v != float64(w.Out) {
			t.Errorf("cardinal_aggregator_output_series{rule=%q}: %d series, value %v; want %d", name, n, v, w.Out)
		}
	}
	if v, _ := metricValue(metrics, "cardinal_aggregator_forwarded_series_total"); v != 1 {
		t.Errorf("cardinal_aggregator_forwarded_series_total = %v, want 1 (st_unmatched)", v)
	}

	// The lifecycle API is off by default, as in Prometheus.
	if code, body := httpPost(t, card.URL+"/-/reload"); code != http.StatusForbidden {
		t.Errorf("POST /-/reload without --web.enable-lifecycle: %d %q, want 403", code, body)
	}
}

// TestStatus_reload_endpoint_with_lifecycle_enabled checks POST /-/reload when
// --web.enable-lifecycle is set: 200, the page shows a rule added to the file while the
// unchanged rule keeps its series, and a broken file is refused (500, reload metric 0) with
// the running rules untouched.
func TestStatus_reload_endpoint_with_lifecycle_enabled(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.prom")
	const base = `
aggregator:
  flush_interval: 15s
downstream:
  file:
    path: %s
rules:
  - name: requests_by_job
    metric_name: st_requests_total
    type: counter
    drop_labels: [pod]
`
	card := startCardinal(t, fmt.Sprintf(base, out), "--web.enable-lifecycle")
	ms := time.Now().UnixMilli()
	var series []prompb.TimeSeries
	for p := range 3 {
		series = append(series, prompb.TimeSeries{
			Labels:  labelSet("st_requests_total", "job", "api", "pod", fmt.Sprint(p)),
			Samples: []prompb.Sample{{Timestamp: ms, Value: 1}},
		})
	}
	if code := pushRW(t, card.WriteURL, series); code/100 != 2 {
		t.Fatalf("push: status %d", code)
	}

	if code, body := httpPost(t, card.URL+"/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload with --web.enable-lifecycle: %d %q, want 200", code, body)
	}
	if code, _, body := httpGet(t, card.URL+"/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d %q, want 405", code, body)
	}

	added := fmt.Sprintf(base, out) + `  - metric_name: st_mem_bytes
    type: gauge
    drop_labels: [pod]
`
	if err := os.WriteFile(card.ConfigPath, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := httpPost(t, card.URL+"/-/reload"); code != http.StatusOK {
		t.Fatalf("POST /-/reload after adding a rule: %d %q, want 200", code, body)
	}
	_, _, page := httpGet(t, card.URL+"/")
	rules, _ := parseStatusPage(t, page)
	if r, ok := rules["requests_by_job"]; !ok || r.In != 3 || r.Out != 1 {
		t.Errorf("after reload, requests_by_job = %+v (present %v), want its 3 inputs and 1 output kept", r, ok)
	}
	if r, ok := rules["st_mem_bytes"]; !ok || r.Type != "gauge" || r.In != 0 {
		t.Errorf("after reload, the added rule st_mem_bytes = %+v (present %v), want an empty gauge rule; rules: %v", r, ok, rules)
	}

	if err := os.WriteFile(card.ConfigPath, []byte(added+"  - metric_name: broken\n    type: nonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := httpPost(t, card.URL+"/-/reload"); code != http.StatusInternalServerError {
		t.Errorf("POST /-/reload of an invalid file: %d %q, want 500", code, body)
	}
	if v, n := metricValue(scrapeCardinal(t, card.URL), "cardinal_config_last_reload_successful"); n != 1 || v != 0 {
		t.Errorf("after a failed reload, cardinal_config_last_reload_successful = %v (%d series), want 0", v, n)
	}
	_, _, page = httpGet(t, card.URL+"/")
	if rules, _ := parseStatusPage(t, page); len(rules) != 2 || rules["requests_by_job"].In != 3 {
		t.Errorf("after a failed reload the running rules changed: %v", rules)
	}
	if code, _, _ := httpGet(t, card.URL+"/-/ready"); code != http.StatusOK {
		t.Errorf("GET /-/ready after a failed reload: %d, want 200", code)
	}
}

// statusRuleRow is one row of the status page's rules table.
type statusRuleRow struct {
	Type    string
	In, Out int
	Ratio   string
}

var (
	tableRE = regexp.MustCompile(`(?s)<table>(.*?)</table>`)
	rowRE   = regexp.MustCompile(`(?s)<tr>(.*?)</tr>`)
	cellRE  = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	tagRE   = regexp.MustCompile(`<[^>]*>`)
)

// parseStatusPage reads the rules table (by rule name) and the downstreams table (name to
// [kind, queue state]) of the status page. It fails the test if the page has no such tables.
func parseStatusPage(t testing.TB, page string) (map[string]statusRuleRow, map[string][2]string) {
	t.Helper()
	tables := tableRE.FindAllStringSubmatch(page, -1)
	if len(tables) < 2 {
		t.Fatalf("status page has %d tables, want rules and downstreams:\n%.3000s", len(tables), page)
	}
	cells := func(row string) []string {
		var out []string
		for _, c := range cellRE.FindAllStringSubmatch(row, -1) {
			out = append(out, strings.TrimSpace(html.UnescapeString(tagRE.ReplaceAllString(c[1], ""))))
		}
		return out
	}
	rules := map[string]statusRuleRow{}
	for _, r := range rowRE.FindAllStringSubmatch(tables[0][1], -1) {
		c := cells(r[1])
		if len(c) < 6 { // the header row has <th> cells, the empty table one colspan cell
			continue
		}
		in, err1 := strconv.Atoi(c[3])
		out, err2 := strconv.Atoi(c[4])
		if err1 != nil || err2 != nil {
			t.Fatalf("status page: rule row %q: input/output series are not numbers", c)
		}
		rules[c[0]] = statusRuleRow{Type: c[1], In: in, Out: out, Ratio: c[5]}
	}
	downstreams := map[string][2]string{}
	for _, r := range rowRE.FindAllStringSubmatch(tables[1][1], -1) {
		if c := cells(r[1]); len(c) >= 3 {
			downstreams[c[0]] = [2]string{c[1], c[2]}
		}
	}
	return rules, downstreams
}

// httpGet fetches url and returns the status code, Content-Type and body.
func httpGet(t testing.TB, url string) (int, string, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// httpPost sends an empty POST to url and returns the status code and body.
func httpPost(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Post(url, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// metricSample is one line of the text exposition format.
type metricSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// scrapeCardinal fetches cardinal's /metrics and parses every sample line.
func scrapeCardinal(t testing.TB, baseURL string) []metricSample {
	t.Helper()
	code, _, body := httpGet(t, baseURL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%.1000s", code, body)
	}
	var out []metricSample
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m, err := parseMetricLine(line)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// parseMetricLine parses `name{a="x",b="y"} value` (quoted values may hold escapes).
func parseMetricLine(line string) (metricSample, error) {
	m := metricSample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return m, fmt.Errorf("no value")
	}
	m.Name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, ", ")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq < 0 {
				return m, fmt.Errorf("bad label in %q", line)
			}
			name := line[:eq]
			rest := line[eq+1:]
			// Find the closing quote, skipping escaped characters.
			end := 1
			for ; end < len(rest) && rest[end] != '"'; end++ {
				if rest[end] == '\\' {
					end++
				}
			}
			if end >= len(rest) {
				return m, fmt.Errorf("unterminated label value")
			}
			v, err := strconv.Unquote(rest[:end+1])
			if err != nil {
				return m, err
			}
			m.Labels[name] = v
			line = rest[end+1:]
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return m, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return m, err
	}
	m.Value = v
	return m, nil
}

// metricValue sums the samples named name whose labels include the given name/value pairs,
// and returns the sum and how many samples matched.
func metricValue(ms []metricSample, name string, pairs ...string) (float64, int) {
	sum, n := 0.0, 0
next:
	for _, m := range ms {
		if m.Name != name {
			continue
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			if m.Labels[pairs[i]] != pairs[i+1] {
				continue next
			}
		}
		sum += m.Value
		n++
	}
	return sum, n
}

// TestStatus_rule_that_matches_nothing_is_warned_about_in_the_log_and_on_the_page runs the
// no-op warning through the real binary: aggregator.warn_unmatched_after from the config, a
// rule nothing is sent for, one log line naming it by file:line, and the page listing it.
func TestStatus_rule_that_matches_nothing_is_warned_about_in_the_log_and_on_the_page(t *testing.T) {
	c := startCardinal(t, `
aggregator:
  flush_interval: 1s
  flush_delay: 0s
  warn_unmatched_after: 2s
downstream: {file: {path: "-"}}
rules:
  - metric_name: never_sent_total
    type: counter
    drop_labels: [pod]
`)
	want := `rule \"never_sent_total\" (` + c.ConfigPath + `:8) has had no input series for`
	eventually(t, 20*time.Second, "the unmatched warning logged", func() (bool, error) {
		return strings.Contains(c.Log(), want), nil
	})
	_, _, page := httpGet(t, c.URL+"/")
	if !strings.Contains(page, "<h2>Warnings</h2>") || !strings.Contains(page, "never_sent_total&#34; ("+c.ConfigPath+":8) has had no input series for") {
		t.Errorf("the status page does not list the warning:\n%s", page)
	}
	// Checked again every second: the page's duration moves on, the log says nothing more.
	eventually(t, 10*time.Second, "a few more checks", func() (bool, error) {
		_, _, p := httpGet(t, c.URL+"/")
		return !strings.Contains(p, "for 2s:"), nil
	})
	if n := strings.Count(c.Log(), "has had no input series"); n != 1 {
		t.Errorf("the warning was logged %d times, want once:\n%s", n, c.Log())
	}
}
