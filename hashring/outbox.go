package hashring

import (
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// Outbox collects, while one request is aggregated, the series to forward to each owner, and
// queues them at the end (Send), one chunk per owner. Series are encoded as they come (they point
// into the request), so forwarding allocates per owner, not per series. Obtain one from
// Forwarder.Outbox; it is not safe for concurrent use.
type Outbox struct {
	View
	peers   *peerSet
	pool    *chunkPool
	raw     [][]byte // the request's series as they arrived, if known (remotewrite.RawSeries)
	to      [][]byte // encoded series per member index
	samples []int
	n       int // series collected
}

// UseRaw gives the outbox the encodings of the request's series as they arrived
// (remotewrite.RawSeries): a series forwarded is then copied, not encoded again.
func (o *Outbox) UseRaw(raw [][]byte) { o.raw = raw }

// Forward encodes series ts, the i-th of the request, for the member at index owner (the
// aggregator's Route.Forward).
func (o *Outbox) Forward(owner int, ts *prompb.TimeSeries, i int) {
	if o.to == nil {
		o.to = make([][]byte, o.ring.Len())
		o.samples = make([]int, o.ring.Len())
	}
	if o.to[owner] == nil {
		o.to[owner] = o.pool.get()
	}
	var raw []byte
	if i < len(o.raw) {
		raw = o.raw[i]
	}
	o.to[owner] = remotewrite.AppendRawSeries(o.to[owner], raw, ts)
	o.samples[owner] += len(ts.Samples) + len(ts.Histograms)
	o.n++
}

// Send queues what was collected, routed by the rule set of version rules (the aggregator's
// IngestRoute result), and reports how many series it forwarded. The outbox is done with:
// every outbox must be sent, or the queues of its ring wait for it when the ring changes.
func (o *Outbox) Send(rules uint64) int {
	for i, chunk := range o.to {
		if len(chunk) > 0 {
			o.peers.send(i, chunk, o.samples[i], rules)
		}
	}
	o.peers.inUse.Add(-1)
	return o.n
}
