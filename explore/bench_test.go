package explore

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// designLoad returns the requests of docs/design.md §6's load: 100 metrics × 10k pods (1M
// series), 2000 samples a request, each series with job, instance and pod labels.
func designLoad() [][]prompb.TimeSeries {
	const metrics, pods, perRequest = 100, 10000, 2000
	var reqs [][]prompb.TimeSeries
	var req []prompb.TimeSeries
	for m := range metrics {
		name := fmt.Sprintf("app_requests_%d_total", m)
		for p := range pods {
			req = append(req, prompb.TimeSeries{
				Labels: []prompb.Label{
					{Name: "__name__", Value: name},
					{Name: "instance", Value: fmt.Sprintf("10.1.%d.%d:8080", p%100/256, p%100%256)},
					{Name: "job", Value: "app"},
					{Name: "pod", Value: fmt.Sprintf("app-7c9f8d6b5-%05d", p)},
				},
				Samples: []prompb.Sample{{Value: float64(p), Timestamp: 1}},
			})
			if len(req) == perRequest {
				reqs, req = append(reqs, req), nil
			}
		}
	}
	return reqs
}

// BenchmarkObserve reports the explorer's CPU per sample at the design load: during a scan,
// once every series has been seen (the steady state: an agent sends each series every scrape
// interval, and a scan outlasts several), and between scans.
func BenchmarkObserve(b *testing.B) {
	reqs := designLoad()
	b.Run("scanning", func(b *testing.B) {
		e := New(DefaultConfig(), nil, nil)
		e.StartScan()
		for _, r := range reqs {
			e.Observe(r)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			e.Observe(reqs[i%len(reqs)])
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/sample")
	})
	b.Run("first_sight", func(b *testing.B) {
		e := New(DefaultConfig(), nil, nil)
		for i := 0; i < b.N; i++ {
			if i%len(reqs) == 0 {
				b.StopTimer()
				e.StartScan()
				b.StartTimer()
			}
			e.Observe(reqs[i%len(reqs)])
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/sample")
	})
	b.Run("idle", func(b *testing.B) {
		e := New(DefaultConfig(), nil, nil)
		for i := 0; i < b.N; i++ {
			e.Observe(reqs[i%len(reqs)])
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/sample")
	})
}
