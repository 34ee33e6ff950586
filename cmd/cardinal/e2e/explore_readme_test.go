package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardinal-proxy/cardinal/explore"
)

// TestReadmeExploreWalkthrough follows the README's "A walk-through with the load generator"
// as a newcomer would: cardinal on configs/explore.yaml, the load generator, the explorer's
// page, cardinal suggest, the rules it writes, test rules, check config and the reload. Only
// the address (a free loopback port instead of 9091), the directory (a copy of configs/)
// and the load generator's duration change, so a README edit that breaks a step, or a
// change that makes a promised output wrong, fails here.
func TestReadmeExploreWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cardinal and the load generator")
	}
	blocks := readmeSection(t, "### A walk-through with the load generator")
	var sh [][]string
	var rulesYAML []string
	for _, b := range blocks {
		switch b.lang {
		case "sh":
			sh = append(sh, b.lines)
		case "yaml":
			rulesYAML = b.lines
		}
	}
	if len(sh) != 4 || rulesYAML == nil {
		t.Fatalf("the walk-through has %d sh blocks and %d yaml lines; this test follows 4 sh blocks (start, load, suggest, load the rules) and the suggested rules: update it", len(sh), len(rulesYAML))
	}

	// A copy of configs/explore.yaml on a free port; the commands run in the copy's parent.
	work := t.TempDir()
	src, err := os.ReadFile(filepath.Join(repoRoot, "configs", "explore.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `listen_addr: ":9091"`) {
		t.Fatal(`configs/explore.yaml no longer listens on ":9091", where the README's commands go; update them and this test`)
	}
	if err := os.MkdirAll(filepath.Join(work, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "configs", "explore.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	base := "" // cardinal's URL, once it runs (on a free port: --web.listen-address)
	// args turns a README command line into the arguments of the built binary.
	args := func(line string) []string {
		line = strings.ReplaceAll(line, "http://localhost:9091", base)
		fields := strings.Fields(strings.TrimPrefix(line, "./bin/cardinal "))
		for i, f := range fields {
			if strings.Contains(f, "configs/") {
				fields[i] = strings.Replace(f, "configs/", filepath.Join(work, "configs")+"/", 1)
			}
		}
		return fields
	}

	// Step 1: make build, then cardinal.
	if sh[0][0] != "make build" || len(sh[0]) != 2 || !strings.HasPrefix(sh[0][1], "./bin/cardinal --config.file=") {
		t.Fatalf("step 1 is %q; this test runs make build (as buildCardinal) and one ./bin/cardinal", sh[0])
	}
	c := startCardinalWithConfig(t, filepath.Join(work, "configs", "explore.yaml"), args(sh[0][1])[1:]...)
	base = c.URL

	// Step 2: the load generator, in the background, pointed at the free port.
	if len(sh[1]) != 1 || !strings.HasPrefix(sh[1][0], "./bin/cardinal loadgen ") {
		t.Fatalf("step 2 is %q; this test runs one ./bin/cardinal loadgen", sh[1])
	}
	load := append(args(sh[1][0]), "--url="+c.WriteURL)
	for i, a := range load {
		if a == "10m" && load[i-1] == "--duration" {
			load[i] = "150s"
		}
	}
	started := time.Now()
	newProcess(t, work, "loadgen", buildCardinal(t), load...).start()

	// The page's table, as the README shows it.
	var res explore.Result
	eventually(t, 120*time.Second, "a complete scan of the load with drop chains", func() (bool, error) {
		d := exploreAPI(t, c, "")
		if d.Result == nil || d.Result.Started.Before(started.Add(2*time.Second)) || len(d.Result.Metrics) < 5 || len(d.Result.Metrics[0].Drops) == 0 {
			return false, nil
		}
		res = *d.Result
		return true, nil
	})
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`(?m)^\| (loadgen_\w+) \| (\d+) \| [\d.]+ \| (\w+) \| (\d+) \| ([\d.]+)× \|$`).FindAllStringSubmatch(string(readme), -1)
	if len(rows) != 5 {
		t.Fatalf("the README's explore table has %d rows, want 5", len(rows))
	}
	for i, row := range rows {
		m := res.Metrics[i]
		series, _ := strconv.ParseUint(row[2], 10, 64)
		without, _ := strconv.ParseUint(row[4], 10, 64)
		if m.Name != row[1] || len(m.Labels) == 0 || m.Labels[0].Name != row[3] {
			t.Errorf("row %d of the README's table is %s (drop %s first); /explore has %s (%+v)", i, row[1], row[3], m.Name, m.Labels)
			continue
		}
		withinPct(t, m.Name+" series, README vs now", m.Series, series, 2)
		withinPct(t, m.Name+" series without "+row[3]+", README vs now", m.Labels[0].SeriesWithout, without, 2)
	}
	_, _, page := httpGet(t, c.URL+explore.PagePath)
	for _, row := range rows {
		if !strings.Contains(page, `href="?metric=`+row[1]+`"`) {
			t.Errorf("/explore does not list %s", row[1])
		}
	}

	// Step 3: suggest, and the rules the README shows.
	if len(sh[2]) != 1 || !strings.HasPrefix(sh[2][0], "./bin/cardinal suggest ") {
		t.Fatalf("step 3 is %q; this test runs one ./bin/cardinal suggest", sh[2])
	}
	cardinalCmd(t, args(sh[2][0])...)
	written, err := os.ReadFile(filepath.Join(work, "configs", "data", "explore-rules", "suggested.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for line := range strings.Lines(string(written)) {
		if !strings.HasPrefix(line, "#") {
			got = append(got, strings.TrimRight(line, "\n"))
		}
	}
	compareSuggested(t, got, rulesYAML)

	// Step 4: test rules, check config, reload.
	if len(sh[3]) != 3 || !strings.HasPrefix(sh[3][2], "curl -X POST http://localhost:9091/-/reload") {
		t.Fatalf("step 4 is %q; this test runs test rules, check config and the reload by curl", sh[3])
	}
	cardinalCmd(t, args(sh[3][0])...)
	cardinalCmd(t, args(sh[3][1])...)
	if code, body := httpPost(t, c.URL+"/-/reload"); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	// The status page shows what the README promises: 35000 → 28 and 5000 → 100.
	eventually(t, 60*time.Second, "the suggested rules' series on the status page", func() (bool, error) {
		_, _, status := httpGet(t, c.URL+"/")
		for _, want := range []string{
			`<td class="num">35000</td><td class="num">28</td>`,
			`<td class="num">5000</td><td class="num">100</td>`,
		} {
			if !strings.Contains(status, want) {
				return false, fmt.Errorf("the status page lacks %s", want)
			}
		}
		return true, nil
	})
}

// compareSuggested compares the rules suggest wrote (comments at the top left out) with the
// README's: the same lines, but for the counts in comments, which may differ by 2%.
func compareSuggested(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("suggest wrote %d lines, the README shows %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	num := regexp.MustCompile(`\d+(\.\d+)?`)
	for i := range got {
		if !strings.HasPrefix(strings.TrimSpace(want[i]), "#") {
			if got[i] != want[i] {
				t.Errorf("line %d: suggest wrote %q, the README shows %q", i+1, got[i], want[i])
			}
			continue
		}
		if num.ReplaceAllString(got[i], "N") != num.ReplaceAllString(want[i], "N") {
			t.Errorf("line %d: suggest wrote %q, the README shows %q", i+1, got[i], want[i])
			continue
		}
		g, w := num.FindAllString(got[i], -1), num.FindAllString(want[i], -1)
		for j := range g {
			gv, _ := strconv.ParseFloat(g[j], 64)
			wv, _ := strconv.ParseFloat(w[j], 64)
			if wv > 0 && (gv/wv > 1.02 || gv/wv < 0.98) {
				t.Errorf("line %d: suggest wrote %q, the README shows %q (%s vs %s)", i+1, got[i], want[i], g[j], w[j])
			}
		}
	}
}
