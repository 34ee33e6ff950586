package remotewrite

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/prompb"
)

// rawKey is the context key of a request's raw series.
type rawKey struct{}

// withRawSeries returns ctx carrying the encodings of a 1.0 request's series.
func withRawSeries(ctx context.Context, raw [][]byte) context.Context {
	return context.WithValue(ctx, rawKey{}, raw)
}

// RawSeries returns, during Appender.Append of a Remote Write 1.0 request, the encoding of
// each of its series as it arrived: raw[i] is the TimeSeries message of req.Timeseries[i],
// or nil when validation changed the series (sorted its labels or dropped empty ones), so
// that the bytes no longer encode it. A peer that forwards a series can copy these bytes
// instead of encoding it again. Nil for a 2.0 request; valid only during the call.
func RawSeries(ctx context.Context) [][]byte {
	raw, _ := ctx.Value(rawKey{}).([][]byte)
	return raw
}

// AppendRawSeries appends one series to b as field 1 of a WriteRequest: raw, its encoding
// from RawSeries, when there is one, else ts encoded.
func AppendRawSeries(b, raw []byte, ts *prompb.TimeSeries) []byte {
	if raw == nil {
		return appendTimeSeries(b, ts)
	}
	b = append(b, 1<<3|wireBytes)
	b = binary.AppendUvarint(b, uint64(len(raw)))
	return append(b, raw...)
}

// appendTimeSeries appends ts, encoded, to b as field 1 of a WriteRequest.
func appendTimeSeries(b []byte, ts *prompb.TimeSeries) []byte {
	n := ts.Size()
	b = append(b, 1<<3|wireBytes)
	b = binary.AppendUvarint(b, uint64(n))
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	if _, err := ts.MarshalToSizedBuffer(b[start:]); err != nil {
		panic(err) // sized above: cannot fail
	}
	return b
}

// CheckRawSeries reports whether b is a run of series as AppendRawSeries appends them: field
// 1 of a WriteRequest, each with a length that stays within b. It checks the framing only,
// without decoding a series, so that a run of series held for later (a peer queue's backlog
// in a checkpoint) can be checked at the cost of a walk over its length prefixes.
func CheckRawSeries(b []byte) error {
	for i := 0; i < len(b); {
		num, wt, j := tagAt(b, i)
		if j < 0 {
			return wireError(j, "series run")
		}
		if num != 1 {
			return fmt.Errorf("%w: series run: field %d where a series was expected", ErrMalformedRequest, num)
		}
		_, end := bytesAt(b, j, wt)
		if end < 0 {
			return wireError(end, "series run")
		}
		i = end
	}
	return nil
}
