package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// ErrMalformedRequest is returned (wrapped, with the offending field) for a body that is not
// a snappy-compressed prometheus.WriteRequest. The receiver answers 400.
var ErrMalformedRequest = errors.New("malformed remote write request")

// ErrRequestTooLarge is returned (wrapped) when a body or its decoded form exceeds the
// configured limit. The receiver answers 413.
var ErrRequestTooLarge = errors.New("remote write request too large")

// errPackedOverrun marks the one input gogo/protobuf accepts and the Decoder does not: a
// packed repeated field whose last element runs past the field's declared length (gogo reads
// on into the following bytes).
var errPackedOverrun = fmt.Errorf("%w: packed field element runs past the field's length", ErrMalformedRequest)

// A Decoder decodes Remote Write 1.0 bodies into a caller-owned prompb.WriteRequest, reusing
// its own buffers and the request's slices so that steady-state decoding allocates nothing.
// Strings in the decoded request point into the Decoder's buffer (or, for Unmarshal, into the
// caller's bytes): they are valid until the next call and must be copied to be kept.
// A Decoder is not safe for concurrent use; pool them.
type Decoder struct {
	maxDecodedBytes int
	buf             []byte

	// maxSeries and labelCap come from Limits (see SetLimits); 0 means no limit. A series
	// keeps at most labelCap labels, one more than the limit, so that validation sees it is
	// over without the Decoder storing the rest.
	maxSeries int
	labelCap  int

	// facts[i] is what reading the labels of the i-th series of the last request showed.
	facts []labelFacts
	// raw[i] is the i-th series of the last 1.0 request as it was encoded (its TimeSeries
	// message, in the decompressed body): see RawSeries.
	raw [][]byte

	// Slabs backing every series' Labels and Samples: one contiguous array each, written
	// front to back, instead of one cold array per series. A series gets a full slice of
	// its part (capacity = length), so appending to it cannot overwrite the next series.
	// When a slab grows mid-request, earlier series keep pointing into the old array.
	labels  []prompb.Label
	samples []prompb.Sample

	// Slabs backing the histogram oneof wrappers, so that setting Count and ZeroCount does
	// not allocate per histogram.
	countInts       []prompb.Histogram_CountInt
	countFloats     []prompb.Histogram_CountFloat
	zeroCountInts   []prompb.Histogram_ZeroCountInt
	zeroCountFloats []prompb.Histogram_ZeroCountFloat

	// A Remote Write 2.0 request's symbol table (decode_v2.go), and its series' created
	// timestamps, encoded as 1.0 carries them (created.go).
	symbols v2Symbols
	created []byte
}

// NewDecoder returns a Decoder that refuses bodies whose decoded size exceeds maxDecodedBytes
// (no limit if it is 0 or less).
func NewDecoder(maxDecodedBytes int) *Decoder {
	return &Decoder{maxDecodedBytes: maxDecodedBytes}
}

// SetLimits makes the Decoder refuse a request with more than l.MaxSeriesPerRequest series
// (ErrTooManySeries) and store at most l.MaxLabelsPerSeries+1 labels of a series, so that
// the memory a request can make it hold is bounded by the limits, not only by its size.
// Other fields of l are for validation. Zero fields mean no limit.
func (d *Decoder) SetLimits(l Limits) {
	d.maxSeries = max(0, l.MaxSeriesPerRequest)
	d.labelCap = 0
	if l.MaxLabelsPerSeries > 0 {
		d.labelCap = l.MaxLabelsPerSeries + 1
	}
}

// Decode snappy-decodes (block format) compressed into the Decoder's buffer and unmarshals
// the result into req, replacing its contents. The decoded length is checked against the
// limit before anything is allocated.
func (d *Decoder) Decode(compressed []byte, req *prompb.WriteRequest) error {
	out, err := d.uncompress(compressed)
	if err != nil {
		return err
	}
	return d.Unmarshal(out, req)
}

// DecodeV2 is Decode for a Remote Write 2.0 body (io.prometheus.write.v2.Request): see
// UnmarshalV2.
func (d *Decoder) DecodeV2(compressed []byte, req *prompb.WriteRequest) error {
	out, err := d.uncompress(compressed)
	if err != nil {
		return err
	}
	return d.UnmarshalV2(out, req)
}

// uncompress snappy-decodes (block format) compressed into the Decoder's buffer, checking
// the decoded length against the limit before anything is allocated.
func (d *Decoder) uncompress(compressed []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(compressed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedRequest, err) // "snappy: corrupt input"
	}
	if d.maxDecodedBytes > 0 && n > d.maxDecodedBytes {
		return nil, fmt.Errorf("%w: decoded body is %d bytes, limit is %d", ErrRequestTooLarge, n, d.maxDecodedBytes)
	}
	if cap(d.buf) < n {
		d.buf = make([]byte, n)
	}
	out, err := snappy.Decode(d.buf[:cap(d.buf)], compressed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedRequest, err) // "snappy: corrupt input"
	}
	return out, nil
}

// Unmarshal decodes the protobuf WriteRequest in data into req, replacing its contents.
// Strings in req point into data. Unknown fields are skipped; metadata and exemplars are
// decoded too.
func (d *Decoder) Unmarshal(data []byte, req *prompb.WriteRequest) error {
	d.reset(req)
	b := data
	for i := 0; i < len(b); {
		num, wt, j := tagAt(b, i)
		if j < 0 {
			return wireError(j, "WriteRequest")
		}
		switch num {
		case 1:
			s, e := bytesAt(b, j, wt)
			if e < 0 {
				return wireError(e, "WriteRequest.timeseries")
			}
			if d.maxSeries > 0 && len(req.Timeseries) >= d.maxSeries {
				return fmt.Errorf("%w: more than %d in one request", ErrTooManySeries, d.maxSeries)
			}
			var ts *prompb.TimeSeries
			req.Timeseries, ts = nextSlot(req.Timeseries)
			resetSeries(ts)
			facts, err := d.unmarshalSeries(b[s:e], ts)
			if err != nil {
				return err
			}
			d.facts = append(d.facts, facts)
			d.raw = append(d.raw, b[s:e])
			i = e
		case 3:
			s, e := bytesAt(b, j, wt)
			if e < 0 {
				return wireError(e, "WriteRequest.metadata")
			}
			var md *prompb.MetricMetadata
			req.Metadata, md = nextSlot(req.Metadata)
			*md = prompb.MetricMetadata{}
			if code := unmarshalMetadata(b[s:e], md); code < 0 {
				return wireError(code, "MetricMetadata")
			}
			i = e
		default:
			if i = skipField(b, j, num, wt); i < 0 {
				return wireError(i, "WriteRequest")
			}
		}
	}
	return nil
}

// reset empties req and the Decoder's per-request state, keeping their memory.
func (d *Decoder) reset(req *prompb.WriteRequest) {
	req.Timeseries = req.Timeseries[:0]
	req.Metadata = req.Metadata[:0]
	req.XXX_unrecognized = nil
	req.XXX_sizecache = 0
	d.countInts = d.countInts[:0]
	d.countFloats = d.countFloats[:0]
	d.zeroCountInts = d.zeroCountInts[:0]
	d.zeroCountFloats = d.zeroCountFloats[:0]
	d.facts = d.facts[:0]
	clear(d.raw) // keep no request body alive
	d.raw = d.raw[:0]
	d.labels = d.labels[:0]
	d.samples = d.samples[:0]
	d.created = d.created[:0]
}

// unmarshalSeries is the hot loop. It handles only the fields every encoder writes, a label
// in the plain encoding (see plainLabel) and a sample, each with a one-byte tag and length,
// inline; any other field goes to seriesField. Keeping the rare cases out of this function
// keeps its frame small enough that the loop's variables stay in registers. It returns what
// it saw of the labels on the way.
func (d *Decoder) unmarshalSeries(b []byte, ts *prompb.TimeSeries) (labelFacts, error) {
	labelCap := d.labelCap
	if labelCap <= 0 {
		labelCap = math.MaxInt
	}
	var scan labelScan
	// The slabs are local while the loop runs: the compiler need not reload them from d.
	labels, samples := d.labels, d.samples
	l0, s0 := len(labels), len(samples)
	for i := 0; i < len(b); {
		if i+1 < len(b) && b[i+1] < 0x80 {
			s, e := i+2, i+2+int(b[i+1])
			switch {
			case e > len(b): // truncated: seriesField says so
			case b[i] == 1<<3|wireBytes:
				// plainLabel and appendLabel, inlined by hand: a call here would spill every
				// variable of the loop.
				lb := b[s:e]
				if len(lb) < 4 || lb[0] != 1<<3|wireBytes || len(labels)-l0 >= labelCap {
					break
				}
				n := int(lb[1])
				if n >= 0x80 || n+4 > len(lb) || lb[n+2] != 2<<3|wireBytes {
					break
				}
				if m := int(lb[n+3]); m >= 0x80 || n+4+m != len(lb) {
					break
				}
				scan.add(i, e)
				labels = grow1(labels)
				l := &labels[len(labels)-1]
				l.Name, l.Value, l.XXX_unrecognized, l.XXX_sizecache = bytesString(lb[2:n+2]), bytesString(lb[n+4:]), nil, 0
				i = e
				continue
			case b[i] == 2<<3|wireBytes:
				if v, t, code := unmarshalSample(b[s:e]); code >= 0 {
					samples = appendSample(samples, math.Float64frombits(v), t)
					i = e
					continue
				}
			}
		}
		d.labels, d.samples = labels, samples
		next, label, err := d.seriesField(b, i, ts, len(labels)-l0 < labelCap)
		if err != nil {
			return labelFacts{}, err
		}
		if label {
			scan.unusual()
		}
		labels, samples, i = d.labels, d.samples, next
	}
	d.labels, d.samples = labels, samples
	ts.Labels = slabPart(labels, l0)
	ts.Samples = slabPart(samples, s0)
	return scan.facts(b, ts.Labels), nil
}

// seriesField decodes the field of a TimeSeries at b[i] in any encoding, appending labels
// (while room is true) and samples to the decoder's slabs, and returns where the next field
// starts and whether this one was a label: such a label is outside the plain case.
func (d *Decoder) seriesField(b []byte, i int, ts *prompb.TimeSeries, room bool) (next int, label bool, err error) {
	num, wt, j := tagAt(b, i)
	if j < 0 {
		return 0, false, wireError(j, "TimeSeries")
	}
	if num < 1 || num >= int32(len(seriesFields)) {
		start := i
		if i = skipField(b, j, num, wt); i < 0 {
			return 0, false, wireError(i, "TimeSeries")
		}
		if num == createdField && wt == wireVarint {
			ts.XXX_unrecognized = b[start:i:i] // cardinal's own records carry it (created.go)
		}
		return i, false, nil
	}
	s, e := bytesAt(b, j, wt)
	if e < 0 {
		return 0, false, wireError(e, seriesFields[num])
	}
	var code int
	switch field := b[s:e]; num {
	case 1:
		var name, value string
		if name, value, code = unmarshalLabel(field); code >= 0 && room {
			d.labels = appendLabel(d.labels, name, value)
		}
		label = true
	case 2:
		var v uint64
		var t int64
		if v, t, code = unmarshalSample(field); code >= 0 {
			d.samples = appendSample(d.samples, math.Float64frombits(v), t)
		}
	case 3:
		var ex *prompb.Exemplar
		ts.Exemplars, ex = nextSlot(ts.Exemplars)
		*ex = prompb.Exemplar{Labels: ex.Labels[:0]}
		code = unmarshalExemplar(field, ex)
	case 4:
		var h *prompb.Histogram
		ts.Histograms, h = nextSlot(ts.Histograms)
		resetHistogram(h)
		code = d.unmarshalHistogram(field, h)
	}
	if code < 0 {
		return 0, false, wireError(code, seriesMessages[num])
	}
	return e, label, nil
}

// seriesFields and seriesMessages name, for error messages, the fields of a TimeSeries by
// number and the message each holds.
var (
	seriesFields   = [...]string{1: "TimeSeries.labels", 2: "TimeSeries.samples", 3: "TimeSeries.exemplars", 4: "TimeSeries.histograms"}
	seriesMessages = [...]string{1: "Label", 2: "Sample", 3: "Exemplar", 4: "Histogram"}
)

// appendLabel appends a label to a slab, writing its fields in place. append with a
// composite literal builds the label on the stack and then copies it in 16-byte moves that
// read back the 8-byte stores just made, which the CPU cannot forward: a stall per label
// on the hottest line of the decoder.
func appendLabel(slab []prompb.Label, name, value string) []prompb.Label {
	slab = grow1(slab)
	l := &slab[len(slab)-1]
	l.Name, l.Value = name, value
	l.XXX_unrecognized, l.XXX_sizecache = nil, 0
	return slab
}

// appendSample is appendLabel for samples.
func appendSample(slab []prompb.Sample, v float64, t int64) []prompb.Sample {
	slab = grow1(slab)
	s := &slab[len(slab)-1]
	s.Value, s.Timestamp = v, t
	s.XXX_unrecognized, s.XXX_sizecache = nil, 0
	return slab
}

// grow1 extends s by one element, whose old contents the caller overwrites.
func grow1[T any](s []T) []T {
	if len(s) == cap(s) {
		s = slices.Grow(s, 1)
	}
	return s[:len(s)+1]
}

// slabPart returns slab[from:] with no spare capacity, or nil if it is empty.
func slabPart[T any](slab []T, from int) []T {
	if len(slab) == from {
		return nil
	}
	return slab[from:len(slab):len(slab)]
}

// unmarshalLabel returns a Label's name and value, or a code.
func unmarshalLabel(b []byte) (name, value string, code int) {
	if name, value, ok := plainLabel(b); ok {
		return name, value, 0
	}
	return unmarshalLabelFields(b)
}

// unmarshalLabelFields reads a Label in any encoding, field by field.
func unmarshalLabelFields(b []byte) (name, value string, code int) {
	for i := 0; i < len(b); {
		num, wt, j := tagAt(b, i)
		if j < 0 {
			return "", "", j
		}
		switch num {
		case 1, 2:
			s, e := bytesAt(b, j, wt)
			if e < 0 {
				return "", "", e
			}
			if num == 1 {
				name = bytesString(b[s:e])
			} else {
				value = bytesString(b[s:e])
			}
			i = e
		default:
			if i = skipField(b, j, num, wt); i < 0 {
				return "", "", i
			}
		}
	}
	return name, value, 0
}

// plainLabel returns the name and value of a Label in the usual encoding: name then value,
// with one-byte lengths, and nothing else.
func plainLabel(b []byte) (name, value string, ok bool) {
	if len(b) >= 4 && b[0] == 1<<3|wireBytes {
		n := int(b[1])
		if n < 0x80 && n+4 <= len(b) && b[n+2] == 2<<3|wireBytes {
			if m := int(b[n+3]); m < 0x80 && n+4+m == len(b) {
				return bytesString(b[2 : n+2]), bytesString(b[n+4:]), true
			}
		}
	}
	return "", "", false
}

// unmarshalSample returns a Sample's value bits and timestamp, or a code.
func unmarshalSample(b []byte) (value uint64, ts int64, code int) {
	// The usual encoding, value then timestamp and nothing else, directly.
	if len(b) >= 10 && b[0] == 1<<3|wireFixed64 && b[9] == 2<<3|wireVarint {
		if len(b) == 16 && b[10]&b[11]&b[12]&b[13]&b[14] >= 0x80 && b[15] < 0x80 {
			// A millisecond timestamp of this era is a 6-byte varint: unrolled.
			t := uint64(b[10]&0x7f) | uint64(b[11]&0x7f)<<7 | uint64(b[12]&0x7f)<<14 |
				uint64(b[13]&0x7f)<<21 | uint64(b[14]&0x7f)<<28 | uint64(b[15])<<35
			return binary.LittleEndian.Uint64(b[1:9]), int64(t), 0
		}
		if t, j := varint(b, 10); j == len(b) {
			return binary.LittleEndian.Uint64(b[1:9]), int64(t), 0
		}
	}
	for i := 0; i < len(b); {
		num, wt, j := tagAt(b, i)
		if j < 0 {
			return 0, 0, j
		}
		switch num {
		case 1:
			if value, i = fixed64At(b, j, wt); i < 0 {
				return 0, 0, i
			}
		case 2:
			var v uint64
			if v, i = varintAt(b, j, wt); i < 0 {
				return 0, 0, i
			}
			ts = int64(v)
		default:
			if i = skipField(b, j, num, wt); i < 0 {
				return 0, 0, i
			}
		}
	}
	return value, ts, 0
}

func unmarshalExemplar(b []byte, ex *prompb.Exemplar) int {
	for i := 0; i < len(b); {
		num, wt, j := tagAt(b, i)
		if j < 0 {
			return j
		}
		var v uint64
		switch num {
		case 1:
			s, e := bytesAt(b, j, wt)
			if e < 0 {
				return e
			}
			name, value, code := unmarshalLabel(b[s:e])
			if code < 0 {
				return code
			}
			ex.Labels = append(ex.Labels, prompb.Label{Name: name, Value: value})
			i = e
		case 2:
			if v, i = fixed64At(b, j, wt); i < 0 {
				return i
			}
			ex.Value = math.Float64frombits(v)
		case 3:
			if v, i = varintAt(b, j, wt); i < 0 {
				return i
			}
			ex.Timestamp = int64(v)
		default:
			if i = skipField(b, j, num, wt); i < 0 {
				return i
			}
		}
	}
	return 0
}

func (d *Decoder) unmarshalHistogram(b []byte, h *prompb.Histogram) int {
	for i := 0; i < len(b); {
		num, wt, j := tagAt(b, i)
		if j < 0 {
			return j
		}
		var v uint64
		switch num {
		case 1:
			if v, i = varintAt(b, j, wt); i < 0 {
				return i
			}
			d.countInts = append(d.countInts, prompb.Histogram_CountInt{CountInt: v})
			h.Count = &d.countInts[len(d.countInts)-1]
		case 2:
			if v, i = fixed64At(b, j, wt); i < 0 {
				return i
			}
			d.countFloats = append(d.countFloats, prompb.Histogram_CountFloat{CountFloat: math.Float64frombits(v)})
			h.Count = &d.countFloats[len(d.countFloats)-1]
		case 3:
			if v, i = fixed64At(b, j, wt); i < 0 {
				return i
			}
			h.Sum = math.Float64frombits(v)
		case 4:
			if v, i = varintAt(b, j, wt); i < 0 {
				return i
			}
			h.Schema = zigzag32(v)
		case 5:
			if v, i = fixed64At(b, j, wt); i < 0 {
				return i
			}
			h.ZeroThreshold = math.Float64frombits(v)
		case 6:
			if v, i = varintAt(b, j, wt); i < 0 {
				return i
			}
			d.zeroCountInts = append(d.zeroCountInts, prompb.Histogram_ZeroCountInt{ZeroCountInt: v})
			h.ZeroCount = &d.zeroCountInts[len(d.zeroCountInts)-1]
		case 7:
			if v, i = fixed64At(b, j, wt); i < 0 {
				return i
			}
			d.zeroCountFloats = append(d.zeroCountFloats, prompb.Histogram_ZeroCountFloat{ZeroCountFloat: math.Float64frombits(v)})
			h.ZeroCount = &d.zeroCountFloats[len(d.zeroCountFloats)-1]
		case 8:
			h.NegativeSpans, i = appendSpan(h.NegativeSpans, b, j, wt)
		case 9:
			h.NegativeDeltas, i = appendZigzag64s(h.NegativeDeltas, b, j, wt)
		case 10:
			h.NegativeCounts, i = appendDoubles(h.NegativeCounts, b, j, wt)
		case 11:
			h.PositiveSpans, i = appendSpan(h.PositiveSpans, b, j, wt)
		case 12:
			h.PositiveDeltas, i = appendZigzag64s(h.PositiveDeltas, b, j, wt)
		case 13:
			h.PositiveCounts, i = appendDoubles(h.PositiveCounts, b, j, wt)
		case 14:
			if v, i = varintAt(b, j, wt); i < 0 {
				return i
			}
			h.ResetHint = prompb.Histogram_ResetHint(int32(v))
		case 15:
			if v, i = varintAt(b, j, wt); i < 0 {
				return i
			}
			h.Timestamp = int64(v)
		case 16:
			h.CustomValues, i = appendDoubles(h.CustomValues, b, j, wt)
		default:
			i = skipField(b, j, num, wt)
		}
		if i < 0 {
			return i
		}
	}
	return 0
}

// appendSpan decodes one BucketSpan field at b[i].
func appendSpan(spans []prompb.BucketSpan, b []byte, i int, wt uint64) ([]prompb.BucketSpan, int) {
	s, e := bytesAt(b, i, wt)
	if e < 0 {
		return spans, e
	}
	var offset int32
	var length uint32
	m := b[s:e]
	for k := 0; k < len(m); {
		num, wt, j := tagAt(m, k)
		if j < 0 {
			return spans, j
		}
		var v uint64
		switch num {
		case 1:
			v, k = varintAt(m, j, wt)
			offset = zigzag32(v)
		case 2:
			v, k = varintAt(m, j, wt)
			length = uint32(v)
		default:
			k = skipField(m, j, num, wt)
		}
		if k < 0 {
			return spans, k
		}
	}
	return append(spans, prompb.BucketSpan{Offset: offset, Length: length}), e
}

// appendZigzag64s decodes a repeated sint64 field at b[i], packed or not.
func appendZigzag64s(dst []int64, b []byte, i int, wt uint64) ([]int64, int) {
	switch wt {
	case wireVarint:
		v, j := varint(b, i)
		if j < 0 {
			return dst, j
		}
		return append(dst, zigzag64(v)), j
	case wireBytes:
		s, e := bytesAt(b, i, wt)
		if e < 0 {
			return dst, e
		}
		packed := b[s:e]
		for k := 0; k < len(packed); {
			v, j := varint(packed, k)
			if j == codeTruncated {
				return dst, codePackedOverrun
			}
			if j < 0 {
				return dst, j
			}
			dst = append(dst, zigzag64(v))
			k = j
		}
		return dst, e
	default:
		return dst, codeWrongWireType
	}
}

// appendDoubles decodes a repeated double field at b[i], packed or not.
func appendDoubles(dst []float64, b []byte, i int, wt uint64) ([]float64, int) {
	switch wt {
	case wireFixed64:
		v, j := fixed64At(b, i, wt)
		if j < 0 {
			return dst, j
		}
		return append(dst, math.Float64frombits(v)), j
	case wireBytes:
		s, e := bytesAt(b, i, wt)
		if e < 0 {
			return dst, e
		}
		if (e-s)%8 != 0 {
			return dst, codePackedOverrun
		}
		for k := s; k < e; k += 8 {
			dst = append(dst, math.Float64frombits(binary.LittleEndian.Uint64(b[k:])))
		}
		return dst, e
	default:
		return dst, codeWrongWireType
	}
}

func unmarshalMetadata(b []byte, md *prompb.MetricMetadata) int {
	for i := 0; i < len(b); {
		num, wt, j := tagAt(b, i)
		if j < 0 {
			return j
		}
		switch num {
		case 1:
			var v uint64
			if v, i = varintAt(b, j, wt); i < 0 {
				return i
			}
			md.Type = prompb.MetricMetadata_MetricType(int32(v))
		case 2, 4, 5:
			s, e := bytesAt(b, j, wt)
			if e < 0 {
				return e
			}
			str := bytesString(b[s:e])
			switch num {
			case 2:
				md.MetricFamilyName = str
			case 4:
				md.Help = str
			default:
				md.Unit = str
			}
			i = e
		default:
			if i = skipField(b, j, num, wt); i < 0 {
				return i
			}
		}
	}
	return 0
}

// nextSlot extends s by one element, reusing the element (and the capacity of its slices)
// left beyond len(s) by an earlier decode. The caller resets the fields it does not reuse.
func nextSlot[T any](s []T) ([]T, *T) {
	n := len(s)
	if n < cap(s) {
		s = s[:n+1]
	} else {
		var zero T
		s = append(s, zero)
	}
	return s, &s[n]
}

func resetSeries(ts *prompb.TimeSeries) {
	ts.Labels = nil // parts of the Decoder's slabs, set when the series is read
	ts.Samples = nil
	ts.Exemplars = ts.Exemplars[:0]
	ts.Histograms = ts.Histograms[:0]
	ts.XXX_unrecognized = nil
	ts.XXX_sizecache = 0
}

func resetHistogram(h *prompb.Histogram) {
	*h = prompb.Histogram{
		NegativeSpans:  h.NegativeSpans[:0],
		NegativeDeltas: h.NegativeDeltas[:0],
		NegativeCounts: h.NegativeCounts[:0],
		PositiveSpans:  h.PositiveSpans[:0],
		PositiveDeltas: h.PositiveDeltas[:0],
		PositiveCounts: h.PositiveCounts[:0],
		CustomValues:   h.CustomValues[:0],
	}
}

// bytesString returns a string sharing b's memory.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
