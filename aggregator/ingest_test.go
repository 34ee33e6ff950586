package aggregator

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// TestSeriesHashes pins what the two hashes of an input series identify: the output hash
// only the kept labels, the input hash every label, with names and values delimited so that
// moving bytes between them or between the kept and dropped parts changes the hash.
func TestSeriesHashes(t *testing.T) {
	r, err := newRuleState(counterRule("m")) // drops instance and pod
	if err != nil {
		t.Fatal(err)
	}
	lbls := func(pairs ...string) []prompb.Label {
		var out []prompb.Label
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, prompb.Label{Name: pairs[i], Value: pairs[i+1]})
		}
		return out
	}
	hashes := func(ls []prompb.Label) (in, out uint64) {
		in, out, _, _ = r.seriesHashes(nil, nil, ls)
		return in, out
	}
	base := lbls(rules.MetricNameLabel, "m", "instance", "a", "job", "j", "pod", "p1")
	in0, out0 := hashes(base)

	for _, c := range []struct {
		name      string
		labels    []prompb.Label
		sameOut   bool
		sameInput bool
	}{
		{"same labels", lbls(rules.MetricNameLabel, "m", "instance", "a", "job", "j", "pod", "p1"), true, true},
		{"other pod", lbls(rules.MetricNameLabel, "m", "instance", "a", "job", "j", "pod", "p2"), true, false},
		{"pod missing", lbls(rules.MetricNameLabel, "m", "instance", "a", "job", "j"), true, false},
		{"other job", lbls(rules.MetricNameLabel, "m", "instance", "a", "job", "k", "pod", "p1"), false, false},
		{"bytes moved from value to name", lbls(rules.MetricNameLabel, "m", "instance", "a", "jobj", "", "pod", "p1"), false, false},
		{"dropped values swapped", lbls(rules.MetricNameLabel, "m", "instance", "p1", "job", "j", "pod", "a"), true, false},
	} {
		in, out := hashes(c.labels)
		if (out == out0) != c.sameOut || (in == in0) != c.sameInput {
			t.Errorf("%s: same output hash %v (want %v), same input hash %v (want %v)", c.name, out == out0, c.sameOut, in == in0, c.sameInput)
		}
	}

	// The same input under a rule keeping other labels is a different output, and its input
	// hash stays unique among that rule's inputs.
	keep := counterRule("m")
	keep.ByMode, keep.By, keep.Without = true, []string{"pod"}, nil
	rk, err := newRuleState(keep)
	if err != nil {
		t.Fatal(err)
	}
	inK1, outK1, _, _ := rk.seriesHashes(nil, nil, base)
	inK2, outK2, _, _ := rk.seriesHashes(nil, nil, lbls(rules.MetricNameLabel, "m", "instance", "b", "job", "j", "pod", "p1"))
	if outK1 != outK2 || inK1 == inK2 {
		t.Errorf("keep_labels [pod]: same output %v (want true), same input %v (want false)", outK1 == outK2, inK1 == inK2)
	}
}
