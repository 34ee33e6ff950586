package downstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/prompb"
)

// Named is a sink with the name and kind (remote_write, file, timescaledb) it has in logs,
// metrics and the status page.
type Named struct {
	Name string
	Kind string
	Sink
}

// Fanout sends every series to every sink. The sinks share the series: none modifies them.
type Fanout []Named

// Send hands series to every sink; it satisfies aggregator.Sink.
func (f Fanout) Send(series []prompb.TimeSeries) {
	for _, d := range f {
		d.Send(series)
	}
}

// FullSink returns the name of a sink whose queue is full, if any: the receiver then answers
// 503.
func (f Fanout) FullSink() (name string, full bool) {
	for _, d := range f {
		if d.Full() {
			return d.Name, true
		}
	}
	return "", false
}

// Start starts every sink.
func (f Fanout) Start() {
	for _, d := range f {
		d.Start()
	}
}

// SendMetadata gives src to every sink that sends metadata (remote write); call it before
// Start.
func (f Fanout) SendMetadata(src OutputMetadata) {
	for _, n := range f {
		if m, ok := n.Sink.(interface{ SendMetadata(OutputMetadata) }); ok {
			m.SendMetadata(src)
		}
	}
}

// Shutdown drains every sink in parallel until ctx is done, and joins their errors, each
// prefixed with the sink's name.
func (f Fanout) Shutdown(ctx context.Context) error {
	errs := make(chan error, len(f))
	for _, d := range f {
		go func() {
			if err := d.Shutdown(ctx); err != nil {
				errs <- fmt.Errorf("downstream %q: %w", d.Name, err)
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

// Pending returns, by sink name, what each sink that can be snapshotted holds (see
// Snapshotter); sinks without a queue (the file) are absent.
func (f Fanout) Pending() map[string][]prompb.TimeSeries {
	out := map[string][]prompb.TimeSeries{}
	for _, d := range f {
		if s, ok := d.Sink.(Snapshotter); ok {
			out[d.Name] = s.Pending()
		}
	}
	return out
}

// SendTo sends series to the sink named name only; it reports false when there is none
// (the downstream was removed from the configuration).
func (f Fanout) SendTo(name string, series []prompb.TimeSeries) bool {
	for _, d := range f {
		if d.Name == name {
			d.Send(series)
			return true
		}
	}
	return false
}
