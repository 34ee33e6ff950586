package e2e

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cardinal-proxy/cardinal/downstream/timescale/pgtest"
)

const (
	sqlHistorySteps = 120 // 30 minutes
	sqlPodsPerJob   = 3
	sqlResetStep    = 40 // api pod 1 restarts its process: its counters start again near 0
	sqlReplaceStep  = 80 // web pod 2 is replaced: the old pod's series end with stale markers
)

// newSQLHistory is the half hour of scrapes that ends at end, of two jobs of three pods each,
// scrapeEvery apart and scrapeOffset past each boundary: counters growing by amounts that
// are not integers (so sums round, and only bit-exact float handling keeps both sinks equal),
// a counter reset, a pod replaced by a new one, and gauges scraped every 30 s, half the pods
// on each phase.
func newSQLHistory(end time.Time) *syntheticHistory {
	h := newSyntheticHistory(scrapesBefore(end, scrapeEvery, sqlHistorySteps), scrapeEvery)
	type sqlPod struct {
		name     string
		counters [2]float64 // code 200, code 500
	}
	codes := [2]string{"200", "500"}
	pods := map[string]*sqlPod{}
	for i := range sqlHistorySteps {
		h.scrape()
		for _, job := range []string{"api", "web"} {
			for slot := range sqlPodsPerJob {
				key := fmt.Sprintf("%s-%d", job, slot)
				p := pods[key]
				if p == nil {
					p = &sqlPod{name: key + "-a"}
					pods[key] = p
				}
				if job == "web" && slot == 2 && i == sqlReplaceStep {
					for _, code := range codes {
						h.counter(labelSet("http_requests_total", "job", job, "code", code, "pod", p.name, "instance", p.name+":8080"), staleMarker)
					}
					h.sample(labelSet("mem_bytes", "job", job, "pod", p.name, "instance", p.name+":8080"), staleMarker)
					p = &sqlPod{name: key + "-b"}
					pods[key] = p
				}
				for c := range codes {
					p.counters[c] += (0.1*float64(slot+1) + 0.37*float64(c) + 0.013*float64(i%7)) * scrapeEvery.Seconds()
				}
				if job == "api" && slot == 1 && i == sqlResetStep {
					p.counters = [2]float64{0.7, 0.1}
				}
				for c, code := range codes {
					h.counter(labelSet("http_requests_total", "job", job, "code", code, "pod", p.name, "instance", p.name+":8080"), p.counters[c])
				}
				if i%2 == slot%2 {
					h.sample(labelSet("mem_bytes", "job", job, "pod", p.name, "instance", p.name+":8080"), 1e6*float64(slot+1)+0.1*float64(i)+1.0/3)
				}
			}
		}
	}
	return h
}

// TestTimescale_SQL_holds_what_Prometheus_received_through_a_restart runs cardinal with two
// downstreams, a real Prometheus and a real PostgreSQL, and checks that they end up holding
// the same aggregated samples: the same series, the same timestamps, bit-identical values.
// Half-way through, cardinal is stopped with SIGTERM (which flushes its open windows) and
// started again against the same database, and the agent resends the last request it sent
// before the stop: every window must still be in SQL exactly once, and no series twice. It
// runs on plain PostgreSQL (partitions) and on TimescaleDB (a hypertable), where every chunk
// is compressed by hand after the restart, so the rest is written into compressed chunks.
func TestTimescale_SQL_holds_what_Prometheus_received_through_a_restart(t *testing.T) {
	t.Run("postgresql", func(t *testing.T) { sqlThroughRestart(t, false) })
	t.Run("timescaledb", func(t *testing.T) { sqlThroughRestart(t, true) })
}

func sqlThroughRestart(t *testing.T, hypertable bool) {
	var opts []pgtest.Option
	sinkYAML := ""
	if hypertable {
		opts = append(opts, pgtest.TimescaleDB())
		sinkYAML = "\n      compression: true"
	}
	pg := pgtest.Start(t, opts...) // first: it skips the test under -short
	dsn := pg.CreateDatabase(t, "cardinal")
	prom := startPrometheus(t, prometheusOptions{})
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 15s
downstream:
  remote_write:
    - url: %s
  timescaledb:
    - name: pg
      dsn: %q%s
rules:
  - metric_name: http_requests_total
    type: counter
    drop_labels: [pod, instance]
  - metric_name: mem_bytes
    type: gauge
    drop_labels: [pod, instance]
`, prom.WriteURL, dsn, sinkYAML))

	h := newSQLHistory(time.Now())
	push := func(i int) {
		t.Helper()
		if code := pushRW(t, card.WriteURL, h.requests[i]); code/100 != 2 {
			t.Fatalf("push of scrape %d: status %d", i, code)
		}
	}
	const restartAfter = sqlHistorySteps/2 - 1
	for i := 0; i <= restartAfter; i++ {
		push(i)
	}
	if code := card.Stop(); code != 0 {
		t.Fatalf("cardinal exited with %d after SIGTERM, want 0", code)
	}
	card.Start()
	if hypertable {
		compressEveryChunk(t, dsn)
	}
	push(restartAfter) // the agent resends what it sent just before the stop
	for i := restartAfter + 1; i < sqlHistorySteps; i++ {
		push(i)
	}

	// Window k ends at start-3s+(k+1)·15s. The first window of each run is partial and not
	// emitted; the first run's last window was flushed by SIGTERM, stamped with its newest
	// sample (the scrape at restartAfter, not the window end), and is the second run's
	// first. So every window but the very first has exactly one sample per output series.
	// Later windows, closed by the wall clock, repeat the last values until the outputs go
	// stale; how many there are depends on how long the test runs, so the comparison ends
	// with the window of the last scrape.
	var wantTimes []int64
	for k := 1; k < sqlHistorySteps; k++ {
		end := h.start.Add(-scrapeOffset + time.Duration(k+1)*scrapeEvery)
		if k == restartAfter {
			end = h.start.Add(time.Duration(k) * scrapeEvery) // the scrape SIGTERM stamped
		}
		wantTimes = append(wantTimes, end.UnixMilli())
	}
	lastWindow := time.UnixMilli(wantTimes[len(wantTimes)-1])
	const outputSeries = 6 // http_requests_total by job and code (4), mem_bytes by job (2)
	wantRows := outputSeries * len(wantTimes)

	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	const selector = `{__name__=~"http_requests_total|mem_bytes"}`
	eventually(t, 30*time.Second, fmt.Sprintf("%d samples in Prometheus and in SQL", wantRows), func() (bool, error) {
		inProm := countPoints(querySamples(t, prom.URL, selector+"[1h]", lastWindow))
		var inSQL int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM samples WHERE time <= $1", lastWindow).Scan(&inSQL); err != nil {
			return false, err
		}
		return inProm >= wantRows && inSQL >= wantRows, fmt.Errorf("Prometheus has %d, SQL %d", inProm, inSQL)
	})

	fromProm := querySamples(t, prom.URL, selector+"[1h]", lastWindow)
	fromSQL := sqlSamples(t, conn, lastWindow)
	if len(fromProm) != outputSeries {
		t.Errorf("Prometheus has %d series %v, want %d", len(fromProm), keys(fromProm), outputSeries)
	}
	for key, want := range fromProm {
		got, ok := fromSQL[key]
		if !ok {
			t.Errorf("%s: in Prometheus, not in SQL (SQL has %v)", key, keys(fromSQL))
			continue
		}
		if times := pointTimes(want); !slices.Equal(times, wantTimes) {
			t.Errorf("%s: Prometheus has %d samples at %v…, want one at each of the %d window ends from %v",
				key, len(times), times[:min(3, len(times))], len(wantTimes), wantTimes[0])
		}
		if !samePoints(got, want) {
			t.Errorf("%s: SQL differs from Prometheus: %s", key, firstDifference(got, want))
		}
	}
	for key := range fromSQL {
		if _, ok := fromProm[key]; !ok {
			t.Errorf("%s: in SQL, not in Prometheus", key)
		}
	}
	if inSQL, inProm := countPoints(fromSQL), countPoints(fromProm); inSQL != wantRows || inProm != wantRows {
		t.Errorf("SQL has %d sample rows, Prometheus %d samples, want %d each", inSQL, inProm, wantRows)
	}
	var series, distinct int
	if err := conn.QueryRow(context.Background(),
		"SELECT count(*), count(DISTINCT (metric, labels)) FROM series").Scan(&series, &distinct); err != nil {
		t.Fatal(err)
	}
	if series != outputSeries || distinct != outputSeries {
		t.Errorf("series table: %d rows, %d distinct label sets; want %d of each", series, distinct, outputSeries)
	}
	if !t.Failed() {
		t.Logf("%d output series, %d samples each, identical in Prometheus and SQL across a restart", len(fromProm), len(wantTimes))
	}
}

// sqlSamples reads the samples stored up to until through the series_samples view, keyed
// like query results (seriesKey, __name__ included) and ordered by time.
func sqlSamples(t testing.TB, conn *pgx.Conn, until time.Time) map[string][]point {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT metric, labels, time, value FROM series_samples WHERE time <= $1 ORDER BY series_id, time", until)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]point{}
	for rows.Next() {
		var metric string
		var labels map[string]string
		var at time.Time
		var v float64
		if err := rows.Scan(&metric, &labels, &at, &v); err != nil {
			t.Fatal(err)
		}
		if labels == nil {
			labels = map[string]string{}
		}
		labels["__name__"] = metric
		key := seriesKey(labels)
		out[key] = append(out[key], point{T: at.UnixMilli(), V: v})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// countPoints is the number of points of all series.
func countPoints(series map[string][]point) int {
	n := 0
	for _, points := range series {
		n += len(points)
	}
	return n
}

// pointTimes lists the timestamps of points.
func pointTimes(points []point) []int64 {
	out := make([]int64, len(points))
	for i, p := range points {
		out[i] = p.T
	}
	return out
}

// samePoints reports whether a and b hold the same timestamps with bit-identical values.
func samePoints(a, b []point) bool {
	return slices.EqualFunc(a, b, func(x, y point) bool {
		return x.T == y.T && math.Float64bits(x.V) == math.Float64bits(y.V)
	})
}

// firstDifference describes where got first departs from want.
func firstDifference(got, want []point) string {
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.T != w.T || math.Float64bits(g.V) != math.Float64bits(w.V) {
			return fmt.Sprintf("sample %d: SQL (%d, %v), Prometheus (%d, %v)", i, g.T, g.V, w.T, w.V)
		}
	}
	return fmt.Sprintf("SQL has %d samples, Prometheus %d", len(got), len(want))
}

// compressEveryChunk checks that samples is a hypertable and compresses all its chunks, as an
// operator running the compression job early would: later writes land in compressed chunks.
func compressEveryChunk(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var hypertables, compressed int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'samples'`).Scan(&hypertables); err != nil {
		t.Fatal(err)
	}
	if hypertables != 1 {
		t.Fatalf("samples is not a hypertable: cardinal did not use TimescaleDB")
	}
	if err := conn.QueryRow(ctx, `SELECT count(compress_chunk(c, true)) FROM show_chunks('samples') c`).Scan(&compressed); err != nil {
		t.Fatal(err)
	}
	if compressed == 0 {
		t.Fatal("no chunk to compress: nothing was written before the restart")
	}
	t.Logf("%d chunks compressed by hand after the restart", compressed)
}
