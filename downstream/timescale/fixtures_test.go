package timescale

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/downstream/timescale/pgtest"
)

// testSink is a started sink with what tests look at.
type testSink struct {
	*Sink
	reg  *prometheus.Registry
	logs *logBuffer
}

// testConfig is an entry for dsn with the file format's defaults, changed by edit (may be
// nil).
func testConfig(dsn string, edit func(*Config)) Config {
	cfg := DefaultConfig()
	cfg.Name = "timescaledb"
	cfg.DSN = setting.Secret(dsn)
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

// newTestSink builds a sink on dsn, its configuration changed by edit (may be nil), with
// short backoffs; prepare (may be nil) runs before Start, to replace the clock for instance.
// It is shut down in Cleanup.
func newTestSink(tb testing.TB, dsn string, edit func(*Config), prepare func(*Sink)) *testSink {
	tb.Helper()
	ts := &testSink{reg: prometheus.NewRegistry(), logs: &logBuffer{}}
	logger := slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(context.Background(), testConfig(dsn, edit), ts.reg, logger)
	if err != nil {
		tb.Fatal(err)
	}
	s.backoff = downstream.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	ts.Sink = s
	if prepare != nil {
		prepare(s)
	}
	s.Start()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		if tb.Failed() {
			tb.Logf("sink log:\n%s", ts.logs.String())
		}
	})
	return ts
}

// startTestSink is newTestSink waiting until the schema is set up.
func startTestSink(tb testing.TB, dsn string, edit func(*Config), prepare func(*Sink)) *testSink {
	tb.Helper()
	ts := newTestSink(tb, dsn, edit, prepare)
	waitFor(tb, 30*time.Second, "the schema set-up", func() bool { return ts.Mode() != "" })
	return ts
}

func (ts *testSink) metric(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	return metricValue(tb, ts.reg, name, labels...)
}

// processed is the number of rows the sink has finished with: inserted or found present.
func (ts *testSink) processed(tb testing.TB) int {
	return int(ts.metric(tb, "cardinal_timescale_rows_written_total") + ts.metric(tb, "cardinal_timescale_rows_duplicate_total"))
}

// waitProcessed waits until the sink has finished with n rows in total.
func (ts *testSink) waitProcessed(tb testing.TB, n int) {
	tb.Helper()
	waitFor(tb, 60*time.Second, fmt.Sprintf("%d rows written or found present", n), func() bool { return ts.processed(tb) >= n })
}

// syntheticSeries is n series of metric name with labels job and instance (0..n-1), one
// sample each at ts with value base+i.
func syntheticSeries(name string, n int, ts int64, base float64) []prompb.TimeSeries {
	series := make([]prompb.TimeSeries, n)
	for i := range series {
		series[i] = prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: name},
				{Name: "instance", Value: "host-" + strconv.Itoa(i)},
				{Name: "job", Value: "node"},
			},
			Samples: []prompb.Sample{{Timestamp: ts, Value: base + float64(i)}},
		}
	}
	return series
}

// cloneSeries deep-copies series, since Send takes ownership of what it is given.
func cloneSeries(series []prompb.TimeSeries) []prompb.TimeSeries {
	out := make([]prompb.TimeSeries, len(series))
	for i, s := range series {
		out[i] = prompb.TimeSeries{
			Labels:  append([]prompb.Label(nil), s.Labels...),
			Samples: append([]prompb.Sample(nil), s.Samples...),
		}
	}
	return out
}

// countSampleRows counts the rows of the samples table.
func countSampleRows(tb testing.TB, dsn string) int {
	tb.Helper()
	var n int
	if err := connect(tb, dsn).QueryRow(context.Background(), "SELECT count(*) FROM samples").Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func millis(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

// connect opens a connection closed at the end of the test.
func connect(tb testing.TB, dsn string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("connecting to %s: %v", dsn, err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// freePort returns a loopback port nothing listened on a moment ago: the address of a
// database that is not there.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// modes are the storage modes every test that is not specific to one runs in.
var modes = []Mode{ModePostgreSQL, ModeTimescaleDB}

// startServer starts a PostgreSQL server on which a new database gets the storage mode mode
// whatever the machine has installed: plain PostgreSQL never preloads TimescaleDB (installed
// or not, it cannot be created then), and TimescaleDB preloads it (the test is skipped when it
// is not installed, and fails under CI=true). A TimescaleDB server has room for the
// background workers of several databases' job schedulers.
func startServer(tb testing.TB, mode Mode, opts ...pgtest.Option) *pgtest.Server {
	tb.Helper()
	if mode == ModeTimescaleDB {
		opts = append([]pgtest.Option{pgtest.TimescaleDB(),
			pgtest.Setting("max_worker_processes", "32"),
			pgtest.Setting("timescaledb.max_background_workers", "24")}, opts...)
	}
	return pgtest.Start(tb, opts...)
}

// forEachMode runs test as a subtest per storage mode, each with a server of its own.
func forEachMode(t *testing.T, test func(t *testing.T, pg *pgtest.Server, mode Mode)) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) { test(t, startServer(t, mode), mode) })
	}
}

// newPool opens a pool closed at the end of the test.
func newPool(tb testing.TB, dsn string) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}
