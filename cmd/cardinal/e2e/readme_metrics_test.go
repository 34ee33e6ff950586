package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// readmeMetrics is what the README says about cardinal's metrics: the families it names and,
// per family, the values of the reason label it names.
type readmeMetrics struct {
	families []string            // full names, in order of first mention
	prefixes []string            // from names written as cardinal_x_* (cardinal_timescale_*)
	reasons  map[string][]string // family → reason values named for it
	problems []string            // names the README abbreviates that name no family
}

var (
	codeSpanRE   = regexp.MustCompile("`([^`]+)`")
	reasonListRE = regexp.MustCompile(`reason="([^"]+)"((?:\\?\|"[^"]+")*)`)
	bareValueRE  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// parseReadmeMetrics reads every mention of a cardinal_ metric in the README outside code
// blocks: in tables (a row is one unit) and in prose (a paragraph is one unit). A name may be
// abbreviated as `..._rest` or `…rest` after a full one: it is resolved against the full
// names mentioned before it, the newest first, trying each one's prefixes from the longest,
// to a family in exported. Reason values are those written as {reason="a"|"b"} on a name
// (or as {reason="a"} alone right after it), and the bare lowercase words in backquotes that
// follow a name whose braces mention reason (or that follows a `reason`): in a paragraph,
// up to the next such name; in a table row, in the next cell.
func parseReadmeMetrics(t testing.TB, exported map[string]bool) readmeMetrics {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	var para []string
	inCode := false
	flush := func() {
		if len(para) > 0 {
			units = append(units, strings.Join(para, " "))
			para = nil
		}
	}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "```"):
			inCode = !inCode
			flush()
		case inCode:
		case strings.HasPrefix(line, "|"):
			flush()
			units = append(units, line)
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
			flush()
		default:
			para = append(para, line)
		}
	}
	flush()

	m := readmeMetrics{reasons: map[string][]string{}}
	var fulls []string // full names mentioned so far, the newest last
	addFamily := func(f string) {
		if !slices.Contains(m.families, f) {
			m.families = append(m.families, f)
		}
	}
	addReason := func(f, v string) {
		if !slices.Contains(m.reasons[f], v) {
			m.reasons[f] = append(m.reasons[f], v)
		}
	}
	for _, unit := range units {
		// A table row's cells are read one by one: the bare words of the cell right after
		// a name with a reason label are its reasons (the cell after that, "alert when",
		// names metrics as often as reasons). A paragraph is one cell.
		cells := []string{unit}
		if strings.HasPrefix(unit, "|") {
			cells = strings.Split(strings.Trim(unit, "|"), " | ")
		}
		reasonFamily, reasonCell := "", -1
		for ci, cell := range cells {
			if ci > reasonCell+1 && reasonCell >= 0 && len(cells) > 1 {
				reasonFamily = ""
			}
			prevSpan := ""
			for _, sub := range codeSpanRE.FindAllStringSubmatch(cell, -1) {
				span := sub[1]
				name, braces, _ := strings.Cut(span, "{")
				family := ""
				switch {
				case name == "cardinal_*": // all of them, in prose: documents none
				case strings.HasPrefix(name, "cardinal_") && strings.HasSuffix(name, "*"):
					m.prefixes = append(m.prefixes, strings.TrimSuffix(name, "*"))
				case strings.HasPrefix(name, "cardinal_"):
					family = name
					fulls = append(fulls, name)
				case strings.HasPrefix(name, "..._") || strings.HasPrefix(name, "…"):
					rest := strings.TrimPrefix(strings.TrimPrefix(name, "..._"), "…")
					for i := len(fulls) - 1; i >= 0 && family == ""; i-- {
						family = resolveAbbreviation(fulls[i], rest, exported)
					}
					if family == "" {
						m.problems = append(m.problems, fmt.Sprintf("`%s` names no exported family", span))
					}
				case name == "" && reasonFamily != "": // {reason="x"} on the family just named
					family = reasonFamily
				case bareValueRE.MatchString(span) && reasonFamily != "" && (len(cells) == 1 || ci != reasonCell):
					addReason(reasonFamily, span)
				}
				if family != "" {
					addFamily(family)
					if strings.Contains(braces, "reason") || prevSpan == "reason" {
						reasonFamily, reasonCell = family, ci
					}
					for _, rl := range reasonListRE.FindAllStringSubmatch(braces, -1) {
						addReason(family, rl[1])
						for _, v := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(rl[2], -1) {
							addReason(family, v[1])
						}
					}
				}
				prevSpan = span
			}
		}
	}
	return m
}

// resolveAbbreviation finds the family that `..._rest` means after the full name last: last's
// longest prefix ending in _ that makes an exported family with rest.
func resolveAbbreviation(last, rest string, exported map[string]bool) string {
	for i := len(last) - 1; i > 0; i-- {
		if last[i] == '_' && exported[last[:i+1]+rest] {
			return last[:i+1] + rest
		}
	}
	return ""
}

// exposition is what /metrics exports: the families and, per family, the reason values.
type exposition struct {
	families map[string]bool
	reasons  map[string][]string
}

func parseExposition(text string) exposition {
	e := exposition{families: map[string]bool{}, reasons: map[string][]string{}}
	reasonRE := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{.*\breason="([^"]*)"`)
	for line := range strings.Lines(text) {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			e.families[strings.Fields(f)[0]] = true
			continue
		}
		if sub := reasonRE.FindStringSubmatch(line); sub != nil && !slices.Contains(e.reasons[sub[1]], sub[2]) {
			e.reasons[sub[1]] = append(e.reasons[sub[1]], sub[2])
		}
	}
	return e
}

// TestReadmeMetricTablesMatchMetrics compares every cardinal_ metric and reason the README
// names (its tables of metrics, answers and limits, and the prose next to them) with what a
// running cardinal exports: one with a WAL, a remote-write, a file and a TimescaleDB
// downstream, a memory limit, a web config and a rule with ha, after a request (from an HA
// replica) and a flush, so that every
// family exists. Every reason value is exported from the start (at 0), so the comparison goes
// both ways: a renamed metric or reason, or a reason added without a line in the README,
// fails here.
func TestReadmeMetricTablesMatchMetrics(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("readme-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, []byte("bearer_token_file: token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCardinal(t, fmt.Sprintf(`
server: {memory_limit: 900MiB}
aggregator: {flush_interval: 1s, flush_delay: 0s}
downstream:
  remote_write:
    - url: http://127.0.0.1:%d/api/v1/write
  file: {path: %q}
  timescaledb:
    - dsn: postgres://cardinal@127.0.0.1:%d/metrics?connect_timeout=1
wal: {dir: %q}
cluster: {name: readme, peers: ["127.0.0.1:%d"], refresh_interval: 1s, probe_timeout: 1s}
rules:
  - metric_name: readme_total
    type: counter
    drop_labels: [pod]
    max_input_series: 1000
    max_output_series: 100
    ha: {enabled: true}
`, freePort(t), filepath.Join(dir, "out.txt"), freePort(t), filepath.Join(dir, "wal"), freePort(t)), "--web.config.file="+webConfig)
	auth := map[string]string{"Authorization": "Bearer readme-token"}
	now := time.Now().UnixMilli()
	body := rwBody(t, prompb.TimeSeries{Labels: labelSet("readme_total", "pod", "a", "cluster", "readme", "__replica__", "r1"), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}})
	if code, msg := postRaw(t, c.WriteURL, body, auth); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, msg)
	}

	var exp exposition
	eventually(t, 30*time.Second, "every family exported (a flush has happened)", func() (bool, error) {
		req, err := http.NewRequest(http.MethodGet, c.URL+"/metrics", nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", auth["Authorization"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		text, err := io.ReadAll(resp.Body)
		if err != nil {
			return false, err
		}
		exp = parseExposition(string(text))
		return exp.families["cardinal_aggregator_last_flush_timestamp_seconds"], nil
	})

	doc := parseReadmeMetrics(t, exp.families)
	for _, p := range doc.problems {
		t.Errorf("README: %s", p)
	}
	if len(doc.families) < 40 {
		t.Fatalf("found only %d metric names in the README: the parser is broken", len(doc.families))
	}
	for _, f := range doc.families {
		if !exp.families[f] {
			t.Errorf("the README names %s, which /metrics does not export", f)
		}
	}
	documented := func(f string) bool {
		if slices.Contains(doc.families, f) {
			return true
		}
		for _, p := range doc.prefixes {
			if strings.HasPrefix(f, p) {
				return true
			}
		}
		return false
	}
	for f := range exp.families {
		if strings.HasPrefix(f, "cardinal_") && !documented(f) {
			t.Errorf("/metrics exports %s, which the README does not name", f)
		}
	}
	for _, p := range doc.prefixes {
		if !slices.ContainsFunc(slices.Collect(mapKeys(exp.families)), func(f string) bool { return strings.HasPrefix(f, p) }) {
			t.Errorf("the README names %s*, and /metrics exports no family with that prefix", p)
		}
	}
	for f, values := range doc.reasons {
		for _, v := range values {
			if !slices.Contains(exp.reasons[f], v) {
				t.Errorf("the README names reason %q of %s; /metrics exports %v", v, f, exp.reasons[f])
			}
		}
	}
	for f, values := range exp.reasons {
		if !documented(f) || slices.ContainsFunc(doc.prefixes, func(p string) bool { return strings.HasPrefix(f, p) }) {
			continue // reported above, or documented with its package (the TimescaleDB sink)
		}
		for _, v := range values {
			if !slices.Contains(doc.reasons[f], v) {
				t.Errorf("/metrics exports reason %q of %s, which the README does not name (it names %v)", v, f, doc.reasons[f])
			}
		}
	}
}

// mapKeys yields the keys of m.
func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
