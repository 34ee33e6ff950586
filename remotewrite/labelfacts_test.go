package remotewrite

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// agreeOnValidation validates the request a Decoder just decoded twice, with the facts the
// Decoder gathered and without them (reading every label), and fails if the two disagree on
// any kept series or any error.
func agreeOnValidation(t *testing.T, d *Decoder, req *prompb.WriteRequest, limits Limits) {
	t.Helper()
	full := *req
	full.Timeseries = slices.Clone(req.Timeseries)
	for i := range full.Timeseries {
		full.Timeseries[i].Labels = slices.Clone(full.Timeseries[i].Labels)
	}
	var fastErrs, fullErrs []string
	_, fastSamples := removeInvalidSeries(req, limits, d.facts, func(err error) { fastErrs = append(fastErrs, err.Error()) })
	_, fullSamples := removeInvalidSeries(&full, limits, nil, func(err error) { fullErrs = append(fullErrs, err.Error()) })
	if want := CountSamples(full.Timeseries); fastSamples != want || fullSamples != want {
		t.Fatalf("validation counted %d samples with facts and %d without; the kept series have %d", fastSamples, fullSamples, want)
	}
	if diff := diffRequests(&full, req); diff != "" {
		t.Fatalf("validation with the decoder's facts keeps other series than without: %s", diff)
	}
	if !slices.Equal(fastErrs, fullErrs) {
		t.Fatalf("validation errors differ:\nwith facts:    %q\nwithout facts: %q", fastErrs, fullErrs)
	}
}

func TestLabelFactsAgreeWithValidation(t *testing.T) {
	limits := Limits{MaxLabelsPerSeries: 4, MaxLabelNameLength: 10, MaxLabelValueLength: 12}
	l := func(pairs ...string) []prompb.Label {
		var out []prompb.Label
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, prompb.Label{Name: pairs[i], Value: pairs[i+1]})
		}
		return out
	}
	cases := []struct {
		name   string
		labels []prompb.Label
		plain  bool // the facts alone should show it valid
	}{
		{"usual", l("__name__", "up", "job", "node"), true},
		{"same first byte", l("__name__", "up", "instance", "a", "job", "x", "jobs", "y"), true},
		{"unsorted", l("job", "node", "__name__", "up"), false},
		{"unsorted, same first byte", l("__name__", "up", "jobs", "y", "job", "x"), false},
		{"duplicate", l("__name__", "up", "job", "a", "job", "b"), false},
		{"empty value", l("__name__", "up", "env", "", "job", "a"), false},
		{"empty name", l("", "x", "__name__", "up"), false},
		{"no metric name", l("job", "a"), false},
		{"empty metric name", l("__name__", "", "job", "a"), false},
		{"non-ASCII value", l("__name__", "up", "job", "nœud"), false},
		{"non-ASCII name", l("__name__", "up", "jöb", "a"), false},
		{"invalid UTF-8", l("__name__", "up", "job", "\xff"), false},
		{"name at the limit", l("__name__", "up", "abcdefghij", "a"), true},
		{"name over the limit", l("__name__", "up", "abcdefghijk", "a"), true},
		{"value over the limit", l("__name__", "up", "job", "abcdefghijklm"), true},
		{"one label too many", l("__name__", "up", "a", "1", "b", "2", "c", "3", "d", "4"), true},
		{"labels cut by the decoder", l("__name__", "up", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"), false},
		{"long value, two-byte length", l("__name__", "up", "job", string(make([]byte, 200))), false},
	}
	var req prompb.WriteRequest
	for _, c := range cases {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: c.labels, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	}
	body, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(1 << 20)
	d.SetLimits(limits)
	var got prompb.WriteRequest
	if err := d.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	b := limits.bounds()
	for i, c := range cases {
		if fast := d.facts[i].plain; fast != c.plain {
			t.Errorf("%s: facts plain = %v, want %v", c.name, fast, c.plain)
		}
		if c.plain && !d.facts[i].within(len(got.Timeseries[i].Labels), b) && validateSeries(&got.Timeseries[i], b) == nil {
			t.Errorf("%s: valid, but the facts do not show it", c.name)
		}
	}
	agreeOnValidation(t, d, &got, limits)
}

// TestLabelFactsAgreeOnGeneratedRequests compares the two validation paths on generated
// requests (random label sets, unsorted and duplicated names among them) under default and
// tight limits.
func TestLabelFactsAgreeOnGeneratedRequests(t *testing.T) {
	for seed := range uint64(200) {
		req := newRequestGenerator(seed).request()
		for i := range req.Timeseries {
			if seed%2 == 0 {
				// Make half of the series look like real ones: a name, sorted.
				ts := &req.Timeseries[i]
				ts.Labels = append(ts.Labels, prompb.Label{Name: metricNameLabel, Value: fmt.Sprint("m", i)})
				slices.SortFunc(ts.Labels, func(a, b prompb.Label) int {
					if a.Name < b.Name {
						return -1
					}
					if a.Name > b.Name {
						return 1
					}
					return 0
				})
			}
		}
		body, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, limits := range []Limits{{}, {MaxLabelsPerSeries: 3, MaxLabelNameLength: 6, MaxLabelValueLength: 5}} {
			d := NewDecoder(1 << 20)
			d.SetLimits(limits)
			var got prompb.WriteRequest
			if err := d.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			agreeOnValidation(t, d, &got, limits)
		}
	}
}
