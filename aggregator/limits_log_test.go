package aggregator

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// syncBuffer is a log destination safe for a logging goroutine and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// pods returns one sample at sec of n series of name, pods p0..p(n-1).
func pods(name string, n int, sec, v float64) []prompb.TimeSeries {
	var out []prompb.TimeSeries
	for p := range n {
		out = append(out, series(fmt.Sprintf("%s{pod=p%d}", name, p), sec, v))
	}
	return out
}

func TestLimitLogNamesTheRuleAtMostOnceAMinute(t *testing.T) {
	logs := &syncBuffer{}
	clk := &testClock{t: time.Unix(2, 0)}
	limited, free := counterRule("limited_total"), counterRule("free_total")
	limited.MaxInputSeries = 2
	free.MaxInputSeries = 100
	a := New(Options{Output: &collectSink{}, Now: clk.now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err := a.SetRules([]*rules.Rule{limited, free}); err != nil {
		t.Fatal(err)
	}
	l := &limitLog{}
	lines := func() int { return strings.Count(logs.String(), "rule cardinality limit reached") }

	steps := []struct {
		name      string
		at        int64 // wall clock, s
		ingest    []prompb.TimeSeries
		wantLines int
	}{
		{"within_the_limit_logs_nothing", 2, pods("limited_total", 2, 1, 1), 0},
		{"first_drops_log_at_once", 3, pods("limited_total", 5, 2, 2), 1},
		{"more_drops_within_the_minute_stay_quiet", 30, pods("limited_total", 5, 3, 3), 1},
		{"a_minute_later_the_held_back_drops_are_logged", 63, nil, 2},
		{"no_new_drops_no_line", 200, nil, 2},
		{"the_other_rule_never_logs", 300, pods("free_total", 50, 4, 1), 2},
	}
	for _, s := range steps {
		clk.t = time.Unix(s.at, 0)
		a.Ingest(s.ingest)
		l.report(a)
		if got := lines(); got != s.wantLines {
			t.Fatalf("%s: %d log lines, want %d:\n%s", s.name, got, s.wantLines, logs)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "rule=limited_total") || strings.Contains(out, "rule=free_total") {
		t.Errorf("the lines should name limited_total only:\n%s", out)
	}
	// 3 dropped in the first step, 3 more held back until the second line.
	if !strings.Contains(out, "samples_dropped=3") || strings.Count(out, "samples_dropped=3") != 2 {
		t.Errorf("each line should count the drops since the previous one (3 and 3):\n%s", out)
	}
	if got := a.Stats()[0].Dropped["limit"]; got != 6 {
		t.Errorf("limit drops counted: %d, want 6", got)
	}
}

func TestRunLogsLimitDropsAndStopsItsLogger(t *testing.T) {
	logs := &syncBuffer{}
	r := counterRule("limited_total")
	r.MaxOutputSeries = 1
	r.Without = []string{"instance"} // pod is kept: every pod is its own output series
	a := New(Options{Output: &collectSink{}, FlushTick: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err := a.SetRules([]*rules.Rule{r}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	now := float64(time.Now().Unix())
	a.Ingest(pods("limited_total", 3, now, 1))

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "rule=limited_total") {
		if time.Now().After(deadline) {
			t.Fatalf("no limit log line within 10s:\n%s", logs)
		}
		time.Sleep(5 * time.Millisecond) // polling for the line, not asserting on elapsed time
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if !strings.Contains(logs.String(), "max_output_series=1") {
		t.Errorf("the line should say which limit is set:\n%s", logs)
	}
}
