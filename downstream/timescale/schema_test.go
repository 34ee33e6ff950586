package timescale

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cardinal-proxy/cardinal/downstream/timescale/pgtest"
)

// schemaState is what a test can see of the schema.
type schemaState struct {
	versions     []int
	appliedAt    map[int]time.Time
	samplesKind  string // "p" partitioned, "r" plain, "" missing
	hasGINIndex  bool
	hasView      bool
	seriesExists bool
}

func readSchema(t *testing.T, conn *pgx.Conn) schemaState {
	t.Helper()
	ctx := context.Background()
	st := schemaState{appliedAt: map[int]time.Time{}}
	rows, err := conn.Query(ctx, "SELECT version, applied_at FROM cardinal_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		st.versions = append(st.versions, v)
		st.appliedAt[v] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	err = conn.QueryRow(ctx, `SELECT
		coalesce((SELECT relkind::text FROM pg_class WHERE oid = to_regclass('samples')), ''),
		EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'series_labels_idx' AND indexdef LIKE '%USING gin (labels)%'),
		to_regclass('series_samples') IS NOT NULL,
		to_regclass('series') IS NOT NULL`).Scan(&st.samplesKind, &st.hasGINIndex, &st.hasView, &st.seriesExists)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wantModeReason is the start of the reason the sink logs for choosing mode in a new database
// of a server started by startServer: for plain PostgreSQL it depends on whether TimescaleDB
// is installed (but not preloaded) on this machine, and both are right.
func wantModeReason(t *testing.T, conn *pgx.Conn, mode Mode) string {
	t.Helper()
	var available string
	err := conn.QueryRow(context.Background(), `SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'`).Scan(&available)
	switch {
	case mode == ModeTimescaleDB && err == nil:
		return `reason="extension timescaledb ` + available + ` was available and has been created"`
	case mode == ModePostgreSQL && err == nil:
		return `reason="extension timescaledb ` + available + ` is available but not preloaded`
	case mode == ModePostgreSQL && errors.Is(err, pgx.ErrNoRows):
		return `reason="extension timescaledb is not available on the server"`
	}
	t.Fatalf("timescaledb in pg_available_extensions: %q, %v", available, err)
	return ""
}

func TestSchemaMigrations(t *testing.T) {
	forEachMode(t, testSchemaMigrations)
}

func testSchemaMigrations(t *testing.T, pg *pgtest.Server, mode Mode) {
	ctx := context.Background()
	// A natively partitioned table, or a hypertable (a plain table to pg_class).
	wantKind := map[Mode]string{ModePostgreSQL: "p", ModeTimescaleDB: "r"}[mode]

	t.Run("created_from_an_empty_database", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "empty")
		conn := connect(t, dsn)
		reason := wantModeReason(t, conn, mode)
		ts := startTestSink(t, dsn, nil, nil)
		st := readSchema(t, conn)
		if !slices.Equal(st.versions, []int{1, 2}) {
			t.Errorf("applied versions = %v, want [1 2]", st.versions)
		}
		if st.samplesKind != wantKind || !st.seriesExists || !st.hasGINIndex || !st.hasView {
			t.Errorf("schema = %+v, want samples of relkind %q, series, the GIN index and the view", st, wantKind)
		}
		if mode == ModeTimescaleDB {
			var hyper bool
			if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
				WHERE hypertable_name = 'samples')`).Scan(&hyper); err != nil || !hyper {
				t.Errorf("samples is not a hypertable (%v)", err)
			}
		}
		// Feature detection says what it chose and why.
		if ts.Mode() != mode {
			t.Errorf("Mode() = %q, want %q", ts.Mode(), mode)
		}
		logs := ts.logs.String()
		for _, want := range []string{"mode=" + string(mode), reason, "migrations_applied=\"[1 2]\""} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %s:\n%s", want, logs)
			}
		}
		if got := ts.metric(t, "cardinal_timescale_mode", "mode", string(mode)); got != 1 {
			t.Errorf(`cardinal_timescale_mode{mode=%q} = %v, want 1`, mode, got)
		}
	})

	t.Run("migrated_from_version_1_keeping_data", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "from_v1")
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		// A database left by a cardinal that knew only version 1, with data in it.
		if mode == ModeTimescaleDB {
			if _, err := pool.Exec(ctx, "CREATE EXTENSION timescaledb"); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := migrate(ctx, pool, mode, DefaultConfig(), 1); err != nil {
			t.Fatal(err)
		}
		if mode == ModePostgreSQL {
			p, err := lookupPartitionTable(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.create(ctx, pool, []int64{dayOfMillis(millis("2021-06-01T00:00:00Z"))}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pool.Exec(ctx, `INSERT INTO series VALUES (42, 'old_metric', '{"job":"legacy"}');
			INSERT INTO samples VALUES ('2021-06-01T10:00:00Z', 42, 1.25)`); err != nil {
			t.Fatal(err)
		}
		conn := connect(t, dsn)
		before := readSchema(t, conn)
		if !slices.Equal(before.versions, []int{1}) || before.hasGINIndex || before.hasView {
			t.Fatalf("version 1 schema = %+v, want version 1 without the GIN index and view", before)
		}

		ts := startTestSink(t, dsn, nil, nil)
		after := readSchema(t, conn)
		if !slices.Equal(after.versions, []int{1, 2}) || !after.hasGINIndex || !after.hasView {
			t.Errorf("after upgrade = %+v, want versions [1 2] with the GIN index and the view", after)
		}
		if !after.appliedAt[1].Equal(before.appliedAt[1]) {
			t.Errorf("version 1 re-applied: applied_at %v, was %v", after.appliedAt[1], before.appliedAt[1])
		}
		if !strings.Contains(ts.logs.String(), "migrations_applied=[2]") {
			t.Errorf("log does not say only migration 2 was applied:\n%s", ts.logs.String())
		}
		var metric, job string
		var value float64
		err = conn.QueryRow(ctx, `SELECT metric, labels->>'job', value FROM series_samples WHERE series_id = 42`).Scan(&metric, &job, &value)
		if err != nil || metric != "old_metric" || job != "legacy" || value != 1.25 {
			t.Errorf("old data through the new view = %q %q %v (%v), want old_metric legacy 1.25", metric, job, value, err)
		}
	})

	t.Run("restart_applies_nothing", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "restart")
		first := startTestSink(t, dsn, nil, nil)
		if err := first.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		before := readSchema(t, connect(t, dsn))
		second := startTestSink(t, dsn, nil, nil)
		after := readSchema(t, connect(t, dsn))
		if !slices.Equal(after.versions, []int{1, 2}) || !after.appliedAt[2].Equal(before.appliedAt[2]) {
			t.Errorf("second start changed the migrations: %v -> %v", before.appliedAt, after.appliedAt)
		}
		if !strings.Contains(second.logs.String(), "migrations_applied=[]") {
			t.Errorf("second start applied migrations:\n%s", second.logs.String())
		}
	})

	t.Run("instances_starting_together_do_not_race", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "together")
		var wg sync.WaitGroup
		sinks := make([]*testSink, 4)
		for i := range sinks {
			wg.Go(func() { sinks[i] = newTestSink(t, dsn, nil, nil) })
		}
		wg.Wait()
		for i, s := range sinks {
			waitFor(t, 30*time.Second, "the schema set-up", func() bool { return s.Mode() != "" })
			if errs := s.metric(t, "cardinal_timescale_write_errors_total", "kind", "retryable"); errs != 0 {
				t.Errorf("instance %d failed %v times setting up:\n%s", i, errs, s.logs.String())
			}
		}
		if st := readSchema(t, connect(t, dsn)); !slices.Equal(st.versions, []int{1, 2}) {
			t.Errorf("applied versions = %v, want [1 2]", st.versions)
		}
	})

	t.Run("foreign_samples_table_is_reported_not_touched", func(t *testing.T) {
		dsn := pg.CreateDatabase(t, "foreign")
		conn := connect(t, dsn)
		if _, err := conn.Exec(ctx, "CREATE TABLE samples (whatever int)"); err != nil {
			t.Fatal(err)
		}
		ts := newTestSink(t, dsn, nil, nil)
		waitFor(t, 10*time.Second, "a failed set-up", func() bool {
			return ts.metric(t, "cardinal_timescale_write_errors_total", "kind", "retryable") >= 2
		})
		if ts.Mode() != "" {
			t.Errorf("Mode() = %q on a database with someone else's samples table", ts.Mode())
		}
		if !strings.Contains(ts.logs.String(), "neither a hypertable nor partitioned") {
			t.Errorf("log does not explain the set-up failure:\n%s", ts.logs.String())
		}
	})
}
