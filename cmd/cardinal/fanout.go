package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/prompb"
)

// downstream is what the proxy needs of one sink: a remote-write client, the file sink, a
// PostgreSQL sink.
type sink interface {
	Send(series []prompb.TimeSeries)
	// Full reports that the sink's bounded queue is full: the receiver then answers 503.
	Full() bool
	Start()
	Shutdown(ctx context.Context) error
}

// namedDownstream pairs a sink with the name it has in logs, metrics and the status page.
type namedDownstream struct {
	name string
	kind string
	sink
}

// fanout sends every series to every downstream. Series are shared, never modified.
type fanout []namedDownstream

// Send implements aggregator.Sink.
func (f fanout) Send(series []prompb.TimeSeries) {
	for _, d := range f {
		d.Send(series)
	}
}

// full returns the name of a downstream whose queue is full, if any.
func (f fanout) full() (string, bool) {
	for _, d := range f {
		if d.Full() {
			return d.name, true
		}
	}
	return "", false
}

func (f fanout) start() {
	for _, d := range f {
		d.Start()
	}
}

// shutdown drains every downstream in parallel until ctx is done.
func (f fanout) shutdown(ctx context.Context) error {
	errs := make(chan error, len(f))
	for _, d := range f {
		go func() {
			if err := d.Shutdown(ctx); err != nil {
				errs <- fmt.Errorf("downstream %q: %w", d.name, err)
				return
			}
			errs <- nil
		}()
	}
	var all []error
	for range f {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}
