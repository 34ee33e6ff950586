package remotewrite

import (
	"fmt"
	"math"

	"github.com/prometheus/prometheus/prompb"
)

// Remote Write 2.0 (io.prometheus.write.v2.Request) is decoded into the same
// prompb.WriteRequest as 1.0, so that validation, limits and everything after the receiver
// are shared: each series' label references are resolved against the request's symbol
// table into labels whose strings point into the decoded body (no copy), samples and native
// histograms have the same wire shape in both versions, exemplars get their labels
// resolved, and each series' inline metadata becomes one MetricMetadata of the request. A
// series' created timestamp, which 1.0 has no field for, is kept beside it (Created).

// v2Symbols is what the Decoder keeps of one request's symbol table.
type v2Symbols struct {
	syms []v2Symbol
}

// v2Symbol is one symbol, with what validation needs to know of it.
type v2Symbol struct {
	str string
	// plain is set when str is non-empty and ASCII: such a symbol needs no check when a
	// series' labels are validated.
	plain bool
}

// UnmarshalV2 decodes the protobuf io.prometheus.write.v2.Request in data into req,
// replacing its contents. Strings in req point into data. A reference outside the symbol
// table, a symbol table whose first symbol is not empty, or an odd number of label
// references is an ErrMalformedRequest.
//
// Senders write the symbol table before the series (protobuf encoders write fields in
// order), so one pass reads both, resolving each series against the symbols read so far.
// A reference past them is either an error or a table written after its series: the
// request is then read again, the whole table first.
func (d *Decoder) UnmarshalV2(data []byte, req *prompb.WriteRequest) error {
	err := d.unmarshalV2(data, req, false)
	if _, ok := err.(*refError); ok {
		return d.unmarshalV2(data, req, true)
	}
	return err
}

// refError is a reference outside the symbol table.
type refError struct{ msg string }

func (e *refError) Error() string { return ErrMalformedRequest.Error() + ": " + e.msg }
func (e *refError) Unwrap() error { return ErrMalformedRequest }

func refErrorf(format string, args ...any) error { return &refError{msg: fmt.Sprintf(format, args...)} }

// unmarshalV2 is one pass of UnmarshalV2; with tableFirst, the whole symbol table is read
// before any series.
func (d *Decoder) unmarshalV2(data []byte, req *prompb.WriteRequest, tableFirst bool) error {
	d.reset(req)
	d.symbols.syms = d.symbols.syms[:0]
	if tableFirst {
		if err := d.readSymbols(data); err != nil {
			return err
		}
	}
	b := data
	for i := 0; i < len(b); {
		num, wt, j := tagAt(b, i)
		if j < 0 {
			return wireError(j, "Request")
		}
		switch {
		case num == 4 && !tableFirst:
			s, e := bytesAt(b, j, wt)
			if e < 0 {
				return wireError(e, "Request.symbols")
			}
			if err := d.addSymbol(bytesString(b[s:e])); err != nil {
				return err
			}
			i = e
			continue
		case num != 5:
			if i = skipField(b, j, num, wt); i < 0 {
				return wireError(i, "Request")
			}
			continue
		}
		s, e := bytesAt(b, j, wt)
		if e < 0 {
			return wireError(e, "Request.timeseries")
		}
		if d.maxSeries > 0 && len(req.Timeseries) >= d.maxSeries {
			return fmt.Errorf("%w: more than %d in one request", ErrTooManySeries, d.maxSeries)
		}
		var ts *prompb.TimeSeries
		req.Timeseries, ts = nextSlot(req.Timeseries)
		resetSeries(ts)
		facts, created, err := d.unmarshalSeriesV2(b[s:e], ts, req, len(req.Timeseries)-1)
		if err != nil {
			return err
		}
		d.facts = append(d.facts, facts)
		if created != 0 {
			// Carried as 1.0's unrecognized bytes (see CreatedTimestamp), cut from one
			// buffer per request.
			n := len(d.created)
			d.created = appendCreated(d.created, created)
			ts.XXX_unrecognized = d.created[n:len(d.created):len(d.created)]
		}
		i = e
	}
	return nil
}

// addSymbol appends one symbol to the table, checking that the table begins with the
// empty string, as the specification requires.
func (d *Decoder) addSymbol(str string) error {
	if len(d.symbols.syms) == 0 && str != "" {
		return fmt.Errorf("%w: the first symbol is %q; a symbol table begins with the empty string", ErrMalformedRequest, truncate(str, 64))
	}
	d.symbols.syms = append(d.symbols.syms, v2Symbol{str: str, plain: str != "" && asciiBits(str)&0x8080808080808080 == 0})
	return nil
}

// readSymbols reads the whole symbol table (field 4, wherever it is in the request).
func (d *Decoder) readSymbols(b []byte) error {
	for i := 0; i < len(b); {
		num, wt, j := tagAt(b, i)
		if j < 0 {
			return wireError(j, "Request")
		}
		if num != 4 {
			if i = skipField(b, j, num, wt); i < 0 {
				return wireError(i, "Request")
			}
			continue
		}
		s, e := bytesAt(b, j, wt)
		if e < 0 {
			return wireError(e, "Request.symbols")
		}
		if err := d.addSymbol(bytesString(b[s:e])); err != nil {
			return err
		}
		i = e
	}
	return nil
}

// symbol returns symbol ref, or false when it is outside the table.
func (s *v2Symbols) symbol(ref uint64) (string, bool) {
	if ref >= uint64(len(s.syms)) {
		return "", false
	}
	return s.syms[ref].str, true
}

// v2Labels is what unmarshalSeriesV2 gathers of a series' labels as resolveRefs resolves
// them, field after field.
type v2Labels struct {
	l0      int    // the series' first label in the Decoder's slab
	refs    int    // label references read
	pending uint64 // a name reference waiting for its value (refs is odd)
	cut     bool   // labels beyond the cap were dropped
	// plain: every label so far from plain symbols, names strictly ascending.
	plain, hasName            bool
	longestName, longestValue int
}

// resolveRefs resolves the packed label references p of series i into labels appended to
// the Decoder's slab, at most labelCap of them. It is the hot loop of a 2.0 request:
// references are read with one- and two-byte fast paths, and the state lives in locals.
func (d *Decoder) resolveRefs(p []byte, st *v2Labels, labelCap, i int) error {
	syms := d.symbols.syms
	labels := d.labels
	l := *st
	for k := 0; k < len(p); {
		var ref uint64
		switch c := p[k]; {
		case c < 0x80:
			ref, k = uint64(c), k+1
		case k+1 < len(p) && p[k+1] < 0x80:
			ref, k = uint64(c&0x7f)|uint64(p[k+1])<<7, k+2
		default:
			v, q := varint(p, k)
			if q < 0 {
				if q == codeTruncated {
					q = codePackedOverrun
				}
				d.labels = labels
				return wireError(q, "TimeSeries.labels_refs")
			}
			ref, k = uint64(uint32(v)), q
		}
		l.refs++
		if l.refs&1 == 1 {
			l.pending = ref
			continue
		}
		if l.pending >= uint64(len(syms)) || ref >= uint64(len(syms)) {
			d.labels = labels
			return refErrorf("series %d: label reference %d out of a symbol table of %d", i, max(l.pending, ref), len(syms))
		}
		name, value := &syms[l.pending], &syms[ref]
		if len(labels)-l.l0 >= labelCap {
			l.cut = true // validation sees one more label than the limit and says so
			continue
		}
		if l.plain {
			if !name.plain || !value.plain {
				l.plain = false
			} else if len(labels) > l.l0 {
				// Strictly ascending; names mostly differ in their first byte.
				prev := labels[len(labels)-1].Name
				if name.str[0] < prev[0] || name.str[0] == prev[0] && name.str <= prev {
					l.plain = false
				}
			}
			l.hasName = l.hasName || name.str == metricNameLabel
			l.longestName, l.longestValue = max(l.longestName, len(name.str)), max(l.longestValue, len(value.str))
		}
		labels = grow1(labels)
		lb := &labels[len(labels)-1]
		lb.Name, lb.Value, lb.XXX_unrecognized, lb.XXX_sizecache = name.str, value.str, nil, 0
	}
	d.labels = labels
	*st = l
	return nil
}

// unmarshalSeriesV2 decodes one TimeSeries (index i of the request), appending its labels
// and samples to the Decoder's slabs and its metadata to req, and returns what it saw of
// its labels and its created timestamp.
func (d *Decoder) unmarshalSeriesV2(b []byte, ts *prompb.TimeSeries, req *prompb.WriteRequest, i int) (labelFacts, int64, error) {
	labelCap := d.labelCap
	if labelCap <= 0 {
		labelCap = math.MaxInt
	}
	s0 := len(d.samples)
	st := v2Labels{l0: len(d.labels), plain: true}
	var created int64
	var meta struct {
		set              bool
		typ              uint64
		helpRef, unitRef uint64
	}
	for k := 0; k < len(b); {
		num, wt, j := tagAt(b, k)
		if j < 0 {
			return labelFacts{}, 0, wireError(j, "TimeSeries")
		}
		switch num {
		case 1: // labels_refs: packed, as every encoder writes them, or one varint each
			switch wt {
			case wireBytes:
				s, e := bytesAt(b, j, wt)
				if e < 0 {
					return labelFacts{}, 0, wireError(e, "TimeSeries.labels_refs")
				}
				if err := d.resolveRefs(b[s:e], &st, labelCap, i); err != nil {
					return labelFacts{}, 0, err
				}
				k = e
			case wireVarint:
				_, q := varint(b, j)
				if q < 0 {
					return labelFacts{}, 0, wireError(q, "TimeSeries.labels_refs")
				}
				if err := d.resolveRefs(b[j:q], &st, labelCap, i); err != nil {
					return labelFacts{}, 0, err
				}
				k = q
			default:
				return labelFacts{}, 0, wireError(codeWrongWireType, "TimeSeries.labels_refs")
			}
		case 2:
			s, e := bytesAt(b, j, wt)
			if e < 0 {
				return labelFacts{}, 0, wireError(e, "TimeSeries.samples")
			}
			v, t, code := unmarshalSample(b[s:e])
			if code < 0 {
				return labelFacts{}, 0, wireError(code, "Sample")
			}
			d.samples = appendSample(d.samples, math.Float64frombits(v), t)
			k = e
		case 3:
			s, e := bytesAt(b, j, wt)
			if e < 0 {
				return labelFacts{}, 0, wireError(e, "TimeSeries.histograms")
			}
			var h *prompb.Histogram
			ts.Histograms, h = nextSlot(ts.Histograms)
			resetHistogram(h)
			if code := d.unmarshalHistogram(b[s:e], h); code < 0 {
				return labelFacts{}, 0, wireError(code, "Histogram")
			}
			k = e
		case 4:
			s, e := bytesAt(b, j, wt)
			if e < 0 {
				return labelFacts{}, 0, wireError(e, "TimeSeries.exemplars")
			}
			var ex *prompb.Exemplar
			ts.Exemplars, ex = nextSlot(ts.Exemplars)
			*ex = prompb.Exemplar{Labels: ex.Labels[:0]}
			if err := d.unmarshalExemplarV2(b[s:e], ex, i); err != nil {
				return labelFacts{}, 0, err
			}
			k = e
		case 5:
			s, e := bytesAt(b, j, wt)
			if e < 0 {
				return labelFacts{}, 0, wireError(e, "TimeSeries.metadata")
			}
			m := b[s:e]
			for p := 0; p < len(m); {
				mnum, mwt, q := tagAt(m, p)
				if q < 0 {
					return labelFacts{}, 0, wireError(q, "Metadata")
				}
				var v uint64
				switch mnum {
				case 1, 3, 4:
					if v, p = varintAt(m, q, mwt); p < 0 {
						return labelFacts{}, 0, wireError(p, "Metadata")
					}
					switch mnum {
					case 1:
						meta.typ = v
					case 3:
						meta.helpRef = uint64(uint32(v))
					default:
						meta.unitRef = uint64(uint32(v))
					}
				default:
					if p = skipField(m, q, mnum, mwt); p < 0 {
						return labelFacts{}, 0, wireError(p, "Metadata")
					}
				}
			}
			meta.set = true
			k = e
		case 6:
			v, q := varintAt(b, j, wt)
			if q < 0 {
				return labelFacts{}, 0, wireError(q, "TimeSeries.created_timestamp")
			}
			created = int64(v)
			k = q
		default:
			if k = skipField(b, j, num, wt); k < 0 {
				return labelFacts{}, 0, wireError(k, "TimeSeries")
			}
		}
	}
	if st.refs%2 != 0 {
		return labelFacts{}, 0, fmt.Errorf("%w: series %d: %d label references; they come in name, value pairs", ErrMalformedRequest, i, st.refs)
	}
	ts.Labels = slabPart(d.labels, st.l0)
	ts.Samples = slabPart(d.samples, s0)
	if meta.set && (meta.typ != 0 || meta.helpRef != 0 || meta.unitRef != 0) {
		help, ok1 := d.symbols.symbol(meta.helpRef)
		unit, ok2 := d.symbols.symbol(meta.unitRef)
		if !ok1 || !ok2 {
			return labelFacts{}, 0, refErrorf("series %d: metadata reference out of a symbol table of %d", i, len(d.symbols.syms))
		}
		var md *prompb.MetricMetadata
		req.Metadata, md = nextSlot(req.Metadata)
		*md = prompb.MetricMetadata{Type: prompb.MetricMetadata_MetricType(int32(meta.typ)),
			MetricFamilyName: labelValueOf(ts.Labels, metricNameLabel), Help: help, Unit: unit}
	}
	if !st.plain || !st.hasName || st.cut {
		return labelFacts{}, created, nil
	}
	return labelFacts{plain: true, longestName: st.longestName, longestValue: st.longestValue}, created, nil
}

// unmarshalExemplarV2 decodes an Exemplar of series i, resolving its label references.
func (d *Decoder) unmarshalExemplarV2(b []byte, ex *prompb.Exemplar, i int) error {
	var refs []uint64
	var buf [16]uint64
	refs = buf[:0]
	for k := 0; k < len(b); {
		num, wt, j := tagAt(b, k)
		if j < 0 {
			return wireError(j, "Exemplar")
		}
		var v uint64
		switch num {
		case 1:
			switch wt {
			case wireBytes:
				s, e := bytesAt(b, j, wt)
				if e < 0 {
					return wireError(e, "Exemplar.labels_refs")
				}
				for p := s; p < e; {
					ref, q := varint(b[:e], p)
					if q < 0 {
						if q == codeTruncated {
							q = codePackedOverrun
						}
						return wireError(q, "Exemplar.labels_refs")
					}
					refs = append(refs, uint64(uint32(ref)))
					p = q
				}
				k = e
			default:
				if v, k = varintAt(b, j, wt); k < 0 {
					return wireError(k, "Exemplar.labels_refs")
				}
				refs = append(refs, uint64(uint32(v)))
			}
		case 2:
			if v, k = fixed64At(b, j, wt); k < 0 {
				return wireError(k, "Exemplar")
			}
			ex.Value = math.Float64frombits(v)
		case 3:
			if v, k = varintAt(b, j, wt); k < 0 {
				return wireError(k, "Exemplar")
			}
			ex.Timestamp = int64(v)
		default:
			if k = skipField(b, j, num, wt); k < 0 {
				return wireError(k, "Exemplar")
			}
		}
	}
	if len(refs)%2 != 0 {
		return fmt.Errorf("%w: series %d: an exemplar has %d label references; they come in name, value pairs", ErrMalformedRequest, i, len(refs))
	}
	for p := 0; p < len(refs); p += 2 {
		name, ok1 := d.symbols.symbol(refs[p])
		value, ok2 := d.symbols.symbol(refs[p+1])
		if !ok1 || !ok2 {
			return refErrorf("series %d: exemplar label reference out of a symbol table of %d", i, len(d.symbols.syms))
		}
		ex.Labels = append(ex.Labels, prompb.Label{Name: name, Value: value})
	}
	return nil
}

// labelValueOf returns the value of label name in ls, or "".
func labelValueOf(ls []prompb.Label, name string) string {
	for i := range ls {
		if ls[i].Name == name {
			return ls[i].Value
		}
	}
	return ""
}

// truncate cuts s to at most n bytes for a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
