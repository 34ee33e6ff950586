package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardinal-proxy/cardinal/explore"
)

// The cardinality explorer (issue: find what to aggregate) against a real cardinal fed by the
// load generator, whose cardinalities are known: its estimates, its page and API, and
// `cardinal suggest` end to end (traffic in, rules out, rules loaded, reduction checked).

// exploreLoad is the load: each slot j has pod j, instance j mod 50 and group j mod 4, in a
// counter, a gauge and a histogram of 5 buckets.
const (
	exploreSlots     = 3000
	exploreInstances = 50
	exploreGroups    = 4
	exploreBuckets   = 5 // four bounds and +Inf
)

// exploreTruth is the exact number of series of a load metric left after dropping the
// labels drop (le counts only for buckets).
func exploreTruth(bucket bool, drop ...string) uint64 {
	dropped := map[string]bool{}
	for _, d := range drop {
		dropped[d] = true
	}
	seen := map[[4]int]bool{}
	for j := range exploreSlots {
		for le := range exploreBuckets {
			if !bucket && le > 0 {
				break
			}
			k := [4]int{j, j % exploreInstances, j % exploreGroups, le}
			for i, name := range []string{"pod", "instance", "group", "le"} {
				if dropped[name] {
					k[i] = -1
				}
			}
			seen[k] = true
		}
	}
	return uint64(len(seen))
}

func exploreAPI(t testing.TB, c *cardinalServer, query string) explore.Data {
	t.Helper()
	code, _, body := httpGet(t, c.URL+explore.APIPath+query)
	if code != 200 {
		t.Fatalf("GET %s%s: %d %s", explore.APIPath, query, code, body)
	}
	var r explore.Response
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Data == nil {
		t.Fatalf("GET %s: %v: %s", explore.APIPath, err, body)
	}
	return *r.Data
}

func withinPct(t testing.TB, what string, got, want uint64, pct float64) {
	t.Helper()
	if d := math.Abs(float64(got)-float64(want)) / float64(want) * 100; d > pct {
		t.Errorf("%s = %d, want %d within %g%% (off by %.2f%%)", what, got, want, pct, d)
	}
}

func TestExplore_estimates_page_and_suggest_end_to_end(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cardinal and the load generator")
	}
	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	if err := os.Mkdir(rulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 2s
  flush_delay: 1s
  unmatched: drop
rule_files: [%s/*.yaml]
downstream:
  file: {path: %s}
explore:
  scan_every: 3s
  scan_for: 2s
`, rulesDir, filepath.Join(dir, "out.prom")), "--web.enable-lifecycle")

	// Every series is sent every 0.5 s, well within a 2 s scan.
	load := newProcess(t, dir, "loadgen", buildCardinal(t), "loadgen", "--url="+c.WriteURL,
		"--metrics=3", "--mix=counter=1,gauge=1,histogram=1", fmt.Sprint("--series=", exploreSlots),
		fmt.Sprint("--instances=", exploreInstances), fmt.Sprint("--groups=", exploreGroups),
		"--rate=54000", "--duration=120s", "--samples-per-request=1000")
	started := time.Now()
	load.start()

	// Wait for a scan that began after the load was under way and has cumulative drops.
	var res explore.Result
	eventually(t, 60*time.Second, "a complete scan of the load with drop chains", func() (bool, error) {
		d := exploreAPI(t, c, "")
		if d.Result == nil || d.Result.Started.Before(started.Add(time.Second)) || len(d.Result.Metrics) == 0 || len(d.Result.Metrics[0].Drops) == 0 {
			return false, nil
		}
		res = *d.Result
		return true, nil
	})

	t.Run("estimates_within_2_percent", func(t *testing.T) {
		byName := map[string]explore.Metric{}
		for _, m := range res.Metrics {
			byName[m.Name] = m
		}
		for _, name := range []string{"loadgen_counter_0_total", "loadgen_gauge_0", "loadgen_histogram_0_bucket", "loadgen_histogram_0_sum", "loadgen_histogram_0_count"} {
			m, ok := byName[name]
			if !ok || !m.Detailed {
				t.Errorf("%s: missing or without detail in %+v", name, res.Metrics)
				continue
			}
			bucket := strings.HasSuffix(name, "_bucket")
			withinPct(t, name+" series", m.Series, exploreTruth(bucket), 2)
			values := map[string]uint64{"pod": exploreSlots, "instance": exploreInstances, "group": exploreGroups, "job": 1, "le": exploreBuckets}
			for _, l := range m.Labels {
				withinPct(t, name+" distinct "+l.Name, l.Values, values[l.Name], 2)
				withinPct(t, name+" series without "+l.Name, l.SeriesWithout, exploreTruth(bucket, l.Name), 2)
			}
			if len(m.Drops) != 3 {
				t.Errorf("%s drops %+v, want pod, instance, group in turn", name, m.Drops)
			}
			for _, d := range m.Drops {
				withinPct(t, fmt.Sprintf("%s series without %v", name, d.Labels), d.Series, exploreTruth(bucket, d.Labels...), 2)
			}
			if want := 2.0 * float64(exploreTruth(bucket)); math.Abs(m.SamplesPerSecond-want)/want > 0.25 {
				t.Errorf("%s samples/s = %.0f, want about %.0f (every series every 0.5 s)", name, m.SamplesPerSecond, want)
			}
		}
	})

	t.Run("page_and_api", func(t *testing.T) {
		code, ctype, page := httpGet(t, c.URL+explore.PagePath)
		if code != 200 || !strings.HasPrefix(ctype, "text/html") {
			t.Fatalf("GET /explore: %d %s", code, ctype)
		}
		for _, want := range []string{"Top metrics by series", `href="?metric=loadgen_histogram_0_bucket"`, "loadgen_counter_0_total"} {
			if !strings.Contains(page, want) {
				t.Errorf("/explore lacks %q", want)
			}
		}
		_, _, detail := httpGet(t, c.URL+explore.PagePath+"?metric=loadgen_counter_0_total")
		for _, want := range []string{"Labels, by what dropping each saves", "Dropping labels together", "<td>pod, instance</td>"} {
			if !strings.Contains(detail, want) {
				t.Errorf("/explore?metric=loadgen_counter_0_total lacks %q", want)
			}
		}
		if d := exploreAPI(t, c, "?limit=2"); d.Result == nil || len(d.Result.Metrics) != 2 || d.Result.Metrics[0].Name != "loadgen_histogram_0_bucket" {
			t.Errorf("?limit=2 gave %+v", d.Result)
		}
		if code, _, body := httpGet(t, c.URL+explore.APIPath+"?limit=x"); code != 400 || !strings.Contains(body, "limit must be a positive integer") {
			t.Errorf("?limit=x: %d %s, want 400 with the reason", code, body)
		}
	})

	t.Run("suggest_reload_and_reduction", func(t *testing.T) {
		rulesFile, testsFile := filepath.Join(rulesDir, "suggested.yaml"), filepath.Join(dir, "suggested_test.yaml")
		cardinalCmd(t, "suggest", "--url="+c.URL, "--keep=job,group", "--target=150", "--top=3", "--output="+rulesFile, "--tests="+testsFile)
		text, err := os.ReadFile(rulesFile)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("suggested:\n%s", text)
		cardinalCmd(t, "check", "config", c.ConfigPath)
		cardinalCmd(t, "test", "rules", testsFile)

		// The same from a saved answer of the API: the same rules.
		_, _, saved := httpGet(t, c.URL+explore.APIPath+"?limit=1000")
		savedPath := filepath.Join(dir, "scan.json")
		if err := os.WriteFile(savedPath, []byte(saved), 0o644); err != nil {
			t.Fatal(err)
		}
		fromFile := cardinalCmd(t, "suggest", "--file="+savedPath, "--keep=job,group", "--target=150", "--top=3")
		if rulesOf(fromFile) != rulesOf(string(text)) {
			t.Errorf("suggest --file gave other rules than --url:\n%s\nvs\n%s", fromFile, text)
		}
		// The file as written passes check rules (check config passed above, on the
		// configuration that loads it).
		cardinalCmd(t, "check", "rules", rulesFile)

		promised := map[string]float64{} // rule metric -> reduction
		for _, m := range regexp.MustCompile(`(?m)^  # (\S+): (\d+) series -> about (\d+) `).FindAllStringSubmatch(string(text), -1) {
			in, _ := strconv.ParseFloat(m[2], 64)
			out, _ := strconv.ParseFloat(m[3], 64)
			promised[m[1]] = in / out
		}
		want := map[string][]string{
			"loadgen_counter_0_total": {"pod"}, "loadgen_gauge_0": {"pod"}, "loadgen_histogram_0": {"pod", "instance"},
		}
		for metric, drop := range want {
			if !strings.Contains(string(text), fmt.Sprintf("- metric_name: %s\n", metric)) || promised[metric] == 0 {
				t.Errorf("no rule for %s in the suggestion", metric)
			}
			if !strings.Contains(string(text), fmt.Sprintf("- metric_name: %s\n    type: %s\n    drop_labels: [%s]\n", metric, typeOf(metric), strings.Join(drop, ", "))) {
				t.Errorf("the rule for %s does not drop exactly %v as %s", metric, drop, typeOf(metric))
			}
		}

		if code, body := httpPost(t, c.URL+"/-/reload"); code != 200 {
			t.Fatalf("reload: %d %s", code, body)
		}
		// The rules see every series within a second; their output series are counted at
		// the first flush. Compare what the status page shows with the promise.
		eventually(t, 30*time.Second, "the suggested rules' reductions on the status page", func() (bool, error) {
			d := exploreAPI(t, c, "")
			if d.Result == nil {
				return false, nil
			}
			got := map[string]explore.RuleCoverage{}
			for _, m := range d.Result.Metrics {
				for _, rc := range m.Rules {
					got[rc.Rule] = rc
				}
			}
			for metric, p := range promised {
				rc, ok := got[metric]
				if !ok || rc.OutputSeries == 0 || rc.InputSeries < int64(exploreTruth(false)) {
					return false, fmt.Errorf("rule %s: %+v", metric, rc)
				}
				if d := math.Abs(rc.Reduction-p) / p; d > 0.05 {
					return false, fmt.Errorf("rule %s reduces %d → %d (%.2fx), suggest promised %.2fx: off by %.1f%%", metric, rc.InputSeries, rc.OutputSeries, rc.Reduction, p, d*100)
				}
			}
			return true, nil
		})
		_, _, status := httpGet(t, c.URL+"/")
		for metric := range promised {
			if !strings.Contains(status, "<td>"+metric+"</td>") {
				t.Errorf("the status page does not list rule %s", metric)
			}
		}
	})
}

// rulesOf is a rules file without its comments.
func rulesOf(text string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func typeOf(metric string) string {
	switch {
	case strings.HasSuffix(metric, "_total"):
		return "counter"
	case strings.Contains(metric, "histogram"):
		return "histogram"
	}
	return "gauge"
}

// cardinalCmd runs a cardinal subcommand, which must exit 0, and returns its output.
func cardinalCmd(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(buildCardinal(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("cardinal %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
