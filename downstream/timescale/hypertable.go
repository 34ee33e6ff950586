package timescale

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// configureHypertable brings the samples hypertable's settings in line with cfg at every
// start: the chunk interval (for new chunks), compression segmented by series_id with its
// policy, and the retention policy. Policies are replaced rather than added "if not
// exists", so a changed interval takes effect.
func configureHypertable(ctx context.Context, db beginner, cfg Config) error {
	return inDDLTransaction(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_chunk_time_interval('samples', $1::interval)`, time.Duration(cfg.ChunkInterval)); err != nil {
			return fmt.Errorf("setting the chunk interval: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT remove_compression_policy('samples', if_exists => TRUE)`); err != nil {
			return fmt.Errorf("removing the compression policy: %w", err)
		}
		if cfg.Compression {
			var enabled bool
			if err := tx.QueryRow(ctx, `
				SELECT compression_enabled FROM timescaledb_information.hypertables
				WHERE format('%I.%I', hypertable_schema, hypertable_name)::regclass = 'samples'::regclass`).Scan(&enabled); err != nil {
				return fmt.Errorf("reading the compression settings: %w", err)
			}
			if !enabled {
				if _, err := tx.Exec(ctx, `ALTER TABLE samples SET (
					timescaledb.compress,
					timescaledb.compress_segmentby = 'series_id',
					timescaledb.compress_orderby = 'time DESC')`); err != nil {
					return fmt.Errorf("enabling compression: %w", err)
				}
			}
			if _, err := tx.Exec(ctx, `SELECT add_compression_policy('samples', compress_after => $1::interval)`, cfg.CompressAge()); err != nil {
				return fmt.Errorf("adding the compression policy: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `SELECT remove_retention_policy('samples', if_exists => TRUE)`); err != nil {
			return fmt.Errorf("removing the retention policy: %w", err)
		}
		if cfg.Retention > 0 {
			if _, err := tx.Exec(ctx, `SELECT add_retention_policy('samples', drop_after => $1::interval)`, time.Duration(cfg.Retention)); err != nil {
				return fmt.Errorf("adding the retention policy: %w", err)
			}
		}
		return nil
	})
}
