package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// router is the receiver's Appender: it refuses data (503) while a downstream queue is full
// or the process is shutting down, and otherwise hands the series to the aggregator, which
// matches rules and forwards what it does not aggregate.
type router struct {
	agg      *aggregator.Aggregator
	sinks    downstream.Fanout
	stopping atomic.Bool
}

// Append implements remotewrite.Appender.
func (r *router) Append(_ context.Context, req *prompb.WriteRequest) error {
	if r.stopping.Load() {
		return fmt.Errorf("shutting down: %w", remotewrite.ErrUnavailable)
	}
	if name, full := r.sinks.FullSink(); full {
		r.agg.NoteRefused()
		return fmt.Errorf("downstream %q queue is full: %w", name, remotewrite.ErrUnavailable)
	}
	r.agg.Ingest(req.Timeseries)
	return nil
}
