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

	"github.com/cardinal-proxy/cardinal/downstream"
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
	// compressedRefresh is how often, at most, the end of the compressed chunks is read.
	compressedRefresh = time.Minute
	// seriesCacheGeneration is the number of series ids per generation of the cache.
	seriesCacheGeneration = 1 << 20
	// minBackoff and maxBackoff bound the waits between retries of the set-up and of a batch.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Sink writes series to TimescaleDB or plain PostgreSQL. It satisfies the aggregator's Sink
// (Send never blocks) and reports back-pressure through Full. Connection trouble never stops
// it: the schema set-up and the writes are retried in the background with backoff.
type Sink struct {
	cfg     Config
	logger  *slog.Logger
	pool    *pgxpool.Pool
	metrics *metrics
	queue   *downstream.Queue
	mode    atomic.Pointer[Mode]

	// backoff spaces retries; tests shorten it before Start.
	backoff downstream.Backoff
	// now is the clock for retention and partitions; tests replace it before Start.
	now func() time.Time
	// maintenanceInterval is how often partitions are maintained; tests shorten it.
	maintenanceInterval time.Duration
	// jobPollInterval is how often the TimescaleDB jobs' health is read; tests shorten it.
	jobPollInterval time.Duration
	// compressedRefresh is how long the end of the compressed chunks is trusted before it is
	// read again; tests set it to 0.
	compressedRefresh time.Duration

	// features is what the installed TimescaleDB offers; nil in plain PostgreSQL mode.
	features atomic.Pointer[timescaleFeatures]
	jobsMu   sync.Mutex
	jobs     []JobStatus // at the last poll
	// loggedFailures are, by job id, the failures logged (recordJobs); the poller's alone.
	loggedFailures map[int]int64
	jobsDone       chan struct{} // closed when watchJobs returns
	jobPolls       atomic.Int64  // successful polls of the jobs, for tests

	// Owned by the writer goroutine.
	hasher        seriesHasher
	cache         *seriesCache
	partitions    partitionTable
	partitionDays map[int64]struct{} // nil: not loaded
	schemaReady   bool
	// compressedUntil is the end of the newest compressed chunk (zero: none), read at
	// compressedAt: rows before it may fall in compressed chunks.
	compressedUntil, compressedAt time.Time

	ctx       context.Context // cancelled when Shutdown gives up waiting
	cancel    context.CancelFunc
	drain     chan struct{} // closed by Shutdown
	done      chan struct{} // closed when the writer goroutine returns
	startOnce sync.Once
	stopOnce  sync.Once
	started   atomic.Bool
}

// New validates cfg as `cardinal check config` does (the DSN must parse), registers the
// sink's metrics on reg with the label downstream=cfg.Name, and returns a sink that has not
// connected yet: Start does that in the background. ctx is used for construction only; the
// sink's lifetime ends with Shutdown. A nil reg or logger is allowed.
func New(ctx context.Context, cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Sink, error) {
	pc, err := cfg.poolConfig()
	if err != nil {
		return nil, err
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "timescale", "downstream", cfg.Name)
	pool, err := pgxpool.NewWithConfig(ctx, pc) // connects lazily
	if err != nil {
		return nil, err
	}
	q := downstream.NewQueue(int64(cfg.MaxQueueBytes), 1)
	m, err := newMetrics(reg, cfg.Name, q)
	if err != nil {
		pool.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	logger.Info("timescaledb sink configured", "host", pc.ConnConfig.Host, "port", pc.ConnConfig.Port,
		"database", pc.ConnConfig.Database, "user", pc.ConnConfig.User)
	return &Sink{
		cfg:                 cfg,
		backoff:             downstream.Backoff{Min: minBackoff, Max: maxBackoff},
		logger:              logger,
		pool:                pool,
		metrics:             m,
		queue:               q,
		now:                 time.Now,
		maintenanceInterval: maintenanceInterval,
		jobPollInterval:     defaultJobPollInterval,
		compressedRefresh:   compressedRefresh,
		jobsDone:            make(chan struct{}),
		cache:               newSeriesCache(seriesCacheGeneration),
		ctx:                 runCtx,
		cancel:              cancel,
		drain:               make(chan struct{}),
		done:                make(chan struct{}),
	}, nil
}

// Send queues series for writing and returns at once; see downstream.Sink for who owns them.
// Over max_queue_bytes they are still queued (they were acknowledged), as downstream.Queue
// says; after Shutdown they are dropped and counted in cardinal_timescale_rows_dropped_total.
func (s *Sink) Send(series []prompb.TimeSeries) {
	if !s.queue.Push(series) {
		s.metrics.rowsDropped.WithLabelValues(dropShutdown).Add(float64(countSamples(series)))
	}
}

// Pending implements downstream.Snapshotter.
func (s *Sink) Pending() []prompb.TimeSeries { return s.queue.Snapshot() }

// Full reports whether the queue has reached max_queue_bytes; the receiver then answers 503
// so that the agents keep their data and retry.
func (s *Sink) Full() bool { return s.queue.Full() }

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
		go s.watchJobs()
	})
}

// Shutdown stops accepting series, writes what is queued, and closes the connections. When
// ctx ends first it abandons the rest, counts it as dropped and returns an error saying how
// many series were not written.
func (s *Sink) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.queue.Close()
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
		select {
		case <-s.jobsDone: // returns on drain, after a poll in progress
		case <-ctx.Done():
			s.cancel()
			<-s.jobsDone
		}
	}
	s.cancel()
	s.pool.Close()
	if n := s.abandonQueue(); n > 0 {
		cause := ctx.Err()
		if cause == nil {
			cause = errors.New("the sink was never started")
		}
		err = fmt.Errorf("%d series not written at shutdown: %w", n, cause)
	}
	return err
}

// abandonQueue empties the queue, counting its samples as dropped, and returns how many
// series it held.
func (s *Sink) abandonQueue() int {
	series, samples := s.queue.DropAll()
	s.metrics.rowsDropped.WithLabelValues(dropShutdown).Add(float64(samples))
	return series
}

// run is the writer goroutine: set up the schema, then write batches in order, retrying each
// with backoff until it is written, refused for good, or Shutdown gives up.
func (s *Sink) run() {
	defer close(s.done)
	ctx := s.ctx
	attempt := 0 // failures in a row, for the backoff
	retryIn := func() time.Duration { attempt++; return s.backoff.Delay(attempt-1, 0) }
	ticker := time.NewTicker(s.maintenanceInterval)
	defer ticker.Stop()
	b := newBatch()
	var pending downstream.Batch // the batch being written; no series when none
	var buf []prompb.TimeSeries
	drain := s.drain // nil once Shutdown has been seen
	draining := false
	defer func() {
		if len(pending.Series) > 0 {
			s.metrics.rowsDropped.WithLabelValues(dropShutdown).Add(float64(countSamples(pending.Series)))
			s.queue.Release(pending)
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
	nothingToWrite := func() bool { return len(pending.Series) == 0 && s.queue.Pending(0) == 0 }

	for {
		if !s.schemaReady {
			if err := s.setup(ctx); err != nil {
				if ctx.Err() != nil || (draining && nothingToWrite()) {
					return
				}
				s.metrics.writeErrors.WithLabelValues("retryable").Inc()
				d := retryIn()
				s.logger.Warn("schema set-up failed; retrying", "err", err, "retry_in", d)
				if !wait(d) {
					return
				}
				continue
			}
			attempt = 0
		}
		select {
		case <-ticker.C:
			s.maintain(ctx)
		default:
		}
		if len(pending.Series) == 0 {
			clear(buf)
			pending = s.queue.Take(0, buf[:0], s.cfg.BatchSize)
			buf = pending.Series
			if len(pending.Series) == 0 {
				if draining {
					return
				}
				select {
				case <-s.queue.Ready(0):
				case <-ticker.C:
					s.maintain(ctx)
				case <-drain:
					draining, drain = true, nil
				case <-ctx.Done():
					return
				}
				continue
			}
		}

		s.build(b, pending.Series)
		writeCtx, cancel := context.WithTimeout(ctx, writeTimeout)
		err := s.write(writeCtx, b)
		cancel()
		if err != nil && !isPermanent(err) {
			if ctx.Err() != nil {
				return
			}
			s.metrics.writeErrors.WithLabelValues("retryable").Inc()
			s.forgetAfter(err)
			d := retryIn()
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
		s.queue.Release(pending)
		pending = downstream.Batch{}
		attempt = 0
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
