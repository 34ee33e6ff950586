package remotewrite

import (
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

func samplesSeries(name string, n int) prompb.TimeSeries {
	ts := prompb.TimeSeries{Labels: labels("__name__", name)}
	for i := range n {
		ts.Samples = append(ts.Samples, prompb.Sample{Value: float64(i), Timestamp: int64(i)})
	}
	return ts
}

func TestQueueTakeBatches(t *testing.T) {
	tests := []struct {
		name      string
		queued    []prompb.TimeSeries
		max       int
		wantNames [][]string // series names per batch
		wantUnits []int
	}{
		{"fills_batches_in_order", []prompb.TimeSeries{samplesSeries("a", 2), samplesSeries("b", 2), samplesSeries("c", 2)}, 4,
			[][]string{{"a", "b"}, {"c"}}, []int{4, 2}},
		{"series_that_does_not_fit_waits_for_next_batch", []prompb.TimeSeries{samplesSeries("a", 3), samplesSeries("b", 3)}, 4,
			[][]string{{"a"}, {"b"}}, []int{3, 3}},
		{"oversized_series_is_split_in_order", []prompb.TimeSeries{samplesSeries("big", 10), samplesSeries("z", 1)}, 4,
			[][]string{{"big"}, {"big"}, {"big", "z"}}, []int{4, 4, 3}},
		{"empty_series_count_as_one", []prompb.TimeSeries{{Labels: labels("__name__", "e1")}, {Labels: labels("__name__", "e2")}, {Labels: labels("__name__", "e3")}}, 2,
			[][]string{{"e1", "e2"}, {"e3"}}, []int{2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newSeriesQueue()
			var pushedBytes int64
			for _, ts := range tt.queued {
				pushedBytes += seriesBytes(&ts)
				q.push(ts)
			}
			var takenBytes int64
			var names [][]string
			var units []int
			var timestamps []int64
			entries := 0
			for q.size() > 0 {
				batch, n, b := q.take(nil, tt.max)
				takenBytes += b
				entries += n
				var bn []string
				u := 0
				for _, ts := range batch {
					bn = append(bn, ts.Labels[0].Value)
					u += sampleUnits(&ts)
					if ts.Labels[0].Value == "big" {
						for _, s := range ts.Samples {
							timestamps = append(timestamps, s.Timestamp)
						}
					}
				}
				names = append(names, bn)
				units = append(units, u)
			}
			if diff := diffRequests(tt.wantNames, names); diff != "" {
				t.Errorf("batches %v, want %v", names, tt.wantNames)
			}
			if !slices.Equal(units, tt.wantUnits) {
				t.Errorf("units per batch %v, want %v", units, tt.wantUnits)
			}
			if takenBytes != pushedBytes {
				t.Errorf("bytes taken %d, pushed %d: the accounting leaks", takenBytes, pushedBytes)
			}
			if entries != len(tt.queued) {
				t.Errorf("%d entries left the queue, want %d", entries, len(tt.queued))
			}
			if !slices.IsSorted(timestamps) {
				t.Errorf("split series out of order: %v", timestamps)
			}
		})
	}
}

func TestQueueReusesTakenSpace(t *testing.T) {
	q := newSeriesQueue()
	for round := range 1000 {
		q.push(samplesSeries("a", 1))
		q.push(samplesSeries("b", 1))
		if batch, _, _ := q.take(nil, 1); len(batch) != 1 {
			t.Fatalf("round %d: took %d series", round, len(batch))
		}
	}
	if q.size() != 1000 {
		t.Fatalf("size %d, want 1000", q.size())
	}
	if cap(q.items) > 4096 {
		t.Errorf("queue of 1000 series grew to capacity %d", cap(q.items))
	}
	entries, samples, _ := q.takeAll()
	if entries != 1000 || samples != 1000 || q.size() != 0 {
		t.Errorf("takeAll = %d entries, %d samples; size after %d", entries, samples, q.size())
	}
}

func TestShardOfIgnoresLabelOrderAndSpreads(t *testing.T) {
	a := labels("__name__", "up", "job", "x", "pod", "p1")
	b := labels("pod", "p1", "__name__", "up", "job", "x")
	if shardOf(a, 16) != shardOf(b, 16) {
		t.Error("the same series in another label order lands on another shard")
	}
	counts := make([]int, 4)
	for i := range 4000 {
		counts[shardOf(labels("__name__", "up", "pod", string(rune('a'+i%26))+string(rune(i))), 4)]++
	}
	for s, n := range counts {
		if n < 700 {
			t.Errorf("shard %d got %d of 4000 series", s, n)
		}
	}
}
