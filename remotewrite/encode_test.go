package remotewrite

import (
	"bytes"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

func TestEncoderProducesASnappyWriteRequest(t *testing.T) {
	var e Encoder // reused across sizes, small after large
	d := NewDecoder(0)
	var got prompb.WriteRequest
	for _, seed := range []uint64{1, 2, 3, 50, 4} {
		req := newRequestGenerator(seed).request()
		body, err := e.Encode(req.Timeseries)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			t.Fatalf("seed %d: not a snappy block: %v", seed, err)
		}
		want, err := (&prompb.WriteRequest{Timeseries: req.Timeseries}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, want) {
			t.Fatalf("seed %d: encoded protobuf differs from prompb's Marshal", seed)
		}
		if err := d.Decode(body, &got); err != nil {
			t.Fatalf("seed %d: own decoder refuses the body: %v", seed, err)
		}
		if e.req.Timeseries != nil {
			t.Fatal("Encoder keeps a reference to the caller's series")
		}
	}
}

func TestEncoderSteadyStateDoesNotAllocate(t *testing.T) {
	req := benchmarkRequest(500, 8)
	var e Encoder
	allocs := allocsPerOp(50, func() {
		if _, err := e.Encode(req.Timeseries); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per encode, want 0", allocs)
	}
}
