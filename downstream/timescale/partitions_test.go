package timescale

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/downstream/timescale/pgtest"
)

// testClock is a settable clock for the sink's retention and partition maintenance.
type testClock struct{ nanos atomic.Int64 }

func newTestClock(at string) *testClock {
	c := &testClock{}
	c.set(at)
	return c
}

func (c *testClock) set(at string) { c.nanos.Store(time.UnixMilli(millis(at)).UnixNano()) }
func (c *testClock) now() time.Time {
	return time.Unix(0, c.nanos.Load()).UTC()
}

// partitionNames lists the partitions of samples, sorted.
func partitionNames(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT c.relname::text FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'samples'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func sample(name string, at string, v float64) prompb.TimeSeries {
	return prompb.TimeSeries{Labels: labels("__name__", name), Samples: []prompb.Sample{{Timestamp: millis(at), Value: v}}}
}

func TestPartitions(t *testing.T) {
	pg := pgtest.Start(t)
	ctx := context.Background()

	t.Run("created_ahead_of_time", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "ahead")
		clock := newTestClock("2021-03-10T12:00:00Z")
		startTestSink(t, dsn, func(c *Config) { c.PartitionAhead = setting.Duration(72 * time.Hour) }, func(s *Sink) { s.now = clock.now })
		want := []string{"samples_p20210310", "samples_p20210311", "samples_p20210312", "samples_p20210313"}
		if got := partitionNames(t, connect(t, dsn)); !slices.Equal(got, want) {
			t.Errorf("partitions = %v, want %v", got, want)
		}
	})

	t.Run("rows_land_in_their_day_across_midnight", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "midnight")
		clock := newTestClock("2021-03-10T12:00:00Z")
		ts := startTestSink(t, dsn, nil, func(s *Sink) { s.now = clock.now })
		ts.Send([]prompb.TimeSeries{
			sample("m", "2021-03-01T23:59:59.999Z", 1),
			sample("m", "2021-03-02T00:00:00Z", 2),
			sample("m", "2021-03-02T00:00:00.001Z", 3),
		})
		ts.waitProcessed(t, 3)
		rows, err := connect(t, dsn).Query(ctx, "SELECT tableoid::regclass::text, value FROM samples ORDER BY time")
		if err != nil {
			t.Fatal(err)
		}
		type placed struct {
			partition string
			value     float64
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (placed, error) {
			var p placed
			return p, r.Scan(&p.partition, &p.value)
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []placed{{"samples_p20210301", 1}, {"samples_p20210302", 2}, {"samples_p20210302", 3}}
		if !slices.Equal(got, want) {
			t.Errorf("rows in partitions = %v, want %v", got, want)
		}
		if n := ts.metric(t, "cardinal_timescale_partitions_created_total"); n != 6 {
			t.Errorf("partitions created = %v, want 6 (4 ahead, 2 on demand)", n)
		}
	})

	t.Run("far_future_sample_creates_no_partition", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "future")
		clock := newTestClock("2021-03-10T12:00:00Z")
		ts := startTestSink(t, dsn, func(c *Config) { c.PartitionAhead = setting.Duration(72 * time.Hour) }, func(s *Sink) { s.now = clock.now })
		ts.Send([]prompb.TimeSeries{
			sample("m", "2021-03-14T11:00:00Z", 1), // within partition_ahead + 1d: written
			sample("m", "2030-01-01T00:00:00Z", 2), // a broken clock: dropped
		})
		ts.waitProcessed(t, 1)
		if n := ts.metric(t, "cardinal_timescale_rows_dropped_total", "reason", dropFuture); n != 1 {
			t.Errorf("rows dropped as too far in the future = %v, want 1", n)
		}
		want := []string{"samples_p20210310", "samples_p20210311", "samples_p20210312", "samples_p20210313", "samples_p20210314"}
		if got := partitionNames(t, connect(t, dsn)); !slices.Equal(got, want) {
			t.Errorf("partitions = %v, want %v", got, want)
		}
	})

	t.Run("partition_dropped_behind_the_sinks_back_is_recreated", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "dropped")
		conn := connect(t, dsn)
		ts := startTestSink(t, dsn, nil, nil)
		ts.Send([]prompb.TimeSeries{sample("m", "2022-07-01T10:00:00Z", 1)})
		ts.waitProcessed(t, 1)
		if _, err := conn.Exec(ctx, "DROP TABLE samples_p20220701"); err != nil {
			t.Fatal(err)
		}
		ts.Send([]prompb.TimeSeries{sample("m", "2022-07-01T11:00:00Z", 2)})
		ts.waitProcessed(t, 2)
		var partition string
		var v float64
		if err := conn.QueryRow(ctx, "SELECT tableoid::regclass::text, value FROM samples").Scan(&partition, &v); err != nil {
			t.Fatal(err)
		}
		if partition != "samples_p20220701" || v != 2 {
			t.Errorf("row in %s with value %v, want samples_p20220701 and 2", partition, v)
		}
		if n := ts.metric(t, "cardinal_timescale_write_errors_total", "kind", "retryable"); n != 1 {
			t.Errorf("retryable errors = %v, want 1 (the insert that found no partition)", n)
		}
	})

	t.Run("retention_drops_whole_old_partitions", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "retention")
		conn := connect(t, dsn)
		clock := newTestClock("2021-03-10T12:00:00Z")
		// History from before retention was configured.
		first := startTestSink(t, dsn, func(c *Config) { c.PartitionAhead = setting.Duration(time.Hour) }, func(s *Sink) { s.now = clock.now })
		var history []prompb.TimeSeries
		for day := 1; day <= 9; day++ {
			history = append(history, sample("h", time.Date(2021, 3, day, 6, 0, 0, 0, time.UTC).Format(time.RFC3339), float64(day)))
		}
		first.Send(history)
		first.waitProcessed(t, 9)
		if err := first.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}

		// Two days of retention at 2021-03-10T12:00: partitions that ended by 03-08T12:00 go.
		ts := startTestSink(t, dsn, func(c *Config) {
			c.Retention, c.PartitionAhead = setting.Duration(48*time.Hour), setting.Duration(time.Hour)
		}, func(s *Sink) {
			s.now = clock.now
			s.maintenanceInterval = 20 * time.Millisecond
		})
		want := []string{"samples_p20210308", "samples_p20210309", "samples_p20210310"}
		if got := partitionNames(t, conn); !slices.Equal(got, want) {
			t.Errorf("partitions after start-up = %v, want %v", got, want)
		}
		if n := ts.metric(t, "cardinal_timescale_partitions_dropped_total"); n != 7 {
			t.Errorf("partitions dropped = %v, want 7", n)
		}

		// A late sample already past retention is not written and recreates nothing.
		ts.Send([]prompb.TimeSeries{sample("late", "2021-03-07T00:00:00Z", 1), sample("late", "2021-03-09T00:00:00Z", 2)})
		ts.waitProcessed(t, 1)
		if n := ts.metric(t, "cardinal_timescale_rows_dropped_total", "reason", dropRetention); n != 1 {
			t.Errorf("rows dropped for retention = %v, want 1", n)
		}
		if got := partitionNames(t, conn); !slices.Equal(got, want) {
			t.Errorf("partitions after a late sample = %v, want %v", got, want)
		}

		// Two days later the periodic maintenance moves the window on: 03-08 and 03-09 expire,
		// 03-12 is created ahead (03-11 was skipped by the clock's jump and nothing needs it).
		clock.set("2021-03-12T12:00:00Z")
		want = []string{"samples_p20210310", "samples_p20210312"}
		waitFor(t, 10*time.Second, "maintenance to move the partitions on", func() bool {
			return slices.Equal(partitionNames(t, conn), want)
		})
		var left int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM samples").Scan(&left); err != nil || left != 0 {
			t.Errorf("%d rows left after retention (%v), want 0", left, err)
		}
	})
}
