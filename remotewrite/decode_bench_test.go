package remotewrite

import (
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
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

	b.Run("snappy_and_protobuf", func(b *testing.B) {
		d := NewDecoder(DefaultMaxRequestBytes)
		var got prompb.WriteRequest
		if err := d.Decode(body, &got); err != nil { // warm up: size the reused buffers
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if err := d.Decode(body, &got); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/samples, "ns/sample")
	})
	b.Run("protobuf_only", func(b *testing.B) {
		d := NewDecoder(0)
		var got prompb.WriteRequest
		if err := d.Unmarshal(raw, &got); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			if err := d.Unmarshal(raw, &got); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/samples, "ns/sample")
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
