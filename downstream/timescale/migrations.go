package timescale

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// migration is one versioned, idempotent step of the schema. Its statements may depend on
// the storage mode (the samples table is a hypertable or a partitioned table).
type migration struct {
	version     int
	description string
	statements  func(mode Mode, cfg Config) []string
}

// schemaMigrations is the schema's history, oldest first. Never edit a released migration:
// add a new one.
func schemaMigrations() []migration {
	return []migration{
		{
			version:     1,
			description: "series and samples tables",
			statements: func(mode Mode, cfg Config) []string {
				stmts := []string{
					`CREATE TABLE IF NOT EXISTS series (
						series_id  bigint PRIMARY KEY,
						metric     text NOT NULL,
						labels     jsonb NOT NULL,
						created_at timestamptz NOT NULL DEFAULT now()
					)`,
					`CREATE INDEX IF NOT EXISTS series_metric_idx ON series (metric)`,
				}
				samples := `CREATE TABLE IF NOT EXISTS samples (
						time      timestamptz NOT NULL,
						series_id bigint NOT NULL,
						value     double precision NOT NULL,
						PRIMARY KEY (series_id, time)
					)`
				if mode == ModePostgreSQL {
					return append(stmts, samples+" PARTITION BY RANGE (time)")
				}
				return append(stmts, samples, fmt.Sprintf(
					`SELECT create_hypertable('samples', 'time', chunk_time_interval => %s, if_not_exists => TRUE)`,
					intervalLiteral(time.Duration(cfg.ChunkInterval))))
			},
		},
		{
			version:     2,
			description: "GIN index on series labels and the series_samples view",
			statements: func(Mode, Config) []string {
				return []string{
					`CREATE INDEX IF NOT EXISTS series_labels_idx ON series USING GIN (labels)`,
					`CREATE OR REPLACE VIEW series_samples AS
						SELECT s.time, r.metric, r.labels, s.value, s.series_id
						FROM samples s JOIN series r USING (series_id)`,
				}
			},
		},
	}
}

// latestSchemaVersion is the version a database has after migrate.
func latestSchemaVersion() int {
	m := schemaMigrations()
	return m[len(m)-1].version
}

// migrate applies the migrations up to version target that the database does not have yet,
// each in its own transaction holding the DDL advisory lock, and returns the versions it
// applied and the newest version the database has.
func migrate(ctx context.Context, db beginner, mode Mode, cfg Config, target int) (applied []int, newest int, err error) {
	err = inDDLTransaction(ctx, db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS cardinal_schema_migrations (
			version    int PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("creating cardinal_schema_migrations: %w", err)
	}
	for _, m := range schemaMigrations() {
		if m.version > target {
			break
		}
		var done bool
		err := inDDLTransaction(ctx, db, func(tx pgx.Tx) error {
			// Checked under the lock: another instance may just have applied it.
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM cardinal_schema_migrations WHERE version = $1)`,
				m.version).Scan(&done); err != nil || done {
				return err
			}
			for _, stmt := range m.statements(mode, cfg) {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO cardinal_schema_migrations (version, applied_at) VALUES ($1, now())`, m.version)
			return err
		})
		if err != nil {
			return applied, 0, fmt.Errorf("schema migration %d (%s): %w", m.version, m.description, err)
		}
		if !done {
			applied = append(applied, m.version)
		}
	}
	if err := db.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM cardinal_schema_migrations`).Scan(&newest); err != nil {
		return applied, 0, fmt.Errorf("reading the schema version: %w", err)
	}
	return applied, newest, nil
}

// intervalLiteral renders d as an SQL interval literal, for DDL where parameters are not
// allowed.
func intervalLiteral(d time.Duration) string {
	return fmt.Sprintf("INTERVAL '%d microseconds'", d.Microseconds())
}
