package timescale

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

func TestQueue(t *testing.T) {
	one := func() []prompb.TimeSeries { return syntheticSeries("m", 1, 0, 0) }
	perSeries := seriesBytes(&one()[0])

	t.Run("refuses_once_full_and_accepts_after_release", func(t *testing.T) {
		q := newQueue(2 * perSeries)
		for i := range 2 {
			if r := q.push(one()); r != pushed {
				t.Fatalf("push %d = %v, want pushed", i, r)
			}
		}
		if !q.full() {
			t.Fatal("full() = false at the bound")
		}
		// Past the soft bound what was acknowledged is still queued, up to the hard bound.
		for i := range 2 {
			if r := q.push(one()); r != pushed {
				t.Fatalf("push %d past the soft bound = %v, want pushed", i, r)
			}
		}
		if r := q.push(one()); r != pushFull {
			t.Fatalf("push over the hard bound = %v, want pushFull", r)
		}
		for range 2 {
			q.pop(nil, 1)
		}
		got, bytes := q.pop(nil, 1)
		if len(got) != 1 || bytes != perSeries {
			t.Fatalf("pop = %d series, %d bytes; want 1, %d", len(got), bytes, perSeries)
		}
		if !q.full() {
			t.Fatal("popping alone freed space: an in-flight batch must stay counted")
		}
		q.release(3 * perSeries)
		if q.full() {
			t.Fatal("still full after release")
		}
	})
	t.Run("pop_takes_up_to_batch_size_samples_across_sends", func(t *testing.T) {
		q := newQueue(1 << 20)
		q.push(syntheticSeries("a", 3, 0, 0))
		q.push(syntheticSeries("b", 3, 0, 0))
		got, _ := q.pop(nil, 4)
		if len(got) != 4 {
			t.Fatalf("pop(4) = %d series, want 4", len(got))
		}
		if got[3].Labels[0].Value != "b" {
			t.Errorf("fourth series from %q, want the second send", got[3].Labels[0].Value)
		}
		if n := q.queuedSeries(); n != 2 {
			t.Errorf("queued after pop = %d, want 2", n)
		}
	})
	t.Run("oversized_series_still_popped", func(t *testing.T) {
		q := newQueue(1 << 20)
		s := syntheticSeries("a", 1, 0, 0)
		s[0].Samples = make([]prompb.Sample, 10)
		q.push(s)
		if got, _ := q.pop(nil, 5); len(got) != 1 {
			t.Fatalf("pop = %d series, want the one series bigger than the batch", len(got))
		}
	})
	t.Run("pop_leaves_the_pushed_slice_alone", func(t *testing.T) {
		q := newQueue(1 << 20)
		s := syntheticSeries("a", 2, 0, 0)
		q.push(s)
		q.pop(nil, 2)
		for i := range s {
			if len(s[i].Labels) == 0 || len(s[i].Samples) == 0 {
				t.Fatalf("series %d cleared by pop: other downstreams may still read it", i)
			}
		}
	})
	t.Run("closed_refuses", func(t *testing.T) {
		q := newQueue(1 << 20)
		q.close()
		if r := q.push(one()); r != pushClosed {
			t.Fatalf("push after close = %v, want pushClosed", r)
		}
	})
}
