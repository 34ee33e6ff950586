package remotewrite

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/encoding/protowire"
)

// referenceV2 decodes data with the reference types (writev2.Request's generated Unmarshal)
// and resolves it into what UnmarshalV2 must give: the request as Remote Write 1.0 types,
// and each series' created timestamp. It applies the specification's rules on the symbol
// table the same way: a table that does not begin with "", a reference outside it, or an
// odd number of label references is an error.
func referenceV2(data []byte) (prompb.WriteRequest, []int64, error) {
	var r writev2.Request
	if err := r.Unmarshal(data); err != nil {
		return prompb.WriteRequest{}, nil, err
	}
	syms := r.Symbols
	if len(syms) > 0 && syms[0] != "" {
		return prompb.WriteRequest{}, nil, errors.New("first symbol not empty")
	}
	sym := func(ref uint32) (string, error) {
		if int(ref) >= len(syms) {
			return "", fmt.Errorf("reference %d out of %d", ref, len(syms))
		}
		return syms[ref], nil
	}
	pairs := func(refs []uint32) ([]prompb.Label, error) {
		if len(refs)%2 != 0 {
			return nil, errors.New("odd references")
		}
		var ls []prompb.Label
		for i := 0; i < len(refs); i += 2 {
			n, err := sym(refs[i])
			if err != nil {
				return nil, err
			}
			v, err := sym(refs[i+1])
			if err != nil {
				return nil, err
			}
			ls = append(ls, prompb.Label{Name: n, Value: v})
		}
		return ls, nil
	}
	var out prompb.WriteRequest
	var created []int64
	for _, s := range r.Timeseries {
		var ts prompb.TimeSeries
		var err error
		if ts.Labels, err = pairs(s.LabelsRefs); err != nil {
			return prompb.WriteRequest{}, nil, err
		}
		for _, smp := range s.Samples {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: smp.Value, Timestamp: smp.Timestamp})
		}
		for _, h := range s.Histograms {
			// Histogram has the same field numbers in both versions.
			b, err := h.Marshal()
			if err != nil {
				return prompb.WriteRequest{}, nil, err
			}
			var v1 prompb.Histogram
			if err := v1.Unmarshal(b); err != nil {
				return prompb.WriteRequest{}, nil, err
			}
			ts.Histograms = append(ts.Histograms, v1)
		}
		for _, ex := range s.Exemplars {
			ls, err := pairs(ex.LabelsRefs)
			if err != nil {
				return prompb.WriteRequest{}, nil, err
			}
			ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: ls, Value: ex.Value, Timestamp: ex.Timestamp})
		}
		m := s.Metadata
		if m.Type != 0 || m.HelpRef != 0 || m.UnitRef != 0 {
			help, err := sym(m.HelpRef)
			if err != nil {
				return prompb.WriteRequest{}, nil, err
			}
			unit, err := sym(m.UnitRef)
			if err != nil {
				return prompb.WriteRequest{}, nil, err
			}
			name := ""
			for _, l := range ts.Labels {
				if l.Name == "__name__" {
					name = l.Value
					break
				}
			}
			out.Metadata = append(out.Metadata, prompb.MetricMetadata{Type: prompb.MetricMetadata_MetricType(m.Type), MetricFamilyName: name, Help: help, Unit: unit})
		}
		out.Timeseries = append(out.Timeseries, ts)
		created = append(created, s.CreatedTimestamp)
	}
	return out, created, nil
}

// checkV2AgainstReference decodes data with d and with referenceV2 and fails unless both
// accept it with equal results or both refuse it (the Decoder may refuse alone a packed
// field that overruns its length, which gogo reads past).
func checkV2AgainstReference(t *testing.T, d *Decoder, data []byte, got *prompb.WriteRequest) {
	t.Helper()
	want, wantCreated, wantErr := referenceV2(data)
	gotErr := d.UnmarshalV2(data, got)
	switch {
	case gotErr != nil && !errors.Is(gotErr, ErrMalformedRequest):
		t.Fatalf("error %v does not wrap ErrMalformedRequest", gotErr)
	case gotErr == nil && wantErr != nil:
		t.Fatalf("Decoder accepted what the reference refuses (%v); input %x", wantErr, data)
	case gotErr != nil && wantErr == nil && !errors.Is(gotErr, errPackedOverrun) && !strings.Contains(gotErr.Error(), "packed field element"):
		t.Fatalf("Decoder refused what the reference accepts: %v; input %x", gotErr, data)
	case gotErr == nil:
		if diff := diffRequests(&want, got); diff != "" {
			t.Fatalf("Decoder and reference disagree: %s; input %x", diff, data)
		}
		for i, c := range wantCreated {
			if got := CreatedTimestamp(&got.Timeseries[i]); got != c {
				t.Fatalf("series %d: created %d, want %d", i, got, c)
			}
		}
	}
}

// toV2 turns a Remote Write 1.0 request into 2.0, as a Prometheus 3 sender would: symbols,
// references, each series' metadata inline (from the request's first metadata of its
// name, or random), and a random created timestamp on some series.
func toV2(req *prompb.WriteRequest, rng *rand.Rand) writev2.Request {
	st := writev2.NewSymbolTable()
	refs := func(ls []prompb.Label) []uint32 {
		var out []uint32
		for _, l := range ls {
			out = append(out, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		return out
	}
	var out writev2.Request
	for _, ts := range req.Timeseries {
		s := writev2.TimeSeries{LabelsRefs: refs(ts.Labels)}
		for _, smp := range ts.Samples {
			s.Samples = append(s.Samples, writev2.Sample{Value: smp.Value, Timestamp: smp.Timestamp})
		}
		for _, h := range ts.Histograms {
			b, _ := h.Marshal()
			var v2 writev2.Histogram
			if err := v2.Unmarshal(b); err != nil {
				panic(err)
			}
			s.Histograms = append(s.Histograms, v2)
		}
		for _, ex := range ts.Exemplars {
			s.Exemplars = append(s.Exemplars, writev2.Exemplar{LabelsRefs: refs(ex.Labels), Value: ex.Value, Timestamp: ex.Timestamp})
		}
		if rng.IntN(3) == 0 {
			s.Metadata = writev2.Metadata{Type: writev2.Metadata_MetricType(rng.IntN(8)),
				HelpRef: st.Symbolize(fmt.Sprintf("help %d", rng.IntN(4))), UnitRef: st.Symbolize([]string{"", "seconds", "bytes"}[rng.IntN(3)])}
		}
		if rng.IntN(4) == 0 {
			s.CreatedTimestamp = rng.Int64N(1 << 42)
		}
		out.Timeseries = append(out.Timeseries, s)
	}
	out.Symbols = st.Symbols()
	return out
}

func TestDecoderV2MatchesReferenceOnGeneratedRequests(t *testing.T) {
	d := NewDecoder(0)
	var got prompb.WriteRequest // reused throughout, like the handler does
	for seed := range uint64(600) {
		orig := newRequestGenerator(seed).request()
		v2 := toV2(&orig, rand.New(rand.NewPCG(seed, 7)))
		data, err := v2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		checkV2AgainstReference(t, d, data, &got)
		// Every decoded series has the original's labels (gogo's Marshal turns -0 into 0,
		// so values are compared with the reference above, not here).
		if len(got.Timeseries) != len(orig.Timeseries) {
			t.Fatalf("seed %d: %d series, want %d", seed, len(got.Timeseries), len(orig.Timeseries))
		}
		for i := range orig.Timeseries {
			if diff := diffRequests(orig.Timeseries[i].Labels, got.Timeseries[i].Labels); diff != "" {
				t.Fatalf("seed %d: series %d: labels differ from the 1.0 original: %s", seed, i, diff)
			}
		}
	}
}

// Hand-made 2.0 bodies: a symbol table and series in raw protobuf.
func v2Body(symbols []string, series ...[]byte) []byte {
	var b []byte
	for _, s := range symbols {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	for _, s := range series {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, s)
	}
	return b
}

func v2Series(refs []uint32, fields ...[]byte) []byte {
	var packed []byte
	for _, r := range refs {
		packed = protowire.AppendVarint(packed, uint64(r))
	}
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, packed)
	return cat(append([][]byte{b}, fields...)...)
}

func v2Sample(v float64, t int64) []byte {
	return lenPrefixed(2, cat(tag(1, protowire.Fixed64Type), fixed64(v), tag(2, protowire.VarintType), varintBytes(uint64(t))))
}

func TestDecoderV2RefusesBrokenSymbolReferences(t *testing.T) {
	syms := []string{"", "__name__", "up", "job", "a"}
	tests := []struct {
		name, want string
		body       []byte
	}{
		{"first_symbol_not_empty", "the first symbol is \"__name__\"", v2Body([]string{"__name__", "up"}, v2Series([]uint32{0, 1}, v2Sample(1, 1)))},
		{"label_ref_out_of_range", "label reference 9 out of a symbol table of 5", v2Body(syms, v2Series([]uint32{1, 2, 3, 9}, v2Sample(1, 1)))},
		{"odd_label_refs", "3 label references; they come in name, value pairs", v2Body(syms, v2Series([]uint32{1, 2, 3}, v2Sample(1, 1)))},
		{"refs_without_symbols", "label reference 2 out of a symbol table of 0", v2Body(nil, v2Series([]uint32{1, 2}, v2Sample(1, 1)))},
		{"metadata_ref_out_of_range", "metadata reference out of a symbol table of 5", v2Body(syms, v2Series([]uint32{1, 2},
			v2Sample(1, 1), lenPrefixed(5, cat(tag(1, protowire.VarintType), varintBytes(1), tag(3, protowire.VarintType), varintBytes(77)))))},
		{"exemplar_ref_out_of_range", "exemplar label reference out of a symbol table of 5", v2Body(syms, v2Series([]uint32{1, 2},
			v2Sample(1, 1), lenPrefixed(4, cat(tag(1, protowire.BytesType), protowire.AppendBytes(nil, []byte{3, 40})))))},
	}
	d := NewDecoder(0)
	var got prompb.WriteRequest
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.UnmarshalV2(tt.body, &got)
			if !errors.Is(err, ErrMalformedRequest) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrMalformedRequest with %q", err, tt.want)
			}
			checkV2AgainstReference(t, d, tt.body, &got)
		})
	}
}

func TestDecoderV2LabelFacts(t *testing.T) {
	d := NewDecoder(0)
	var got prompb.WriteRequest
	body := v2Body([]string{"", "__name__", "up", "job", "api", "zone", "é", "a"},
		v2Series([]uint32{1, 2, 3, 4}, v2Sample(1, 1)),       // plain
		v2Series([]uint32{3, 4, 1, 2}, v2Sample(1, 1)),       // names out of order
		v2Series([]uint32{1, 2, 5, 6}, v2Sample(1, 1)),       // a value not ASCII
		v2Series([]uint32{1, 2, 5, 0}, v2Sample(1, 1)),       // an empty value
		v2Series([]uint32{3, 4}, v2Sample(1, 1)),             // no __name__
		v2Series([]uint32{1, 2, 3, 4, 3, 7}, v2Sample(1, 1)), // a duplicate name
	)
	if err := d.UnmarshalV2(body, &got); err != nil {
		t.Fatal(err)
	}
	want := []bool{true, false, false, false, false, false}
	for i, w := range want {
		if d.facts[i].plain != w {
			t.Errorf("series %d (%v): plain %v, want %v", i, got.Timeseries[i].Labels, d.facts[i].plain, w)
		}
	}
	// Whatever the facts, validation with them agrees with validation without.
	agreeOnValidation(t, d, &got, DefaultLimits())
}

func TestDecoderV2SymbolTableAfterTheSeries(t *testing.T) {
	// Encoders write the table first; a table written after its series is read in a
	// second pass, with the same result.
	syms := []string{"", "__name__", "up", "job", "api"}
	series := v2Series([]uint32{1, 2, 3, 4}, v2Sample(1, 1))
	late := cat(lenPrefixed(5, series), v2Body(syms))
	d := NewDecoder(0)
	var got prompb.WriteRequest
	if err := d.UnmarshalV2(late, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Timeseries) != 1 || describeSeries(got.Timeseries[0].Labels) != `{__name__="up", job="api"}` {
		t.Errorf("decoded %v", got.Timeseries)
	}
	checkV2AgainstReference(t, d, late, &got)
	// Half the table before, half after.
	split := cat(v2Body(syms[:2]), lenPrefixed(5, series), v2Body(syms[2:]))
	checkV2AgainstReference(t, d, split, &got)
	if len(got.Timeseries) != 1 {
		t.Errorf("split table: decoded %v", got.Timeseries)
	}
}
