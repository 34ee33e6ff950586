package timescale

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/downstream/timescale/pgtest"
)

// outageEnv sets how long the database stays down in TestDatabaseOutageLosesNothing. The
// default keeps `go test` quick; the behaviour is the same for a longer outage, which
// `CARDINAL_TIMESCALE_OUTAGE=1m go test -run Outage ./timescale/` shows (the sink keeps
// retrying at MaxBackoff for as long as it takes).
const outageEnv = "CARDINAL_TIMESCALE_OUTAGE"

func outageDuration(t *testing.T) time.Duration {
	v := os.Getenv(outageEnv)
	if v == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", outageEnv, v, err)
	}
	return d
}

// The database stops while series keep arriving; when it is back, every row arrives exactly
// once and nothing was dropped.
func TestDatabaseOutageLosesNothing(t *testing.T) {
	forEachMode(t, testDatabaseOutageLosesNothing)
}

func testDatabaseOutageLosesNothing(t *testing.T, pg *pgtest.Server, mode Mode) {
	outage := outageDuration(t)
	dsn := pg.CreateDatabase(t, "outage")
	ts := startTestSink(t, dsn, nil, func(s *Sink) {
		s.backoff = downstream.Backoff{Min: 50 * time.Millisecond, Max: time.Second}
	})
	if ts.Mode() != mode {
		t.Fatalf("Mode() = %q, want %q", ts.Mode(), mode)
	}

	t0 := millis("2024-01-15T08:00:00Z")
	const perFlush = 500
	var sent [][]prompb.TimeSeries
	send := func(i int) {
		b := syntheticSeries("outage_metric", perFlush, t0+int64(i)*15_000, float64(i*perFlush))
		sent = append(sent, b)
		ts.Send(cloneSeries(b))
	}

	send(0)
	ts.waitProcessed(t, perFlush)

	pg.Stop()
	down := time.Now()
	for i := 1; i <= 4; i++ {
		send(i) // flushes go on while the database is away
	}
	waitFor(t, 30*time.Second, "writes failing during the outage", func() bool {
		return ts.metric(t, "cardinal_timescale_write_errors_total", "kind", "retryable") >= 3
	})
	if q := ts.metric(t, "cardinal_timescale_queue_bytes"); q == 0 {
		t.Error("queue empty while the database is down")
	}
	if ts.Full() {
		t.Error("Full with the queue far below its bound")
	}
	for time.Since(down) < outage {
		time.Sleep(min(time.Second, outage-time.Since(down)))
	}
	send(5)
	pg.Start()

	total := len(sent) * perFlush
	ts.waitProcessed(t, total)

	// Every (series, time) exactly once, with its value.
	want := map[sampleKey]float64{}
	for _, b := range sent {
		for _, s := range b {
			want[sampleKey{s.Labels[1].Value, s.Samples[0].Timestamp}] = s.Samples[0].Value
		}
	}
	rows, err := connect(t, dsn).Query(context.Background(),
		"SELECT labels->>'instance', time, value FROM series_samples WHERE metric = 'outage_metric'")
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for rows.Next() {
		var instance string
		var at time.Time
		var v float64
		if err := rows.Scan(&instance, &at, &v); err != nil {
			t.Fatal(err)
		}
		k := sampleKey{instance, at.UnixMilli()}
		if wv, ok := want[k]; !ok || wv != v {
			t.Errorf("row %v = %v, want %v (present: %v)", k, v, wv, ok)
		}
		delete(want, k)
		got++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got != total || len(want) != 0 {
		t.Errorf("%d rows stored, want %d; %d missing", got, total, len(want))
	}
	for _, reason := range []string{dropPermanentError, dropShutdown} {
		if n := ts.metric(t, "cardinal_timescale_rows_dropped_total", "reason", reason); n != 0 {
			t.Errorf("%v rows dropped with reason %s", n, reason)
		}
	}
	if got := ts.metric(t, "cardinal_timescale_rows_written_total"); int(got) != total {
		t.Errorf("rows reported written = %v, want %d", got, total)
	}
	t.Logf("database down for %s; %v failed attempts retried", outage,
		ts.metric(t, "cardinal_timescale_write_errors_total", "kind", "retryable"))
}
