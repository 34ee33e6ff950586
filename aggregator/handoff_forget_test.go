package aggregator

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// outputOwner owns every output but those of job b.
type outputOwner struct{ b map[uint64]bool }

func (o outputOwner) Owns(key uint64) bool { return !o.b[key] }
func (outputOwner) Awaits(uint64) bool     { return false }

// TestForgetDropsWhatAHandoffNames: a member replaying its log from a checkpoint older than a
// handoff it took out rebuilds the handed-off outputs; Forget drops them (float and native,
// with their inputs) and nothing else, so that they are not handed off a second time, and
// refuses a body it cannot read without dropping anything.
func TestForgetDropsWhatAHandoffNames(t *testing.T) {
	rs := counterRules()
	in := func(ts, v float64) []prompb.TimeSeries {
		var out []prompb.TimeSeries
		for _, job := range []string{"a", "b"} {
			for _, pod := range []string{"p1", "p2"} {
				out = append(out, series("req{job="+job+",pod="+pod+"}", ts, v),
					nseries("nlat{job="+job+",pod="+pod+"}", at(ts, nh(0, v, 0, int64(v)))))
			}
		}
		return out
	}
	// The first process, and the one restored from the older checkpoint: fed the same.
	var bodies [][]byte
	first := New(Options{Output: &collectSink{}, HandOff: func(h *Handoff) {
		bodies = append(bodies, h.Encode(func(uint64) bool { return true }))
	}})
	restored, out, _, clk := newTestAggregator(t, 0, rs...)
	if err := first.SetRules(rs); err != nil {
		t.Fatal(err)
	}
	for _, ts := range []float64{1, 6} {
		first.Ingest(in(ts, ts))
		restored.Ingest(in(ts, ts))
	}
	// Job b's outputs, by placement key: a member that owns only job a's outputs hands them off.
	bKeys := map[uint64]bool{}
	for _, r := range first.rules {
		for s := range r.shards {
			for _, o := range r.shards[s].outputs {
				if o != nil && slices.ContainsFunc(o.labels[0], func(l prompb.Label) bool { return l.Value == "b" }) {
					bKeys[o.place] = true
				}
			}
			if ns := r.shards[s].native; ns != nil {
				for _, o := range ns.outputs {
					if slices.ContainsFunc(o.labels[0], func(l prompb.Label) bool { return l.Value == "b" }) {
						bKeys[o.place] = true
					}
				}
			}
		}
	}
	if len(bKeys) != 2 {
		t.Fatalf("job b has %d outputs, want 2 (a float and a native one)", len(bKeys))
	}
	first.SetOwnership(outputOwner{bKeys})
	first.HandOffNow()
	if len(bodies) != 1 {
		t.Fatalf("%d handoffs, want 1", len(bodies))
	}

	if n, err := restored.Forget([]byte("CRDLHOFF\x01garbage")); err == nil {
		t.Errorf("a body that cannot be read: forgot %d outputs, no error", n)
	}
	if n, err := restored.Forget(bodies[0]); err != nil || n != 2 {
		t.Fatalf("Forget: %d outputs, %v; want 2, nil", n, err)
	}
	// Nothing of job b is left to hand off, and the inputs that fed it are gone.
	restored.SetOwnership(outputOwner{bKeys})
	var again []*Handoff
	restored.opts.HandOff = func(h *Handoff) { again = append(again, h) }
	restored.HandOffNow()
	if len(again) != 0 {
		t.Errorf("after Forget the restored member hands off %d outputs again", again[0].Len())
	}
	inputs := 0
	for _, r := range restored.rules {
		inputs += int(r.inputs.Load())
	}
	if inputs != 4 {
		t.Errorf("%d input series left, want job a's 4", inputs)
	}
	// Job a's outputs go on as before.
	var jobA []prompb.TimeSeries
	for _, s := range in(11, 11) {
		if slices.ContainsFunc(s.Labels, func(l prompb.Label) bool { return l.Name == "job" && l.Value == "a" }) {
			jobA = append(jobA, s)
		}
	}
	restored.Ingest(jobA)
	flushAt(restored, clk, 13)
	flushAt(restored, clk, 23)
	if got, want := out.points(), []string{"req{job=a}@20=20"}; !slices.Equal(got, want) {
		t.Errorf("the restored member emits %v, want %v", got, want)
	}
	if got := out.nativePoints(); len(got) != 1 || !strings.Contains(got[0], "nlat{job=a}@20=") {
		t.Errorf("the restored member emits the native points %v, want job a's one at 20", got)
	}
}
