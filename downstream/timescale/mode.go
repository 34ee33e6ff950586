package timescale

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Mode is how the samples table is stored.
type Mode string

const (
	// ModeTimescaleDB stores samples in a TimescaleDB hypertable, with TimescaleDB's chunk
	// interval, compression and retention policies.
	ModeTimescaleDB Mode = "timescaledb"
	// ModePostgreSQL stores samples in a table range-partitioned by day with PostgreSQL's
	// native partitioning; cardinal creates the partitions and drops them for retention.
	ModePostgreSQL Mode = "postgresql"
)

// detectMode decides the storage mode and says why. A samples table that already exists
// keeps the layout it has; otherwise TimescaleDB is used when its extension is installed in
// the database, or available on the server, preloaded, and can be created, and plain
// PostgreSQL when not.
func detectMode(ctx context.Context, db beginner) (Mode, string, error) {
	var relkind, schema string
	err := db.QueryRow(ctx, `
		SELECT c.relkind::text, n.nspname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass('samples')`).Scan(&relkind, &schema)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", "", fmt.Errorf("looking for the samples table: %w", err)
	}
	installed, version, err := timescaleInstalled(ctx, db)
	if err != nil {
		return "", "", err
	}

	if exists {
		if relkind == "p" {
			return ModePostgreSQL, fmt.Sprintf("the existing table %s.samples is partitioned natively", schema), nil
		}
		if installed {
			var hyper bool
			if err := db.QueryRow(ctx, `
				SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
				               WHERE hypertable_schema = $1 AND hypertable_name = 'samples')`,
				schema).Scan(&hyper); err != nil {
				return "", "", fmt.Errorf("checking whether samples is a hypertable: %w", err)
			}
			if hyper {
				return ModeTimescaleDB, fmt.Sprintf("the existing table %s.samples is a hypertable (timescaledb %s)", schema, version), nil
			}
		}
		return "", "", fmt.Errorf("table %s.samples exists but is neither a hypertable nor partitioned by range: "+
			"rename or drop it, or point cardinal at another database or search_path", schema)
	}

	if installed {
		return ModeTimescaleDB, fmt.Sprintf("extension timescaledb %s is installed in the database", version), nil
	}
	var available string
	err = db.QueryRow(ctx, `SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'`).Scan(&available)
	if errors.Is(err, pgx.ErrNoRows) {
		return ModePostgreSQL, "extension timescaledb is not available on the server", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("looking for the timescaledb extension: %w", err)
	}
	var preloaded bool
	if err := db.QueryRow(ctx, `SELECT 'timescaledb' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))`).Scan(&preloaded); err != nil {
		return "", "", fmt.Errorf("reading shared_preload_libraries: %w", err)
	}
	if !preloaded {
		// CREATE EXTENSION would fail: TimescaleDB must be loaded when the server starts.
		return ModePostgreSQL, fmt.Sprintf("extension timescaledb %s is available but not preloaded "+
			"(add timescaledb to shared_preload_libraries and restart PostgreSQL, "+
			"then drop the samples table before the next start to switch)", available), nil
	}
	err = inDDLTransaction(ctx, db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS timescaledb")
		return err
	})
	if err != nil {
		return ModePostgreSQL, fmt.Sprintf("extension timescaledb %s is available but could not be created (%v); "+
			"create it and drop the samples table before the next start to switch", available, err), nil
	}
	return ModeTimescaleDB, fmt.Sprintf("extension timescaledb %s was available and has been created", available), nil
}

// timescaleInstalled reports whether the timescaledb extension is installed in the database.
func timescaleInstalled(ctx context.Context, db querier) (bool, string, error) {
	var version string
	err := db.QueryRow(ctx, `SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'`).Scan(&version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, "", nil
	case err != nil:
		return false, "", fmt.Errorf("looking for the timescaledb extension: %w", err)
	}
	return true, version, nil
}
