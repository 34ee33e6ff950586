package remotewrite

import (
	"bytes"
	"context"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

type discardAppender struct{}

func (discardAppender) Append(context.Context, *prompb.WriteRequest, []byte) error { return nil }

// BenchmarkHandler measures the receiver end to end without the network: read the body,
// decode, validate and answer, for the request of BenchmarkDecode, with labels sorted (as
// Prometheus sends them) and not.
func BenchmarkHandler(b *testing.B) {
	const samples = 2000
	sorted := benchmarkRequest(samples, 8)
	unsorted := benchmarkRequest(samples, 8)
	for _, ts := range unsorted.Timeseries {
		slices.Reverse(ts.Labels)
	}
	for name, req := range map[string]prompb.WriteRequest{"sorted_labels": sorted, "unsorted_labels": unsorted} {
		b.Run(name, func(b *testing.B) {
			body := encodeBody(b, req.Timeseries...)
			h := NewHandler(discardAppender{}, HandlerOptions{}, nil, nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("POST", WritePath, bytes.NewReader(body)))
				if rec.Code != 204 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/samples, "ns/sample")
		})
	}
}
