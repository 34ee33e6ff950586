package remotewrite

import (
	"fmt"
	"math"
	"strconv"
)

// Limits bound what one request may hold. A zero field means no limit. The Decoder enforces
// the series and label counts while decoding, so that a request over them costs no more
// memory than the limits allow; ValidateSeries-style checks do the lengths.
type Limits struct {
	// MaxSeriesPerRequest refuses a whole request with more series (413): a sender that
	// batches this much will never be accepted, and its request is cut short while decoding.
	MaxSeriesPerRequest int
	// MaxLabelsPerSeries refuses a series (400, the rest of the request is kept) with more
	// labels, __name__ included.
	MaxLabelsPerSeries int
	// MaxLabelNameLength and MaxLabelValueLength refuse a series (400) with a longer label
	// name or value, in bytes. The metric name is a label value.
	MaxLabelNameLength  int
	MaxLabelValueLength int
}

// Default receiver limits: generous for any real agent (Prometheus sends at most
// max_samples_per_send, 2000 by default, series per request), small enough that one request
// cannot hold the process's memory hostage.
const (
	DefaultMaxSeriesPerRequest = 50_000
	DefaultMaxLabelsPerSeries  = 64
	DefaultMaxLabelNameLength  = 1024
	DefaultMaxLabelValueLength = 4096
)

// DefaultLimits returns the default receiver limits.
func DefaultLimits() Limits {
	return Limits{
		MaxSeriesPerRequest: DefaultMaxSeriesPerRequest,
		MaxLabelsPerSeries:  DefaultMaxLabelsPerSeries,
		MaxLabelNameLength:  DefaultMaxLabelNameLength,
		MaxLabelValueLength: DefaultMaxLabelValueLength,
	}
}

// ErrTooManySeries is returned (wrapped) by the Decoder for a request with more series than
// Limits.MaxSeriesPerRequest. It wraps ErrRequestTooLarge: the receiver answers 413.
var ErrTooManySeries = fmt.Errorf("%w: too many series", ErrRequestTooLarge)

// Series-level limit errors; each wraps ErrInvalidSeries, so the receiver drops the series,
// keeps the rest of the request and answers 400.
var (
	// ErrTooManyLabels: more labels than Limits.MaxLabelsPerSeries.
	ErrTooManyLabels = fmt.Errorf("%w: too many labels", ErrInvalidSeries)
	// ErrLabelNameTooLong: a label name longer than Limits.MaxLabelNameLength.
	ErrLabelNameTooLong = fmt.Errorf("%w: label name too long", ErrInvalidSeries)
	// ErrLabelValueTooLong: a label value longer than Limits.MaxLabelValueLength.
	ErrLabelValueTooLong = fmt.Errorf("%w: label value too long", ErrInvalidSeries)
)

// seriesBounds are Limits' series-level limits with "no limit" as the largest int, so that
// validation compares without branching on zero.
type seriesBounds struct {
	labels, name, value int
}

// bounds returns l's series-level limits as seriesBounds.
func (l Limits) bounds() seriesBounds {
	orMax := func(v int) int {
		if v <= 0 {
			return math.MaxInt
		}
		return v
	}
	return seriesBounds{labels: orMax(l.MaxLabelsPerSeries), name: orMax(l.MaxLabelNameLength), value: orMax(l.MaxLabelValueLength)}
}

// quoteBounded quotes s for a message, cut to maxSeriesDescription bytes.
func quoteBounded(s string) string {
	if len(s) > maxSeriesDescription {
		return strconv.Quote(s[:maxSeriesDescription]) + "…"
	}
	return strconv.Quote(s)
}
