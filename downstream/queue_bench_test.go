package downstream

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// BenchmarkQueuePushTake is one flush of 2000 single-sample series through a queue of four
// shards: the Send, then the senders' batches of 500 and their release, with Take (the SQL
// sink) and TakeDistinct (remote write).
func BenchmarkQueuePushTake(b *testing.B) {
	series := make([]prompb.TimeSeries, 2000)
	for i := range series {
		series[i] = prompb.TimeSeries{
			Labels:  labels("__name__", "http_requests_total", "job", "api", "path", fmt.Sprintf("/p%d", i)),
			Samples: []prompb.Sample{{Value: 1, Timestamp: 1}},
		}
	}
	for _, distinct := range []bool{false, true} {
		b.Run(fmt.Sprintf("distinct=%v", distinct), func(b *testing.B) {
			q := NewQueue(1<<30, 4)
			bufs := make([][]prompb.TimeSeries, q.Shards())
			hashes := make([][]uint64, q.Shards())
			b.ReportAllocs()
			for b.Loop() {
				q.Push(series)
				for shard := range q.Shards() {
					for q.Pending(shard) > 0 {
						var batch Batch
						if distinct {
							batch = q.TakeDistinct(shard, bufs[shard][:0], hashes[shard], 500)
							hashes[shard] = batch.Hashes
						} else {
							batch = q.Take(shard, bufs[shard][:0], 500)
						}
						bufs[shard] = batch.Series
						clear(batch.Series)
						q.Release(batch)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(series)), "ns/series")
		})
	}
}
