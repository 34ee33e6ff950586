package hashring

import (
	"github.com/prometheus/prometheus/prompb"
)

// Outbox collects, while one request is aggregated, the series to forward to each owner, and
// hands them to the owners' queues at the end, one batch per owner. Obtain one from
// Forwarder.Outbox; it is not safe for concurrent use.
type Outbox struct {
	View
	peers *peerSet
	to    [][]prompb.TimeSeries // per member index
	n     int                   // series collected
}

// Forward adds a series for the member at index owner (the aggregator's Route.Forward).
func (o *Outbox) Forward(owner int, ts prompb.TimeSeries) {
	if o.to == nil {
		o.to = make([][]prompb.TimeSeries, o.ring.Len())
	}
	o.to[owner] = append(o.to[owner], ts)
	o.n++
}

// Send queues what was collected, each owner's series in one batch, and reports how many
// series it forwarded. The outbox is done with.
func (o *Outbox) Send() int {
	for i, series := range o.to {
		if len(series) > 0 {
			o.peers.send(i, series)
		}
	}
	return o.n
}
