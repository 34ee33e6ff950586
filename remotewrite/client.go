package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

// Client sends series to one Remote Write 1.0 downstream. Send queues without blocking into
// shards chosen by a hash of the series' labels; each shard sends batches one at a time,
// retrying 5xx, 429 and network errors with backoff until Shutdown, so the samples of a
// series arrive in order and are lost only when Shutdown gives up.
type Client struct {
	name        string
	url         string // with credentials, for requests only
	displayURL  string // without credentials or query, for logs and errors
	header      http.Header
	timeout     time.Duration
	maxSamples  int
	batchWait   time.Duration
	backoff     backoff
	httpClient  *http.Client
	transport   *http.Transport
	logger      *slog.Logger
	logLimiter  *logLimiter
	metrics     *clientMetrics
	shards      []*shard
	level       queueLevel
	undelivered atomic.Int64 // samples Shutdown gave up on

	// mu orders Send against Start and Shutdown: Send holds it shared.
	mu      sync.RWMutex
	started bool
	closed  bool

	drain        chan struct{}   // closed when Shutdown begins: shards flush and exit when empty
	abortCtx     context.Context // cancelled when Shutdown gives up: in-flight sends stop
	abort        context.CancelFunc
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// shard is one queue and what its goroutine reuses to send from it.
type shard struct {
	queue *seriesQueue
	enc   Encoder
	batch []prompb.TimeSeries
}

// queueLevel is how much a Client holds (queued and in flight), against its limit.
type queueLevel struct {
	bytes  atomic.Int64
	series atomic.Int64
	limit  int64
}

func (l *queueLevel) full() bool { return l.bytes.Load() >= l.limit }

// NewClient validates cfg and returns a Client for its downstream, registering metrics with
// reg (none if nil) and logging to logger (discarded if nil). Call Start to begin sending and
// Shutdown to stop.
func NewClient(cfg ClientConfig, reg prometheus.Registerer, logger *slog.Logger) (*Client, error) {
	u, err := parseDownstreamURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if err := applyClientDefaults(&cfg); err != nil {
		return nil, err
	}
	header, err := requestHeader(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = u.Host
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	display := redactURL(u)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.Shards
	abortCtx, abort := context.WithCancel(context.Background())
	c := &Client{
		name:       cfg.Name,
		url:        u.String(),
		displayURL: display,
		header:     header,
		timeout:    cfg.Timeout,
		maxSamples: cfg.MaxSamplesPerSend,
		batchWait:  cfg.BatchDeadline,
		backoff:    backoff{min: cfg.MinBackoff, max: cfg.MaxBackoff, randN: rand.Int64N},
		httpClient: &http.Client{Transport: transport},
		transport:  transport,
		logger:     logger.With("downstream", cfg.Name, "url", display),
		logLimiter: &logLimiter{interval: errorLogInterval, now: time.Now},
		metrics:    newClientMetrics(reg, cfg.Name),
		level:      queueLevel{limit: cfg.MaxQueueBytes},
		drain:      make(chan struct{}),
		abortCtx:   abortCtx,
		abort:      abort,
	}
	c.shards = make([]*shard, cfg.Shards)
	for i := range c.shards {
		c.shards[i] = &shard{queue: newSeriesQueue()}
	}
	c.metrics.publishQueue(&c.level)
	return c, nil
}

// Start starts the shards' goroutines. Series sent before Start wait in the queue.
func (c *Client) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closed {
		return
	}
	c.started = true
	for _, s := range c.shards {
		c.wg.Add(1)
		go c.runShard(s)
	}
}

// Send queues series for the downstream and takes ownership of the slice and everything it
// points to. It never blocks. When the queue is full (see Full) the series are still queued,
// since the caller already acknowledged them, and counted; after Shutdown they are dropped
// and counted.
func (c *Client) Send(series []prompb.TimeSeries) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		c.metrics.dropShutdown.Add(float64(countSamples(series)))
		return
	}
	if c.level.full() {
		c.metrics.overLimit.Add(float64(countSamples(series)))
	}
	for i := range series {
		ts := series[i]
		c.level.bytes.Add(seriesBytes(&ts))
		c.level.series.Add(1)
		c.shards[shardOf(ts.Labels, len(c.shards))].queue.push(ts)
	}
	c.metrics.publishQueue(&c.level)
}

// Full reports whether the queued and in-flight series hold MaxQueueBytes or more: the
// receiver should then answer 503 so that agents keep their data and retry.
func (c *Client) Full() bool {
	return c.level.full()
}

// Shutdown stops accepting series and sends what is queued until ctx is done; then it cancels
// what is in flight, drops and counts what is left and returns an error wrapping ctx's.
// It returns once every goroutine of the Client has stopped.
func (c *Client) Shutdown(ctx context.Context) error {
	c.shutdownOnce.Do(func() { c.shutdownErr = c.shutdown(ctx) })
	return c.shutdownErr
}

func (c *Client) shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	started := c.started
	c.mu.Unlock()
	close(c.drain)

	if started {
		done := make(chan struct{})
		go func() {
			c.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			c.abort()
			<-done
		}
	} else {
		for _, s := range c.shards {
			c.dropQueued(s)
		}
	}
	c.abort()
	c.transport.CloseIdleConnections()
	c.metrics.publishQueue(&c.level)

	if n := c.undelivered.Load(); n > 0 {
		err := ctx.Err()
		if err == nil {
			err = errors.New("client was never started")
		}
		return fmt.Errorf("downstream %s: %d samples not delivered at shutdown: %w", c.name, n, err)
	}
	return nil
}

// runShard sends s's queue batch by batch until the Client drains it at Shutdown or gives up.
func (c *Client) runShard(s *shard) {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for c.waitForBatch(s, timer) {
		c.sendBatch(s)
	}
	c.dropQueued(s)
}

// waitForBatch blocks until s should send: a full batch is queued, or some data is and the
// batch deadline has passed or the Client is draining. It returns false when the shard
// should stop: drained empty, or aborted.
func (c *Client) waitForBatch(s *shard, timer *time.Timer) bool {
	for s.queue.size() == 0 {
		if c.draining() {
			return false
		}
		select {
		case <-s.queue.wake:
		case <-c.drain:
		case <-c.abortCtx.Done():
			return false
		}
	}
	if c.draining() || s.queue.size() >= c.maxSamples {
		return c.abortCtx.Err() == nil
	}
	timer.Reset(c.batchWait)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case <-s.queue.wake:
			if s.queue.size() >= c.maxSamples {
				return true
			}
		case <-c.drain:
			return true
		case <-c.abortCtx.Done():
			return false
		}
	}
}

func (c *Client) draining() bool {
	select {
	case <-c.drain:
		return true
	default:
		return false
	}
}

// dropUndelivered counts samples given up at Shutdown.
func (c *Client) dropUndelivered(samples int) {
	c.metrics.dropShutdown.Add(float64(samples))
	c.undelivered.Add(int64(samples))
}

// dropQueued empties s's queue, counting its samples as given up at Shutdown.
func (c *Client) dropQueued(s *shard) {
	entries, samples, bytes := s.queue.takeAll()
	if entries == 0 {
		return
	}
	c.dropUndelivered(samples)
	c.level.bytes.Add(-bytes)
	c.level.series.Add(-int64(entries))
	c.metrics.publishQueue(&c.level)
}
