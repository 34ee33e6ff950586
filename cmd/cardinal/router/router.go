// Package router is what the receiver hands each accepted request to: it refuses data (503)
// while a downstream queue is full, the write-ahead log cannot take it or cardinal is shutting
// down; with a WAL it logs the request before the aggregator sees it (and so before the 2xx),
// checkpoints the aggregator's state together with what the sinks still hold, truncates the
// log behind the checkpoints, and at start-up restores the newest checkpoint and replays the
// rest of the log. What the records mean is this package's; how they are stored is wal's.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/hashring"
	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/wal"
)

// Router is the receiver's remotewrite.Appender. Its methods are safe for concurrent use.
type Router struct {
	agg    *aggregator.Aggregator
	sinks  downstream.Fanout
	log    *wal.Log // nil without a WAL
	logger *slog.Logger
	// cluster routes each output to its owner; nil without a cluster.
	cluster *hashring.Forwarder

	// limits and maxBytes decode replayed requests as the receiver decoded them.
	limits   remotewrite.Limits
	maxBytes int

	stopping atomic.Bool
	// ingest is held shared from a request's WAL append to the end of its ingestion, and
	// exclusively for an instant by a checkpoint, which so learns a log position every
	// record up to which is wholly in the aggregator.
	ingest   sync.RWMutex
	encoders sync.Pool // *remotewrite.Encoder, for requests whose body is not logged whole
	records  sync.Pool // *[]byte, a record being appended
	// checkpointMu serialises checkpoints; lastCheckpoint is the index of the newest one
	// written, which the log is kept back to after the next.
	checkpointMu   sync.Mutex
	lastCheckpoint uint64
	hasCheckpoint  bool
	// soon is the CheckpointSoon round callers join, until its checkpoint begins.
	soonMu sync.Mutex
	soon   *checkpointRound
	// takenStuck is when a handoff's record last waited takenQueueWait in vain for a place
	// in the log (unix nanoseconds; 0 never).
	takenStuck atomic.Int64
	// queueTaken queues a handoff's record: the log's Enqueue, which tests stall.
	queueTaken func(ctx context.Context, payload []byte) (wait func() (uint64, error), err error)
	// lastResult is the outcome of the last checkpoint attempt, for the status page.
	lastResult atomic.Pointer[CheckpointResult]
	// delivered are, by downstream name, the marks of what each remote-write downstream
	// has acknowledged (with a WAL only).
	delivered map[string]*deliveryMarks

	observer Observer // nil without an explorer
	metrics  *metrics
}

// Options configure a Router.
type Options struct {
	Aggregator *aggregator.Aggregator
	Sinks      downstream.Fanout
	// WAL is the write-ahead log; nil runs without one.
	WAL *wal.Log
	// Cluster forwards what other members own to them; nil runs alone.
	Cluster *hashring.Forwarder
	// Limits and MaxRequestBytes are the receiver's, for decoding replayed requests.
	Limits          remotewrite.Limits
	MaxRequestBytes int
	// Observer, if not nil, reads every request an agent sent once it is accepted (not
	// requests peers forwarded, nor the WAL's replay): the cardinality explorer.
	Observer Observer
	Logger   *slog.Logger
}

// Observer reads the series and metadata of accepted requests. Labels may point into the
// request's buffer: it copies what it keeps.
type Observer interface {
	Observe(series []prompb.TimeSeries)
	ObserveMetadata(md []prompb.MetricMetadata)
}

// New returns a Router, registering its metrics with reg. With a WAL it tracks what each
// remote-write sink's downstream acknowledged (see deliveryMarks), so it must be created
// before the sinks start.
func New(o Options, reg prometheus.Registerer) *Router {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Router{
		agg: o.Aggregator, sinks: o.Sinks, log: o.WAL, logger: o.Logger, cluster: o.Cluster,
		limits: o.Limits, maxBytes: o.MaxRequestBytes, observer: o.Observer,
		metrics: newMetrics(reg),
	}
	if r.log != nil {
		r.queueTaken = r.log.Enqueue
		r.delivered = map[string]*deliveryMarks{}
		for _, d := range o.Sinks {
			if t, ok := d.Sink.(deliveryTracked); ok {
				m := &deliveryMarks{sink: d.Name, log: r.log, marks: map[uint64]int64{}}
				t.TrackDelivery(m)
				r.delivered[d.Name] = m
			}
		}
	}
	r.encoders.New = func() any { return &remotewrite.Encoder{} }
	r.records.New = func() any { return new([]byte) }
	return r
}

// Stop makes every later request a 503: cardinal is shutting down.
func (r *Router) Stop() { r.stopping.Store(true) }

// Append implements remotewrite.Appender. A request a peer forwarded (its ForwardInfo in
// ctx) is aggregated by the sender's ring and never forwarded again.
func (r *Router) Append(ctx context.Context, req *prompb.WriteRequest, body []byte) error {
	if r.stopping.Load() {
		return fmt.Errorf("shutting down: %w", remotewrite.ErrUnavailable)
	}
	if len(req.Timeseries) == 0 {
		// Metadata alone, as Prometheus sends 1.0 metadata: nothing to log or aggregate.
		r.readMetadata(ctx, req.Metadata)
		return nil
	}
	if name, full := r.sinks.FullSink(); full {
		r.agg.NoteRefused()
		return fmt.Errorf("downstream %q queue is full: %w", name, remotewrite.ErrUnavailable)
	}
	fi, forwarded := hashring.ForwardInfoFrom(ctx)
	if r.cluster != nil && !forwarded {
		if peer, full := r.cluster.Full(); full {
			r.agg.NoteRefused()
			return fmt.Errorf("the forward queue to cluster member %q is full: %w", peer, remotewrite.ErrUnavailable)
		}
	}
	if r.log != nil {
		r.ingest.RLock()
		defer r.ingest.RUnlock()
		if err := r.logRequest(ctx, req, body, fi, forwarded); err != nil {
			r.agg.NoteRefused()
			return err
		}
	}
	r.ingestRequest(req.Timeseries, remotewrite.RawSeries(ctx), fi, forwarded)
	if r.observer != nil && !forwarded {
		r.observer.Observe(req.Timeseries)
	}
	r.readMetadata(ctx, req.Metadata)
	return nil
}

// readMetadata gives the metadata an agent sent to the aggregator (its outputs' metadata,
// the type check) and the explorer. What a peer forwards has none.
func (r *Router) readMetadata(ctx context.Context, md []prompb.MetricMetadata) {
	if _, forwarded := hashring.ForwardInfoFrom(ctx); forwarded || len(md) == 0 {
		return
	}
	r.agg.CheckMetadata(md)
	if r.observer != nil {
		r.observer.ObserveMetadata(md)
	}
}

// ingestRequest aggregates a request's series: alone, all of them; in a cluster, what this
// member owns, forwarding the rest to their owners (raw, their encodings as they arrived,
// when known: remotewrite.RawSeries), or, for a forwarded request, what the sender's ring
// gives this member.
func (r *Router) ingestRequest(series []prompb.TimeSeries, raw [][]byte, fi hashring.ForwardInfo, forwarded bool) {
	switch {
	case r.cluster == nil:
		r.agg.Ingest(series)
	case forwarded:
		v, disagree := r.cluster.SenderView(fi)
		r.agg.IngestRoute(series, aggregator.Route{Router: v, Forwarded: true, Disagrees: disagree, SenderRules: fi.Rules})
	default:
		ob := r.cluster.Outbox()
		ob.UseRaw(raw)
		rules := r.agg.IngestRoute(series, aggregator.Route{Router: ob, Forward: ob.Forward})
		ob.Send(rules)
	}
}

// Reroute aggregates or forwards again, by the ring in force, series that a replaced ring's
// queue could not deliver to their owner (hashring.Forwarder.OnUndelivered), as restore
// does with what a checkpoint's queues held. They are in the log already; the ingest lock
// keeps a checkpoint from seeing them half moved.
func (r *Router) Reroute(series []prompb.TimeSeries) {
	if r.log != nil {
		r.ingest.RLock()
		defer r.ingest.RUnlock()
	}
	r.ingestRequest(series, nil, hashring.ForwardInfo{}, false)
}

// logRequest appends the request to the WAL and returns once it is as durable as the fsync
// mode makes it. A full log or a failing disk is a 503: the agent keeps the data.
func (r *Router) logRequest(ctx context.Context, req *prompb.WriteRequest, body []byte, fi hashring.ForwardInfo, forwarded bool) error {
	if body == nil {
		enc := r.encoders.Get().(*remotewrite.Encoder)
		defer r.encoders.Put(enc)
		var err error
		if body, err = enc.Encode(req.Timeseries); err != nil {
			return fmt.Errorf("encoding the request for the WAL: %w", err)
		}
	}
	rec := r.records.Get().(*[]byte)
	defer r.records.Put(rec)
	if forwarded {
		*rec = appendRecord((*rec)[:0], recordForwarded, nil)
		*rec = appendForwarded(*rec, fi, body)
	} else {
		*rec = appendRecord((*rec)[:0], recordRemoteWrite1, body)
	}
	start := time.Now()
	_, err := r.log.Append(ctx, *rec)
	r.metrics.appendDuration.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, wal.ErrFull):
		return fmt.Errorf("the write-ahead log is full (wal.max_bytes): %w", remotewrite.ErrUnavailable)
	case err != nil:
		return fmt.Errorf("the write-ahead log refused the request: %v: %w", err, remotewrite.ErrUnavailable)
	}
	return nil
}

// Run checkpoints every interval until ctx ends. With no WAL it returns at once.
func (r *Router) Run(ctx context.Context, interval time.Duration) {
	if r.log == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = r.Checkpoint()
		}
	}
}

// CheckpointResult is the outcome of one checkpoint attempt.
type CheckpointResult struct {
	Time  time.Time
	Index uint64
	Err   error
}

// WALStatus is the write-ahead log's state for the status page; ok is false without a WAL.
func (r *Router) WALStatus() (first, last uint64, lastCheckpoint *CheckpointResult, ok bool) {
	if r.log == nil {
		return 0, 0, nil, false
	}
	return r.log.FirstIndex(), r.log.LastIndex(), r.lastResult.Load(), true
}
