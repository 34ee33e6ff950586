package timescale

import (
	"context"
	"fmt"
	"time"
)

// setup detects the storage mode, migrates the schema and applies the mode's settings.
func (s *Sink) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	mode, reason, err := detectMode(ctx, s.pool)
	if err != nil {
		return err
	}
	latest := latestSchemaVersion()
	applied, newest, err := migrate(ctx, s.pool, mode, s.cfg, latest)
	if err != nil {
		return err
	}
	if newest > latest {
		s.logger.Warn("the database schema is newer than this cardinal knows; writing anyway",
			"schema_version", newest, "known_version", latest)
	}
	s.features.Store(nil)
	switch mode {
	case ModeTimescaleDB:
		f, err := detectFeatures(ctx, s.pool)
		if err != nil {
			return err
		}
		changes, err := configureHypertable(ctx, s.pool, s.cfg, f)
		if err != nil {
			return fmt.Errorf("configuring the samples hypertable: %w", err)
		}
		for _, c := range changes {
			s.logger.Info("timescaledb: "+c, "timescaledb_version", f.version)
		}
		s.features.Store(&f)
		s.compressedAt = time.Time{}
	case ModePostgreSQL:
		p, err := lookupPartitionTable(ctx, s.pool)
		if err != nil {
			return err
		}
		s.partitions, s.partitionDays = p, nil
		if err := s.maintainPartitions(ctx); err != nil {
			return fmt.Errorf("creating partitions: %w", err)
		}
	}
	s.cache.reset()
	s.mode.Store(&mode)
	s.metrics.setMode(mode)
	s.schemaReady = true
	s.logger.Info("storage mode chosen", "mode", mode, "reason", reason,
		"schema_version", newest, "migrations_applied", applied)
	return nil
}
