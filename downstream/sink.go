package downstream

import (
	"context"

	"github.com/prometheus/prometheus/prompb"
)

// Sink is one downstream: a remote-write receiver, the file, a PostgreSQL database.
type Sink interface {
	// Send hands series to the sink without blocking. The sink keeps references to the
	// series until they are written and never modifies them; the caller must not modify
	// them after the call either, because the fan-out shares them with every sink.
	Send(series []prompb.TimeSeries)
	// Full reports that the sink's bounded queue is full: the receiver then answers 503 so
	// that agents keep their data. What was already sent is queued all the same.
	Full() bool
	// Start starts the sink's goroutines; series sent before wait in its queue.
	Start()
	// Shutdown writes what is queued until ctx is done, then drops and counts the rest and
	// returns an error saying how much was lost.
	Shutdown(ctx context.Context) error
}

// Snapshotter is a Sink whose queue can be saved in a checkpoint: Pending returns the series
// it holds, being written or waiting. Sent again to a new sink of the same name before it
// starts, they are written again, so a crash loses nothing a checkpoint saw queued; what was
// written after the checkpoint is not duplicated: the SQL sink stores a row written twice
// once, and a remote-write sink leaves out what its Delivery says was acknowledged.
type Snapshotter interface {
	Pending() []prompb.TimeSeries
}
