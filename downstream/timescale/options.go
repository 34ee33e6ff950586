package timescale

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults applied by New to the zero fields of Options.
const (
	DefaultChunkInterval  = 24 * time.Hour
	DefaultPartitionAhead = 3 * 24 * time.Hour
	DefaultBatchSize      = 5000
	DefaultMaxQueueBytes  = 64 << 20
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	defaultName           = "timescaledb"
)

// Options configures one TimescaleDB / PostgreSQL downstream (one entry of
// `downstream.timescaledb` in the config file).
type Options struct {
	// Name identifies the downstream in logs and in the `downstream` label of the metrics.
	Name string
	// DSN is a libpq connection string or URL, as accepted by pgx
	// ("postgres://user:pass@host:5432/db?sslmode=disable").
	DSN string
	// ChunkInterval is the TimescaleDB chunk interval of the samples hypertable. Plain
	// PostgreSQL always uses daily partitions.
	ChunkInterval time.Duration
	// Compression enables TimescaleDB native compression (segmented by series_id) of chunks
	// older than CompressAfter. Ignored without TimescaleDB.
	Compression bool
	// CompressAfter is the age after which chunks are compressed when Compression is on.
	CompressAfter time.Duration
	// Retention is how long samples are kept; 0 keeps them forever. Samples already older
	// than Retention when they arrive are not written.
	Retention time.Duration
	// PartitionAhead is how far into the future daily partitions are created in advance
	// (plain PostgreSQL). In both modes, samples further ahead than PartitionAhead plus a day
	// are not written.
	PartitionAhead time.Duration
	// BatchSize is the number of samples written per statement.
	BatchSize int
	// MaxQueueBytes bounds the memory of the series waiting to be written; when it is
	// reached, Full reports true and the receiver answers 503.
	MaxQueueBytes int64
	// MinBackoff and MaxBackoff bound the exponential backoff (with jitter) between retries.
	MinBackoff, MaxBackoff time.Duration
}

// withDefaults returns o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = defaultName
	}
	if o.ChunkInterval == 0 {
		o.ChunkInterval = DefaultChunkInterval
	}
	if o.CompressAfter == 0 {
		o.CompressAfter = DefaultCompressAfter
	}
	if o.PartitionAhead == 0 {
		o.PartitionAhead = DefaultPartitionAhead
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxQueueBytes == 0 {
		o.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	return o
}

// validate checks o (after defaults) and parses its DSN into a pool configuration.
func (o Options) validate() (*pgxpool.Config, error) {
	var errs []error
	if o.DSN == "" {
		errs = append(errs, errors.New("dsn is required"))
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"chunk_interval", o.ChunkInterval},
		{"compress_after", o.CompressAfter},
		{"retention", o.Retention},
		{"partition_ahead", o.PartitionAhead},
		{"min_backoff", o.MinBackoff},
		{"max_backoff", o.MaxBackoff},
	} {
		if d.value < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", d.name, d.value))
		}
	}
	if o.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch_size must not be negative, got %d", o.BatchSize))
	}
	if o.MaxQueueBytes < 0 {
		errs = append(errs, fmt.Errorf("max_queue_bytes must not be negative, got %d", o.MaxQueueBytes))
	}
	if o.MinBackoff > o.MaxBackoff {
		errs = append(errs, fmt.Errorf("min_backoff (%s) must not exceed max_backoff (%s)", o.MinBackoff, o.MaxBackoff))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		// pgx's message never includes the password.
		return nil, fmt.Errorf("dsn: %w", err)
	}
	return cfg, nil
}
