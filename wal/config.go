package wal

import (
	"errors"
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// FsyncMode says when appended entries are forced to disk.
type FsyncMode string

const (
	// FsyncAlways makes Append return only after the entry is fsynced; concurrent appends
	// share one fsync (group commit).
	FsyncAlways FsyncMode = "always"
	// FsyncInterval fsyncs every FsyncInterval: a crash of the machine (not of the process)
	// can lose what was appended since the last fsync.
	FsyncInterval FsyncMode = "interval"
	// FsyncNever leaves writing back to the operating system.
	FsyncNever FsyncMode = "never"
)

// defaultSegmentSize is the size at which a segment file is closed and the next one started.
const defaultSegmentSize = 16 << 20

// minSegmentsInMaxBytes is how many segments max_bytes must hold at least: the log is
// truncated a segment at a time, so a smaller bound would leave almost no room to append.
const minSegmentsInMaxBytes = 4

// Config is the wal section of the configuration.
type Config struct {
	// Dir holds the segment files and checkpoints; it is created if missing.
	Dir string `yaml:"dir"`
	// Fsync is always, interval or never (default interval).
	Fsync FsyncMode `yaml:"fsync"`
	// FsyncInterval is the period of fsync: interval (default 1s).
	FsyncInterval setting.Duration `yaml:"fsync_interval"`
	// MaxBytes bounds the segment files on disk (default 1GiB); when an append would exceed
	// it, Append fails with ErrFull and the receiver answers 503.
	MaxBytes setting.ByteSize `yaml:"max_bytes"`
	// CheckpointInterval is how often the aggregation state is checkpointed (default 30s);
	// the log is truncated behind checkpoints, and a restart replays what came after the
	// newest, so this bounds both the log's size and the time a restart takes.
	CheckpointInterval setting.Duration `yaml:"checkpoint_interval"`
}

// DefaultConfig is a wal section with only its directory to fill in.
func DefaultConfig() Config {
	return Config{
		Fsync:         FsyncInterval,
		FsyncInterval: setting.Duration(time.Second),
		MaxBytes:      1 << 30,

		CheckpointInterval: setting.Duration(30 * time.Second),
	}
}

// plainConfig has no methods, so decoding into it does not recurse.
type plainConfig Config

// UnmarshalYAML fills the defaults, then the keys present.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	return unmarshal((*plainConfig)(c))
}

// Validate reports every problem of the section, each as a *setting.Error at its key.
func (c *Config) Validate() error { return c.validate(defaultSegmentSize) }

func (c *Config) validate(segmentSize int) error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, setting.At("dir").Errorf("wal.dir is required"))
	}
	if c.CheckpointInterval < setting.Duration(time.Second) {
		errs = append(errs, setting.At("checkpoint_interval").Errorf("wal.checkpoint_interval must be at least 1s, not %s", c.CheckpointInterval))
	}
	switch c.Fsync {
	case FsyncAlways, FsyncNever:
	case FsyncInterval:
		if c.FsyncInterval <= 0 {
			errs = append(errs, setting.At("fsync_interval").Errorf("wal.fsync_interval must be more than 0 with fsync: interval"))
		}
	default:
		errs = append(errs, setting.At("fsync").Errorf("wal.fsync must be always, interval or never, not %q", c.Fsync))
	}
	if least := setting.ByteSize(minSegmentsInMaxBytes * segmentSize); c.MaxBytes < least {
		errs = append(errs, setting.At("max_bytes").Errorf("wal.max_bytes must be at least %d (%d segments of %d bytes), not %d", least, minSegmentsInMaxBytes, segmentSize, c.MaxBytes))
	}
	return errors.Join(errs...)
}
