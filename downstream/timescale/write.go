package timescale

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
)

// Timestamps PostgreSQL and the partition names can hold: years 0001 to 9999.
const (
	minTimestampMillis = -62135596800000 // 0001-01-01T00:00:00Z
	maxTimestampMillis = 253402300799999 // 9999-12-31T23:59:59.999Z
)

// Both statements take whole columns as arrays (one round trip for thousands of rows) and
// ignore rows already present, so a retried batch or a replayed window inserts nothing twice.
const (
	insertSeriesSQL = `INSERT INTO series (series_id, metric, labels)
		SELECT id, metric, labels::jsonb FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, metric, labels)
		ON CONFLICT (series_id) DO NOTHING`
	insertSamplesSQL = `INSERT INTO samples (time, series_id, value)
		SELECT * FROM unnest($1::timestamptz[], $2::bigint[], $3::float8[])
		ON CONFLICT (series_id, time) DO NOTHING`
	// insertSamplesIfAbsentSQL is insertSamplesSQL for rows that may fall in compressed
	// chunks (TimescaleDB): the rows already stored are left out before the INSERT, because
	// an INSERT ... ON CONFLICT into a compressed chunk decompresses the batches it checks and
	// leaves the chunk partially compressed (to be compressed again) even when it inserts
	// nothing, as a re-send after a restart does. The lookup is a LATERAL ... LIMIT 1 so that
	// it stays a nested loop of index lookups (one chunk, one compressed batch per row, about
	// 40 µs): written as NOT EXISTS, the planner hashes the whole hypertable, decompressing
	// every chunk.
	insertSamplesIfAbsentSQL = `INSERT INTO samples (time, series_id, value)
		SELECT u.t, u.id, u.v FROM unnest($1::timestamptz[], $2::bigint[], $3::float8[]) AS u(t, id, v)
		LEFT JOIN LATERAL (SELECT true AS found FROM samples s WHERE s.series_id = u.id AND s.time = u.t LIMIT 1) x ON true
		WHERE x.found IS NULL
		ON CONFLICT (series_id, time) DO NOTHING`
	// compressedUntilSQL is the end of the newest compressed chunk of samples, NULL when
	// there is none.
	compressedUntilSQL = `SELECT max(range_end) FROM timescaledb_information.chunks
		WHERE (hypertable_schema, hypertable_name) = ` + samplesTableSQL + ` AND is_compressed`
)

// batch is one write: the columns of the sample rows, the series not known to be stored yet,
// and what was left out. It is reused from batch to batch by the writer goroutine.
type batch struct {
	times  []time.Time
	ids    []int64
	values []float64

	newMetrics, newLabels []string
	newSeries             []int64
	seen                  map[int64]struct{}

	days    map[int64]struct{} // UTC days the rows fall in
	dropped map[string]int     // samples left out, by reason

	// The rows split by write in TimescaleDB mode: those that may fall in a compressed chunk
	// and the others.
	oldTimes, newTimes   []time.Time
	oldIDs, newIDs       []int64
	oldValues, newValues []float64
}

func newBatch() *batch {
	return &batch{seen: make(map[int64]struct{}), days: make(map[int64]struct{}), dropped: make(map[string]int)}
}

// build turns series into rows. Stale markers, native histograms, timestamps PostgreSQL
// cannot hold, samples already past retention and samples further in the future than
// PartitionAhead plus a day (a client with a broken clock must not create a partition per
// day for years ahead) are left out and counted.
func (s *Sink) build(b *batch, series []prompb.TimeSeries) {
	b.times, b.ids, b.values = b.times[:0], b.ids[:0], b.values[:0]
	b.newSeries, b.newMetrics, b.newLabels = b.newSeries[:0], b.newMetrics[:0], b.newLabels[:0]
	clear(b.seen)
	clear(b.days)
	clear(b.dropped)
	now := s.now()
	oldest := int64(math.MinInt64)
	if s.cfg.Retention > 0 {
		oldest = now.Add(-time.Duration(s.cfg.Retention)).UnixMilli()
	}
	newest := now.Add(time.Duration(s.cfg.PartitionAhead) + 24*time.Hour).UnixMilli()
	for i := range series {
		ts := &series[i]
		if n := len(ts.Histograms); n > 0 {
			b.dropped[dropHistogram] += n
		}
		if len(ts.Samples) == 0 {
			continue
		}
		id := s.hasher.seriesID(ts.Labels)
		rows := 0
		for _, smp := range ts.Samples {
			switch {
			case value.IsStaleNaN(smp.Value):
				b.dropped[dropStaleMarker]++
				continue
			case smp.Timestamp < minTimestampMillis || smp.Timestamp > maxTimestampMillis:
				b.dropped[dropOutOfRange]++
				continue
			case smp.Timestamp < oldest:
				b.dropped[dropRetention]++
				continue
			case smp.Timestamp > newest:
				b.dropped[dropFuture]++
				continue
			}
			b.times = append(b.times, time.UnixMilli(smp.Timestamp).UTC())
			b.ids = append(b.ids, id)
			b.values = append(b.values, smp.Value)
			b.days[dayOfMillis(smp.Timestamp)] = struct{}{}
			rows++
		}
		if rows == 0 || s.cache.contains(id) {
			continue
		}
		if _, dup := b.seen[id]; dup {
			continue
		}
		b.seen[id] = struct{}{}
		row := newSeriesRow(id, ts.Labels)
		b.newSeries = append(b.newSeries, id)
		b.newMetrics = append(b.newMetrics, row.metric)
		b.newLabels = append(b.newLabels, row.labels)
	}
}

// write inserts a built batch: first the partitions it needs (plain PostgreSQL), then, in
// one round trip and one implicit transaction, its new series and its samples.
func (s *Sink) write(ctx context.Context, b *batch) error {
	if len(b.ids) == 0 {
		return nil
	}
	start := time.Now()
	if s.Mode() == ModePostgreSQL {
		if err := s.ensurePartitions(ctx, b.days); err != nil {
			return err
		}
	}
	var q pgx.Batch
	var seriesResult *pgx.QueuedQuery
	if len(b.newSeries) > 0 {
		seriesResult = q.Queue(insertSeriesSQL, b.newSeries, b.newMetrics, b.newLabels)
	}
	var seriesInserted, rowsInserted int64
	countRows := func(tag pgconn.CommandTag) error { rowsInserted += tag.RowsAffected(); return nil }
	if s.Mode() == ModeTimescaleDB {
		until, err := s.compressedEnd(ctx)
		if err != nil {
			return err
		}
		b.splitAt(until)
		if len(b.oldIDs) > 0 {
			q.Queue(insertSamplesIfAbsentSQL, b.oldTimes, b.oldIDs, b.oldValues).Exec(countRows)
		}
		if len(b.newIDs) > 0 {
			q.Queue(insertSamplesSQL, b.newTimes, b.newIDs, b.newValues).Exec(countRows)
		}
	} else {
		q.Queue(insertSamplesSQL, b.times, b.ids, b.values).Exec(countRows)
	}
	if seriesResult != nil {
		seriesResult.Exec(func(tag pgconn.CommandTag) error { seriesInserted = tag.RowsAffected(); return nil })
	}
	if err := s.pool.SendBatch(ctx, &q).Close(); err != nil {
		return err
	}
	for _, id := range b.newSeries {
		s.cache.add(id)
	}
	s.metrics.seriesCreated.Add(float64(seriesInserted))
	s.metrics.rowsWritten.Add(float64(rowsInserted))
	s.metrics.rowsDuplicate.Add(float64(int64(len(b.ids)) - rowsInserted))
	s.metrics.batchDuration.Observe(time.Since(start).Seconds())
	return nil
}

// countDropped adds the samples a batch left out to the metrics, once per batch.
func (s *Sink) countDropped(b *batch) {
	for reason, n := range b.dropped {
		s.metrics.rowsDropped.WithLabelValues(reason).Add(float64(n))
	}
}

// splitAt splits the batch's rows into those before until (old) and the others (new).
func (b *batch) splitAt(until time.Time) {
	b.oldTimes, b.oldIDs, b.oldValues = b.oldTimes[:0], b.oldIDs[:0], b.oldValues[:0]
	b.newTimes, b.newIDs, b.newValues = b.newTimes[:0], b.newIDs[:0], b.newValues[:0]
	for i, t := range b.times {
		if t.Before(until) {
			b.oldTimes, b.oldIDs, b.oldValues = append(b.oldTimes, t), append(b.oldIDs, b.ids[i]), append(b.oldValues, b.values[i])
		} else {
			b.newTimes, b.newIDs, b.newValues = append(b.newTimes, t), append(b.newIDs, b.ids[i]), append(b.newValues, b.values[i])
		}
	}
}

// compressedEnd is the end of the newest compressed chunk (zero when none is compressed), read
// again when it is older than compressedRefresh. A chunk compressed since then only costs its
// recompression if a re-send touches it: what is stored stays right either way.
func (s *Sink) compressedEnd(ctx context.Context) (time.Time, error) {
	if !s.compressedAt.IsZero() && time.Since(s.compressedAt) < s.compressedRefresh {
		return s.compressedUntil, nil
	}
	var until *time.Time
	if err := s.pool.QueryRow(ctx, compressedUntilSQL).Scan(&until); err != nil {
		return time.Time{}, fmt.Errorf("reading the end of the compressed chunks: %w", err)
	}
	s.compressedUntil, s.compressedAt = time.Time{}, time.Now()
	if until != nil {
		s.compressedUntil = *until
	}
	return s.compressedUntil, nil
}
