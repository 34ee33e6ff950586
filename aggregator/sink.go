package aggregator

import "github.com/prometheus/prometheus/prompb"

// Sink receives the series a flush produces (and raw series forwarded unaggregated).
// Send must not block: a sink queues, and reports back-pressure through its own Full method
// to the receiver. The aggregator does not modify the series after Send; the sink may keep
// them until written and must not modify them either (downstream.Sink says why).
type Sink interface {
	Send(series []prompb.TimeSeries)
}
