package timescale

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Plain-PostgreSQL partitioning: samples is PARTITION BY RANGE (time) with one partition per
// UTC day named samples_pYYYYMMDD. Partitions are created PartitionAhead in advance by the
// periodic maintenance and on demand, before a batch is inserted, for days that have none;
// retention drops whole partitions whose day ended more than Retention ago.

const (
	partitionPrefix = "samples_p"
	partitionLayout = "20060102"
	secondsPerDay   = 24 * 60 * 60
)

// dayOf is the UTC day of t, counted from the Unix epoch.
func dayOf(t time.Time) int64 {
	d := t.Unix() / secondsPerDay
	if t.Unix()%secondsPerDay < 0 {
		d--
	}
	return d
}

// dayOfMillis is the UTC day of a Prometheus millisecond timestamp.
func dayOfMillis(ms int64) int64 {
	d := ms / (secondsPerDay * 1000)
	if ms%(secondsPerDay*1000) < 0 {
		d--
	}
	return d
}

// dayStart is the first instant of day d.
func dayStart(d int64) time.Time { return time.Unix(d*secondsPerDay, 0).UTC() }

// partitionName is the name of the partition holding day d.
func partitionName(d int64) string { return partitionPrefix + dayStart(d).Format(partitionLayout) }

// parsePartitionName returns the day of a partition cardinal created, false for other tables.
func parsePartitionName(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, partitionPrefix)
	if !ok || len(rest) != len(partitionLayout) {
		return 0, false
	}
	t, err := time.Parse(partitionLayout, rest)
	if err != nil {
		return 0, false
	}
	return dayOf(t), true
}

// partitionTable is the schema the samples table lives in; partitions go beside it.
type partitionTable struct {
	schema string
}

// lookupPartitionTable finds the schema of the samples table.
func lookupPartitionTable(ctx context.Context, db querier) (partitionTable, error) {
	var p partitionTable
	err := db.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = 'samples'::regclass`).Scan(&p.schema)
	if err != nil {
		return p, fmt.Errorf("looking up the samples table: %w", err)
	}
	return p, nil
}

func (p partitionTable) qualified(name string) string {
	return pgx.Identifier{p.schema, name}.Sanitize()
}

// list returns the days that have a partition.
func (p partitionTable) list(ctx context.Context, db querier) (map[int64]struct{}, error) {
	rows, err := db.Query(ctx, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass`, p.qualified("samples"))
	if err != nil {
		return nil, fmt.Errorf("listing partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing partitions: %w", err)
	}
	days := make(map[int64]struct{}, len(names))
	for _, n := range names {
		if d, ok := parsePartitionName(n); ok {
			days[d] = struct{}{}
		}
	}
	return days, nil
}

// create makes sure the partitions of days exist and returns how many it created.
func (p partitionTable) create(ctx context.Context, db beginner, days []int64) (int, error) {
	created := 0
	err := inDDLTransaction(ctx, db, func(tx pgx.Tx) error {
		created = 0
		for _, d := range days {
			name := p.qualified(partitionName(d))
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
				return err
			}
			if exists {
				continue
			}
			_, err := tx.Exec(ctx, fmt.Sprintf(
				`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
				name, p.qualified("samples"),
				dayStart(d).Format("2006-01-02 15:04:05Z07:00"), dayStart(d+1).Format("2006-01-02 15:04:05Z07:00")))
			if err != nil {
				return fmt.Errorf("creating partition %s: %w", name, err)
			}
			created++
		}
		return nil
	})
	return created, err
}

// dropBefore drops the partitions whose whole day is before cutoff and returns their days.
func (p partitionTable) dropBefore(ctx context.Context, db beginner, cutoff time.Time) ([]int64, error) {
	var dropped []int64
	err := inDDLTransaction(ctx, db, func(tx pgx.Tx) error {
		dropped = dropped[:0]
		days, err := p.list(ctx, tx)
		if err != nil {
			return err
		}
		for d := range days {
			if dayStart(d + 1).After(cutoff) {
				continue
			}
			if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+p.qualified(partitionName(d))); err != nil {
				return fmt.Errorf("dropping partition %s: %w", partitionName(d), err)
			}
			dropped = append(dropped, d)
		}
		return nil
	})
	return dropped, err
}

// ensurePartitions creates, before a batch is inserted, the partitions of the days it
// touches that are not known to exist.
func (s *Sink) ensurePartitions(ctx context.Context, days map[int64]struct{}) error {
	if s.partitionDays == nil {
		known, err := s.partitions.list(ctx, s.pool)
		if err != nil {
			return err
		}
		s.partitionDays = known
	}
	var missing []int64
	for d := range days {
		if _, ok := s.partitionDays[d]; !ok {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	created, err := s.partitions.create(ctx, s.pool, missing)
	if err != nil {
		return err
	}
	for _, d := range missing {
		s.partitionDays[d] = struct{}{}
	}
	if created > 0 {
		s.metrics.partitionsCreated.Add(float64(created))
		s.logger.Debug("created partitions on demand", "count", created)
	}
	return nil
}

// maintainPartitions creates the partitions from today to PartitionAhead ahead and drops
// the ones retention has expired. It runs at start-up and periodically.
func (s *Sink) maintainPartitions(ctx context.Context) error {
	now := s.now()
	known, err := s.partitions.list(ctx, s.pool)
	if err != nil {
		return err
	}
	s.partitionDays = known
	ahead := make(map[int64]struct{})
	for d := dayOf(now); d <= dayOf(now.Add(time.Duration(s.cfg.PartitionAhead))); d++ {
		ahead[d] = struct{}{}
	}
	if err := s.ensurePartitions(ctx, ahead); err != nil {
		return err
	}
	if s.cfg.Retention <= 0 {
		return nil
	}
	dropped, err := s.partitions.dropBefore(ctx, s.pool, now.Add(-time.Duration(s.cfg.Retention)))
	if err != nil {
		return err
	}
	for _, d := range dropped {
		delete(s.partitionDays, d)
	}
	if len(dropped) > 0 {
		s.metrics.partitionsDropped.Add(float64(len(dropped)))
		s.logger.Info("retention dropped partitions", "count", len(dropped), "older_than", now.Add(-time.Duration(s.cfg.Retention)))
	}
	return nil
}
