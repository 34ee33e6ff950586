package aggregator

import (
	"bytes"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
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
// error, never a panic nor a hang, and leaves the aggregator able to flush; a body merged
// into the empty aggregator, Forget drops whole. A Merge and
// Flush that do not return in 3 s fail (and are saved), rather than stall the fuzzer: the
// saved inputs include a NaN zero threshold, which made adding histograms loop for ever.
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
		done := make(chan string, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- fmt.Sprint("panic: ", p, "\n", string(debug.Stack()))
				}
			}()
			if legacy, changed := LegacyHandoff(b); changed {
				if _, again := LegacyHandoff(legacy); again {
					panic("LegacyHandoff left a first sample that counts")
				}
			}
			if _, err := a.Merge(b); err == nil {
				// What a body merged into an empty aggregator, forgetting it drops, all of it.
				if _, err := a.Forget(b); err != nil {
					panic(fmt.Sprint("Forget refused a body Merge took: ", err))
				}
				for _, st := range a.Stats() {
					if st.InputSeries != 0 || st.OutputSeries != 0 {
						panic(fmt.Sprintf("after Forget rule %s holds %d inputs and %d outputs", st.Name, st.InputSeries, st.OutputSeries))
					}
				}
			}
			clk.t = time.Unix(200, 0)
			a.Flush(false)
			done <- ""
		}()
		select {
		case s := <-done:
			if s != "" {
				t.Fatal(s)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("Merge and Flush did not return in 3 s")
		}
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

// TestHandoffMergedOnceAcrossARestart: a handoff sent again (its answer lost) is merged
// once, also by a member restarted from a checkpoint taken after the merge; the same body
// under another id would count twice, which the check prevents.
func TestHandoffMergedOnceAcrossARestart(t *testing.T) {
	bodies := handoffBodies(t)
	body := bodies[len(bodies)-1] // the whole handoff, native outputs too
	newMember := func() (*Aggregator, *collectSink, *testClock) {
		clk := &testClock{t: time.Unix(30, 0)}
		out := &collectSink{}
		a := New(Options{Output: out, Now: clk.now})
		if err := a.SetRules(joinRules()); err != nil {
			t.Fatal(err)
		}
		return a, out, clk
	}
	b, bOut, bClk := newMember()
	if st, already, err := b.MergeOnce("a/1", body); err != nil || already || st.Outputs == 0 {
		t.Fatalf("first merge: %+v, already %v, %v", st, already, err)
	}
	if _, already, err := b.MergeOnce("a/1", body); err != nil || !already {
		t.Fatalf("second delivery: already %v, %v; want it recognised", already, err)
	}
	var ckpt bytes.Buffer
	if err := b.Checkpoint(&ckpt); err != nil {
		t.Fatal(err)
	}
	restored := func() (*Aggregator, *collectSink, *testClock) {
		c, out, clk := newMember()
		if _, err := c.Restore(bytes.NewReader(ckpt.Bytes())); err != nil {
			t.Fatal(err)
		}
		return c, out, clk
	}
	c, cOut, cClk := restored()
	if _, already, err := c.MergeOnce("a/1", body); err != nil || !already {
		t.Fatalf("after a restart: already %v, %v; want it recognised", already, err)
	}
	d, dOut, dClk := restored()
	if _, already, err := d.MergeOnce("a/2", body); err != nil || already {
		t.Fatalf("another id: already %v, %v", already, err)
	}
	for _, m := range []struct {
		a   *Aggregator
		clk *testClock
	}{{b, bClk}, {c, cClk}, {d, dClk}} {
		m.clk.t = time.Unix(100, 0)
		m.a.Flush(false)
	}
	got, want := append(cOut.points(), cOut.nativePoints()...), append(bOut.points(), bOut.nativePoints()...)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("restarted member emitted %d points, the one that merged once %d:\n%s", len(got), len(want), strings.Join(diff(got, want), "\n"))
	}
	if twice := append(dOut.points(), dOut.nativePoints()...); slices.Equal(twice, want) {
		t.Error("merging the handoff twice changed nothing: the test cannot tell once from twice")
	}
}
