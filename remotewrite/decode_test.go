package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"
)

// checkAgainstGogo decodes data with d into got and with prompb's generated Unmarshal, and
// fails unless both accept it with equal results or both refuse it. The one input the
// Decoder is allowed to refuse alone is a packed field overrunning its length.
func checkAgainstGogo(t *testing.T, d *Decoder, data []byte, got *prompb.WriteRequest) {
	t.Helper()
	var want prompb.WriteRequest
	wantErr := want.Unmarshal(data)
	gotErr := d.Unmarshal(data, got)
	switch {
	case gotErr != nil && !errors.Is(gotErr, ErrMalformedRequest):
		t.Fatalf("error %v does not wrap ErrMalformedRequest", gotErr)
	case gotErr == nil && wantErr != nil:
		t.Fatalf("Decoder accepted what gogo refuses (%v); input %x", wantErr, data)
	case gotErr != nil && wantErr == nil && !errors.Is(gotErr, errPackedOverrun):
		t.Fatalf("Decoder refused what gogo accepts: %v; input %x", gotErr, data)
	case gotErr == nil:
		if diff := diffRequests(&want, got); diff != "" {
			t.Fatalf("Decoder and gogo disagree: %s; input %x", diff, data)
		}
	}
}

func TestDecoderMatchesGogoOnGeneratedRequests(t *testing.T) {
	d := NewDecoder(0)
	var got prompb.WriteRequest // reused throughout, like the handler does
	for seed := range uint64(600) {
		orig := newRequestGenerator(seed).request()
		marshalled, err := orig.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstGogo(t, d, marshalled, &got) // (gogo's Marshal turns -0 into 0: no comparison with orig)
		varied := newProtoWriter(seed).request(&orig)
		checkAgainstGogo(t, d, varied, &got)
		if diff := diffRequests(&orig, &got); diff != "" {
			t.Fatalf("seed %d: decoded request (varied encoding) differs from the original: %s", seed, diff)
		}
	}
}

// Raw protobuf building blocks for hand-made inputs.
func tag(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
func lenPrefixed(num protowire.Number, m ...[]byte) []byte {
	return protowire.AppendBytes(tag(num, protowire.BytesType), cat(m...))
}
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
func varintBytes(v uint64) []byte { return protowire.AppendVarint(nil, v) }
func fixed64(v float64) []byte    { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(v)) }

var (
	nameLabel   = lenPrefixed(1, lenPrefixed(1, []byte("__name__")), lenPrefixed(2, []byte("up")))
	validSample = lenPrefixed(2, tag(1, protowire.Fixed64Type), fixed64(1), tag(2, protowire.VarintType), varintBytes(1000))
)

// edgeCaseInputs are hand-made protobuf inputs at the edges of the wire format; they also
// seed testdata/fuzz/FuzzDecode.
func edgeCaseInputs() []edgeCase {
	return []edgeCase{
		{"empty_body_is_an_empty_request", nil, true},
		{"plain_series", lenPrefixed(1, nameLabel, validSample), true},
		{"unknown_varint_field_skipped", cat(tag(9, protowire.VarintType), varintBytes(1<<63), lenPrefixed(1, nameLabel)), true},
		{"unknown_fixed32_and_fixed64_fields_skipped", lenPrefixed(1, tag(7, protowire.Fixed32Type), []byte{1, 2, 3, 4}, tag(8, protowire.Fixed64Type), fixed64(3), nameLabel), true},
		{"unknown_nested_groups_skipped", lenPrefixed(1, tag(20, protowire.StartGroupType), tag(21, protowire.StartGroupType), tag(1, protowire.VarintType), varintBytes(5), tag(21, protowire.EndGroupType), tag(20, protowire.EndGroupType), nameLabel), true},
		{"group_end_number_is_not_checked_like_gogo", cat(tag(20, protowire.StartGroupType), tag(99, protowire.EndGroupType)), true},
		{"reserved_field_2_skipped", cat(lenPrefixed(2, []byte("cortex")), lenPrefixed(1, nameLabel)), true},
		{"repeated_scalar_last_one_wins", lenPrefixed(1, lenPrefixed(2, tag(1, protowire.Fixed64Type), fixed64(1), tag(1, protowire.Fixed64Type), fixed64(2))), true},
		{"oneof_last_one_wins", lenPrefixed(1, lenPrefixed(4, tag(1, protowire.VarintType), varintBytes(3), tag(2, protowire.Fixed64Type), fixed64(2.5))), true},
		{"packed_and_unpacked_deltas_mix", lenPrefixed(1, lenPrefixed(4, tag(9, protowire.VarintType), varintBytes(3), lenPrefixed(9, varintBytes(4), varintBytes(5)))), true},
		{"field_number_truncated_to_int32_like_gogo", cat(varintBytes((1<<32|1)<<3|2), protowire.AppendBytes(nil, nameLabel)), true},
		{"ten_byte_varint_accepted", lenPrefixed(1, lenPrefixed(2, tag(2, protowire.VarintType), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})), true},

		{"truncated_tag", []byte{0x80}, false},
		{"varint_longer_than_ten_bytes", cat(tag(9, protowire.VarintType), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), false},
		{"length_claims_2GiB", cat(tag(1, protowire.BytesType), varintBytes(2<<30), nameLabel), false},
		{"length_claims_max_uint64", cat(tag(1, protowire.BytesType), varintBytes(math.MaxUint64)), false},
		{"nested_length_exceeds_parent", lenPrefixed(1, tag(1, protowire.BytesType), varintBytes(100), []byte("ab")), false},
		{"wrong_wire_type_for_timeseries", cat(tag(1, protowire.VarintType), varintBytes(1)), false},
		{"wrong_wire_type_for_sample_value", lenPrefixed(1, lenPrefixed(2, tag(1, protowire.VarintType), varintBytes(1))), false},
		{"wrong_wire_type_for_label_name", lenPrefixed(1, lenPrefixed(1, tag(1, protowire.Fixed32Type), []byte{1, 2, 3, 4})), false},
		{"field_number_zero", cat(tag(0, protowire.VarintType), varintBytes(1)), false},
		{"end_group_outside_group", tag(5, protowire.EndGroupType), false},
		{"group_never_closed", cat(tag(20, protowire.StartGroupType), tag(1, protowire.VarintType), varintBytes(1)), false},
		{"illegal_wire_type_6", cat(varintBytes(9<<3|6), varintBytes(1)), false},
		{"illegal_wire_type_7_in_group", cat(tag(20, protowire.StartGroupType), varintBytes(9<<3|7)), false},
		{"truncated_fixed64", lenPrefixed(1, lenPrefixed(2, tag(1, protowire.Fixed64Type), []byte{1, 2, 3})), false},
		{"truncated_unknown_fixed32", cat(tag(9, protowire.Fixed32Type), []byte{1, 2}), false},
		{"bad_exemplar_breaks_parsing_like_gogo", lenPrefixed(1, lenPrefixed(3, tag(2, protowire.VarintType), varintBytes(1))), false},
		{"bad_metadata_breaks_parsing_like_gogo", lenPrefixed(3, tag(2, protowire.VarintType), varintBytes(1)), false},
		{"packed_doubles_not_a_multiple_of_8", lenPrefixed(1, lenPrefixed(4, lenPrefixed(10, []byte{1, 2, 3}))), false},
		{"packed_doubles_overrun_that_gogo_reads_on_from", lenPrefixed(1, lenPrefixed(4, tag(10, protowire.BytesType), varintBytes(4), []byte{1, 2, 3, 4, 5, 6, 7, 8})), false},
		{"packed_varint_runs_past_its_field", lenPrefixed(1, lenPrefixed(4, lenPrefixed(9, []byte{0x80}), tag(15, protowire.VarintType), varintBytes(1))), false},
	}
}

type edgeCase struct {
	name     string
	data     []byte
	accepted bool
}

func TestDecoderEdgeCases(t *testing.T) {
	tests := edgeCaseInputs()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got prompb.WriteRequest
			err := NewDecoder(0).Unmarshal(tt.data, &got)
			if tt.accepted != (err == nil) {
				t.Fatalf("accepted = %v, want %v (err %v)", err == nil, tt.accepted, err)
			}
			checkAgainstGogo(t, NewDecoder(0), tt.data, &got)
		})
	}
}

func TestDecoderHugeLengthDoesNotAllocate(t *testing.T) {
	inputs := map[string][]byte{
		"protobuf_length_2GiB": cat(tag(1, protowire.BytesType), varintBytes(2<<30), nameLabel),
		"packed_length_2GiB":   lenPrefixed(1, lenPrefixed(4, tag(10, protowire.BytesType), varintBytes(2<<30))),
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			allocated := bytesAllocated(func() {
				var req prompb.WriteRequest
				if err := NewDecoder(0).Unmarshal(data, &req); !errors.Is(err, ErrMalformedRequest) {
					t.Errorf("err = %v, want ErrMalformedRequest", err)
				}
			})
			if allocated > 64<<10 {
				t.Errorf("allocated %d bytes for a %d-byte input", allocated, len(data))
			}
		})
	}
}

func TestDecoderRefusesOversizedBodiesBeforeDecoding(t *testing.T) {
	small := snappy.Encode(nil, lenPrefixed(1, nameLabel, validSample))
	claims1GiB := append(varintBytes(1<<30), 0x00, 0x01) // snappy header: decoded length 1 GiB

	tests := []struct {
		name    string
		body    []byte
		limit   int
		wantErr error
	}{
		{"within_limit", small, 1 << 20, nil},
		{"decoded_length_over_limit", claims1GiB, 32 << 20, ErrRequestTooLarge},
		{"limit_counts_decoded_not_compressed_bytes", snappy.Encode(nil, make([]byte, 4096)), 1024, ErrRequestTooLarge},
		{"not_snappy", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 1 << 20, ErrMalformedRequest},
		{"empty_body_is_not_snappy", nil, 1 << 20, ErrMalformedRequest},
		{"corrupt_snappy_block", append(varintBytes(10), 0xfe, 0xff), 1 << 20, ErrMalformedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req prompb.WriteRequest
			var err error
			allocated := bytesAllocated(func() { err = NewDecoder(tt.limit).Decode(tt.body, &req) })
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if allocated > 64<<10 {
				t.Errorf("allocated %d bytes", allocated)
			}
		})
	}
}

func TestDecoderReuseLeavesNothingFromThePreviousRequest(t *testing.T) {
	d := NewDecoder(0)
	var got prompb.WriteRequest
	big := newRequestGenerator(7).request()
	for range 3 {
		big.Timeseries = append(big.Timeseries, newRequestGenerator(8).request().Timeseries...)
	}
	small := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "x"}}, Histograms: []prompb.Histogram{{Schema: 1}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "y"}}},
	}}
	for i, req := range []prompb.WriteRequest{big, small, big, small} {
		body, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Decode(snappy.Encode(nil, body), &got); err != nil {
			t.Fatal(err)
		}
		var want prompb.WriteRequest
		if err := want.Unmarshal(body); err != nil {
			t.Fatal(err)
		}
		if diff := diffRequests(&want, &got); diff != "" {
			t.Fatalf("request %d: %s", i, diff)
		}
	}
}

func TestDecoderSteadyStateDoesNotAllocate(t *testing.T) {
	for name, req := range map[string]prompb.WriteRequest{
		"floats_2000_series_8_labels": benchmarkRequest(2000, 8),
		"generated_with_histograms":   newRequestGenerator(3).request(),
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := req.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			body := snappy.Encode(nil, raw)
			d := NewDecoder(0)
			var got prompb.WriteRequest
			allocs := allocsPerOp(50, func() {
				if err := d.Decode(body, &got); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per decode in steady state, want 0", allocs)
			}
		})
	}
}

// benchmarkRequest is a typical agent request: series of one sample with n labels, sorted
// by name as Prometheus sends them.
func benchmarkRequest(series, labels int) prompb.WriteRequest {
	var req prompb.WriteRequest
	for i := range series {
		ls := []prompb.Label{{Name: "__name__", Value: fmt.Sprintf("http_requests_total_%d", i%100)}}
		names := []string{"instance", "job", "namespace", "pod", "method", "code", "route", "region", "zone", "cluster"}
		for j := 1; j < labels; j++ {
			ls = append(ls, prompb.Label{Name: names[j%len(names)], Value: fmt.Sprintf("value-%d-%d", j, i)})
		}
		slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  ls,
			Samples: []prompb.Sample{{Value: float64(i) * 1.5, Timestamp: 1_700_000_000_000 + int64(i)}},
		})
	}
	return req
}

// bytesAllocated returns the bytes the heap handed out while f ran.
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// allocsPerOp is testing.AllocsPerRun without its rounding down, so that a steady state
// that allocates once every few calls still shows. It returns the least of three
// measurements: allocations by goroutines left over from other tests only ever add.
func allocsPerOp(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	least := math.Inf(1)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			f()
		}
		runtime.ReadMemStats(&after)
		least = min(least, float64(after.Mallocs-before.Mallocs)/float64(runs))
	}
	return least
}
