package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardinal-proxy/cardinal/rules"
)

// The tests here run the README's "Try it" section as a newcomer would: cardinal on
// configs/quickstart.yaml, then the commands of each sh block, and compare what cardinal
// prints with the text blocks that follow. Only the addresses change (free loopback ports
// instead of 9090, 9091 and 9100), so a README edit that changes a command or the output it
// promises fails here.

// repoRoot is the module root, relative to this package's directory.
const repoRoot = "../../.."

// readmeBlock is one fenced code block of the README.
type readmeBlock struct {
	lang  string
	lines []string
}

// readmeSection returns the fenced blocks of the README section headed by heading (through
// the next heading of the same or a higher level).
func readmeSection(t testing.TB, heading string) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	level := strings.Index(heading, " ")
	var blocks []readmeBlock
	var cur *readmeBlock
	in := false
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		if cur == nil && strings.HasPrefix(line, "#") {
			if line == heading {
				in = true
				continue
			}
			if in && strings.Index(line, " ") <= level {
				break
			}
		}
		if !in {
			continue
		}
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{lang: strings.TrimPrefix(line, "```")}
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, line)
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("README.md has no section %q with code blocks", heading)
	}
	return blocks
}

// tryItBlocks returns the Try it section's blocks: each sh block of commands with the text
// block of output that follows it.
func tryItBlocks(t testing.TB) (commands, outputs [][]string) {
	t.Helper()
	blocks := readmeSection(t, "### Try it")
	for i, b := range blocks {
		if b.lang != "sh" {
			continue
		}
		if i+1 >= len(blocks) || blocks[i+1].lang != "text" {
			t.Fatalf("README Try it: the sh block %q is not followed by a text block of its output", b.lines)
		}
		commands = append(commands, b.lines)
		outputs = append(outputs, blocks[i+1].lines)
	}
	if len(commands) != 2 {
		t.Fatalf("README Try it has %d sh blocks; this test runs two (the load generator, then Prometheus with node_exporter): update it", len(commands))
	}
	return commands, outputs
}

// printedSample is one line cardinal's file sink printed: a series and its sample.
type printedSample struct {
	name   string
	labels map[string]string
	value  float64
	ts     int64
}

// labelNames lists the sample's label names, sorted.
func (s printedSample) labelNames() []string {
	names := make([]string, 0, len(s.labels))
	for n := range s.labels {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// parsePrinted parses lines in the Prometheus text format without comments (`name{l="v"}
// value timestamp`), skipping cardinal's log lines and the harness's markers.
func parsePrinted(t testing.TB, text string) []printedSample {
	t.Helper()
	var out []printedSample
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "time=") || strings.HasPrefix(line, "===") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			t.Fatalf("printed line %q: want series, value and timestamp", line)
		}
		series := strings.Join(fields[:len(fields)-2], " ")
		v, err := strconv.ParseFloat(fields[len(fields)-2], 64)
		if err != nil {
			t.Fatalf("printed line %q: value: %v", line, err)
		}
		ts, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
		if err != nil {
			t.Fatalf("printed line %q: timestamp: %v", line, err)
		}
		ms, err := rules.ParseSelector(series)
		if err != nil {
			t.Fatalf("printed line %q: series: %v", line, err)
		}
		s := printedSample{labels: map[string]string{}, value: v, ts: ts}
		for _, m := range ms {
			if m.Name == rules.MetricNameLabel {
				s.name = m.Value
			} else {
				s.labels[m.Name] = m.Value
			}
		}
		out = append(out, s)
	}
	return out
}

// startQuickstart runs cardinal on configs/quickstart.yaml, as make run does, on a free port.
func startQuickstart(t testing.TB) *cardinalServer {
	t.Helper()
	path, err := filepath.Abs(filepath.Join(repoRoot, "configs", "quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return startCardinalWithConfig(t, path)
}

// TestReadmeTryIt_loadgen_prints_one_series_per_job runs the first step of the README's Try
// it: the load generator's minute of history for 1000 pods comes out of the quickstart as
// one series whose values are the README's, within seconds, and the total is then carried forward
// every 10 seconds after the load generator has stopped.
func TestReadmeTryIt_loadgen_prints_one_series_per_job(t *testing.T) {
	commands, outputs := tryItBlocks(t)
	if len(commands[0]) != 1 || !strings.HasPrefix(commands[0][0], "./bin/cardinal loadgen ") {
		t.Fatalf("README Try it: the first step is %q; this test runs one `./bin/cardinal loadgen ...`", commands[0])
	}
	want := parsePrinted(t, strings.Join(outputs[0], "\n"))
	var wantValues []float64
	for _, s := range want {
		if s.name != want[0].name || !maps.Equal(s.labels, want[0].labels) {
			t.Fatalf("README Try it shows two series for the load generator (%v, %v); the test expects one", want[0], s)
		}
		if !slices.Contains(wantValues, s.value) {
			wantValues = append(wantValues, s.value)
		}
	}
	final := want[len(want)-1].value

	c := startQuickstart(t)
	args := strings.Fields(strings.TrimPrefix(commands[0][0], "./bin/cardinal loadgen "))
	rep := runLoadgen(t, append(args, "--url="+c.WriteURL)...)
	if len(rep.Errors) != 0 {
		t.Fatalf("loadgen errors: %v", rep.Errors)
	}
	sent := time.Now()

	var got []printedSample
	eventually(t, 15*time.Second, fmt.Sprintf("the README's final total %v printed within about ten seconds", final), func() (bool, error) {
		got = parsePrinted(t, c.Log())
		return slices.ContainsFunc(got, func(s printedSample) bool { return s.value == final }), nil
	})
	t.Logf("the final total came %s after the load generator finished", time.Since(sent).Round(100*time.Millisecond))
	prev := 0.0
	for _, s := range got {
		if s.name != want[0].name || !maps.Equal(s.labels, want[0].labels) {
			t.Errorf("printed %s%v, want only the README's %s%v", s.name, s.labels, want[0].name, want[0].labels)
		}
		// Where the history's steps fall in the windows moves with the clock: a window may
		// repeat the previous total, and the first may be 0, but every total is one the
		// README shows, and they only grow.
		if (s.value != 0 && !slices.Contains(wantValues, s.value)) || s.value < prev {
			t.Errorf("printed %v after %v; the README shows the totals %v", s.value, prev, wantValues)
		}
		prev = s.value
	}
	if len(got) > len(want)+1 {
		t.Errorf("printed %d lines for the history, the README shows %d", len(got), len(want))
	}

	// Carried forward: the same total again at the next window ends, with nothing sent.
	last := got[len(got)-1].ts
	eventually(t, 25*time.Second, "the total printed again 10s and 20s later", func() (bool, error) {
		got = parsePrinted(t, c.Log())
		return got[len(got)-1].ts >= last+20_000, nil
	})
	for _, s := range got {
		if s.ts > last && s.value != final {
			t.Errorf("after the load generator stopped, printed %v at %d; want the total %v carried forward", s.value, s.ts, final)
		}
	}
}

// TestReadmeTryIt_prometheus_and_node_exporter_print_aggregates_only runs the second step of
// the README's Try it: node_exporter and a Prometheus agent on configs/quickstart-prometheus.yml,
// as the README writes their command lines, remote-writing to the quickstart. Every series the
// README shows is printed (same name and label names), nothing else is (no raw series), and
// each window prints a few dozen lines.
func TestReadmeTryIt_prometheus_and_node_exporter_print_aggregates_only(t *testing.T) {
	commands, outputs := tryItBlocks(t)
	want := parsePrinted(t, strings.Join(outputs[1], "\n"))
	wantShapes := map[string]bool{}
	for _, s := range want {
		wantShapes[s.name+fmt.Sprint(s.labelNames())] = true
	}

	c := startQuickstart(t)
	var node *nodeExporter
	var agentArgs []string
	for _, line := range commands[1] {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 1 && fields[0] == "prometheus-node-exporter":
			node = startNodeExporter(t)
		case len(fields) > 1 && fields[0] == "prometheus":
			agentArgs = fields[1:]
		default:
			t.Fatalf("README Try it runs %q, which this test does not know: update it", line)
		}
	}
	if node == nil || agentArgs == nil {
		t.Fatalf("README Try it: want prometheus-node-exporter and prometheus commands, have %q", commands[1])
	}

	// The agent, with the README's flags: its config file with this test's addresses, its
	// storage in a temp dir.
	bin := requireBinary(t, "prometheus")
	dir := t.TempDir()
	agentAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := []string{"--web.listen-address=" + agentAddr}
	sawConfig := false
	for _, a := range agentArgs {
		switch {
		case strings.HasPrefix(a, "--config.file="):
			data, err := os.ReadFile(filepath.Join(repoRoot, strings.TrimPrefix(a, "--config.file=")))
			if err != nil {
				t.Fatal(err)
			}
			cfg := strings.NewReplacer("localhost:9100", node.Addr, "localhost:9090", agentAddr,
				"http://localhost:9091/api/v1/write", c.WriteURL).Replace(string(data))
			path := filepath.Join(dir, "prometheus.yml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			a, sawConfig = "--config.file="+path, true
		case strings.HasPrefix(a, "--storage.agent.path="):
			a = "--storage.agent.path=" + filepath.Join(dir, "agent")
		}
		args = append(args, a)
	}
	if !sawConfig || !slices.Contains(args, "--enable-feature=agent") {
		t.Fatalf("README's prometheus command %q: want --enable-feature=agent and --config.file", agentArgs)
	}
	agent := newProcess(t, dir, "prometheus-agent", bin, args...)
	agent.start()
	started := time.Now()
	agent.waitHTTP200("http://" + agentAddr + "/-/ready")

	missing := func(got []printedSample) []string {
		seen := map[string]bool{}
		for _, s := range got {
			seen[s.name+fmt.Sprint(s.labelNames())] = true
		}
		var out []string
		for shape := range wantShapes {
			if !seen[shape] {
				out = append(out, shape)
			}
		}
		slices.Sort(out)
		return out
	}
	var got []printedSample
	eventually(t, 60*time.Second, "every series of the README's output printed", func() (bool, error) {
		got = parsePrinted(t, c.Log())
		m := missing(got)
		return len(m) == 0, fmt.Errorf("not yet printed: %v", m)
	})
	if took := time.Since(started); took > 45*time.Second {
		t.Errorf("every series the README shows was printed %s after the agent started; the README says within about half a minute", took.Round(time.Second))
	} else {
		t.Logf("every series the README shows was printed %s after the agent started", took.Round(time.Second))
	}
	// Two more windows, to count whole ones.
	first := got[0].ts
	eventually(t, 30*time.Second, "two more windows printed", func() (bool, error) {
		got = parsePrinted(t, c.Log())
		return got[len(got)-1].ts >= first+30_000, nil
	})

	perWindow := map[int64]int{}
	for _, s := range got {
		perWindow[s.ts]++
		if !wantShapes[s.name+fmt.Sprint(s.labelNames())] {
			t.Errorf("printed %s%v: not a series the README shows (a raw series, or a README out of date)", s.name, s.labels)
		}
		if s.name == "node_cpu_seconds_total" && s.labels["instance"] != node.Addr {
			t.Errorf("printed %s%v: want the scrape target's instance %s", s.name, s.labels, node.Addr)
		}
	}
	for ts, n := range perWindow {
		if ts != first && ts != got[len(got)-1].ts && (n < 15 || n > 40) { // whole windows only
			t.Errorf("window %d printed %d lines; the README says about 25", ts, n)
		}
	}
	t.Logf("lines per window: %v", perWindow)
	t.Logf("cardinal's metrics:\n%s", c.selfMetrics())
}
