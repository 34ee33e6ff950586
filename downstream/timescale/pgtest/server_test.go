package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cardinal-proxy/cardinal/downstream/timescale/pgtest"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func show(t *testing.T, conn *pgx.Conn, setting string) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(context.Background(), "SHOW "+setting).Scan(&v); err != nil {
		t.Fatalf("SHOW %s: %v", setting, err)
	}
	return v
}

// A stopped server refuses connections; started again it has the same address and the data
// committed before the stop.
func TestPostgresServer_restart_keeps_address_and_data(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	dsn := srv.CreateDatabase(t, "kept")
	addr := srv.Addr()
	conn := connect(t, dsn)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	srv.Stop() // stopping again does nothing

	srv.Start()
	if srv.Addr() != addr {
		t.Errorf("address after restart = %s, want %s", srv.Addr(), addr)
	}
	var v int
	if err := connect(t, dsn).QueryRow(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 42 {
		t.Errorf("row after restart = %d (%v), want 42", v, err)
	}
}

func TestPostgresServer_options_set_the_server_configuration(t *testing.T) {
	tests := []struct {
		name string
		opts []pgtest.Option
		want map[string]string
	}{
		{
			name: "fast_and_loopback_only_by_default",
			want: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
				"listen_addresses": "127.0.0.1", "server_encoding": "UTF8", "lc_collate": "C"},
		},
		{
			name: "durable_keeps_the_postgresql_defaults",
			opts: []pgtest.Option{pgtest.Durable(), pgtest.Setting("work_mem", "8MB")},
			want: map[string]string{"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "work_mem": "8MB"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := connect(t, pgtest.Start(t, tt.opts...).DSN())
			for setting, want := range tt.want {
				if got := show(t, conn, setting); got != want {
					t.Errorf("%s = %q, want %q", setting, got, want)
				}
			}
		})
	}
}

// With the option TimescaleDB the extension is preloaded: a database can create it, and its
// background workers run (a policy's jobs need them).
func TestPostgresServer_TimescaleDB_preloads_the_extension(t *testing.T) {
	srv := pgtest.Start(t, pgtest.TimescaleDB())
	conn := connect(t, srv.CreateDatabase(t, "tsdb"))
	if got := show(t, conn, "shared_preload_libraries"); got != "timescaledb" {
		t.Errorf("shared_preload_libraries = %q, want timescaledb", got)
	}
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "CREATE EXTENSION timescaledb"); err != nil {
		t.Fatalf("CREATE EXTENSION timescaledb: %v", err)
	}
	var version string
	if err := conn.QueryRow(ctx, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").Scan(&version); err != nil {
		t.Fatal(err)
	}
	var workers int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'TimescaleDB%'").Scan(&workers); err != nil {
		t.Fatal(err)
	}
	if workers == 0 {
		t.Error("no TimescaleDB background worker is running")
	}
	t.Logf("timescaledb %s, %d background workers", version, workers)
}
