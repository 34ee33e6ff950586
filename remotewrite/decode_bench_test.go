package remotewrite

import (
	"fmt"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// BenchmarkDecode measures decoding a typical agent request: 2000 series of one sample with 8
// labels each, snappy-compressed.
func BenchmarkDecode(b *testing.B) {
	const samples = 2000
	req := benchmarkRequest(samples, 8)
	raw, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	body := snappy.Encode(nil, raw)

	b.Run("snappy_and_protobuf", func(b *testing.B) { benchDecoding(b, body, samples, DefaultMaxRequestBytes, (*Decoder).Decode) })
	b.Run("protobuf_only", func(b *testing.B) { benchDecoding(b, raw, samples, 0, (*Decoder).Unmarshal) })
	b.Run("scrape_like", func(b *testing.B) {
		benchDecodeBody(b, scrapeLikeRequest(), (*Decoder).Decode, func(r *prompb.WriteRequest) ([]byte, error) { return r.Marshal() })
	})
	b.Run("gogo_unmarshal_for_comparison", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			var got prompb.WriteRequest
			if err := got.Unmarshal(raw); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/samples, "ns/sample")
	})
}

// BenchmarkDecodeV2 is BenchmarkDecode for the same request sent as Remote Write 2.0 (no
// metadata, no created timestamps): a symbol table shared by the series and label
// references. Every label value of this request is distinct, so the symbol table saves
// little; real requests, which repeat job, namespace and the like, share more.
func BenchmarkDecodeV2(b *testing.B) {
	const samples = 2000
	v1 := benchmarkRequest(samples, 8)
	req := asV2(&v1)
	raw, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	body := snappy.Encode(nil, raw)

	b.Run("snappy_and_protobuf", func(b *testing.B) { benchDecoding(b, body, samples, DefaultMaxRequestBytes, (*Decoder).DecodeV2) })
	b.Run("protobuf_only", func(b *testing.B) { benchDecoding(b, raw, samples, 0, (*Decoder).UnmarshalV2) })
	b.Run("scrape_like", func(b *testing.B) {
		benchDecodeBody(b, scrapeLikeRequest(), (*Decoder).DecodeV2, func(r *prompb.WriteRequest) ([]byte, error) {
			v2 := asV2(r)
			return v2.Marshal()
		})
	})
	b.Run("reference_unmarshal_for_comparison", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			var got writev2.Request
			if err := got.Unmarshal(raw); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/samples, "ns/sample")
	})
}

// asV2 is a 1.0 request as a 2.0 sender would write it (no metadata).
func asV2(v1 *prompb.WriteRequest) writev2.Request {
	st := writev2.NewSymbolTable()
	var req writev2.Request
	for _, ts := range v1.Timeseries {
		var s writev2.TimeSeries
		for _, l := range ts.Labels {
			s.LabelsRefs = append(s.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		for _, smp := range ts.Samples {
			s.Samples = append(s.Samples, writev2.Sample{Value: smp.Value, Timestamp: smp.Timestamp})
		}
		req.Timeseries = append(req.Timeseries, s)
	}
	req.Symbols = st.Symbols()
	return req
}

// scrapeLikeRequest is 2000 series as an agent sends a scrape round: 20 pods of one job,
// each exposing 100 metrics with the same 8 labels (name, pod, instance, job, namespace,
// node, method, code), so label values repeat across series as they do in real requests.
func scrapeLikeRequest() prompb.WriteRequest {
	var req prompb.WriteRequest
	for pod := range 20 {
		for m := range 100 {
			ls := []prompb.Label{
				{Name: "__name__", Value: fmt.Sprintf("app_requests_%02d_total", m)},
				{Name: "code", Value: fmt.Sprint(200 + 100*(m%4))},
				{Name: "instance", Value: fmt.Sprintf("10.1.%d.%d:8080", pod/10, pod)},
				{Name: "job", Value: "kubernetes-pods"},
				{Name: "method", Value: []string{"GET", "POST"}[m%2]},
				{Name: "namespace", Value: "checkout"},
				{Name: "node", Value: fmt.Sprintf("node-%d", pod%3)},
				{Name: "pod", Value: fmt.Sprintf("checkout-7d9f8b6c4-%05d", pod)},
			}
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls,
				Samples: []prompb.Sample{{Value: float64(pod*m) * 1.5, Timestamp: 1_700_000_000_000 + int64(pod)}}})
		}
	}
	return req
}

// benchDecodeBody measures decode on req marshalled by marshal and snappy-compressed.
func benchDecodeBody(b *testing.B, req prompb.WriteRequest, decode func(*Decoder, []byte, *prompb.WriteRequest) error,
	marshal func(*prompb.WriteRequest) ([]byte, error)) {
	raw, err := marshal(&req)
	if err != nil {
		b.Fatal(err)
	}
	benchDecoding(b, snappy.Encode(nil, raw), len(req.Timeseries), DefaultMaxRequestBytes, decode)
}

// benchDecoding measures decode on data with a warm Decoder (limit maxBytes) and reports ns
// per sample for a request of samples single-sample series.
func benchDecoding(b *testing.B, data []byte, samples, maxBytes int, decode func(*Decoder, []byte, *prompb.WriteRequest) error) {
	d := NewDecoder(maxBytes)
	var got prompb.WriteRequest
	if err := decode(d, data, &got); err != nil { // warm up: size the reused buffers
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := decode(d, data, &got); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
}
