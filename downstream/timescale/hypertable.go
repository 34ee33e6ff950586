package timescale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TimescaleDB mode: the samples hypertable's settings and the policies cardinal manages.
//
// Cardinal owns the chunk interval, whether each policy exists, and the one setting of each
// policy its configuration sets (compress_after, drop_after). Everything else about a policy's
// job (schedule_interval, max_runtime, max_retries, retry_period, scheduled, next_start) is the
// operator's to tune with alter_job: a policy is created only when it is missing, changed only
// when the configured age differs, and removed only when the configuration turns it off.

// samplesTableSQL is the schema and name of the samples table, for TimescaleDB's information
// views, which name hypertables by (hypertable_schema, hypertable_name).
const samplesTableSQL = `(SELECT n.nspname::text, c.relname::text FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass('samples'))`

// timescaleFeatures is what the installed TimescaleDB offers among what cardinal uses.
type timescaleFeatures struct {
	version string
	// columnstore: TimescaleDB 2.18 renamed compression to columnstore (add_columnstore_policy,
	// ALTER TABLE ... SET (timescaledb.enable_columnstore)); the old names still work there.
	columnstore bool
	// jobErrors: the view timescaledb_information.job_errors exists.
	jobErrors bool
}

// detectFeatures looks at what the installed TimescaleDB provides, by name rather than by
// version number.
func detectFeatures(ctx context.Context, db querier) (timescaleFeatures, error) {
	var f timescaleFeatures
	err := db.QueryRow(ctx, `SELECT e.extversion,
		EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = e.extnamespace AND p.proname = 'add_columnstore_policy'),
		to_regclass('timescaledb_information.job_errors') IS NOT NULL
		FROM pg_extension e WHERE e.extname = 'timescaledb'`).Scan(&f.version, &f.columnstore, &f.jobErrors)
	if err != nil {
		return f, fmt.Errorf("reading the timescaledb extension's features: %w", err)
	}
	return f, nil
}

// policy is one TimescaleDB policy cardinal manages on the samples hypertable.
type policy struct {
	kind      string        // compression or retention: the job label of the metrics
	proc      string        // proc_name of the policy's job
	configKey string        // the key of the job's config that cardinal owns
	after     time.Duration // the configured age; 0: there must be no such policy
}

// policies are the policies cfg asks for (after 0: none).
func policies(cfg Config) []policy {
	p := []policy{
		{kind: "compression", proc: "policy_compression", configKey: "compress_after"},
		{kind: "retention", proc: "policy_retention", configKey: "drop_after"},
	}
	if cfg.Compression {
		p[0].after = cfg.CompressAge()
	}
	p[1].after = time.Duration(cfg.Retention)
	return p
}

// policyKind is the job label of a job's proc_name: compression, retention, or the proc_name.
func policyKind(proc string) string {
	for _, p := range policies(Config{}) {
		if p.proc == proc {
			return p.kind
		}
	}
	return proc
}

// configureHypertable brings the samples hypertable in line with cfg at every start: the
// chunk interval (for new chunks), compression segmented by series_id, and the policies,
// created when missing and changed only in the setting cardinal owns. It returns what it
// changed, for the log.
func configureHypertable(ctx context.Context, db beginner, cfg Config, f timescaleFeatures) (changes []string, err error) {
	err = inDDLTransaction(ctx, db, func(tx pgx.Tx) error {
		changes = changes[:0]
		if _, err := tx.Exec(ctx, `SELECT set_chunk_time_interval('samples', $1::interval)`, time.Duration(cfg.ChunkInterval)); err != nil {
			return fmt.Errorf("setting the chunk interval: %w", err)
		}
		if cfg.Compression {
			enabled, err := enableCompression(ctx, tx, f)
			if err != nil {
				return err
			}
			if enabled {
				changes = append(changes, "enabled compression (segmentby series_id, orderby time DESC)")
			}
		}
		for _, p := range policies(cfg) {
			change, err := managePolicy(ctx, tx, f, p)
			if err != nil {
				return fmt.Errorf("%s policy: %w", p.kind, err)
			}
			if change != "" {
				changes = append(changes, change)
			}
		}
		return nil
	})
	return changes, err
}

// enableCompression turns compression (the columnstore) on for samples unless it is on, and
// reports whether it did.
func enableCompression(ctx context.Context, tx pgx.Tx, f timescaleFeatures) (bool, error) {
	var enabled bool
	if err := tx.QueryRow(ctx, `SELECT compression_enabled FROM timescaledb_information.hypertables
		WHERE (hypertable_schema, hypertable_name) = `+samplesTableSQL).Scan(&enabled); err != nil {
		return false, fmt.Errorf("reading the compression settings: %w", err)
	}
	if enabled {
		return false, nil
	}
	stmt := `ALTER TABLE samples SET (timescaledb.compress, timescaledb.compress_segmentby = 'series_id',
		timescaledb.compress_orderby = 'time DESC')`
	if f.columnstore {
		stmt = `ALTER TABLE samples SET (timescaledb.enable_columnstore = true, timescaledb.segmentby = 'series_id',
			timescaledb.orderby = 'time DESC')`
	}
	if _, err := tx.Exec(ctx, stmt); err != nil {
		return false, fmt.Errorf("enabling compression: %w", err)
	}
	return true, nil
}

// managePolicy makes p's job on samples exist with p's age, or not exist when p.after is 0,
// leaving the rest of an existing job as it is. It returns what it changed ("" for nothing).
func managePolicy(ctx context.Context, tx pgx.Tx, f timescaleFeatures, p policy) (string, error) {
	var id int
	var current string
	var same bool
	err := tx.QueryRow(ctx, `SELECT job_id, coalesce(config->>$2, ''),
			coalesce((config->>$2)::interval = $3::interval, false)
		FROM timescaledb_information.jobs
		WHERE proc_name = $1 AND (hypertable_schema, hypertable_name) = `+samplesTableSQL+`
		ORDER BY job_id LIMIT 1`, p.proc, p.configKey, p.after).Scan(&id, &current, &same)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("reading its job: %w", err)
	}
	switch {
	case !exists && p.after == 0, exists && p.after != 0 && same:
		return "", nil
	case exists && p.after == 0:
		if _, err := tx.Exec(ctx, removePolicySQL(p, f)); err != nil {
			return "", fmt.Errorf("removing it: %w", err)
		}
		return fmt.Sprintf("removed the %s policy (job %d): not configured", p.kind, id), nil
	case exists:
		if _, err := tx.Exec(ctx, `SELECT alter_job(job_id, config => jsonb_set(config, ARRAY[$2::text], to_jsonb($3::interval::text)))
			FROM timescaledb_information.jobs WHERE job_id = $1`, id, p.configKey, p.after); err != nil {
			return "", fmt.Errorf("changing %s of job %d: %w", p.configKey, id, err)
		}
		return fmt.Sprintf("changed %s of the %s policy (job %d) from %s to %s", p.configKey, p.kind, id, current, p.after), nil
	}
	if _, err := tx.Exec(ctx, addPolicySQL(p, f), p.after); err != nil {
		return "", fmt.Errorf("adding it: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT job_id FROM timescaledb_information.jobs
		WHERE proc_name = $1 AND (hypertable_schema, hypertable_name) = `+samplesTableSQL+`
		ORDER BY job_id LIMIT 1`, p.proc).Scan(&id); err != nil {
		return "", fmt.Errorf("reading the job just added: %w", err)
	}
	return fmt.Sprintf("created the %s policy (job %d, %s %s)", p.kind, id, p.configKey, p.after), nil
}

// addPolicySQL adds p with its age as $1, under the columnstore name where there is one.
func addPolicySQL(p policy, f timescaleFeatures) string {
	switch {
	case p.kind == "retention":
		return `SELECT add_retention_policy('samples', drop_after => $1::interval)`
	case f.columnstore:
		return `CALL add_columnstore_policy('samples', after => $1::interval)`
	}
	return `SELECT add_compression_policy('samples', compress_after => $1::interval)`
}

// removePolicySQL removes p, under the columnstore name where there is one.
func removePolicySQL(p policy, f timescaleFeatures) string {
	switch {
	case p.kind == "retention":
		return `SELECT remove_retention_policy('samples')`
	case f.columnstore:
		return `CALL remove_columnstore_policy('samples')`
	}
	return `SELECT remove_compression_policy('samples')`
}
