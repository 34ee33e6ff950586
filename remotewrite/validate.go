package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
)

// ErrInvalidSeries is what every series-level validation error wraps: the series can never be
// accepted. The receiver drops such series, appends the rest and answers 400; an Appender
// returns it (wrapped) for data it refuses for good.
var ErrInvalidSeries = errors.New("invalid series")

// The reasons a series is invalid. Each wraps ErrInvalidSeries; the error returned for a
// series wraps one of them and names the series.
var (
	// ErrMissingMetricName: no __name__ label, or an empty one.
	ErrMissingMetricName = fmt.Errorf("%w: missing metric name", ErrInvalidSeries)
	// ErrEmptyLabelName: a label with an empty name.
	ErrEmptyLabelName = fmt.Errorf("%w: empty label name", ErrInvalidSeries)
	// ErrDuplicateLabelName: two labels with the same name.
	ErrDuplicateLabelName = fmt.Errorf("%w: duplicate label name", ErrInvalidSeries)
	// ErrInvalidUTF8: a label name or value that is not valid UTF-8.
	ErrInvalidUTF8 = fmt.Errorf("%w: invalid UTF-8", ErrInvalidSeries)
	// ErrInvalidHistogram: a native histogram whose schema, spans and buckets disagree.
	ErrInvalidHistogram = fmt.Errorf("%w: invalid native histogram", ErrInvalidSeries)
)

// metricNameLabel is the label holding the metric name.
const metricNameLabel = "__name__"

// maxSeriesDescription bounds how much of a series an error message quotes.
const maxSeriesDescription = 256

// ValidateSeries checks one series and normalises it in place: labels are sorted by name, and
// labels with an empty value are removed (in Prometheus an empty value means the label is
// absent). Any non-empty, valid UTF-8 string is accepted as a metric or label name, as
// Prometheus 3 does. The error wraps one of the reasons above and names the series.
func ValidateSeries(ts *prompb.TimeSeries) error {
	return validateSeries(ts, Limits{}.bounds())
}

// validateSeries is ValidateSeries within the series-level limits b (see Limits). A series
// over the label count limit reaches it truncated by the Decoder (to one label more than
// allowed), so that is checked first.
func validateSeries(ts *prompb.TimeSeries, b seriesBounds) error {
	if len(ts.Labels) > b.labels {
		return fmt.Errorf("%w: more than %d in series %s", ErrTooManyLabels, b.labels, describeSeries(ts.Labels))
	}
	// One pass for what holds in the usual case: names present and within bounds, UTF-8
	// valid, labels sorted without duplicates, no empty values.
	sorted, empty, hasName := true, 0, false
	for i, l := range ts.Labels {
		if l.Name == "" {
			return fmt.Errorf("%w in series %s", ErrEmptyLabelName, describeSeries(ts.Labels))
		}
		if len(l.Name) > b.name {
			return fmt.Errorf("%w: %s is %d bytes, limit %d, in series %s", ErrLabelNameTooLong, quoteBounded(l.Name), len(l.Name), b.name, describeSeries(ts.Labels))
		}
		if len(l.Value) > b.value {
			return fmt.Errorf("%w: the value of %s is %d bytes, limit %d, in series %s", ErrLabelValueTooLong, quoteBounded(l.Name), len(l.Value), b.value, describeSeries(ts.Labels))
		}
		if !isASCII(l.Name, l.Value) {
			if !utf8.ValidString(l.Name) {
				return fmt.Errorf("%w in label name %q of series %s", ErrInvalidUTF8, l.Name, describeSeries(ts.Labels))
			}
			if !utf8.ValidString(l.Value) {
				return fmt.Errorf("%w in the value of label %q of series %s", ErrInvalidUTF8, l.Name, describeSeries(ts.Labels))
			}
		}
		if l.Value == "" {
			empty++
		} else if l.Name == metricNameLabel {
			hasName = true
		}
		if i > 0 && sorted {
			switch prev := ts.Labels[i-1].Name; {
			case prev == l.Name:
				return fmt.Errorf("%w %q in series %s", ErrDuplicateLabelName, l.Name, describeSeries(ts.Labels))
			case prev > l.Name:
				sorted = false
			}
		}
	}
	if empty > 0 {
		ts.Labels = slices.DeleteFunc(ts.Labels, func(l prompb.Label) bool { return l.Value == "" })
	}
	if !sorted {
		slices.SortFunc(ts.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
		for i := 1; i < len(ts.Labels); i++ {
			if ts.Labels[i-1].Name == ts.Labels[i].Name {
				return fmt.Errorf("%w %q in series %s", ErrDuplicateLabelName, ts.Labels[i].Name, describeSeries(ts.Labels))
			}
		}
	}
	if !hasName {
		return fmt.Errorf("%w in series %s", ErrMissingMetricName, describeSeries(ts.Labels))
	}
	return validateHistograms(ts)
}

// validateHistograms checks the native histograms of a series.
func validateHistograms(ts *prompb.TimeSeries) error {
	for i := range ts.Histograms {
		if err := validateHistogram(&ts.Histograms[i]); err != nil {
			return fmt.Errorf("%w: %s in series %s", ErrInvalidHistogram, err, describeSeries(ts.Labels))
		}
	}
	return nil
}

// isASCII reports whether a and b hold only ASCII, eight bytes at a time: the usual case,
// which needs no UTF-8 decoding.
func isASCII(a, b string) bool {
	return (asciiBits(a)|asciiBits(b))&0x8080808080808080 == 0
}

// asciiBits ORs the bytes of s together, eight bytes per word; a high bit set in the result
// means s has a non-ASCII byte. Four words a round, into four accumulators, so that the
// ORs of a round do not wait for each other: a series' labels are 100-200 bytes.
func asciiBits(s string) uint64 {
	p := unsafe.Slice(unsafe.StringData(s), len(s))
	var a, b, c, d uint64
	for len(p) >= 32 {
		a |= binary.LittleEndian.Uint64(p)
		b |= binary.LittleEndian.Uint64(p[8:])
		c |= binary.LittleEndian.Uint64(p[16:])
		d |= binary.LittleEndian.Uint64(p[24:])
		p = p[32:]
	}
	for len(p) >= 8 {
		a |= binary.LittleEndian.Uint64(p)
		p = p[8:]
	}
	for _, x := range p {
		b |= uint64(x)
	}
	return a | b | c | d
}

// RemoveInvalidSeries validates every series of req against limits and ValidateSeries,
// removes the invalid ones in place, keeping the order of the others, and calls reject with
// each one's error. It returns how many were removed.
func RemoveInvalidSeries(req *prompb.WriteRequest, limits Limits, reject func(error)) int {
	removed, _ := removeInvalidSeries(req, limits, nil, reject)
	return removed
}

// decodedFacts is what removeInvalidSeries knows of a request a Decoder just decoded.
type decodedFacts struct {
	// labels[i] is what the Decoder saw of series i (nil: nothing).
	labels []labelFacts
	// v2 applies the 2.0 specification's rules too (validateV2Series).
	v2 bool
	// raw[i] is the encoding of series i (a 1.0 request's), kept aligned with the series
	// that stay, and set to nil for a series that validation normalised: it no longer
	// matches.
	raw [][]byte
}

// removeInvalidSeries is RemoveInvalidSeries for a request a Decoder just decoded: facts[i]
// is what it saw of series i (nil: nothing), and series whose facts show them valid are
// not read again. It also returns the samples and histograms of the series it kept, counted
// while each series is in cache.
func removeInvalidSeries(req *prompb.WriteRequest, limits Limits, facts []labelFacts, reject func(error)) (removed, samples int) {
	return removeInvalid(req, limits, decodedFacts{labels: facts}, reject)
}

// removeInvalid is removeInvalidSeries with everything the Decoder knows (see decodedFacts).
func removeInvalid(req *prompb.WriteRequest, limits Limits, df decodedFacts, reject func(error)) (removed, samples int) {
	b := limits.bounds()
	facts := df.labels
	kept := 0
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		var err error
		plain := i < len(facts) && facts[i].within(len(ts.Labels), b)
		if df.v2 {
			err = validateV2Series(ts)
		}
		switch {
		case err != nil:
		case plain:
			err = validateHistograms(ts)
		default:
			err = validateSeries(ts, b)
			if i < len(df.raw) {
				df.raw[i] = nil // it may have sorted the labels or dropped empty ones
			}
		}
		if err != nil {
			reject(err)
			continue
		}
		// Swap rather than copy: each element keeps sole ownership of its slices, which a
		// Decoder reuses for the next request. Until a series is removed there is nothing to
		// move, and swapping a series with itself copies 256 bytes through write barriers.
		samples += len(ts.Samples) + len(ts.Histograms)
		if kept != i {
			req.Timeseries[kept], req.Timeseries[i] = req.Timeseries[i], req.Timeseries[kept]
			if i < len(df.raw) {
				df.raw[kept] = df.raw[i]
			}
		}
		kept++
	}
	removed = len(req.Timeseries) - kept
	req.Timeseries = req.Timeseries[:kept]
	return removed, samples
}

// rejectReason names the reason of a validation error for the rejected-series metric.
func rejectReason(err error) string {
	switch {
	case errors.Is(err, ErrMissingMetricName):
		return "missing_metric_name"
	case errors.Is(err, ErrEmptyLabelName):
		return "empty_label_name"
	case errors.Is(err, ErrDuplicateLabelName):
		return "duplicate_label_name"
	case errors.Is(err, ErrInvalidUTF8):
		return "invalid_utf8"
	case errors.Is(err, ErrInvalidHistogram):
		return "invalid_histogram"
	case errors.Is(err, ErrSamplesAndHistograms):
		return "samples_and_histograms"
	case errors.Is(err, ErrNoSamples):
		return "no_samples"
	case errors.Is(err, ErrTooManyLabels):
		return "too_many_labels"
	case errors.Is(err, ErrLabelNameTooLong):
		return "label_name_too_long"
	case errors.Is(err, ErrLabelValueTooLong):
		return "label_value_too_long"
	default:
		return "other"
	}
}

// describeSeries renders labels as {a="b", ...}, bounded in length and with every byte of
// user data quoted, for error messages.
func describeSeries(ls []prompb.Label) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, l := range ls {
		if sb.Len() > maxSeriesDescription {
			sb.WriteString("…")
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		if isLegacyName(l.Name) {
			sb.WriteString(l.Name)
		} else {
			sb.WriteString(strconv.Quote(l.Name))
		}
		sb.WriteByte('=')
		v := l.Value
		if len(v) > maxSeriesDescription {
			v = v[:maxSeriesDescription] + "…"
		}
		sb.WriteString(strconv.Quote(v))
	}
	sb.WriteByte('}')
	return sb.String()
}

// isLegacyName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func isLegacyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// Native histogram schemas: exponential ones, and the custom-buckets schema.
const (
	minExponentialSchema = -4
	maxExponentialSchema = 8
	customBucketsSchema  = -53
)

// validateHistogram checks what later code relies on when walking buckets: a known schema,
// spans that cover exactly the buckets present, the bucket representation matching the
// count type, and no negative bucket counts.
func validateHistogram(h *prompb.Histogram) error {
	// A NaN zero threshold makes adding two histograms loop for ever (Prometheus's
	// reconciliation of zero buckets never converges).
	if !(h.ZeroThreshold >= 0) || math.IsInf(h.ZeroThreshold, 1) {
		return fmt.Errorf("zero threshold %g is not a non-negative number", h.ZeroThreshold)
	}
	switch {
	case h.Schema >= minExponentialSchema && h.Schema <= maxExponentialSchema:
		if len(h.CustomValues) > 0 {
			return fmt.Errorf("custom values with exponential schema %d", h.Schema)
		}
	case h.Schema == customBucketsSchema:
		if len(h.CustomValues) == 0 {
			return errors.New("custom-buckets schema without custom values")
		}
		if len(h.NegativeSpans) > 0 || len(h.NegativeDeltas) > 0 || len(h.NegativeCounts) > 0 {
			return errors.New("custom-buckets schema with negative buckets")
		}
		if err := checkCustomBounds(h.CustomValues, h.PositiveSpans); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown schema %d", h.Schema)
	}
	if _, isFloat := h.Count.(*prompb.Histogram_CountFloat); isFloat {
		if len(h.NegativeDeltas) > 0 || len(h.PositiveDeltas) > 0 {
			return errors.New("float histogram with integer bucket deltas")
		}
		if err := checkSpans("negative", h.NegativeSpans, len(h.NegativeCounts)); err != nil {
			return err
		}
		if err := checkSpans("positive", h.PositiveSpans, len(h.PositiveCounts)); err != nil {
			return err
		}
		for _, c := range h.NegativeCounts {
			if c < 0 {
				return errors.New("negative bucket count")
			}
		}
		for _, c := range h.PositiveCounts {
			if c < 0 {
				return errors.New("negative bucket count")
			}
		}
		return nil
	}
	if len(h.NegativeCounts) > 0 || len(h.PositiveCounts) > 0 {
		return errors.New("integer histogram with float bucket counts")
	}
	if err := checkSpans("negative", h.NegativeSpans, len(h.NegativeDeltas)); err != nil {
		return err
	}
	if err := checkSpans("positive", h.PositiveSpans, len(h.PositiveDeltas)); err != nil {
		return err
	}
	neg, err := checkDeltas(h.NegativeDeltas)
	if err != nil {
		return err
	}
	pos, err := checkDeltas(h.PositiveDeltas)
	if err != nil {
		return err
	}
	// The count is every observation's; a NaN sum means some were NaN, which no bucket
	// holds. (Prometheus's own check.)
	inBuckets, count := neg+pos+h.GetZeroCountInt(), h.GetCountInt()
	if inBuckets != count && (!math.IsNaN(h.Sum) || inBuckets > count) {
		return fmt.Errorf("%d observations in buckets but a count of %d", inBuckets, count)
	}
	return nil
}

// checkCustomBounds checks the bucket bounds of a custom-buckets histogram: strictly
// increasing, without the implicit +Inf, and enough for the buckets the spans place.
func checkCustomBounds(bounds []float64, spans []prompb.BucketSpan) error {
	for i, b := range bounds {
		switch {
		case math.IsNaN(b) || i > 0 && b <= bounds[i-1]:
			return fmt.Errorf("custom bucket bounds not strictly increasing (%g after %g)", b, bounds[max(i-1, 0)])
		case math.IsInf(b, 1):
			return errors.New("custom bucket bounds end in +Inf, which is implicit")
		}
	}
	covered := 0
	for i, s := range spans {
		if i == 0 && s.Offset < 0 {
			return fmt.Errorf("custom-buckets span with negative offset %d", s.Offset)
		}
		covered += int(s.Offset) + int(s.Length)
	}
	if covered > len(bounds)+1 {
		return fmt.Errorf("%d custom bounds cannot hold the %d buckets the spans cover", len(bounds), covered)
	}
	return nil
}

func checkSpans(side string, spans []prompb.BucketSpan, buckets int) error {
	var total uint64
	for i, s := range spans {
		if i > 0 && s.Offset < 0 {
			return fmt.Errorf("%s span %d has negative offset %d", side, i, s.Offset)
		}
		total += uint64(s.Length)
	}
	if total != uint64(buckets) {
		return fmt.Errorf("%s spans cover %d buckets but %d are present", side, total, buckets)
	}
	return nil
}

// checkDeltas checks that the bucket counts the deltas encode are never negative, and
// returns their sum.
func checkDeltas(deltas []int64) (uint64, error) {
	var count int64
	var total uint64
	for _, d := range deltas {
		count += d
		if count < 0 {
			return 0, errors.New("negative bucket count")
		}
		total += uint64(count)
	}
	return total, nil
}
