package remotewrite

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// A 2.0 body decodes to what the same series give through the 1.0 encoder and decoder,
// histograms included (exemplars and metadata are not sent), with a reused encoder.
func TestEncoderV2RoundTrips(t *testing.T) {
	var e1 Encoder
	var e2 EncoderV2
	d1, d2 := NewDecoder(0), NewDecoder(0)
	var got1, got2 prompb.WriteRequest
	for seed := range uint64(300) {
		req := newRequestGenerator(seed).request()
		for i := range req.Timeseries {
			req.Timeseries[i].Exemplars = nil
		}
		b1, err := e1.Encode(req.Timeseries)
		if err != nil {
			t.Fatal(err)
		}
		if err := d1.Decode(b1, &got1); err != nil {
			t.Fatal(err)
		}
		b2, err := e2.Encode(req.Timeseries)
		if err != nil {
			t.Fatal(err)
		}
		if err := d2.DecodeV2(b2, &got2); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		got1.Metadata, got2.Metadata = nil, nil
		if diff := diffRequests(&got1, &got2); diff != "" {
			t.Fatalf("seed %d: 2.0 round trip differs from 1.0's: %s", seed, diff)
		}
	}
}
