package remotewrite

import (
	"errors"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// FuzzDecode checks the Decoder against prompb's generated Unmarshal on arbitrary bytes, taken
// both as a protobuf body and as a snappy block. The Decoder is reused after decoding another
// request first, so stale data left in reused slices would show as a difference.
// It also checks that validation with the Decoder's label facts agrees with validation
// without them. Seeds: testdata/fuzz/FuzzDecode, plus generated requests.
func FuzzDecode(f *testing.F) {
	for seed := range uint64(8) {
		req := newRequestGenerator(seed).request()
		if b, err := req.Marshal(); err == nil {
			f.Add(b)
		}
		f.Add(newProtoWriter(seed).request(&req))
	}
	dirty, err := func() ([]byte, error) { r := newRequestGenerator(99).request(); return r.Marshal() }()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(1 << 20)
		var got prompb.WriteRequest
		if err := d.Unmarshal(dirty, &got); err != nil {
			t.Fatal(err)
		}
		checkAgainstGogo(t, d, data, &got)

		// What the Decoder saw of the labels lets validation skip reading them again: both
		// ways must keep and refuse the same series.
		tight := Limits{MaxLabelsPerSeries: 3, MaxLabelNameLength: 6, MaxLabelValueLength: 5}
		for _, limits := range []Limits{DefaultLimits(), tight} {
			d.SetLimits(limits)
			if d.Unmarshal(data, &got) == nil {
				agreeOnValidation(t, d, &got, limits)
			}
		}
		d.SetLimits(Limits{})

		// The same bytes as a snappy body, through the whole path.
		if err := d.Decode(snappy.Encode(nil, data), &got); err == nil {
			var want prompb.WriteRequest
			if err := want.Unmarshal(data); err != nil {
				t.Fatalf("Decode accepted what gogo refuses: %v", err)
			}
			if diff := diffRequests(&want, &got); diff != "" {
				t.Fatalf("Decode and gogo disagree: %s", diff)
			}
		} else if !errors.Is(err, ErrMalformedRequest) && !errors.Is(err, ErrRequestTooLarge) {
			t.Fatalf("Decode error %v wraps neither sentinel", err)
		}

		// The bytes as a snappy block: must not panic, and whatever decodes must agree.
		err := d.Decode(data, &got)
		if err != nil && !errors.Is(err, ErrMalformedRequest) && !errors.Is(err, ErrRequestTooLarge) {
			t.Fatalf("Decode error %v wraps neither sentinel", err)
		}
		if err != nil {
			return
		}
		// Decode checked the decoded length against its limit: decoding again is bounded.
		if raw, snappyErr := snappy.Decode(nil, data); snappyErr == nil {
			var want prompb.WriteRequest
			if err := want.Unmarshal(raw); err != nil {
				t.Fatalf("Decode accepted what gogo refuses: %v", err)
			}
			if diff := diffRequests(&want, &got); diff != "" {
				t.Fatalf("Decode and gogo disagree: %s", diff)
			}
		}
	})
}
