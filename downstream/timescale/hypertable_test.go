package timescale

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// What the TimescaleDB mode adds to the plain one, on a real TimescaleDB: the policies cardinal
// manages, the health of their jobs, and writes into compressed chunks.

// policyJob is a policy's job as TimescaleDB holds it.
type policyJob struct {
	id       int // 0: there is none
	schedule time.Duration
	after    string // the config key cardinal owns, as stored
}

// readPolicyJob reads the job of the policy proc (policy_compression, policy_retention) on
// samples, and the config key key of it.
func readPolicyJob(t *testing.T, conn *pgx.Conn, proc, key string) policyJob {
	t.Helper()
	var j policyJob
	err := conn.QueryRow(context.Background(), `SELECT job_id, schedule_interval, config->>$2
		FROM timescaledb_information.jobs WHERE proc_name = $1 AND hypertable_name = 'samples'`, proc, key).
		Scan(&j.id, &j.schedule, &j.after)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return j
}

// sameInterval reports whether PostgreSQL holds the intervals a and b equal.
func sameInterval(t *testing.T, conn *pgx.Conn, a string, b time.Duration) bool {
	t.Helper()
	var same bool
	if err := conn.QueryRow(context.Background(), `SELECT $1::interval = $2::interval`, a, b).Scan(&same); err != nil {
		t.Fatal(err)
	}
	return same
}

// chunkStates counts the chunks of samples: all, compressed, and partially compressed (rows
// written into a compressed chunk wait uncompressed for the next compression run).
func chunkStates(t *testing.T, conn *pgx.Conn) (chunks, compressed, partial int) {
	t.Helper()
	err := conn.QueryRow(context.Background(), `SELECT count(*),
			count(*) FILTER (WHERE c.status & 1 = 1), count(*) FILTER (WHERE c.status & 8 = 8)
		FROM _timescaledb_catalog.chunk c JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id
		WHERE h.table_name = 'samples'`).Scan(&chunks, &compressed, &partial)
	if err != nil {
		t.Fatal(err)
	}
	return chunks, compressed, partial
}

// runJob runs a job in the session, as an operator would: CALL run_job.
func runJob(t *testing.T, conn *pgx.Conn, id int) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), fmt.Sprintf("CALL run_job(%d)", id)); err != nil {
		t.Fatalf("CALL run_job(%d): %v", id, err)
	}
}

// history is n series with a sample every step from start to end (excluded), values
// counting up from a value of its own per series.
func history(name string, n int, start, end string, step time.Duration) []prompb.TimeSeries {
	var out []prompb.TimeSeries
	for ts := millis(start); ts < millis(end); ts += step.Milliseconds() {
		out = append(out, syntheticSeries(name, n, ts, float64(ts%1e9)/7)...)
	}
	return out
}

// storedValues is every row of samples, by series and time.
func storedValues(t *testing.T, conn *pgx.Conn) map[sampleKey]float64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT labels->>'instance', time, value FROM series_samples")
	if err != nil {
		t.Fatal(err)
	}
	got := map[sampleKey]float64{}
	for rows.Next() {
		var instance string
		var at time.Time
		var v float64
		if err := rows.Scan(&instance, &at, &v); err != nil {
			t.Fatal(err)
		}
		got[sampleKey{instance, at.UnixMilli()}] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// wantValues is what storedValues must return for series of syntheticSeries.
func wantValues(series ...[]prompb.TimeSeries) map[sampleKey]float64 {
	want := map[sampleKey]float64{}
	for _, ss := range series {
		for _, s := range ss {
			for _, smp := range s.Samples {
				want[sampleKey{s.Labels[1].Value, smp.Timestamp}] = smp.Value
			}
		}
	}
	return want
}

func sameValues(t *testing.T, got, want map[sampleKey]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("samples has %d rows, want %d", len(got), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%v = %v (stored: %v), want %v", k, g, ok, v)
			return
		}
	}
}

func TestHypertable(t *testing.T) {
	pg := startServer(t, ModeTimescaleDB)
	ctx := context.Background()
	day := 24 * time.Hour

	t.Run("settings_and_policies_created_with_the_columnstore_names", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "created")
		ts := startTestSink(t, dsn, func(c *Config) {
			c.ChunkInterval = setting.Duration(6 * time.Hour)
			c.Compression, c.CompressAfter, c.Retention = true, setting.Duration(2*day), setting.Duration(30*day)
		}, nil)
		f := ts.features.Load()
		if f == nil || !f.columnstore || !f.jobErrors {
			t.Fatalf("features = %+v, want the columnstore names and job_errors (TimescaleDB 2.18 or later)", f)
		}
		conn := connect(t, dsn)
		var chunkInterval time.Duration
		var segmentby, orderby string
		err := conn.QueryRow(ctx, `SELECT d.time_interval, s.segmentby, s.orderby
			FROM timescaledb_information.dimensions d, timescaledb_information.hypertable_columnstore_settings s
			WHERE d.hypertable_name = 'samples' AND s.hypertable = 'samples'::regclass`).Scan(&chunkInterval, &segmentby, &orderby)
		if err != nil {
			t.Fatal(err)
		}
		if chunkInterval != 6*time.Hour || segmentby != "series_id" || orderby != `"time" DESC` {
			t.Errorf("chunk interval %s, segmentby %q, orderby %q; want 6h, series_id, time DESC", chunkInterval, segmentby, orderby)
		}
		compression := readPolicyJob(t, conn, "policy_compression", "compress_after")
		retention := readPolicyJob(t, conn, "policy_retention", "drop_after")
		if compression.id == 0 || !sameInterval(t, conn, compression.after, 2*day) {
			t.Errorf("compression job %+v, want one with compress_after 2 days", compression)
		}
		if retention.id == 0 || !sameInterval(t, conn, retention.after, 30*day) {
			t.Errorf("retention job %+v, want one with drop_after 30 days", retention)
		}
		for _, want := range []string{
			fmt.Sprintf("created the compression policy (job %d", compression.id),
			fmt.Sprintf("created the retention policy (job %d", retention.id),
			"enabled compression",
		} {
			if !strings.Contains(ts.logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, ts.logs.String())
			}
		}
	})

	t.Run("old_names_still_work_where_there_are_no_columnstore_names", func(t *testing.T) {
		// TimescaleDB 2.28 keeps the pre-2.18 names: the fallback's SQL runs on it.
		dsn := pg.CreateDatabase(t, "old_names")
		pool := newPool(t, dsn)
		if _, err := pool.Exec(ctx, "CREATE EXTENSION timescaledb"); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(dsn, func(c *Config) { c.Compression, c.CompressAfter = true, setting.Duration(day) })
		if _, _, err := migrate(ctx, pool, ModeTimescaleDB, cfg, latestSchemaVersion()); err != nil {
			t.Fatal(err)
		}
		old := timescaleFeatures{columnstore: false}
		if _, err := configureHypertable(ctx, pool, cfg, old); err != nil {
			t.Fatalf("with the old names: %v", err)
		}
		conn := connect(t, dsn)
		if j := readPolicyJob(t, conn, "policy_compression", "compress_after"); j.id == 0 || !sameInterval(t, conn, j.after, day) {
			t.Errorf("compression job %+v after add_compression_policy, want compress_after 1 day", j)
		}
		cfg.Compression, cfg.CompressAfter = false, 0
		if _, err := configureHypertable(ctx, pool, cfg, old); err != nil {
			t.Fatalf("removing with the old names: %v", err)
		}
		if j := readPolicyJob(t, conn, "policy_compression", "compress_after"); j.id != 0 {
			t.Errorf("compression job %+v left after remove_compression_policy", j)
		}
	})

	t.Run("operator_tuning_survives_restarts_and_config_changes_apply", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "tuning")
		conn := connect(t, dsn)
		start := func(compressAfter, retention time.Duration) *testSink {
			t.Helper()
			ts := startTestSink(t, dsn, func(c *Config) {
				c.Compression, c.CompressAfter, c.Retention = true, setting.Duration(compressAfter), setting.Duration(retention)
			}, nil)
			if err := ts.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			return ts
		}
		start(2*day, 30*day)
		compression := readPolicyJob(t, conn, "policy_compression", "compress_after")
		retention := readPolicyJob(t, conn, "policy_retention", "drop_after")
		// The operator runs compression every 5 minutes and retention every 2 hours.
		for id, every := range map[int]string{compression.id: "5 minutes", retention.id: "2 hours"} {
			if _, err := conn.Exec(ctx, `SELECT alter_job($1, schedule_interval => $2::interval)`, id, every); err != nil {
				t.Fatal(err)
			}
		}

		second := start(2*day, 30*day)
		c2 := readPolicyJob(t, conn, "policy_compression", "compress_after")
		r2 := readPolicyJob(t, conn, "policy_retention", "drop_after")
		if c2.id != compression.id || c2.schedule != 5*time.Minute || r2.id != retention.id || r2.schedule != 2*time.Hour {
			t.Errorf("after a restart: compression %+v, retention %+v; want jobs %d and %d kept, every 5m and 2h",
				c2, r2, compression.id, retention.id)
		}
		if logs := second.logs.String(); strings.Contains(logs, "policy") {
			t.Errorf("a restart with the same configuration changed a policy:\n%s", logs)
		}

		third := start(day, 30*day)
		c3 := readPolicyJob(t, conn, "policy_compression", "compress_after")
		if c3.id != compression.id || c3.schedule != 5*time.Minute || !sameInterval(t, conn, c3.after, day) {
			t.Errorf("after compress_after 2d -> 1d: %+v, want job %d every 5m with compress_after 1 day", c3, compression.id)
		}
		if r3 := readPolicyJob(t, conn, "policy_retention", "drop_after"); r3 != r2 {
			t.Errorf("retention job %+v changed with compress_after, was %+v", r3, r2)
		}
		if want := fmt.Sprintf("changed compress_after of the compression policy (job %d)", compression.id); !strings.Contains(third.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, third.logs.String())
		}

		fourth := start(day, 0)
		if r4 := readPolicyJob(t, conn, "policy_retention", "drop_after"); r4.id != 0 {
			t.Errorf("retention job %+v kept with retention 0", r4)
		}
		if c4 := readPolicyJob(t, conn, "policy_compression", "compress_after"); c4 != c3 {
			t.Errorf("compression job %+v changed when retention was turned off, was %+v", c4, c3)
		}
		if want := fmt.Sprintf("removed the retention policy (job %d)", retention.id); !strings.Contains(fourth.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, fourth.logs.String())
		}
	})

	t.Run("resend_after_restart_leaves_compressed_chunks_alone", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "compressed")
		conn := connect(t, dsn)
		edit := func(c *Config) {
			c.ChunkInterval = setting.Duration(time.Hour)
			c.Compression, c.CompressAfter = true, setting.Duration(time.Hour)
		}
		fastRefresh := func(s *Sink) { s.compressedRefresh = 0 }
		// Three hours of history, one chunk per hour, compressed by hand.
		hist := history("hist", 20, "2024-06-01T00:00:00Z", "2024-06-01T03:00:00Z", time.Minute)
		first := startTestSink(t, dsn, edit, fastRefresh)
		first.Send(cloneSeries(hist))
		first.waitProcessed(t, len(hist))
		if err := first.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		runJob(t, conn, readPolicyJob(t, conn, "policy_compression", "compress_after").id)
		if chunks, compressed, partial := chunkStates(t, conn); chunks != 3 || compressed != 3 || partial != 0 {
			t.Fatalf("after compression: %d chunks, %d compressed, %d partial; want 3, 3, 0", chunks, compressed, partial)
		}

		// Restarted, cardinal re-sends what it sent before (a replayed WAL, an agent's retry).
		second := startTestSink(t, dsn, edit, fastRefresh)
		second.Send(cloneSeries(hist))
		second.waitProcessed(t, len(hist))
		if got := second.metric(t, "cardinal_timescale_rows_duplicate_total"); int(got) != len(hist) {
			t.Errorf("rows found already stored = %v, want %d", got, len(hist))
		}
		_, compressed, partial := chunkStates(t, conn)
		if compressed != 3 || partial != 0 {
			t.Errorf("after the re-send: %d compressed, %d partial; want 3 compressed, none partial", compressed, partial)
		}

		// More writes after compression: new rows in the second hour's compressed chunk are
		// stored, once, and make that chunk (only) partial.
		late := syntheticSeries("hist", 20, millis("2024-06-01T01:30:30Z"), 0.5)
		second.Send(cloneSeries(late))
		second.Send(cloneSeries(late))
		second.waitProcessed(t, len(hist)+2*len(late))
		if got := second.metric(t, "cardinal_timescale_rows_written_total"); int(got) != len(late) {
			t.Errorf("rows written = %v, want the %d late ones", got, len(late))
		}
		sameValues(t, storedValues(t, conn), wantValues(hist, late))
		_, compressed, partialAfterLate := chunkStates(t, conn)
		if compressed != 3 || partialAfterLate != 1 {
			t.Errorf("after late rows in one chunk: %d compressed, %d partial; want 3 and 1", compressed, partialAfterLate)
		}

		// The control: the plain INSERT ... ON CONFLICT DO NOTHING of the same rows inserts
		// nothing and still leaves every chunk it touches partial.
		var b batch
		for _, s := range hist {
			id := second.hasher.seriesID(s.Labels)
			b.times, b.ids, b.values = append(b.times, time.UnixMilli(s.Samples[0].Timestamp).UTC()), append(b.ids, id), append(b.values, s.Samples[0].Value)
		}
		tag, err := conn.Exec(ctx, insertSamplesSQL, b.times, b.ids, b.values)
		if err != nil {
			t.Fatal(err)
		}
		_, _, partialControl := chunkStates(t, conn)
		if tag.RowsAffected() != 0 || partialControl != 3 {
			t.Errorf("the plain INSERT inserted %d rows and left %d chunks partial; the control expects 0 and 3",
				tag.RowsAffected(), partialControl)
		}
		t.Logf("re-send of %d rows into 3 compressed chunks: %d partial with the sink's INSERT, %d with plain ON CONFLICT DO NOTHING",
			len(hist), partial, partialControl)
	})

	t.Run("retention_drops_old_chunks", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "retention")
		conn := connect(t, dsn)
		edit := func(c *Config) { c.ChunkInterval = setting.Duration(time.Hour) }
		now := time.Now().UTC().Truncate(time.Minute)
		old := history("kept", 5, "2024-06-01T00:00:00Z", "2024-06-01T02:00:00Z", 10*time.Minute)
		recent := syntheticSeries("kept", 5, now.Add(-30*time.Minute).UnixMilli(), 1)
		first := startTestSink(t, dsn, edit, nil)
		first.Send(cloneSeries(old))
		first.Send(cloneSeries(recent))
		first.waitProcessed(t, len(old)+len(recent))
		if err := first.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if chunks, _, _ := chunkStates(t, conn); chunks != 3 {
			t.Fatalf("%d chunks before retention, want 3", chunks)
		}

		ts := startTestSink(t, dsn, func(c *Config) { edit(c); c.Retention = setting.Duration(2 * day) }, nil)
		runJob(t, conn, readPolicyJob(t, conn, "policy_retention", "drop_after").id)
		if chunks, _, _ := chunkStates(t, conn); chunks != 1 {
			t.Errorf("%d chunks after retention, want 1 (the recent one)", chunks)
		}
		sameValues(t, storedValues(t, conn), wantValues(recent))
		// What arrives already older than retention is not written.
		ts.Send(cloneSeries(old[:5]))
		waitFor(t, 30*time.Second, "old rows counted as dropped", func() bool {
			return ts.metric(t, "cardinal_timescale_rows_dropped_total", "reason", dropRetention) == 5
		})
	})

	t.Run("failing_job_is_exported_and_logged_once", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "failing")
		conn := connect(t, dsn)
		edit := func(c *Config) { c.ChunkInterval = setting.Duration(time.Hour) }
		first := startTestSink(t, dsn, edit, nil)
		first.Send(history("failing", 3, "2024-06-01T00:00:00Z", "2024-06-01T02:00:00Z", 10*time.Minute))
		first.waitProcessed(t, 36)
		if err := first.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		ts := startTestSink(t, dsn, func(c *Config) { edit(c); c.Retention = setting.Duration(2 * day) },
			func(s *Sink) { s.jobPollInterval = 50 * time.Millisecond })
		job := readPolicyJob(t, conn, "policy_retention", "drop_after")
		waitFor(t, 10*time.Second, "the retention job in Jobs()", func() bool { return len(ts.Jobs()) == 1 })
		labels := []string{"job", "retention", "job_id", fmt.Sprint(job.id)}

		// A new policy is due at once, so the scheduler may already have run it and dropped
		// the old chunks. Hold it, let a run in progress end, and put an old chunk back.
		if _, err := conn.Exec(ctx, `SELECT alter_job($1, scheduled => false)`, job.id); err != nil {
			t.Fatal(err)
		}
		var runs, failed int64
		waitFor(t, 60*time.Second, "no run of the retention job in progress", func() bool {
			var status string
			if err := conn.QueryRow(ctx, `SELECT coalesce(job_status, ''), coalesce(total_runs, 0), coalesce(total_failures, 0)
				FROM timescaledb_information.job_stats WHERE job_id = $1`, job.id).Scan(&status, &runs, &failed); err != nil {
				if !errors.Is(err, pgx.ErrNoRows) {
					t.Fatal(err)
				}
				return true
			}
			return status != "Running"
		})
		waitFor(t, 10*time.Second, "the metrics to agree with job_stats", func() bool {
			return ts.metric(t, "cardinal_timescale_job_failures", labels...) == float64(failed)
		})
		if _, err := conn.Exec(ctx, `INSERT INTO samples (time, series_id, value) VALUES ('2024-06-01T00:30:00Z', 1, 1)
			ON CONFLICT DO NOTHING`); err != nil {
			t.Fatal(err)
		}
		t.Logf("before the test's run: %d runs, %d failures", runs, failed)

		// The job cannot drop a chunk another session reads: with a lock timeout, it fails.
		var chunk string
		if err := conn.QueryRow(ctx, `SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks
			WHERE hypertable_name = 'samples' ORDER BY range_start LIMIT 1`).Scan(&chunk); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `ALTER DATABASE failing SET lock_timeout = '100ms'`); err != nil {
			t.Fatal(err)
		}
		reader := connect(t, dsn)
		tx, err := reader.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "LOCK TABLE "+chunk+" IN ACCESS SHARE MODE"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `SELECT alter_job($1, scheduled => true, next_start => now())`, job.id); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 90*time.Second, "the failure in the metrics", func() bool {
			return ts.metric(t, "cardinal_timescale_job_failures", labels...) >= float64(failed+1)
		})
		if got := ts.metric(t, "cardinal_timescale_job_last_run_failed", labels...); got != 1 {
			t.Errorf("last_run_failed = %v, want 1", got)
		}
		if got := ts.metric(t, "cardinal_timescale_job_last_run_timestamp_seconds", labels...); got < float64(time.Now().Add(-time.Hour).Unix()) {
			t.Errorf("last run at %v, want within the last hour", got)
		}
		jobs := ts.Jobs()
		if len(jobs) != 1 || jobs[0].LastError == "" || jobs[0].LastErrorAt.IsZero() {
			t.Errorf("Jobs() = %+v, want the retention job with its error", jobs)
		}
		polls := ts.jobPolls.Load()
		waitFor(t, 10*time.Second, "five more polls", func() bool { return ts.jobPolls.Load() >= polls+5 })
		failures := ts.metric(t, "cardinal_timescale_job_failures", labels...)
		if n := strings.Count(ts.logs.String(), "a TimescaleDB job on the samples table failed"); float64(n) != failures {
			t.Errorf("%d failure log lines for %v failures, want one per failure:\n%s", n, failures, ts.logs.String())
		}
		t.Logf("the retention job failed: %s", jobs[0].LastError)
	})

	t.Run("background_run_outcome_is_exported", func(t *testing.T) {
		// Whatever the scheduler's run of the compression job gives on this PostgreSQL, the
		// metrics say it. On Debian's PostgreSQL 15.20 every background job fails after doing
		// its work (cannot drop portal "" while it is being set up: ../shared/timescaledb).
		dsn := pg.CreateDatabase(t, "background")
		conn := connect(t, dsn)
		ts := startTestSink(t, dsn, func(c *Config) { c.Compression, c.CompressAfter = true, setting.Duration(time.Hour) },
			func(s *Sink) { s.jobPollInterval = 50 * time.Millisecond })
		ts.Send(syntheticSeries("bg", 3, millis("2024-06-01T00:00:00Z"), 1))
		ts.waitProcessed(t, 3)
		job := readPolicyJob(t, conn, "policy_compression", "compress_after")
		if _, err := conn.Exec(ctx, `SELECT alter_job($1, next_start => now())`, job.id); err != nil {
			t.Fatal(err)
		}
		labels := []string{"job", "compression", "job_id", fmt.Sprint(job.id)}
		waitFor(t, 90*time.Second, "a background run in the metrics", func() bool {
			return ts.metric(t, "cardinal_timescale_job_last_run_timestamp_seconds", labels...) > 0 &&
				(ts.metric(t, "cardinal_timescale_job_failures", labels...) > 0 ||
					ts.metric(t, "cardinal_timescale_job_last_success_timestamp_seconds", labels...) > 0)
		})
		var version string
		if err := conn.QueryRow(ctx, "SELECT split_part(current_setting('server_version'), ' ', 1)").Scan(&version); err != nil {
			t.Fatal(err)
		}
		jobs := ts.Jobs()
		if len(jobs) != 1 {
			t.Fatalf("Jobs() = %+v, want the compression job", jobs)
		}
		j := jobs[0]
		failed := ts.metric(t, "cardinal_timescale_job_last_run_failed", labels...) == 1
		if failed != j.LastRunFailed || (failed && (j.Failures == 0 || j.LastError == "")) {
			t.Errorf("metric last_run_failed = %v for %+v, want it to match, with the failure counted and its error", failed, j)
		}
		if version == "15.20" && (!failed || !strings.Contains(j.LastError, `cannot drop portal "" while it is being set up`)) {
			t.Errorf("on PostgreSQL 15.20 the job should fail with the portal error; got %+v", j)
		}
		if !failed && j.LastSuccess.IsZero() {
			t.Errorf("the job neither failed nor succeeded: %+v", j)
		}
		t.Logf("PostgreSQL %s: compression job %d in the background: failed=%v error=%q last success=%v",
			version, j.ID, j.LastRunFailed, j.LastError, j.LastSuccess)
	})
}
