package remotewrite

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

func labels(kv ...string) []prompb.Label {
	var ls []prompb.Label
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ls
}

func TestValidateSeries(t *testing.T) {
	tests := []struct {
		name       string
		labels     []prompb.Label
		histograms []prompb.Histogram
		wantErr    error
		wantLabels []prompb.Label // after normalisation, when valid
	}{
		{"sorted_labels_accepted", labels("__name__", "up", "job", "a"), nil, nil, labels("__name__", "up", "job", "a")},
		{"unsorted_labels_sorted_in_place", labels("zone", "z", "__name__", "up", "job", "a", "Alpha", "x"), nil, nil, labels("Alpha", "x", "__name__", "up", "job", "a", "zone", "z")},
		{"empty_value_means_absent_label", labels("__name__", "up", "pod", "", "job", "a"), nil, nil, labels("__name__", "up", "job", "a")},
		{"utf8_metric_name_accepted", labels("__name__", "http.requests.total", "service.name", "日本"), nil, nil, labels("__name__", "http.requests.total", "service.name", "日本")},
		{"missing_metric_name", labels("job", "a"), nil, ErrMissingMetricName, nil},
		{"empty_metric_name_is_missing", labels("__name__", "", "job", "a"), nil, ErrMissingMetricName, nil},
		{"no_labels_at_all", nil, nil, ErrMissingMetricName, nil},
		{"empty_label_name", labels("__name__", "up", "", "a"), nil, ErrEmptyLabelName, nil},
		{"duplicate_label_name", labels("__name__", "up", "job", "a", "job", "b"), nil, ErrDuplicateLabelName, nil},
		{"duplicate_found_after_sorting", labels("job", "a", "__name__", "up", "job", "b"), nil, ErrDuplicateLabelName, nil},
		{"invalid_utf8_in_label_name", labels("__name__", "up", "jo\xffb", "a"), nil, ErrInvalidUTF8, nil},
		{"invalid_utf8_in_metric_name", labels("__name__", "u\xc3p"), nil, ErrInvalidUTF8, nil},
		{"invalid_utf8_in_label_value", labels("__name__", "up", "job", "\xff"), nil, ErrInvalidUTF8, nil},
		{"valid_integer_histogram", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 6}, Schema: 3,
			PositiveSpans: []prompb.BucketSpan{{Offset: -2, Length: 2}, {Offset: 1, Length: 1}}, PositiveDeltas: []int64{1, 2, -1},
		}}, nil, labels("__name__", "h")},
		{"integer_histogram_count_is_not_its_buckets", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 99}, Schema: 0, ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
			PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{1, 1},
		}}, ErrInvalidHistogram, nil},
		{"integer_histogram_with_nan_sum_counts_nan_observations", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 5}, Sum: math.NaN(), Schema: 0,
			PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{1, 1},
		}}, nil, labels("__name__", "h")},
		{"custom_bounds_not_increasing", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 3}, Schema: -53, CustomValues: []float64{1, 0.5},
			PositiveSpans: []prompb.BucketSpan{{Length: 3}}, PositiveDeltas: []int64{1, 0, 0},
		}}, ErrInvalidHistogram, nil},
		{"custom_bounds_with_explicit_inf", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 1}, Schema: -53, CustomValues: []float64{1, math.Inf(1)},
			PositiveSpans: []prompb.BucketSpan{{Length: 1}}, PositiveDeltas: []int64{1},
		}}, ErrInvalidHistogram, nil},
		{"custom_bounds_too_few_for_the_spans", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 1}, Schema: -53, CustomValues: []float64{1},
			PositiveSpans: []prompb.BucketSpan{{Offset: 2, Length: 1}}, PositiveDeltas: []int64{1},
		}}, ErrInvalidHistogram, nil},
		{"valid_float_histogram", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountFloat{CountFloat: 5}, Schema: -4,
			NegativeSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}}, NegativeCounts: []float64{1, 4},
		}}, nil, labels("__name__", "h")},
		{"valid_custom_buckets_histogram", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 3}, Schema: -53, CustomValues: []float64{1, 5},
			PositiveSpans: []prompb.BucketSpan{{Length: 3}}, PositiveDeltas: []int64{1, 0, 0},
		}}, nil, labels("__name__", "h")},
		{"histogram_unknown_schema", labels("__name__", "h"), []prompb.Histogram{{Schema: 9}}, ErrInvalidHistogram, nil},
		// Adding two histograms with a NaN zero threshold never returns (Prometheus's
		// reconciliation of zero buckets does not converge).
		{"histogram_nan_zero_threshold", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 1}, ZeroThreshold: math.NaN(),
			PositiveSpans: []prompb.BucketSpan{{Length: 1}}, PositiveDeltas: []int64{1},
		}}, ErrInvalidHistogram, nil},
		{"histogram_negative_zero_threshold", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 1}, ZeroThreshold: -1,
			PositiveSpans: []prompb.BucketSpan{{Length: 1}}, PositiveDeltas: []int64{1},
		}}, ErrInvalidHistogram, nil},
		// A span of length 0 is valid (Prometheus compacts it away).
		{"histogram_with_an_empty_span", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 1}, ZeroThreshold: 1e-128,
			PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 0}, {Offset: 2, Length: 1}}, PositiveDeltas: []int64{1},
		}}, nil, labels("__name__", "h")},
		{"histogram_spans_cover_more_buckets_than_present", labels("__name__", "h"), []prompb.Histogram{{
			PositiveSpans: []prompb.BucketSpan{{Length: 3}}, PositiveDeltas: []int64{1, 1},
		}}, ErrInvalidHistogram, nil},
		{"histogram_buckets_without_spans", labels("__name__", "h"), []prompb.Histogram{{NegativeDeltas: []int64{1}}}, ErrInvalidHistogram, nil},
		{"histogram_negative_offset_after_first_span", labels("__name__", "h"), []prompb.Histogram{{
			PositiveSpans: []prompb.BucketSpan{{Length: 1}, {Offset: -1, Length: 1}}, PositiveDeltas: []int64{1, 1},
		}}, ErrInvalidHistogram, nil},
		{"histogram_negative_bucket_count", labels("__name__", "h"), []prompb.Histogram{{
			PositiveSpans: []prompb.BucketSpan{{Length: 2}}, PositiveDeltas: []int64{1, -2},
		}}, ErrInvalidHistogram, nil},
		{"float_histogram_with_integer_deltas", labels("__name__", "h"), []prompb.Histogram{{
			Count: &prompb.Histogram_CountFloat{CountFloat: 1}, PositiveSpans: []prompb.BucketSpan{{Length: 1}}, PositiveDeltas: []int64{1},
		}}, ErrInvalidHistogram, nil},
		{"custom_buckets_without_custom_values", labels("__name__", "h"), []prompb.Histogram{{Schema: -53}}, ErrInvalidHistogram, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := prompb.TimeSeries{Labels: slices.Clone(tt.labels), Histograms: tt.histograms}
			err := ValidateSeries(&ts)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if diff := diffRequests(tt.wantLabels, ts.Labels); diff != "" {
					t.Fatalf("labels after validation: %s (got %v)", diff, ts.Labels)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidSeries) {
				t.Fatalf("err = %v, want %v wrapping ErrInvalidSeries", err, tt.wantErr)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error is not one line: %q", err)
			}
			if len(tt.labels) > 0 && !strings.Contains(err.Error(), "{") {
				t.Errorf("error does not name the series: %v", err)
			}
		})
	}
}

func TestValidateSeriesErrorNamesTheSeriesWithinBounds(t *testing.T) {
	ts := prompb.TimeSeries{Labels: labels("job", strings.Repeat("x", 1<<20), "pod", "p-1\nnewline")}
	err := ValidateSeries(&ts)
	if !errors.Is(err, ErrMissingMetricName) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	if len(msg) > 2048 {
		t.Errorf("message is %d bytes, want it bounded", len(msg))
	}
	if !strings.Contains(msg, `job="xxx`) || strings.ContainsAny(msg, "\n") {
		t.Errorf("message does not quote the series on one line: %.200q", msg)
	}
}

func TestRemoveInvalidSeries(t *testing.T) {
	req := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: labels("__name__", "a")},
		{Labels: labels("job", "no-name")},
		{Labels: labels("__name__", "b", "x", "1", "x", "2")},
		{Labels: labels("zone", "z", "__name__", "c")},
		{Labels: labels("__name__", "d\xff")},
	}}
	var reasons []string
	removed := RemoveInvalidSeries(&req, Limits{}, func(err error) { reasons = append(reasons, rejectReason(err)) })

	if removed != 3 {
		t.Errorf("removed %d, want 3", removed)
	}
	if want := []string{"missing_metric_name", "duplicate_label_name", "invalid_utf8"}; !slices.Equal(reasons, want) {
		t.Errorf("reasons %v, want %v", reasons, want)
	}
	var names []string
	for _, ts := range req.Timeseries {
		names = append(names, ts.Labels[0].Value)
	}
	if want := []string{"a", "c"}; !slices.Equal(names, want) {
		t.Errorf("kept %v, want %v in order", names, want)
	}
	// Every slot up to the capacity keeps its own label array, so a Decoder reusing them
	// cannot write one series' labels over another's.
	all := req.Timeseries[:cap(req.Timeseries)]
	seen := map[*prompb.Label]bool{}
	for _, ts := range all {
		if cap(ts.Labels) == 0 {
			continue
		}
		p := &ts.Labels[:1][0]
		if seen[p] {
			t.Fatal("two series slots share a label array")
		}
		seen[p] = true
	}
	if len(seen) != 5 {
		t.Errorf("%d distinct label arrays across the slots, want 5", len(seen))
	}
}

// TestASCIIBitsFindsEveryNonASCIIByte puts one byte with the high bit at every position of
// strings of every length across the word, round and tail boundaries.
func TestASCIIBitsFindsEveryNonASCIIByte(t *testing.T) {
	for n := 0; n <= 80; n++ {
		s := []byte(strings.Repeat("a", n))
		if asciiBits(string(s))&0x8080808080808080 != 0 {
			t.Fatalf("len %d: ASCII string reported non-ASCII", n)
		}
		for i := range n {
			s[i] = 0xc3
			if asciiBits(string(s))&0x8080808080808080 == 0 {
				t.Fatalf("len %d: non-ASCII byte at %d missed", n, i)
			}
			s[i] = 'a'
		}
	}
}
