package aggregator

import "github.com/prometheus/prometheus/prompb"

// Sink receives the series a flush produces (and raw series forwarded unaggregated).
// Send takes ownership of the slice and everything it points to, and must not block: a
// sink queues, and reports back-pressure through its own Full method to the receiver.
type Sink interface {
	Send(series []prompb.TimeSeries)
}
