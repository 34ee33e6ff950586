package loadgen

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"
)

func TestCompressPatchable_round_trips_and_patches_stay_literal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		// Repetitive text (so that copies happen, also overlapping ones) with random bytes.
		var raw []byte
		words := [][]byte{[]byte("__name__"), []byte("http_requests_total"), []byte("instance"), []byte("aaaaaaaaaaaaaaaaaaaaaaa"), {0x0a, 0x12}}
		for len(raw) < 100+trial*500 {
			if rng.IntN(4) == 0 {
				raw = append(raw, byte(rng.IntN(256)))
			} else {
				raw = append(raw, words[rng.IntN(len(words))]...)
			}
		}
		var patches []span
		for at := rng.IntN(20); at < len(raw)-10; at += 1 + rng.IntN(60) {
			n := 1 + rng.IntN(8)
			patches = append(patches, span{at, at + n})
			at += n
		}
		sortSpans(patches)
		block, offsets := compressPatchable(nil, raw, patches)
		got, err := snappy.Decode(nil, block)
		if err != nil {
			t.Fatalf("trial %d: decode: %v", trial, err)
		}
		if !bytes.Equal(got, raw) {
			t.Fatalf("trial %d: decoded block differs from input", trial)
		}
		if len(offsets) != len(patches) {
			t.Fatalf("trial %d: %d offsets for %d patches", trial, len(offsets), len(patches))
		}
		// Overwrite every patch span in both the block and the raw bytes.
		for i, s := range patches {
			for k := range s.end - s.start {
				b := byte(rng.IntN(256))
				raw[s.start+k] = b
				block[offsets[i]+k] = b
			}
		}
		if got, err = snappy.Decode(nil, block); err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("trial %d: patched block does not decode to the patched input (err %v)", trial, err)
		}
		if trial > 50 && len(block) > len(raw) {
			t.Errorf("trial %d: block %d bytes for %d input bytes: no compression", trial, len(block), len(raw))
		}
	}
}
