package hashring

import (
	"github.com/prometheus/prometheus/prompb"
)

// Outbox collects, while one request is aggregated, the series to forward to each owner, and
// queues them at the end, one chunk per owner. Series are encoded as they come (they point
// into the request), so forwarding allocates per owner, not per series. Obtain one from
// Forwarder.Outbox; it is not safe for concurrent use.
type Outbox struct {
	View
	peers   *peerSet
	pool    *chunkPool
	to      [][]byte // encoded series per member index
	samples []int
	n       int // series collected
}

// Forward encodes series ts for the member at index owner (the aggregator's Route.Forward).
func (o *Outbox) Forward(owner int, ts *prompb.TimeSeries) {
	if o.to == nil {
		o.to = make([][]byte, o.ring.Len())
		o.samples = make([]int, o.ring.Len())
	}
	if o.to[owner] == nil {
		o.to[owner] = o.pool.get()
	}
	o.to[owner] = appendSeries(o.to[owner], ts)
	o.samples[owner] += len(ts.Samples) + len(ts.Histograms)
	o.n++
}

// Send queues what was collected and reports how many series it forwarded. The outbox is
// done with.
func (o *Outbox) Send() int {
	for i, chunk := range o.to {
		if len(chunk) > 0 {
			o.peers.send(i, chunk, o.samples[i])
		}
	}
	return o.n
}
