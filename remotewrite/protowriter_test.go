package remotewrite

import (
	"math"
	"math/rand/v2"

	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"
)

// protoWriter encodes write requests the way other (valid) encoders may: repeated scalars
// packed or not, zero values written explicitly or omitted, and unknown fields of every
// wire type, groups included, between known ones.
type protoWriter struct {
	rng      *rand.Rand
	unpacked bool // write repeated scalars one element per field
	zeros    bool // write zero-valued scalars instead of omitting them
	junk     bool // interleave unknown fields
}

func newProtoWriter(seed uint64) *protoWriter {
	rng := rand.New(rand.NewPCG(seed, 42))
	return &protoWriter{rng: rng, unpacked: rng.IntN(2) == 0, zeros: rng.IntN(2) == 0, junk: rng.IntN(2) == 0}
}

func (w *protoWriter) request(req *prompb.WriteRequest) []byte {
	var b []byte
	for i := range req.Timeseries {
		b = w.unknown(b)
		b = w.message(b, 1, w.series(&req.Timeseries[i]))
	}
	for i := range req.Metadata {
		md := &req.Metadata[i]
		var m []byte
		m = w.varint(m, 1, uint64(md.Type))
		m = w.string(m, 2, md.MetricFamilyName)
		m = w.unknown(m)
		m = w.string(m, 4, md.Help)
		m = w.string(m, 5, md.Unit)
		b = w.message(b, 3, m)
	}
	return w.unknown(b)
}

func (w *protoWriter) series(ts *prompb.TimeSeries) []byte {
	var b []byte
	for _, l := range ts.Labels {
		b = w.message(b, 1, w.label(l))
	}
	for _, s := range ts.Samples {
		var m []byte
		m = w.unknown(m)
		m = w.double(m, 1, s.Value)
		m = w.varint(m, 2, uint64(s.Timestamp))
		b = w.message(b, 2, m)
	}
	b = w.unknown(b)
	for _, ex := range ts.Exemplars {
		var m []byte
		for _, l := range ex.Labels {
			m = w.message(m, 1, w.label(l))
		}
		m = w.double(m, 2, ex.Value)
		m = w.varint(m, 3, uint64(ex.Timestamp))
		b = w.message(b, 3, m)
	}
	for i := range ts.Histograms {
		b = w.message(b, 4, w.histogram(&ts.Histograms[i]))
	}
	return b
}

func (w *protoWriter) label(l prompb.Label) []byte {
	var m []byte
	m = w.string(m, 1, l.Name)
	m = w.unknown(m)
	return w.string(m, 2, l.Value)
}

func (w *protoWriter) histogram(h *prompb.Histogram) []byte {
	var b []byte
	switch c := h.Count.(type) {
	case *prompb.Histogram_CountInt:
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, c.CountInt)
	case *prompb.Histogram_CountFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(c.CountFloat))
	}
	b = w.double(b, 3, h.Sum)
	b = w.varint(b, 4, protowire.EncodeZigZag(int64(h.Schema)))
	b = w.double(b, 5, h.ZeroThreshold)
	switch c := h.ZeroCount.(type) {
	case *prompb.Histogram_ZeroCountInt:
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, c.ZeroCountInt)
	case *prompb.Histogram_ZeroCountFloat:
		b = protowire.AppendTag(b, 7, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(c.ZeroCountFloat))
	}
	b = w.unknown(b)
	b = w.spans(b, 8, h.NegativeSpans)
	b = w.zigzags(b, 9, h.NegativeDeltas)
	b = w.doubles(b, 10, h.NegativeCounts)
	b = w.spans(b, 11, h.PositiveSpans)
	b = w.zigzags(b, 12, h.PositiveDeltas)
	b = w.doubles(b, 13, h.PositiveCounts)
	b = w.varint(b, 14, uint64(h.ResetHint))
	b = w.varint(b, 15, uint64(h.Timestamp))
	return w.doubles(b, 16, h.CustomValues)
}

func (w *protoWriter) spans(b []byte, num protowire.Number, spans []prompb.BucketSpan) []byte {
	for _, s := range spans {
		var m []byte
		m = w.varint(m, 1, protowire.EncodeZigZag(int64(s.Offset)))
		m = w.varint(m, 2, uint64(s.Length))
		b = w.message(b, num, m)
	}
	return b
}

func (w *protoWriter) zigzags(b []byte, num protowire.Number, vs []int64) []byte {
	if len(vs) == 0 {
		return b
	}
	if w.unpacked {
		for _, v := range vs {
			b = protowire.AppendTag(b, num, protowire.VarintType)
			b = protowire.AppendVarint(b, protowire.EncodeZigZag(v))
		}
		return b
	}
	var m []byte
	for _, v := range vs {
		m = protowire.AppendVarint(m, protowire.EncodeZigZag(v))
	}
	return w.message(b, num, m)
}

func (w *protoWriter) doubles(b []byte, num protowire.Number, vs []float64) []byte {
	if len(vs) == 0 {
		return b
	}
	if w.unpacked {
		for _, v := range vs {
			b = protowire.AppendTag(b, num, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, math.Float64bits(v))
		}
		return b
	}
	var m []byte
	for _, v := range vs {
		m = protowire.AppendFixed64(m, math.Float64bits(v))
	}
	return w.message(b, num, m)
}

func (w *protoWriter) message(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func (w *protoWriter) string(b []byte, num protowire.Number, s string) []byte {
	if s == "" && !w.zeros {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func (w *protoWriter) varint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 && !w.zeros {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func (w *protoWriter) double(b []byte, num protowire.Number, v float64) []byte {
	if math.Float64bits(v) == 0 && !w.zeros {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

// unknown appends, sometimes, a field no message of prometheus.WriteRequest defines.
func (w *protoWriter) unknown(b []byte) []byte {
	if !w.junk || w.rng.IntN(3) != 0 {
		return b
	}
	return w.appendUnknown(b, 2)
}

func (w *protoWriter) appendUnknown(b []byte, depth int) []byte {
	num := protowire.Number(100 + w.rng.IntN(1000))
	switch w.rng.IntN(5) {
	case 0:
		b = protowire.AppendTag(b, num, protowire.VarintType)
		return protowire.AppendVarint(b, w.rng.Uint64()>>w.rng.IntN(64))
	case 1:
		b = protowire.AppendTag(b, num, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, w.rng.Uint64())
	case 2:
		b = protowire.AppendTag(b, num, protowire.Fixed32Type)
		return protowire.AppendFixed32(b, w.rng.Uint32())
	case 3:
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, []byte("unknown\x00\xff"))
	default:
		b = protowire.AppendTag(b, num, protowire.StartGroupType)
		for range w.rng.IntN(3) {
			if depth > 0 {
				b = w.appendUnknown(b, depth-1)
			}
		}
		return protowire.AppendTag(b, num, protowire.EndGroupType)
	}
}
