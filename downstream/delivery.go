package downstream

import (
	"math"
	"slices"

	"github.com/prometheus/prometheus/prompb"
)

// Delivery keeps, for one remote-write downstream, what it has acknowledged, so that a
// restarted cardinal does not send it samples it already holds: Prometheus refuses a whole
// request with a sample older than the newest of its series ("out of order sample"). The
// router implements it over the write-ahead log.
type Delivery interface {
	// Marks sets marks[i] to the newest timestamp the downstream acknowledged for the series
	// of hashes[i] (SeriesHash), or math.MinInt64 when there is none.
	Marks(hashes []uint64, marks []int64)
	// Delivered notes that the downstream acknowledged series (hashes are theirs). The
	// sender calls it before it takes the next batch of the shard and calls it again, after
	// a backoff, while it fails: the note must be durable before a newer sample of these
	// series can be sent.
	Delivered(series []prompb.TimeSeries, hashes []uint64) error
}

// noMark is the mark of a series never acknowledged.
const noMark = math.MinInt64

// dropDelivered appends to dst the series of batch (with their hashes) without their
// samples at or before their marks; a series left without samples is left out. It returns
// the new dst, dstHashes and the number of samples left out.
func dropDelivered(dst []prompb.TimeSeries, dstHashes []uint64, batch Batch, marks []int64) ([]prompb.TimeSeries, []uint64, int) {
	dropped := 0
	for i := range batch.Series {
		ts, mark := batch.Series[i], marks[i]
		if mark == noMark {
			dst, dstHashes = append(dst, ts), append(dstHashes, batch.Hashes[i])
			continue
		}
		n := len(ts.Samples) + len(ts.Histograms)
		if n == 0 {
			continue // no sample: a delivered series has nothing left to say
		}
		samples := ts.Samples
		if slices.IndexFunc(samples, func(s prompb.Sample) bool { return s.Timestamp <= mark }) >= 0 {
			samples = slices.DeleteFunc(slices.Clone(samples), func(s prompb.Sample) bool { return s.Timestamp <= mark })
		}
		histograms := ts.Histograms
		if slices.IndexFunc(histograms, func(h prompb.Histogram) bool { return h.Timestamp <= mark }) >= 0 {
			histograms = slices.DeleteFunc(slices.Clone(histograms), func(h prompb.Histogram) bool { return h.Timestamp <= mark })
		}
		dropped += n - len(samples) - len(histograms)
		if len(samples)+len(histograms) == 0 {
			continue
		}
		ts.Samples, ts.Histograms = samples, histograms
		dst, dstHashes = append(dst, ts), append(dstHashes, batch.Hashes[i])
	}
	return dst, dstHashes, dropped
}
