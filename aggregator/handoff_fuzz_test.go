package aggregator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// handoffBodies are handoffs a member with joinRules sends after a few steps: one of float
// outputs only (the first magic) and one with native histograms too (the second).
func handoffBodies(t testing.TB) [][]byte {
	var bodies [][]byte
	clk := &testClock{t: time.Unix(0, 0)}
	a := New(Options{Output: &collectSink{}, Now: clk.now, HandOff: func(h *Handoff) {
		floats := map[uint64]bool{}
		for _, o := range h.Outputs {
			floats[o.Key] = true
		}
		bodies = append(bodies,
			h.Encode(func(key uint64) bool { return floats[key] }),
			h.Encode(func(uint64) bool { return true }))
	}})
	if err := a.SetRules(joinRules()); err != nil {
		t.Fatal(err)
	}
	for step := range 4 {
		ts := float64(step*5 + 1)
		var all []prompb.TimeSeries
		for pod := range 3 {
			for job := range 4 {
				all = append(all, series(fmt.Sprintf("http_requests_total{job=j%d,pod=p%d}", job, pod), ts, float64(step+pod)))
			}
		}
		a.Ingest(append(all, nativeStep(step, ts)...))
		clk.t = time.Unix(int64(ts)+3, 0)
		a.Flush(false)
	}
	a.SetOwnership(parity{member: 1})
	a.HandOffNow()
	if len(bodies) == 0 {
		t.Fatal("nothing was handed off")
	}
	return bodies
}

// FuzzMerge feeds Merge what a peer could post: any body is merged or refused with an
// error, never a panic, and leaves the aggregator able to flush.
func FuzzMerge(f *testing.F) {
	for _, b := range handoffBodies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		clk := &testClock{t: time.Unix(100, 0)}
		a := New(Options{Output: &collectSink{}, Now: clk.now})
		if err := a.SetRules(joinRules()); err != nil {
			t.Fatal(err)
		}
		_, _ = a.Merge(b)
		clk.t = time.Unix(200, 0)
		a.Flush(false)
	})
}

// TestHandoffBodiesMerge checks that the fuzz seeds are real handoffs of both forms.
func TestHandoffBodiesMerge(t *testing.T) {
	var magics []string
	for _, b := range handoffBodies(t) {
		if b == nil {
			continue
		}
		magics = append(magics, string(b[:len(handoffMagic)]))
		a := New(Options{Output: &collectSink{}, Now: (&testClock{t: time.Unix(30, 0)}).now})
		if err := a.SetRules(joinRules()); err != nil {
			t.Fatal(err)
		}
		st, err := a.Merge(b)
		if err != nil || st.Outputs == 0 || st.Unknown != 0 {
			t.Errorf("merge of a %q handoff: %+v, %v", b[:len(handoffMagic)], st, err)
		}
	}
	if !slices.Contains(magics, handoffMagic) || !slices.Contains(magics, handoffMagicNative) {
		t.Errorf("handoffs opened with %q, want both forms", magics)
	}
}
