package hashring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// maxForwardBatch bounds the uncompressed body of one forwarded request.
const maxForwardBatch = 1 << 20

// A peer queue holding less than lingerBytes waits up to forwardLinger after its oldest
// chunk came for more, so that a busy sender forwards a few large requests rather than one
// per request it received: between real processes each request costs system calls and
// wake-ups on both sides, which were about a third of forwarding's CPU. Forwarding is not on
// the path of the agent's answer, and windows close seconds after their end.
const (
	forwardLinger = 20 * time.Millisecond
	lingerBytes   = maxForwardBatch / 2
)

// peerQueue is the queue of series forwarded to one member. Series are queued already
// encoded: each request's series for the member are appended as Remote Write 1.0
// TimeSeries fields (a protobuf WriteRequest is the concatenation of its series), so a
// forwarded sample costs a copy rather than allocations. One goroutine sends the queue in
// order, as many chunks at a time as fit in a request, snappy-compressed, retrying 5xx, 408,
// 429 and network errors with backoff until the queue is shut down: the samples of a series
// reach their owner in order, but while a replaced ring's queue drains, the new ring's
// queue to the same owner sends beside it.
type peerQueue struct {
	name    string
	url     string
	header  http.Header
	client  *http.Client
	timeout time.Duration
	// limit bounds held: the bytes of every queue to this member (Forwarder.held).
	limit   int64
	held    *atomic.Int64
	backoff downstream.Backoff
	logger  *slog.Logger
	metrics *forwardMetrics
	chunks0 *chunkPool // where sent chunks go back to, for the next requests' series

	mu       sync.Mutex
	chunks   [][]byte  // waiting, in order
	bytes    int64     // of chunks and inflight
	waiting  int64     // of chunks
	since    time.Time // when the oldest of chunks came
	samples  []int     // per chunk
	rules    []uint64  // per chunk: the version of the rule set it was routed by
	inflight [][]byte
	cut      []byte // the batch whose send the shutdown cut short, encoded series
	cutN     int    // its samples
	wake     chan struct{}
	closed   bool // no more chunks
	done     chan struct{}
	abort    context.CancelFunc
	ctx      context.Context
}

// newPeerQueue starts the queue to member name at url. held counts the bytes of every queue to
// that member, this one's included; limit bounds it.
func newPeerQueue(name, url string, header http.Header, client *http.Client, timeout time.Duration, limit int64, held *atomic.Int64, bo downstream.Backoff, m *forwardMetrics, pool *chunkPool, logger *slog.Logger) *peerQueue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &peerQueue{
		name: name, url: url, header: header, client: client, timeout: timeout, limit: limit, held: held, backoff: bo,
		metrics: m, logger: logger.With("peer", name), chunks0: pool,
		wake: make(chan struct{}, 1), done: make(chan struct{}), ctx: ctx, abort: cancel,
	}
	go q.run()
	return q
}

// push queues one chunk of encoded series holding samples samples, routed by the rule set
// of version rules. What arrives after shutdown began is dropped (the checkpoint, with a
// WAL, has it).
func (q *peerQueue) push(chunk []byte, samples int, rules uint64) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.metrics.forwardDropped.WithLabelValues(q.name).Add(float64(samples))
		return
	}
	if len(q.chunks) == 0 {
		q.since = time.Now()
	}
	q.waiting += int64(len(chunk))
	q.chunks = append(q.chunks, chunk)
	q.samples = append(q.samples, samples)
	q.rules = append(q.rules, rules)
	q.bytes += int64(len(chunk))
	q.held.Add(int64(len(chunk)))
	// Added, not set: while a replaced ring drains, its queue and the new ring's to the
	// same peer both hold bytes for it.
	q.metrics.queueBytes.WithLabelValues(q.name).Add(float64(len(chunk)))
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// full reports that the queues to this member hold its limit or more, together.
func (q *peerQueue) full() bool { return q.held.Load() >= q.limit }

// take returns the next chunks to send, up to maxForwardBatch bytes (at least one), and their
// samples, and the version of the rule set they were all routed by (a batch never mixes
// two); nil when the queue is closed and empty. A small batch waits for more up to
// forwardLinger after its oldest chunk came, unless the queue is closing.
func (q *peerQueue) take() ([][]byte, int, uint64) {
	for {
		if q.ctx.Err() != nil {
			return nil, 0, 0 // aborted: shutdown counts what is left
		}
		q.mu.Lock()
		if len(q.chunks) > 0 && q.waiting < lingerBytes && !q.closed {
			if wait := forwardLinger - time.Since(q.since); wait > 0 {
				q.mu.Unlock()
				select {
				case <-q.wake:
				case <-time.After(wait):
				case <-q.ctx.Done():
					return nil, 0, 0
				}
				q.mu.Lock()
				if q.waiting < lingerBytes && !q.closed && time.Since(q.since) < forwardLinger {
					q.mu.Unlock()
					continue
				}
			}
		}
		if len(q.chunks) > 0 {
			n, size, samples, rules := 0, 0, 0, q.rules[0]
			for n < len(q.chunks) && q.rules[n] == rules && (n == 0 || size+len(q.chunks[n]) <= maxForwardBatch) {
				size += len(q.chunks[n])
				samples += q.samples[n]
				n++
			}
			batch := q.chunks[:n:n]
			q.chunks, q.samples, q.rules = q.chunks[n:], q.samples[n:], q.rules[n:]
			q.waiting -= int64(size)
			q.since = time.Time{} // what is left (a full batch came before it) goes at once
			q.inflight = batch
			q.mu.Unlock()
			return batch, samples, rules
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, 0, 0
		}
		select {
		case <-q.wake:
		case <-q.ctx.Done():
			return nil, 0, 0
		}
	}
}

// finished reports whether the queue has stopped sending to its member: shut down and
// empty, or aborted (what it still held then goes to the owners by the ring in force).
func (q *peerQueue) finished() bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}

func (q *peerQueue) run() {
	defer close(q.done)
	var raw, body []byte
	for {
		batch, samples, rules := q.take()
		if batch == nil {
			return
		}
		raw = raw[:0]
		for _, c := range batch {
			raw = append(raw, c...)
		}
		body = snappy.Encode(body[:cap(body)], raw)
		aborted, busy := q.send(body, samples, rules)
		if busy {
			body = nil // a request still reads it: the next batch gets a buffer of its own
		}
		q.mu.Lock()
		if aborted {
			q.cut, q.cutN = append(q.cut, raw...), q.cutN+samples
		}
		sent := 0
		for _, c := range batch {
			sent += len(c)
			q.chunks0.put(c)
		}
		q.bytes -= int64(sent)
		q.held.Add(-int64(sent))
		q.inflight = nil
		q.metrics.queueBytes.WithLabelValues(q.name).Sub(float64(sent))
		q.mu.Unlock()
	}
}

// send posts one body until it is accepted, refused for good, or the queue is aborted (then
// aborted is true, and shutdown deals with the body's samples). busy is true when a request
// still read body after it ended (remotewrite.Body): it must not be written again.
func (q *peerQueue) send(body []byte, samples int, rules uint64) (aborted, busy bool) {
	header := q.header.Clone()
	header.Set(HeaderRules, strconv.FormatUint(rules, 16))
	for attempt := 0; ; attempt++ {
		code, retryAfter, stillRead, err := q.post(body, header)
		busy = busy || stillRead
		switch {
		case err == nil && code/100 == 2:
			q.metrics.forwardSent.WithLabelValues(q.name).Add(float64(samples))
			q.metrics.forwardBytes.WithLabelValues(q.name).Add(float64(len(body)))
			return false, busy
		case err == nil && refusedForGood(code):
			q.metrics.forwardFailed.WithLabelValues(q.name).Add(float64(samples))
			q.logger.Error("cluster: a peer refused forwarded series for good", "status", code)
			return false, busy
		}
		if q.ctx.Err() != nil {
			return true, busy
		}
		q.metrics.forwardRetries.WithLabelValues(q.name).Inc()
		if attempt == 3 {
			q.logger.Warn("cluster: forwarding to a peer keeps failing; retrying", "status", code, "err", err)
		}
		select {
		case <-time.After(q.backoff.Delay(attempt, retryAfter)):
		case <-q.ctx.Done():
			return true, busy
		}
	}
}

// post posts body once; busy is true when the transport still read it after the request
// ended.
func (q *peerQueue) post(body []byte, header http.Header) (code int, wait time.Duration, busy bool, _ error) {
	ctx, cancel := context.WithTimeout(q.ctx, q.timeout)
	defer cancel()
	req, rb, err := remotewrite.NewRequest(ctx, q.url, body)
	if err != nil {
		return 0, 0, false, err
	}
	req.Header = header // read only, by the transport
	resp, err := q.client.Do(req)
	if err != nil {
		return 0, 0, !rb.Wait(remotewrite.BodyWait), err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	// Seconds or an HTTP date, capped as for any sink: a peer (or a proxy before it) that
	// asks for an hour must not stall the queue until it fills.
	wait, _ = downstream.RetryAfter(resp.Header, time.Now())
	return resp.StatusCode, wait, !rb.Wait(remotewrite.BodyWait), nil
}

// pending returns the series queued or in flight, decoded, for a checkpoint. Their bytes
// are copied under the lock: once sent, a chunk goes back to the pool, and a request's
// series may be written into it while the checkpoint reads. Bytes that do not decode are an
// error: a checkpoint without them would let the log that holds them be truncated.
func (q *peerQueue) pending() ([]prompb.TimeSeries, error) {
	q.mu.Lock()
	raw := slices.Clone(q.cut) // a send the shutdown cut short, until shutdown reroutes it
	for _, c := range q.inflight {
		raw = append(raw, c...)
	}
	for _, c := range q.chunks {
		raw = append(raw, c...)
	}
	q.mu.Unlock()
	if len(raw) == 0 {
		return nil, nil
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("the forward queue to cluster member %q does not decode: %w", q.name, err)
	}
	return req.Timeseries, nil
}

// shutdown sends what is queued until ctx is done. What is left then (queued, and the batch
// whose send it cut short) goes to reroute, encoded, when reroute is not nil and takes it;
// otherwise it is dropped, counted and reported.
func (q *peerQueue) shutdown(ctx context.Context, reroute func(raw []byte) error) error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
	}
	q.abort()
	<-q.done
	q.mu.Lock()
	left, lost := q.cut, q.cutN
	for i, c := range q.chunks {
		left, lost = append(left, c...), lost+q.samples[i]
	}
	q.mu.Unlock()
	var err error
	if lost > 0 {
		// Given to reroute while the queue still holds it: a checkpoint in between has
		// the series twice (the owner drops the repeat by its timestamp), never not at all.
		if reroute == nil {
			err = errors.New("dropped")
		} else if err = reroute(left); err == nil {
			q.metrics.forwardRerouted.WithLabelValues(q.name).Add(float64(lost))
		}
	}
	q.mu.Lock()
	q.metrics.queueBytes.WithLabelValues(q.name).Sub(float64(q.bytes))
	q.held.Add(-q.bytes)
	q.chunks, q.samples, q.rules, q.bytes, q.cut, q.cutN = nil, nil, nil, 0, nil, 0
	q.mu.Unlock()
	if err != nil {
		q.metrics.forwardDropped.WithLabelValues(q.name).Add(float64(lost))
		return fmt.Errorf("cluster peer %s: %d forwarded samples not delivered before the shutdown timeout (%v)", q.name, lost, err)
	}
	return nil
}

// chunkPool keeps the buffers of sent chunks for the series of later requests, so that
// forwarding does not allocate a buffer per request and owner.
type chunkPool struct{ p sync.Pool }

// get returns an empty buffer.
func (c *chunkPool) get() []byte {
	if b, ok := c.p.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

// put gives back a buffer no longer in use; very large ones are left to the collector.
func (c *chunkPool) put(b []byte) {
	if cap(b) == 0 || cap(b) > 1<<20 {
		return
	}
	b = b[:0]
	c.p.Put(&b)
}
