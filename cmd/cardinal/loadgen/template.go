package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// requestTemplate is one pre-encoded request body (a snappy block of a prompb.WriteRequest
// with one sample per time series). Sample values, timestamps and churning pod values are
// literal bytes at known offsets, so each round patches them in place instead of marshalling.
type requestTemplate struct {
	body    []byte
	rawLen  int // uncompressed protobuf size
	samples []sampleRef
}

// sampleRef locates one time series of a template and says which value it carries.
type sampleRef struct {
	valueAt int32 // offset of the 8 little-endian bytes of the float64 value
	tsAt    int32 // offset of the 6-byte timestamp varint
	podAt   int32 // offset of the pod id digits; -1 when pods never churn
	pod     int64 // the pod id the digits hold now
	slot    int32
	family  int32
	part    int32
}

// Sizes of the fixed-width fields the patcher overwrites.
const (
	valueBytes     = 8
	timestampBytes = 6
	sampleMsgLen   = 1 + valueBytes + 1 + timestampBytes
	// Timestamps between 1971 and 2109 take exactly six varint bytes.
	minTimestampMs = int64(1) << 35
	maxTimestampMs = int64(1)<<42 - 1
)

// errTimestampRange is returned when a round's timestamp cannot be patched in six bytes.
var errTimestampRange = errors.New("timestamp outside 1971..2109")

// buildTemplates encodes round 0 of the plan into requests of at most samplesPerReq samples.
func buildTemplates(p *plan, samplesPerReq int) ([]*requestTemplate, error) {
	if ts := p.timestamp(0); ts < minTimestampMs || ts > maxTimestampMs {
		return nil, fmt.Errorf("round 0 at %d ms: %w", ts, errTimestampRange)
	}
	var (
		out    []*requestTemplate
		b      templateBuilder
		churns = p.churnPerRnd > 0
		lbls   []label
	)
	for j := range p.slots {
		for fi, f := range p.families {
			parts := p.partsOf(f)
			for k := range parts {
				part := partPlain
				if f.kind == kindHistogram {
					part = histogramPart(k, len(p.buckets))
				}
				lbls = p.labels(lbls[:0], f, part, j)
				b.add(lbls, churns, sampleRef{slot: int32(j), family: int32(fi), part: int32(part)})
				if len(b.refs) == samplesPerReq {
					out = append(out, b.finish())
				}
			}
		}
	}
	if len(b.refs) > 0 {
		out = append(out, b.finish())
	}
	for _, t := range out {
		if err := t.patch(p, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// histogramPart maps the k-th time series of a histogram slot to its part.
func histogramPart(k, buckets int) int {
	switch {
	case k <= buckets:
		return k
	case k == buckets+1:
		return partSum
	default:
		return partCount
	}
}

// labels appends the sorted label set of one time series to dst.
func (p *plan) labels(dst []label, f family, part, j int) []label {
	name := f.name
	if f.kind == kindHistogram {
		switch part {
		case partSum:
			name += "_sum"
		case partCount:
			name += "_count"
		default:
			name += "_bucket"
			le := "+Inf"
			if part < len(p.buckets) {
				le = leValue(p.buckets[part])
			}
			dst = append(dst, label{"le", le})
		}
	}
	dst = append(dst, label{"__name__", name}, label{"instance", p.instanceValue(j)}, label{"pod", p.podValue(p.podID(j, 0))})
	if p.groups > 0 {
		dst = append(dst, label{"group", "g" + strconv.Itoa(j%p.groups)})
	}
	dst = append(dst, p.constLabels...)
	slices.SortFunc(dst, func(a, b label) int { return strings.Compare(a.name, b.name) })
	return dst
}

// templateBuilder accumulates the uncompressed protobuf of one request and its patch spans.
type templateBuilder struct {
	raw     []byte
	patches []span
	refs    []sampleRef
}

// add appends one TimeSeries (field 1 of WriteRequest) with a placeholder sample.
func (b *templateBuilder) add(lbls []label, churns bool, ref sampleRef) {
	size := 0
	for _, l := range lbls {
		size += fieldLen(labelLen(l))
	}
	size += fieldLen(sampleMsgLen)
	b.raw = appendTag(b.raw, 1, 2)
	b.raw = binary.AppendUvarint(b.raw, uint64(size))
	ref.podAt = -1
	for _, l := range lbls {
		b.raw = appendTag(b.raw, 1, 2)
		b.raw = binary.AppendUvarint(b.raw, uint64(labelLen(l)))
		b.raw = appendString(b.raw, 1, l.name)
		b.raw = appendString(b.raw, 2, l.value)
		if churns && l.name == "pod" {
			end := len(b.raw)
			start := end - (len(l.value) - len(podPrefix))
			b.patches = append(b.patches, span{start, end})
			ref.podAt = int32(start) // raw offset until finish maps it
		}
	}
	b.raw = appendTag(b.raw, 2, 2)
	b.raw = append(b.raw, sampleMsgLen)
	b.raw = appendTag(b.raw, 1, 1) // double value
	ref.valueAt = int32(len(b.raw))
	b.patches = append(b.patches, span{len(b.raw), len(b.raw) + valueBytes})
	b.raw = append(b.raw, make([]byte, valueBytes)...)
	b.raw = appendTag(b.raw, 2, 0) // int64 timestamp
	ref.tsAt = int32(len(b.raw))
	b.patches = append(b.patches, span{len(b.raw), len(b.raw) + timestampBytes})
	b.raw = appendFixedVarint6(b.raw, minTimestampMs)
	b.refs = append(b.refs, ref)
}

// finish compresses the accumulated request and resets the builder.
func (b *templateBuilder) finish() *requestTemplate {
	body, offsets := compressPatchable(nil, b.raw, b.patches)
	t := &requestTemplate{body: body, rawLen: len(b.raw), samples: slices.Clone(b.refs)}
	i := 0
	for k := range t.samples {
		s := &t.samples[k]
		if s.podAt >= 0 {
			s.podAt = int32(offsets[i])
			s.pod = int64(s.slot) // round 0: generation 0
			i++
		}
		s.valueAt = int32(offsets[i])
		s.tsAt = int32(offsets[i+1])
		i += 2
	}
	b.raw, b.patches, b.refs = b.raw[:0], b.patches[:0], b.refs[:0]
	return t
}

// patch rewrites the template's values, timestamps and pod values for round r. Samples are
// slot-major, so the slot's pod birth is computed once per run of samples of the same slot, and
// pod digits are rewritten only when churn has replaced that pod since the last patch.
func (t *requestTemplate) patch(p *plan, r int64) error {
	ts := p.timestamp(r)
	if ts < minTimestampMs || ts > maxTimestampMs {
		return fmt.Errorf("round %d at %d ms: %w", r, ts, errTimestampRange)
	}
	var tsBytes [timestampBytes]byte
	appendFixedVarint6(tsBytes[:0], ts)
	podDigits := int32(p.valueLen - len(podPrefix))
	slot, age, pod := int32(-1), 0.0, int64(0)
	for i := range t.samples {
		s := &t.samples[i]
		if s.slot != slot {
			slot = s.slot
			g := p.generation(int(slot), r)
			age = float64(r - p.birthOf(int(slot), g) + 1)
			pod = g*int64(p.slots) + int64(slot)
		}
		v := p.valueAt(p.families[s.family], int(s.part), int(slot), r, age)
		binary.LittleEndian.PutUint64(t.body[s.valueAt:], math.Float64bits(v))
		copy(t.body[s.tsAt:s.tsAt+timestampBytes], tsBytes[:])
		if s.podAt >= 0 && s.pod != pod {
			putDigits(t.body[s.podAt:s.podAt+podDigits], pod)
			s.pod = pod
		}
	}
	return nil
}

// appendTag appends a protobuf field key.
func appendTag(b []byte, field, wireType int) []byte {
	return binary.AppendUvarint(b, uint64(field<<3|wireType))
}

// appendString appends a length-delimited string field.
func appendString(b []byte, field int, s string) []byte {
	b = appendTag(b, field, 2)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// labelLen is the encoded size of a prompb.Label message.
func labelLen(l label) int { return fieldLen(len(l.name)) + fieldLen(len(l.value)) }

// fieldLen is the size of a length-delimited field with a one-byte key and n bytes of payload.
func fieldLen(n int) int { return 1 + uvarintLen(uint64(n)) + n }

// uvarintLen is the size of the varint encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendFixedVarint6 appends v (in [2^35, 2^42)) as a varint, which is then exactly 6 bytes.
func appendFixedVarint6(b []byte, v int64) []byte {
	for range timestampBytes - 1 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
