package timescale

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/downstream/timescale/pgtest"
)

// BenchmarkWriteRows measures rows per second into a real PostgreSQL started with its default
// durability (fsync and synchronous commit on), through the sink's own batch building and
// writing, one batch of batch_size (default) rows per iteration, in both storage modes
// (postgresql/..., timescaledb/...). `make bench` runs it.
//
//	known_series: steady state, every series already stored and cached (one sample per
//	              series per flush, as the aggregator emits them)
//	new_series:   every row belongs to a series never seen, so each batch also inserts
//	              5000 series (a first flush, or heavy churn)
func BenchmarkWriteRows(b *testing.B) {
	for _, mode := range modes {
		b.Run(string(mode), func(b *testing.B) { benchmarkWriteRows(b, mode) })
	}
}

// benchmarkWriteRows is BenchmarkWriteRows in one storage mode: into daily partitions of
// plain PostgreSQL, or into a TimescaleDB hypertable (default chunk interval, no compression).
func benchmarkWriteRows(b *testing.B, mode Mode) {
	pg := startServer(b, mode, pgtest.Durable())
	ctx := context.Background()
	const seriesPool = 50_000
	t0 := millis("2024-06-01T00:00:00Z")

	for _, bc := range []struct {
		name string
		// flush returns the series of iteration i.
		flush func(i int) []prompb.TimeSeries
		warm  bool
	}{
		{
			name: "known_series",
			flush: func(i int) []prompb.TimeSeries {
				first := (i * DefaultConfig().BatchSize) % seriesPool
				round := (i * DefaultConfig().BatchSize) / seriesPool
				return benchSeries("known", first, DefaultConfig().BatchSize, t0+int64(round)*15_000)
			},
			warm: true,
		},
		{
			name: "new_series",
			flush: func(i int) []prompb.TimeSeries {
				return benchSeries("new", i*DefaultConfig().BatchSize, DefaultConfig().BatchSize, t0)
			},
		},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dsn := pg.CreateDatabase(b, bc.name)
			s, err := New(ctx, testConfig(dsn, nil), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown(ctx)
			if err := s.setup(ctx); err != nil {
				b.Fatal(err)
			}
			if s.Mode() != mode {
				b.Fatalf("mode %q, want %q", s.Mode(), mode)
			}
			batch := newBatch()
			if bc.warm {
				for first := 0; first < seriesPool; first += DefaultConfig().BatchSize {
					s.build(batch, benchSeries("known", first, DefaultConfig().BatchSize, t0-15_000))
					if err := s.write(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
			}
			rows := 0
			var elapsed time.Duration
			i := 0
			for b.Loop() {
				series := bc.flush(i) // built outside the measured time: it stands for the flush
				i++
				start := time.Now()
				s.build(batch, series)
				if err := s.write(ctx, batch); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				rows += len(batch.ids)
			}
			b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
		})
	}
}

// benchSeries is n series (numbered from first) with one sample each at ts.
func benchSeries(name string, first, n int, ts int64) []prompb.TimeSeries {
	series := make([]prompb.TimeSeries, n)
	for i := range series {
		id := strconv.Itoa(first + i)
		series[i] = prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: name + "_requests_total"},
				{Name: "code", Value: "200"},
				{Name: "job", Value: "api"},
				{Name: "route", Value: "/api/v1/items/" + id},
			},
			Samples: []prompb.Sample{{Timestamp: ts, Value: float64(first + i)}},
		}
	}
	return series
}
