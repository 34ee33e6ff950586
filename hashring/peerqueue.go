package hashring

import (
	"bytes"
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

// A queue holding more than packAbove bytes of chunks not yet packed has fallen behind (its
// member is slow, down, or gone and not yet out of the ring, which takes leave_after): its
// oldest chunks are packed, each run of up to maxForwardBatch bytes snappy-compressed into
// the body it will be sent as. The compression is the one sending does anyway, done ahead;
// the backlog takes about a tenth of the memory, so that forward.queue.max_bytes holds ten
// times as long an outage before the receiver answers 503.
const packAbove = 4 * maxForwardBatch

// peerQueue is the queue of series forwarded to one member. Series are queued already
// encoded: each request's series for the member are appended as Remote Write 1.0
// TimeSeries fields (a protobuf WriteRequest is the concatenation of its series), so a
// forwarded sample costs a copy rather than allocations. One goroutine sends the queue in
// order, as many chunks at a time as fit in a request, snappy-compressed, retrying 5xx, 408,
// 429 and network errors with backoff until the queue is shut down: the samples of a series
// reach their owner in order, but while a replaced ring's queue drains, the new ring's
// queue to the same owner sends beside it. Another packs the backlog of a queue that falls
// behind (packAbove), in place, into the bodies the first will send.
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

	mu      sync.Mutex
	entries []queued  // waiting, in order
	bytes   int64     // held by entries and inflight
	waiting int64     // held by entries
	loose   int64     // of entries not packed
	taken   int64     // entries taken from the front since the start, for pack
	since   time.Time // when the oldest of entries came
	// inflight is the batch being sent: chunks, or one packed body.
	inflight       [][]byte
	inflightPacked []byte
	cut            []byte // the batch whose send the shutdown cut short, encoded series
	cutN           int    // its samples
	wake           chan struct{}
	packWake       chan struct{}
	packMu         sync.Mutex // one pack at a time: each finds its run by position
	packRaw        []byte     // pack's scratch buffers, under packMu
	packBuf        []byte
	closed         bool // no more chunks
	done           chan struct{}
	abort          context.CancelFunc
	ctx            context.Context
}

// queued is one entry of a peer queue: a chunk of encoded series as pushed, or a packed run
// of chunks (pack), compressed as the body it will be sent as.
type queued struct {
	chunk   []byte // encoded series; nil when packed
	packed  []byte // a snappy-compressed run of chunks, when packed
	samples int
	rules   uint64 // the version of the rule set it was routed by
}

// size is the bytes the entry holds.
func (e queued) size() int64 { return int64(len(e.chunk) + len(e.packed)) }

// newPeerQueue starts the queue to member name at url. held counts the bytes of every queue to
// that member, this one's included; limit bounds it.
func newPeerQueue(name, url string, header http.Header, client *http.Client, timeout time.Duration, limit int64, held *atomic.Int64, bo downstream.Backoff, m *forwardMetrics, pool *chunkPool, logger *slog.Logger) *peerQueue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &peerQueue{
		name: name, url: url, header: header, client: client, timeout: timeout, limit: limit, held: held, backoff: bo,
		metrics: m, logger: logger.With("peer", name), chunks0: pool,
		wake: make(chan struct{}, 1), packWake: make(chan struct{}, 1), done: make(chan struct{}), ctx: ctx, abort: cancel,
	}
	go q.run()
	go q.packer()
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
	if len(q.entries) == 0 {
		q.since = time.Now()
	}
	q.waiting += int64(len(chunk))
	q.loose += int64(len(chunk))
	q.entries = append(q.entries, queued{chunk: chunk, samples: samples, rules: rules})
	q.bytes += int64(len(chunk))
	q.held.Add(int64(len(chunk)))
	// Added, not set: while a replaced ring drains, its queue and the new ring's to the
	// same peer both hold bytes for it.
	q.metrics.queueBytes.WithLabelValues(q.name).Add(float64(len(chunk)))
	behind := q.loose > packAbove
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	if behind {
		select {
		case q.packWake <- struct{}{}:
		default:
		}
	}
}

// full reports that the queues to this member hold its limit or more, together.
func (q *peerQueue) full() bool { return q.held.Load() >= q.limit }

// take returns the next batch to send: chunks, up to maxForwardBatch bytes (at least one),
// or one packed body; their samples; and the version of the rule set they were all routed
// by (a batch never mixes two). It returns no batch when the queue is closed and empty. A
// small batch waits for more up to forwardLinger after its oldest chunk came, unless the
// queue is closing.
func (q *peerQueue) take() (chunks [][]byte, packed []byte, samples int, rules uint64) {
	for {
		if q.ctx.Err() != nil {
			return nil, nil, 0, 0 // aborted: shutdown counts what is left
		}
		q.mu.Lock()
		if len(q.entries) > 0 && q.entries[0].packed == nil && q.waiting < lingerBytes && !q.closed {
			if wait := forwardLinger - time.Since(q.since); wait > 0 {
				q.mu.Unlock()
				select {
				case <-q.wake:
				case <-time.After(wait):
				case <-q.ctx.Done():
					return nil, nil, 0, 0
				}
				q.mu.Lock()
				if q.waiting < lingerBytes && !q.closed && time.Since(q.since) < forwardLinger {
					q.mu.Unlock()
					continue
				}
			}
		}
		if len(q.entries) > 0 {
			n, size := 1, q.entries[0].size()
			samples, rules = q.entries[0].samples, q.entries[0].rules
			if packed = q.entries[0].packed; packed == nil {
				chunks = [][]byte{q.entries[0].chunk}
				for ; n < len(q.entries); n++ {
					e := q.entries[n]
					if e.packed != nil || e.rules != rules || size+e.size() > maxForwardBatch {
						break
					}
					chunks = append(chunks, e.chunk)
					size += e.size()
					samples += e.samples
				}
				q.loose -= size
			}
			clear(q.entries[:n])
			q.entries = q.entries[n:]
			q.taken += int64(n)
			q.waiting -= size
			q.since = time.Time{} // what is left (a full batch came before it) goes at once
			q.inflight, q.inflightPacked = chunks, packed
			q.mu.Unlock()
			return chunks, packed, samples, rules
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, nil, 0, 0
		}
		select {
		case <-q.wake:
		case <-q.ctx.Done():
			return nil, nil, 0, 0
		}
	}
}

// packer packs the queue's oldest loose chunks (pack) whenever push finds more than
// packAbove bytes of them, until the queue is aborted or done.
func (q *peerQueue) packer() {
	idle := time.NewTimer(packIdle)
	defer idle.Stop()
	for {
		select {
		case <-q.packWake:
		case <-idle.C:
			// Nothing to pack for a while: the scratch buffers (about 2 MiB) go until the
			// queue falls behind again. While it is behind they are used at every push.
			q.packMu.Lock()
			q.packRaw, q.packBuf = nil, nil
			q.packMu.Unlock()
			continue
		case <-q.ctx.Done():
			return
		case <-q.done:
			return
		}
		for q.pack() {
		}
		idle.Reset(packIdle)
	}
}

// packIdle is how long the packer keeps its scratch buffers without packing.
const packIdle = 10 * time.Second

// pack compresses the first run of loose chunks (of one rules version, up to
// maxForwardBatch bytes) into one packed entry, outside the lock, while more than packAbove
// bytes are loose. It reports whether it packed one. A run that take sent meanwhile is
// left as it was.
func (q *peerQueue) pack() bool {
	q.packMu.Lock()
	defer q.packMu.Unlock()
	q.mu.Lock()
	if q.loose <= packAbove || q.closed {
		q.mu.Unlock()
		return false
	}
	first := slices.IndexFunc(q.entries, func(e queued) bool { return e.packed == nil })
	if first < 0 {
		q.mu.Unlock()
		return false
	}
	start, rules := q.taken+int64(first), q.entries[first].rules
	raw := q.packRaw[:0]
	samples, n := 0, 0
	for _, e := range q.entries[first:] {
		if e.packed != nil || e.rules != rules || (n > 0 && len(raw)+len(e.chunk) > maxForwardBatch) {
			break
		}
		raw = append(raw, e.chunk...) // a copy: a chunk goes back to the pool once sent
		samples += e.samples
		n++
	}
	q.mu.Unlock()
	q.packRaw = raw

	// Into a scratch buffer, then copied: snappy wants MaxEncodedLen (more than the input)
	// of room, which a packed entry must not keep.
	var packed []byte
	broken := remotewrite.CheckRawSeries(raw)
	if broken == nil {
		q.packBuf = snappy.Encode(q.packBuf[:cap(q.packBuf)], raw)
		packed = bytes.Clone(q.packBuf)
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	at := start - q.taken
	if at < 0 || q.closed || int(at)+n > len(q.entries) {
		return false // take sent a part of the run meanwhile, or the queue is closing
	}
	run := q.entries[at : int(at)+n]
	for _, e := range run {
		q.chunks0.put(e.chunk)
	}
	if broken == nil {
		q.entries = slices.Replace(q.entries, int(at), int(at)+n, queued{packed: packed, samples: samples, rules: rules})
	} else {
		// Not series (a bug): the peer would refuse the body for good, so it goes now,
		// counted, rather than being tried again at every push.
		q.entries = slices.Delete(q.entries, int(at), int(at)+n)
		q.metrics.forwardDropped.WithLabelValues(q.name).Add(float64(samples))
		q.logger.Error("cluster: queued series to a peer do not decode; dropped", "samples", samples, "err", broken)
	}
	saved := int64(len(raw) - len(packed)) // all of it when dropped
	q.loose -= int64(len(raw))
	q.waiting -= saved
	q.bytes -= saved
	q.held.Add(-saved)
	q.metrics.queueBytes.WithLabelValues(q.name).Sub(float64(saved))
	return true
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
		chunks, packed, samples, rules := q.take()
		if chunks == nil && packed == nil {
			return
		}
		send := packed
		if packed == nil {
			raw = raw[:0]
			for _, c := range chunks {
				raw = append(raw, c...)
			}
			body = snappy.Encode(body[:cap(body)], raw)
			send = body
		}
		aborted, busy := q.send(send, samples, rules)
		if busy && packed == nil {
			body = nil // a request still reads it: the next batch gets a buffer of its own
		}
		q.mu.Lock()
		if aborted {
			if packed != nil {
				raw, _ = snappy.Decode(raw[:cap(raw)], packed) // it decoded when packed
			}
			q.cut, q.cutN = append(q.cut, raw...), q.cutN+samples
		}
		sent := len(packed)
		for _, c := range chunks {
			sent += len(c)
			q.chunks0.put(c)
		}
		q.bytes -= int64(sent)
		q.held.Add(-int64(sent))
		q.inflight, q.inflightPacked = nil, nil
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

// backlogPart is a run of a queue's series, in the order they were queued: encoded series
// (raw), or a packed entry's body (packed, shared: nothing writes a packed body once made).
type backlogPart struct {
	raw, packed []byte
	samples     int
}

// series returns the part's encoded series: raw, or packed decoded into scratch's room.
func (p backlogPart) series(scratch []byte) ([]byte, error) {
	if p.packed == nil {
		return p.raw, nil
	}
	raw, err := snappy.Decode(scratch[:cap(scratch)], p.packed)
	if err != nil {
		return nil, fmt.Errorf("a packed batch does not decode: %w", err)
	}
	return raw, nil
}

// backlogLocked returns what the queue holds (a send the shutdown cut short, the batch in
// flight, the entries), in order, in parts: each packed entry, and runs of chunks copied into
// parts of up to maxForwardBatch bytes, or one larger chunk (one request's series for the
// member) alone (a live queue's chunks go back to the pool once sent). q.mu is held.
func (q *peerQueue) backlogLocked() []backlogPart {
	// First the runs, then one buffer of the right size for each.
	type run struct {
		chunks  [][]byte
		size    int
		samples int
		packed  []byte
	}
	var runs []run
	addRaw := func(b []byte, samples int) {
		if len(b) == 0 && samples == 0 {
			return
		}
		if n := len(runs); n == 0 || runs[n-1].packed != nil || runs[n-1].size+len(b) > maxForwardBatch {
			runs = append(runs, run{})
		}
		last := &runs[len(runs)-1]
		last.chunks = append(last.chunks, b)
		last.size += len(b)
		last.samples += samples
	}
	addRaw(q.cut, q.cutN)
	for _, c := range q.inflight {
		addRaw(c, 0) // a batch in flight counts no samples: only a shutdown's count needs them, and it has none
	}
	if q.inflightPacked != nil {
		runs = append(runs, run{packed: q.inflightPacked})
	}
	for _, e := range q.entries {
		if e.packed != nil {
			runs = append(runs, run{packed: e.packed, samples: e.samples})
		} else {
			addRaw(e.chunk, e.samples)
		}
	}
	parts := make([]backlogPart, len(runs))
	for i, r := range runs {
		parts[i] = backlogPart{packed: r.packed, samples: r.samples}
		if r.packed == nil {
			parts[i].raw = make([]byte, 0, r.size)
			for _, c := range r.chunks {
				parts[i].raw = append(parts[i].raw, c...)
			}
		}
	}
	return parts
}

// pending returns the series queued or in flight, for a checkpoint, as snappy bodies of
// encoded series in the order they were queued: packed entries as they are, the rest
// compressed outside the lock. Nothing is decoded, so a backlog of any size costs the
// checkpoint about what the queue holds. Chunks whose framing is broken are an error: a
// checkpoint without them would let the log that holds them be truncated.
func (q *peerQueue) pending() ([][]byte, error) {
	q.mu.Lock()
	parts := q.backlogLocked()
	q.mu.Unlock()
	bodies := make([][]byte, 0, len(parts))
	var scratch []byte
	for i, p := range parts {
		if p.packed != nil {
			bodies = append(bodies, p.packed)
			continue
		}
		if err := remotewrite.CheckRawSeries(p.raw); err != nil {
			return nil, fmt.Errorf("the forward queue to cluster member %q does not decode: %w", q.name, err)
		}
		scratch = snappy.Encode(scratch[:cap(scratch)], p.raw)
		bodies = append(bodies, bytes.Clone(scratch))
		parts[i].raw = nil // each copy goes once compressed
	}
	return bodies, nil
}

// shutdown sends what is queued until ctx is done. What is left then (queued, and the batch
// whose send it cut short) goes to reroute, as encoded series in the parts backlogLocked
// returns (a packed one decoded), in the order they were queued, when reroute is not nil and
// takes it; otherwise it is dropped, counted and reported.
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
	parts := q.backlogLocked()
	q.mu.Unlock()
	// Given to reroute while the queue still holds it: a checkpoint in between has the
	// series twice (the owner drops the repeat by its timestamp), never not at all.
	var first error // of the parts not rerouted: the first one's reason is reported
	rerouted, lost := 0, 0
	var scratch []byte
	for _, p := range parts {
		err := errors.New("dropped")
		if reroute != nil {
			var raw []byte
			if raw, err = p.series(scratch); err == nil {
				err = reroute(raw)
			}
			if p.packed != nil {
				scratch = raw
			}
		}
		if err != nil {
			lost += p.samples
			if first == nil {
				first = err
			}
			continue
		}
		rerouted += p.samples
	}
	if rerouted > 0 {
		q.metrics.forwardRerouted.WithLabelValues(q.name).Add(float64(rerouted))
	}
	q.mu.Lock()
	q.metrics.queueBytes.WithLabelValues(q.name).Sub(float64(q.bytes))
	q.held.Add(-q.bytes)
	q.entries, q.bytes, q.waiting, q.loose, q.cut, q.cutN = nil, 0, 0, 0, nil, 0
	q.mu.Unlock()
	if lost > 0 {
		q.metrics.forwardDropped.WithLabelValues(q.name).Add(float64(lost))
		return fmt.Errorf("cluster peer %s: %d forwarded samples not delivered before the shutdown timeout (%w)", q.name, lost, first)
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
