package remotewrite

import (
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// FuzzDecodeV2 checks UnmarshalV2 against the reference types (referenceV2) on arbitrary
// bytes, with a Decoder that decoded another request first, so that stale data left in
// reused slices would show as a difference; and that validation with the Decoder's label
// facts agrees with validation without them.
func FuzzDecodeV2(f *testing.F) {
	for seed := range uint64(8) {
		orig := newRequestGenerator(seed).request()
		v2 := toV2(&orig, rand.New(rand.NewPCG(seed, 7)))
		if b, err := v2.Marshal(); err == nil {
			f.Add(b)
		}
	}
	dirtyReq := newRequestGenerator(99).request()
	dirtyV2 := toV2(&dirtyReq, rand.New(rand.NewPCG(99, 7)))
	dirty, err := dirtyV2.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(1 << 20)
		var got prompb.WriteRequest
		if err := d.UnmarshalV2(dirty, &got); err != nil {
			t.Fatal(err)
		}
		checkV2AgainstReference(t, d, data, &got)
		tight := Limits{MaxLabelsPerSeries: 3, MaxLabelNameLength: 6, MaxLabelValueLength: 5}
		for _, limits := range []Limits{DefaultLimits(), tight} {
			d.SetLimits(limits)
			if d.UnmarshalV2(data, &got) == nil {
				agreeOnValidation(t, d, &got, limits)
			}
		}
	})
}
