package timescale

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// DefaultCompressAfter is compress_after when compression is on and it is not set.
const DefaultCompressAfter = 7 * 24 * time.Hour

// Config is one PostgreSQL / TimescaleDB sink (an entry of downstream.timescaledb).
type Config struct {
	// Name labels the downstream in metrics (default "timescaledb-N", N counting from 1).
	Name string `yaml:"name"`
	// DSN is a libpq connection string or URL, as pgx accepts it
	// ("postgres://user:pass@host:5432/db?sslmode=disable").
	DSN setting.Secret `yaml:"dsn"`
	// ChunkInterval is the hypertable chunk length (default 1d, at least 1m). Plain
	// PostgreSQL always uses daily partitions.
	ChunkInterval setting.Duration `yaml:"chunk_interval"`
	// Compression enables TimescaleDB native compression (segmented by series_id) of chunks
	// older than CompressAfter (default 7d). Ignored without TimescaleDB.
	Compression   bool             `yaml:"compression"`
	CompressAfter setting.Duration `yaml:"compress_after"`
	// Retention drops data older than this (0, the default, keeps everything). Samples
	// already older than Retention when they arrive are not written.
	Retention setting.Duration `yaml:"retention"`
	// PartitionAhead is how far ahead daily partitions are created on plain PostgreSQL
	// (default 3d). In both modes, samples further ahead than PartitionAhead plus a day are
	// not written.
	PartitionAhead setting.Duration `yaml:"partition_ahead"`
	// BatchSize is the number of samples written per statement (default 5000).
	BatchSize int `yaml:"batch_size"`
	// MaxQueueBytes bounds the data waiting to be written (default 64MiB); when it is
	// reached, the receiver answers 503.
	MaxQueueBytes setting.ByteSize `yaml:"max_queue_bytes"`
}

// DefaultConfig is an entry with only its DSN to fill in.
func DefaultConfig() Config {
	return Config{
		ChunkInterval:  setting.Duration(24 * time.Hour),
		PartitionAhead: setting.Duration(3 * 24 * time.Hour),
		BatchSize:      5000,
		MaxQueueBytes:  64 << 20,
	}
}

// plainConfig has no methods, so decoding into it does not recurse.
type plainConfig Config

// UnmarshalYAML fills the defaults, then the keys present.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	return unmarshal((*plainConfig)(c))
}

// CompressAge is the age after which chunks are compressed when Compression is on:
// CompressAfter, or DefaultCompressAfter when it is not set.
func (c *Config) CompressAge() time.Duration {
	if c.CompressAfter == 0 {
		return DefaultCompressAfter
	}
	return time.Duration(c.CompressAfter)
}

// Validate reports every problem of the entry, the DSN's syntax included (nothing is
// connected to), each as a *setting.Error at its key.
func (c *Config) Validate() error {
	_, err := c.poolConfig()
	return err
}

// poolConfig validates c and parses its DSN into a pool configuration.
func (c *Config) poolConfig() (*pgxpool.Config, error) {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, setting.At("dsn").Errorf("timescaledb: dsn is required (e.g. postgres://user:password@host:5432/metrics)"))
	}
	if time.Duration(c.ChunkInterval) < time.Minute {
		errs = append(errs, setting.At("chunk_interval").Errorf("timescaledb: chunk_interval must be at least 1m, not %s", c.ChunkInterval))
	}
	if !c.Compression && c.CompressAfter != 0 {
		errs = append(errs, setting.At("compress_after").Errorf("timescaledb: compress_after needs compression: true"))
	}
	if c.CompressAfter < 0 {
		errs = append(errs, setting.At("compress_after").Errorf("timescaledb: compress_after must not be negative, not %s", c.CompressAfter))
	}
	if c.Retention < 0 {
		errs = append(errs, setting.At("retention").Errorf("timescaledb: retention must not be negative, not %s", c.Retention))
	}
	if c.PartitionAhead < 0 {
		errs = append(errs, setting.At("partition_ahead").Errorf("timescaledb: partition_ahead must not be negative, not %s", c.PartitionAhead))
	}
	if c.BatchSize <= 0 {
		errs = append(errs, setting.At("batch_size").Errorf("timescaledb: batch_size must be more than 0"))
	}
	if c.MaxQueueBytes <= 0 {
		errs = append(errs, setting.At("max_queue_bytes").Errorf("timescaledb: max_queue_bytes must be more than 0"))
	}
	if c.DSN == "" {
		return nil, errors.Join(errs...)
	}
	pc, err := pgxpool.ParseConfig(string(c.DSN))
	if err != nil {
		// pgx's message never includes the password.
		errs = append(errs, setting.At("dsn").Errorf("timescaledb: dsn: %v", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pc, nil
}
