package timescale

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A failed run is logged once: TimescaleDB records its error before it counts it, so a
// first poll may see the last run failed with no failure counted yet, and the count growing
// to 1 at the next poll is that same failure. Later failures are logged as the count grows,
// and a job first seen with failures behind it but a last run that succeeded logs nothing.
func TestAJobFailureIsLoggedOnceWhileItsCountCatchesUp(t *testing.T) {
	m, err := newMetrics(nil, "timescaledb", nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s := &Sink{logger: slog.New(slog.NewTextHandler(&logs, nil)), metrics: m}
	poll := func(failures int64, lastRunFailed bool) {
		s.recordJobs([]JobStatus{
			{ID: 1000, Kind: "retention", Failures: failures, LastRunFailed: lastRunFailed},
			{ID: 1001, Kind: "compression", Failures: 3},
		})
	}
	for _, step := range []struct {
		failures      int64
		lastRunFailed bool
		logged        int // lines in all after the poll
	}{
		{0, true, 1}, // the error is there, the count not yet
		{1, true, 1}, // the same failure, counted
		{1, false, 1},
		{2, true, 2}, // a second one
		{2, true, 2},
	} {
		poll(step.failures, step.lastRunFailed)
		if n := strings.Count(logs.String(), "a TimescaleDB job on the samples table failed"); n != step.logged {
			t.Fatalf("after a poll with %d failures (last run failed: %v): %d failure lines, want %d:\n%s",
				step.failures, step.lastRunFailed, n, step.logged, logs.String())
		}
	}
	if strings.Contains(logs.String(), "job_id=1001") {
		t.Errorf("the job whose last run succeeded was logged:\n%s", logs.String())
	}
}
