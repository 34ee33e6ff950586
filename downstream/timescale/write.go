package timescale

import (
	"context"
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
	var seriesResult, samplesResult *pgx.QueuedQuery
	if len(b.newSeries) > 0 {
		seriesResult = q.Queue(insertSeriesSQL, b.newSeries, b.newMetrics, b.newLabels)
	}
	samplesResult = q.Queue(insertSamplesSQL, b.times, b.ids, b.values)
	var seriesInserted, rowsInserted int64
	if seriesResult != nil {
		seriesResult.Exec(func(tag pgconn.CommandTag) error { seriesInserted = tag.RowsAffected(); return nil })
	}
	samplesResult.Exec(func(tag pgconn.CommandTag) error { rowsInserted = tag.RowsAffected(); return nil })
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
