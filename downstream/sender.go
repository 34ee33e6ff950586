package downstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// defaultBatchWait is how long a shard waits for a batch to fill before sending what it has.
const defaultBatchWait = 50 * time.Millisecond

// endpoint is where a sender posts: a Remote Write 1.0 receiver and the headers of every
// request (protocol, authentication, configured ones).
type endpoint struct {
	url        string // with credentials, for requests only
	displayURL string // without credentials or query, for logs and errors
	header     http.Header
	timeout    time.Duration // bounds one request
	// v2 sends Remote Write 2.0, whose receiver must say what it wrote (-Written headers).
	v2 bool
}

// sender sends the series of a Queue to one endpoint: one goroutine per queue shard sends
// batches one at a time, retrying 5xx, 429 and network errors with backoff until Shutdown,
// so the samples of a series arrive in order and are lost only when Shutdown gives up. It
// takes an endpoint and a queue rather than a configuration. (Forwarding to cluster peers
// has a sender of its own, hashring's peer queue, which sends encoded series.)
type sender struct {
	endpoint    endpoint
	queue       *Queue
	maxSamples  int
	batchWait   time.Duration // tests shorten it before Start
	backoff     Backoff
	httpClient  *http.Client
	transport   *http.Transport
	logger      *slog.Logger
	logLimiter  *logLimiter
	metrics     *senderMetrics
	undelivered atomic.Int64 // samples Shutdown gave up on
	// delivery, when set before start, is told of every acknowledged batch and keeps
	// samples the receiver already has from being sent again.
	delivery Delivery
	// metadata, when set before start, gives the series' metadata to send (metadata.go),
	// as metadataCfg says.
	metadata        OutputMetadata
	metadataCfg     MetadataConfig
	metadataMetrics metadataMetrics

	// mu orders Start against Shutdown.
	mu      sync.Mutex
	started bool
	closed  bool

	drain        chan struct{}   // closed when Shutdown begins: shards flush and exit when empty
	abortCtx     context.Context // cancelled when Shutdown gives up: in-flight sends stop
	abort        context.CancelFunc
	wg           sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// newSender returns a sender of q's series to ep, in requests of at most maxSamples samples.
func newSender(ep endpoint, q *Queue, maxSamples int, bo Backoff, m *senderMetrics, logger *slog.Logger) *sender {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = q.Shards()
	abortCtx, abort := context.WithCancel(context.Background())
	s := &sender{
		endpoint:   ep,
		queue:      q,
		maxSamples: maxSamples,
		batchWait:  defaultBatchWait,
		backoff:    bo,
		httpClient: &http.Client{Transport: transport},
		transport:  transport,
		logger:     logger,
		logLimiter: &logLimiter{interval: errorLogInterval, now: time.Now},
		metrics:    m,
		drain:      make(chan struct{}),
		abortCtx:   abortCtx,
		abort:      abort,
	}
	s.metrics.publishQueue(q)
	return s
}

// start starts one goroutine per shard. Series sent before start wait in the queue.
func (s *sender) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	for shard := range s.queue.Shards() {
		s.wg.Add(1)
		go s.runShard(shard)
	}
	if s.metadata != nil && !s.endpoint.v2 {
		s.wg.Add(1)
		go s.runMetadata()
	}
}

// send queues series without blocking, under the overflow policy of Queue: over the bound
// they are still queued, and counted; after shutdown they are dropped and counted.
func (s *sender) send(series []prompb.TimeSeries) {
	full := s.queue.Full()
	if !s.queue.Push(series) {
		s.metrics.dropShutdown.Add(float64(remotewrite.CountSamples(series)))
		return
	}
	if full {
		s.metrics.overLimit.Add(float64(remotewrite.CountSamples(series)))
	}
	s.metrics.publishQueue(s.queue)
}

// shutdown stops accepting series and sends what is queued until ctx is done; then it
// cancels what is in flight, drops and counts what is left and returns an error wrapping
// ctx's. It returns once every goroutine of the sender has stopped.
func (s *sender) shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.stop(ctx) })
	return s.shutdownErr
}

func (s *sender) stop(ctx context.Context) error {
	s.queue.Close()
	s.mu.Lock()
	s.closed = true
	started := s.started
	s.mu.Unlock()
	close(s.drain)

	if started {
		done := make(chan struct{})
		go func() {
			s.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			s.abort()
			<-done
		}
	}
	s.abort()
	if _, samples := s.queue.DropAll(); samples > 0 {
		s.dropUndelivered(samples)
	}
	s.transport.CloseIdleConnections()
	s.metrics.publishQueue(s.queue)

	if n := s.undelivered.Load(); n > 0 {
		err := ctx.Err()
		if err == nil {
			err = errors.New("the sender was never started")
		}
		return fmt.Errorf("%d samples not delivered at shutdown: %w", n, err)
	}
	return nil
}

// runShard sends shard's queue batch by batch until the sender drains it at shutdown or
// gives up.
func (s *sender) runShard(shard int) {
	defer s.wg.Done()
	b := batchBuffers{enc: &remotewrite.Encoder{}}
	if s.endpoint.v2 {
		enc := &remotewrite.EncoderV2{}
		if s.metadata != nil {
			enc.Metadata = s.metadata.MetadataOf
		}
		b.enc = enc
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for s.waitForBatch(shard, timer) {
		s.sendBatch(shard, &b)
	}
}

// encoder marshals a batch into a request body (remotewrite.Encoder, remotewrite.EncoderV2).
type encoder interface {
	Encode(series []prompb.TimeSeries) ([]byte, error)
	// LetGo makes the next Encode write a new buffer: the last body is still being read.
	LetGo()
}

// batchBuffers are one shard's buffers, reused from batch to batch.
type batchBuffers struct {
	enc         encoder
	taken       []prompb.TimeSeries
	takenHashes []uint64
	marks       []int64
	send        []prompb.TimeSeries // what is left of taken to send
	sendHashes  []uint64
}

// waitForBatch blocks until shard should send: a full batch is queued, or some data is and
// the batch deadline has passed or the sender is draining. It returns false when the shard
// should stop: drained empty, or aborted.
func (s *sender) waitForBatch(shard int, timer *time.Timer) bool {
	ready := s.queue.Ready(shard)
	for s.queue.Pending(shard) == 0 {
		if s.draining() {
			return false
		}
		select {
		case <-ready:
		case <-s.drain:
		case <-s.abortCtx.Done():
			return false
		}
	}
	if s.draining() || s.queue.Pending(shard) >= s.maxSamples {
		return s.abortCtx.Err() == nil
	}
	timer.Reset(s.batchWait)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case <-ready:
			if s.queue.Pending(shard) >= s.maxSamples {
				return true
			}
		case <-s.drain:
			return true
		case <-s.abortCtx.Done():
			return false
		}
	}
}

func (s *sender) draining() bool {
	select {
	case <-s.drain:
		return true
	default:
		return false
	}
}

// dropUndelivered counts samples given up at shutdown.
func (s *sender) dropUndelivered(samples int) {
	s.metrics.dropShutdown.Add(float64(samples))
	s.undelivered.Add(int64(samples))
}
