package remotewrite

import (
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// An EncoderV2 marshals series into a snappy-compressed (block format) Remote Write 2.0
// body (io.prometheus.write.v2.Request): one symbol table for the request, label references
// per series, native histograms as histograms, each series' created timestamp, and its
// metadata when Metadata gives it. It reuses its buffers: the returned bytes are
// valid until the next call. The zero value is ready to use; it is not safe for concurrent
// use.
type EncoderV2 struct {
	// Metadata, when set, gives the metadata (type, unit, help) sent inline with each
	// series, by metric name.
	Metadata func(name string) (prompb.MetricMetadata, bool)

	symbols writev2.SymbolsTable
	ready   bool
	req     writev2.Request
	refs    []uint32
	proto   []byte
	out     []byte
}

// Encode returns the body of a 2.0 Request holding series.
func (e *EncoderV2) Encode(series []prompb.TimeSeries) ([]byte, error) {
	if !e.ready {
		e.symbols, e.ready = writev2.NewSymbolTable(), true
	}
	e.symbols.Reset()
	e.refs = e.refs[:0]
	ts := e.req.Timeseries[:0]
	for i := range series {
		s := &series[i]
		from := len(e.refs)
		for _, l := range s.Labels {
			e.refs = append(e.refs, e.symbols.Symbolize(l.Name), e.symbols.Symbolize(l.Value))
		}
		var out writev2.TimeSeries
		if len(ts) < cap(ts) {
			out = ts[:len(ts)+1][len(ts)]
			out.Samples, out.Histograms = out.Samples[:0], out.Histograms[:0]
			out.Exemplars, out.Metadata, out.CreatedTimestamp = out.Exemplars[:0], writev2.Metadata{}, 0
		}
		out.LabelsRefs = e.refs[from:len(e.refs):len(e.refs)]
		out.CreatedTimestamp = CreatedTimestamp(s)
		if e.Metadata != nil {
			if md, ok := e.Metadata(labelValueOf(s.Labels, metricNameLabel)); ok {
				out.Metadata = writev2.Metadata{
					Type:    writev2.Metadata_MetricType(md.Type), // the same numbers in both messages
					HelpRef: e.symbols.Symbolize(md.Help),
					UnitRef: e.symbols.Symbolize(md.Unit),
				}
			}
		}
		for _, smp := range s.Samples {
			out.Samples = append(out.Samples, writev2.Sample{Value: smp.Value, Timestamp: smp.Timestamp})
		}
		for j := range s.Histograms {
			out.Histograms = append(out.Histograms, histogramV2(&s.Histograms[j]))
		}
		ts = append(ts, out)
	}
	e.req.Timeseries = ts
	e.req.Symbols = e.symbols.Symbols()
	defer func() { // keep nothing of the caller's series alive
		for i := range e.req.Timeseries {
			e.req.Timeseries[i].Histograms = e.req.Timeseries[i].Histograms[:0]
		}
	}()

	return marshalSnappy(&e.req, &e.proto, &e.out)
}

// histogramV2 is a native histogram in the 2.0 message: the same fields, under the same
// numbers. Its slices are shared with h.
func histogramV2(h *prompb.Histogram) writev2.Histogram {
	out := writev2.Histogram{
		Sum:            h.Sum,
		Schema:         h.Schema,
		ZeroThreshold:  h.ZeroThreshold,
		NegativeDeltas: h.NegativeDeltas,
		NegativeCounts: h.NegativeCounts,
		PositiveDeltas: h.PositiveDeltas,
		PositiveCounts: h.PositiveCounts,
		ResetHint:      writev2.Histogram_ResetHint(h.ResetHint),
		Timestamp:      h.Timestamp,
		CustomValues:   h.CustomValues,
	}
	switch c := h.Count.(type) {
	case *prompb.Histogram_CountInt:
		out.Count = &writev2.Histogram_CountInt{CountInt: c.CountInt}
	case *prompb.Histogram_CountFloat:
		out.Count = &writev2.Histogram_CountFloat{CountFloat: c.CountFloat}
	}
	switch z := h.ZeroCount.(type) {
	case *prompb.Histogram_ZeroCountInt:
		out.ZeroCount = &writev2.Histogram_ZeroCountInt{ZeroCountInt: z.ZeroCountInt}
	case *prompb.Histogram_ZeroCountFloat:
		out.ZeroCount = &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: z.ZeroCountFloat}
	}
	for _, s := range h.NegativeSpans {
		out.NegativeSpans = append(out.NegativeSpans, writev2.BucketSpan{Offset: s.Offset, Length: s.Length})
	}
	for _, s := range h.PositiveSpans {
		out.PositiveSpans = append(out.PositiveSpans, writev2.BucketSpan{Offset: s.Offset, Length: s.Length})
	}
	return out
}

// LetGo forgets the buffer of the last body returned, which a request may still be reading
// (Body.Wait): the next call writes into a new one.
func (e *EncoderV2) LetGo() { e.out = nil }
