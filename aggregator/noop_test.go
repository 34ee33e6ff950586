package aggregator

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// noopRule is a counter rule on x_total dropping instance and pod, written at rules.yaml:3,
// whose inputs live for an hour (so that only the test moves them).
func noopRule() *rules.Rule {
	r := counterRule("x_total")
	r.Source = "rules.yaml:3"
	r.Staleness = time.Hour
	return r
}

func TestNoOpWarnings(t *testing.T) {
	const t0 = 1000 // wall clock of the first check, s
	warm := int64((noopWarmup + 10*time.Second) / time.Second)
	byNamespace := noopRule()
	byNamespace.ByMode, byNamespace.Without, byNamespace.By = true, nil, []string{"namespace"}
	dropsNothing := noopRule()
	dropsNothing.Without = nil

	tests := []struct {
		name   string
		rule   *rules.Rule
		ingest []prompb.TimeSeries
		want   string // the warning after the warm-up; "" for none
	}{
		{"reducing_rule_whose_labels_occur_is_quiet", noopRule(), []prompb.TimeSeries{
			series("x_total{job=a,pod=p0,instance=i0}", t0, 1), series("x_total{job=a,pod=p1,instance=i1}", t0, 1),
		}, ""},
		{"drop_label_that_never_occurs", noopRule(), pods("x_total", 5, t0, 1),
			`rule "x_total" (rules.yaml:3): drop_labels instance never occurs in its 5 input series: dropping it changes nothing`},
		{"drop_labels_that_never_occur_and_reduce_nothing", noopRule(), []prompb.TimeSeries{
			series("x_total{job=a}", t0, 1), series("x_total{job=b}", t0, 1),
		}, `rule "x_total" (rules.yaml:3): drop_labels instance, pod never occur in its 2 input series: dropping them changes nothing` + "\n" +
			`rule "x_total" (rules.yaml:3) reduces nothing: its 2 input series make 2 output series; drop_labels names no label that tells its inputs apart: drop more`},
		{"dropped_label_occurs_but_each_output_has_one_input", noopRule(), []prompb.TimeSeries{
			series("x_total{job=a,pod=p0,instance=i}", t0, 1), series("x_total{job=b,pod=p1,instance=i}", t0, 1),
		}, `rule "x_total" (rules.yaml:3) reduces nothing: its 2 input series make 2 output series; drop_labels names no label that tells its inputs apart: drop more`},
		{"rule_that_drops_no_label", dropsNothing, pods("x_total", 3, t0, 1),
			`rule "x_total" (rules.yaml:3) reduces nothing: its 3 input series make 3 output series; it drops no label: add drop_labels or keep_labels`},
		{"keep_label_that_never_occurs", byNamespace, pods("x_total", 3, t0, 1),
			`rule "x_total" (rules.yaml:3): keep_labels namespace never occurs in its 3 input series: no output series carries it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			clk := &testClock{t: time.Unix(t0, 0)}
			a := New(Options{Output: &collectSink{}, Now: clk.now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err := a.SetRules([]*rules.Rule{tt.rule}); err != nil {
				t.Fatal(err)
			}
			a.Ingest(tt.ingest)
			warnings := func(at int64) string {
				clk.t = time.Unix(at, 0)
				a.checkNoOps(clk.t)
				return strings.Join(a.Stats()[0].Warnings, "\n")
			}
			if got := warnings(t0); got != "" {
				t.Fatalf("warned before the warm-up: %s", got)
			}
			if got := warnings(t0 + warm - 1); got != "" {
				t.Fatalf("warned a second before the warm-up ended: %s", got)
			}
			if got := warnings(t0 + warm); got != tt.want {
				t.Fatalf("warnings after the warm-up:\n%s\nwant:\n%s", got, tt.want)
			}
			if got := warnings(t0 + 10*warm); got != tt.want {
				t.Fatalf("warnings later:\n%s\nwant the same:\n%s", got, tt.want)
			}
			// Logged once each, however often checked.
			for _, line := range strings.Split(tt.want, "\n") {
				if line != "" && strings.Count(logs.String(), strings.ReplaceAll(line, `"`, `\"`)) != 1 {
					t.Errorf("warning %q should be logged once:\n%s", line, logs)
				}
			}
			if tt.want != "" && !strings.Contains(logs.String(), "source=rules.yaml:3") {
				t.Errorf("the log should name the rule's source:\n%s", logs)
			}
		})
	}
}

// A label that shows up in a later input series ends the warning (on the page; the log
// line, written once, stays).
func TestNoOpLabelWarningEndsWhenTheLabelComes(t *testing.T) {
	clk := &testClock{t: time.Unix(1000, 0)}
	a := New(Options{Output: &collectSink{}, Now: clk.now})
	if err := a.SetRules([]*rules.Rule{noopRule()}); err != nil {
		t.Fatal(err)
	}
	a.Ingest(pods("x_total", 3, 1000, 1))
	a.checkNoOps(clk.t)
	clk.t = clk.t.Add(noopWarmup + 10*time.Second)
	a.checkNoOps(clk.t)
	if w := a.Stats()[0].Warnings; len(w) != 1 || !strings.Contains(w[0], "drop_labels instance never occurs") {
		t.Fatalf("warnings %q, want the one about instance", w)
	}
	a.Ingest([]prompb.TimeSeries{series("x_total{pod=p9,instance=i9}", 1001, 1)})
	a.checkNoOps(clk.t)
	if w := a.Stats()[0].Warnings; len(w) != 0 {
		t.Errorf("warnings %q after an input carried instance, want none", w)
	}
}

func TestNoOpUnmatchedWarning(t *testing.T) {
	const t0 = 1000
	logs := &syncBuffer{}
	clk := &testClock{t: time.Unix(t0, 0)}
	r := counterRule("x_total") // inputs stale after 30s
	r.Source = "rules.yaml:3"
	a := New(Options{Output: &collectSink{}, Now: clk.now, WarnUnmatchedAfter: 10 * time.Minute, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err := a.SetRules([]*rules.Rule{r}); err != nil {
		t.Fatal(err)
	}
	check := func(at int64) []string {
		clk.t = time.Unix(at, 0)
		a.Flush(false)
		a.checkNoOps(clk.t)
		return a.Stats()[0].Warnings
	}
	want := `rule "x_total" (rules.yaml:3) has had no input series for 10m0s: nothing it receives matches it`
	steps := []struct {
		name   string
		at     int64
		ingest []prompb.TimeSeries
		warn   bool
	}{
		{"new_rule", t0, nil, false},
		{"nine_minutes_without_input", t0 + 540, nil, false},
		{"ten_minutes_without_input", t0 + 600, nil, true},
		{"an_input_ends_it", t0 + 610, pods("x_total", 2, t0+610, 1), false},
		{"the_inputs_go_stale", t0 + 700, nil, false},
		{"ten_minutes_after_they_went", t0 + 1300, nil, true},
	}
	for _, s := range steps {
		a.Ingest(s.ingest)
		got := check(s.at)
		if s.warn != (len(got) == 1 && strings.HasPrefix(got[0], want)) || (!s.warn && len(got) > 0) {
			t.Fatalf("%s: warnings %q, want the unmatched one: %v", s.name, got, s.warn)
		}
	}
	if n := strings.Count(logs.String(), "has had no input series"); n != 1 {
		t.Errorf("the unmatched warning was logged %d times, want once:\n%s", n, logs)
	}

	a.SetWarnUnmatchedAfter(0)
	if got := check(t0 + 5000); len(got) != 0 {
		t.Errorf("warn_unmatched_after 0 still warns: %q", got)
	}
}

// An output outlives its last input until the flush after the one that removed the input,
// so for one interval a rule that reduces can have as many outputs as inputs: that alone is
// no warning.
func TestNoOpNoReductionMustLastTwoIntervals(t *testing.T) {
	clk := &testClock{t: time.Unix(1000, 0)}
	a := New(Options{Output: &collectSink{}, Now: clk.now})
	if err := a.SetRules([]*rules.Rule{noopRule()}); err != nil {
		t.Fatal(err)
	}
	// Output job=a has two inputs, job=b one: 3 inputs, 2 outputs.
	a.Ingest([]prompb.TimeSeries{
		series("x_total{job=a,pod=p0,instance=i}", 1000, 1), series("x_total{job=a,pod=p1,instance=i}", 1000, 1),
		series("x_total{job=b,pod=p2,instance=i}", 1000, 1),
	})
	check := func(sec int64) RuleStats {
		flushAt(a, clk, sec)
		a.checkNoOps(clk.t)
		return a.Stats()[0]
	}
	check(1000)
	if st := check(1080); len(st.Warnings) != 0 {
		t.Fatalf("warm, 3 inputs, 2 outputs: warnings %q", st.Warnings)
	}
	// Both inputs of job=a end with stale markers: the flush that closes their window
	// removes them, the next one ends job=a's output.
	a.Ingest([]prompb.TimeSeries{series("x_total{job=a,pod=p0,instance=i}", 1081, stale), series("x_total{job=a,pod=p1,instance=i}", 1081, stale)})
	st := check(1093)
	if st.InputSeries != 1 || st.OutputSeries != 2 {
		t.Fatalf("after the flush that removed the inputs: %d inputs, %d outputs; want 1 and 2", st.InputSeries, st.OutputSeries)
	}
	for _, sec := range []int64{1093, 1103} {
		if st := check(sec); len(st.Warnings) != 0 {
			t.Fatalf("t=%d (%d inputs, %d outputs): warnings %q, want none yet", sec, st.InputSeries, st.OutputSeries, st.Warnings)
		}
	}
	// From here on, one input makes one output: that is no reduction, and it lasts.
	if st := check(1113); len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "reduces nothing: its 1 input series make 1 output series") {
		t.Errorf("t=1113 (%d inputs, %d outputs): warnings %q, want the no-reduction one", st.InputSeries, st.OutputSeries, st.Warnings)
	}
}

// Run checks the rules at every tick.
func TestRunLogsNoOpWarnings(t *testing.T) {
	logs := &syncBuffer{}
	start := time.Now()
	a := New(Options{Output: &collectSink{}, FlushTick: 5 * time.Millisecond, WarnUnmatchedAfter: time.Second,
		Now:    func() time.Time { return start.Add(2 * time.Since(start)) }, // checks go by quickly
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err := a.SetRules([]*rules.Rule{noopRule()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "has had no input series") {
		if time.Now().After(deadline) {
			t.Fatalf("no unmatched warning logged within 10s:\n%s", logs)
		}
		time.Sleep(5 * time.Millisecond) // polling for the line, not asserting on elapsed time
	}
	cancel()
	<-done
}

// noteLabels sets a bit per grouping label an input carries, and stops looking once all
// have been seen.
func TestNoteLabels(t *testing.T) {
	st, err := newRuleState(noopRule()) // grouping: instance, pod
	if err != nil {
		t.Fatal(err)
	}
	st.noteLabels(series("x_total{job=a,pod=p}").Labels)
	if got := st.absentLabels(); len(got) != 1 || got[0] != "instance" {
		t.Fatalf("absent after a pod: %v, want [instance]", got)
	}
	st.noteLabels(series("x_total{instance=i}").Labels)
	if got := st.absentLabels(); len(got) != 0 {
		t.Fatalf("absent after both: %v", got)
	}
	if st.seenLabels.Load() != st.allLabelBits() {
		t.Errorf("seen bits %b, want %b", st.seenLabels.Load(), st.allLabelBits())
	}
}

// BenchmarkNoteLabels is what the label check adds to the creation of an input series (never
// to a sample): one atomic load once every grouping label has been seen, one pass over the
// labels while one never has.
func BenchmarkNoteLabels(b *testing.B) {
	lbls := series("x_total{job=api,pod=p1,instance=i1,namespace=n,container=c,code=200}").Labels
	for _, bc := range []struct {
		name    string
		without []string
	}{{"all_seen", []string{"instance", "pod"}}, {"one_never_seen", []string{"instance", "pod", "request_id"}}} {
		b.Run(bc.name, func(b *testing.B) {
			r := noopRule()
			r.Without = bc.without
			st, err := newRuleState(r)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				st.noteLabels(lbls)
			}
		})
	}
}
