package timescale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

const (
	// defaultConnectTimeout bounds a connection attempt when the DSN does not say
	// (connect_timeout), so an unreachable host is retried rather than waited on.
	defaultConnectTimeout = 10 * time.Second
	// writeTimeout bounds one batch write; a write that hangs is retried.
	writeTimeout = time.Minute
	// setupTimeout bounds the schema set-up (migrations may build indexes).
	setupTimeout = 10 * time.Minute
	// maintenanceInterval is how often partitions are created ahead and expired.
	maintenanceInterval = time.Hour
	// seriesCacheGeneration is the number of series ids per generation of the cache.
	seriesCacheGeneration = 1 << 20
)

// Sink writes series to TimescaleDB or plain PostgreSQL. It satisfies the aggregator's Sink
// (Send never blocks) and reports back-pressure through Full. Connection trouble never stops
// it: the schema set-up and the writes are retried in the background with backoff.
type Sink struct {
	opts    Options
	logger  *slog.Logger
	pool    *pgxpool.Pool
	metrics *metrics
	queue   *queue
	mode    atomic.Pointer[Mode]

	// now is the clock for retention and partitions; tests replace it before Start.
	now func() time.Time
	// maintenanceInterval is how often partitions are maintained; tests shorten it.
	maintenanceInterval time.Duration

	// Owned by the writer goroutine.
	hasher        seriesHasher
	cache         *seriesCache
	partitions    partitionTable
	partitionDays map[int64]struct{} // nil: not loaded
	schemaReady   bool

	ctx       context.Context // cancelled when Shutdown gives up waiting
	cancel    context.CancelFunc
	drain     chan struct{} // closed by Shutdown
	done      chan struct{} // closed when the writer goroutine returns
	startOnce sync.Once
	stopOnce  sync.Once
	started   atomic.Bool
}

// New validates opts (the DSN must parse), registers the sink's metrics on reg with the
// label downstream=opts.Name, and returns a sink that has not connected yet: Start does that
// in the background. ctx is used for construction only; the sink's lifetime ends with
// Shutdown. A nil reg or logger is allowed.
func New(ctx context.Context, opts Options, reg prometheus.Registerer, logger *slog.Logger) (*Sink, error) {
	opts = opts.withDefaults()
	cfg, err := opts.validate()
	if err != nil {
		return nil, fmt.Errorf("timescaledb downstream %q: %w", opts.Name, err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "timescale", "downstream", opts.Name)
	pool, err := pgxpool.NewWithConfig(ctx, cfg) // connects lazily
	if err != nil {
		return nil, fmt.Errorf("timescaledb downstream %q: %w", opts.Name, err)
	}
	q := newQueue(opts.MaxQueueBytes)
	m, err := newMetrics(reg, opts.Name, q)
	if err != nil {
		pool.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	logger.Info("timescaledb sink configured", "host", cfg.ConnConfig.Host, "port", cfg.ConnConfig.Port,
		"database", cfg.ConnConfig.Database, "user", cfg.ConnConfig.User)
	return &Sink{
		opts:                opts,
		logger:              logger,
		pool:                pool,
		metrics:             m,
		queue:               q,
		now:                 time.Now,
		maintenanceInterval: maintenanceInterval,
		cache:               newSeriesCache(seriesCacheGeneration),
		ctx:                 runCtx,
		cancel:              cancel,
		drain:               make(chan struct{}),
		done:                make(chan struct{}),
	}, nil
}

// Send queues series for writing and returns at once. The sink keeps the slice and what it
// points to until they are written and never modifies them, so the same series may go to
// other downstreams as well; the caller must not modify them after the call. When the queue
// is full (or the sink shut down) the series are dropped and counted in
// cardinal_timescale_rows_dropped_total.
func (s *Sink) Send(series []prompb.TimeSeries) {
	switch s.queue.push(series) {
	case pushed:
		return
	case pushFull:
		s.metrics.rowsDropped.WithLabelValues(dropQueueFull).Add(float64(countSamples(series)))
	case pushClosed:
		s.metrics.rowsDropped.WithLabelValues(dropShutdown).Add(float64(countSamples(series)))
	}
}

// Full reports whether the queue has reached MaxQueueBytes; the receiver then answers 503 so
// that the agents keep their data and retry.
func (s *Sink) Full() bool { return s.queue.full() }

// Mode is the storage mode in use, empty until the schema has been set up.
func (s *Sink) Mode() Mode {
	if m := s.mode.Load(); m != nil {
		return *m
	}
	return ""
}

// Start starts the background writer: it sets up the schema (retrying until the database is
// reachable) and then writes the queue. Calling it again, or after Shutdown, does nothing.
func (s *Sink) Start() {
	s.startOnce.Do(func() {
		select {
		case <-s.drain:
			return
		default:
		}
		s.started.Store(true)
		go s.run()
	})
}

// Shutdown stops accepting series, writes what is queued, and closes the connections. When
// ctx ends first it abandons the rest, counts it as dropped and returns an error saying how
// many series were not written.
func (s *Sink) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.queue.close()
		close(s.drain)
	})
	var err error
	if s.started.Load() {
		select {
		case <-s.done:
		case <-ctx.Done():
			s.cancel()
			<-s.done
		}
	}
	s.cancel()
	s.pool.Close()
	if n := s.abandonQueue(); n > 0 {
		cause := ctx.Err()
		if cause == nil {
			cause = errors.New("the sink was never started")
		}
		err = fmt.Errorf("timescaledb downstream %q: %d series not written at shutdown: %w", s.opts.Name, n, cause)
	}
	return err
}

// abandonQueue empties the queue, counting its samples as dropped, and returns how many
// series it held.
func (s *Sink) abandonQueue() int {
	series := 0
	for {
		batch, bytes := s.queue.pop(nil, s.opts.BatchSize)
		if len(batch) == 0 {
			return series
		}
		series += len(batch)
		s.metrics.rowsDropped.WithLabelValues(dropShutdown).Add(float64(countSamples(batch)))
		s.queue.release(bytes)
	}
}

// run is the writer goroutine: set up the schema, then write batches in order, retrying each
// with backoff until it is written, refused for good, or Shutdown gives up.
func (s *Sink) run() {
	defer close(s.done)
	ctx := s.ctx
	bo := newBackoff(s.opts.MinBackoff, s.opts.MaxBackoff)
	ticker := time.NewTicker(s.maintenanceInterval)
	defer ticker.Stop()
	b := newBatch()
	var pending []prompb.TimeSeries // the batch being written, nil when none
	var pendingBytes int64
	var buf []prompb.TimeSeries
	drain := s.drain // nil once Shutdown has been seen
	draining := false
	defer func() {
		if len(pending) > 0 {
			s.metrics.rowsDropped.WithLabelValues(dropShutdown).Add(float64(countSamples(pending)))
			s.queue.release(pendingBytes)
		}
	}()
	// wait sleeps before a retry; Shutdown wakes it once so that an empty sink stops at once.
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-drain:
			draining, drain = true, nil
		case <-ctx.Done():
			return false
		}
		return true
	}
	nothingToWrite := func() bool { return pending == nil && s.queue.queuedSeries() == 0 }

	for {
		if !s.schemaReady {
			if err := s.setup(ctx); err != nil {
				if ctx.Err() != nil || (draining && nothingToWrite()) {
					return
				}
				s.metrics.writeErrors.WithLabelValues("retryable").Inc()
				d := bo.delay()
				s.logger.Warn("schema set-up failed; retrying", "err", err, "retry_in", d)
				if !wait(d) {
					return
				}
				continue
			}
			bo.reset()
		}
		select {
		case <-ticker.C:
			s.maintain(ctx)
		default:
		}
		if pending == nil {
			clear(buf)
			buf, pendingBytes = s.queue.pop(buf[:0], s.opts.BatchSize)
			if len(buf) == 0 {
				if draining {
					return
				}
				select {
				case <-s.queue.ready:
				case <-ticker.C:
					s.maintain(ctx)
				case <-drain:
					draining, drain = true, nil
				case <-ctx.Done():
					return
				}
				continue
			}
			pending = buf
		}

		s.build(b, pending)
		writeCtx, cancel := context.WithTimeout(ctx, writeTimeout)
		err := s.write(writeCtx, b)
		cancel()
		if err != nil && !isPermanent(err) {
			if ctx.Err() != nil {
				return
			}
			s.metrics.writeErrors.WithLabelValues("retryable").Inc()
			s.forgetAfter(err)
			d := bo.delay()
			s.logger.Warn("writing a batch failed; retrying", "err", err, "rows", len(b.ids), "retry_in", d)
			if !wait(d) {
				return
			}
			continue
		}
		if err != nil {
			s.metrics.writeErrors.WithLabelValues("permanent").Inc()
			b.dropped[dropPermanentError] += len(b.ids)
			s.logger.Error("the database refused a batch; dropping it", "err", err, "rows", len(b.ids))
		}
		s.countDropped(b)
		s.queue.release(pendingBytes)
		pending = nil
		bo.reset()
	}
}

// forgetAfter drops what the writer believed about the database when err shows it was wrong:
// a missing table means the schema must be set up again, a row without a partition means the
// partition list is stale.
func (s *Sink) forgetAfter(err error) {
	switch {
	case hasSQLState(err, sqlstateUndefinedTable):
		s.schemaReady = false
	case hasSQLState(err, sqlstateCheckViolation):
		s.partitionDays = nil
	}
}

// maintain runs the periodic partition maintenance (TimescaleDB runs its own policies).
func (s *Sink) maintain(ctx context.Context) {
	if s.Mode() != ModePostgreSQL {
		return
	}
	maintainCtx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := s.maintainPartitions(maintainCtx); err != nil && ctx.Err() == nil {
		s.metrics.writeErrors.WithLabelValues("retryable").Inc()
		s.partitionDays = nil
		s.logger.Warn("partition maintenance failed; trying again at the next interval", "err", err)
	}
}

func countSamples(series []prompb.TimeSeries) int {
	n := 0
	for i := range series {
		n += len(series[i].Samples)
	}
	return n
}
