package downstream

import (
	"fmt"
	"reflect"
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
			q := NewQueue(1<<30, 1)
			q.Push(tt.queued)
			var names [][]string
			var units []int
			var timestamps []int64
			for q.Pending(0) > 0 {
				batch := q.Take(0, nil, tt.max)
				var bn []string
				u := 0
				for _, ts := range batch.Series {
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
				q.Release(batch)
			}
			if !reflect.DeepEqual(names, tt.wantNames) {
				t.Errorf("batches %v, want %v", names, tt.wantNames)
			}
			if !slices.Equal(units, tt.wantUnits) {
				t.Errorf("units per batch %v, want %v", units, tt.wantUnits)
			}
			if q.Bytes() != 0 || q.Series() != 0 {
				t.Errorf("after releasing every batch the queue counts %d bytes and %d series: the accounting leaks", q.Bytes(), q.Series())
			}
			if !slices.IsSorted(timestamps) {
				t.Errorf("split series out of order: %v", timestamps)
			}
		})
	}
}

// The overflow policy: Push queues past the bound, Full reports it, a taken batch counts
// until it is released, and only Close makes Push refuse.
func TestQueueOverflowPolicy(t *testing.T) {
	one := []prompb.TimeSeries{samplesSeries("a", 1)}
	perSeries := seriesBytes(&one[0])
	q := NewQueue(2*perSeries, 1)
	for i := range 2 {
		if q.Full() {
			t.Fatalf("Full with %d of 2 series queued", i)
		}
		q.Push(one)
	}
	if !q.Full() {
		t.Fatal("not Full at the bound")
	}
	for range 3 {
		if !q.Push(one) {
			t.Fatal("Push refused over the bound: acknowledged data must be queued")
		}
	}
	if q.Series() != 5 || q.Bytes() != 5*perSeries {
		t.Fatalf("queue holds %d series, %d bytes; want 5, %d", q.Series(), q.Bytes(), 5*perSeries)
	}
	batch := q.Take(0, nil, 4)
	if len(batch.Series) != 4 || batch.Samples() != 4 {
		t.Fatalf("Take(4) = %d series, %d samples; want 4, 4", len(batch.Series), batch.Samples())
	}
	if q.Bytes() != 5*perSeries {
		t.Fatal("taking freed space: a batch in flight must stay counted until Release")
	}
	q.Release(batch)
	if q.Full() || q.Bytes() != perSeries {
		t.Fatalf("after Release: Full %v, %d bytes; want false, %d", q.Full(), q.Bytes(), perSeries)
	}
	q.Close()
	if q.Push(one) {
		t.Fatal("Push accepted after Close")
	}
	if series, samples := q.DropAll(); series != 1 || samples != 1 || q.Bytes() != 0 || q.Series() != 0 {
		t.Errorf("DropAll = %d series, %d samples, leaving %d bytes, %d series; want 1, 1, 0, 0", series, samples, q.Bytes(), q.Series())
	}
}

// The fan-out hands the same series to every sink: queueing, taking (whole or split) and
// releasing them must leave the caller's slice and what it points to as they were.
func TestQueueNeverModifiesPushedSeries(t *testing.T) {
	series := []prompb.TimeSeries{samplesSeries("big", 10), samplesSeries("a", 2)}
	series[0].Exemplars = []prompb.Exemplar{{Labels: labels("trace_id", "t"), Value: 1}}
	series[0].Histograms = []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 3}, Timestamp: 11}}
	want := make([]prompb.TimeSeries, len(series))
	for i, ts := range series {
		want[i] = prompb.TimeSeries{
			Labels:     slices.Clone(ts.Labels),
			Samples:    slices.Clone(ts.Samples),
			Exemplars:  slices.Clone(ts.Exemplars),
			Histograms: slices.Clone(ts.Histograms),
		}
	}
	q := NewQueue(1<<30, 3)
	q.Push(series)
	for shard := range q.Shards() {
		for q.Pending(shard) > 0 {
			batch := q.Take(shard, nil, 3)
			for i := range batch.Series {
				// What a sender does with its batch: reuse the slice, clearing its own slots.
				batch.Series[i] = prompb.TimeSeries{}
			}
			q.Release(batch)
		}
	}
	if !reflect.DeepEqual(series, want) {
		t.Errorf("queued series changed:\n got %+v\nwant %+v", series, want)
	}
}

func TestQueueReusesTakenSpace(t *testing.T) {
	q := NewQueue(1<<30, 1)
	for round := range 1000 {
		q.Push([]prompb.TimeSeries{samplesSeries("a", 1), samplesSeries("b", 1)})
		if batch := q.Take(0, nil, 1); len(batch.Series) != 1 {
			t.Fatalf("round %d: took %d series", round, len(batch.Series))
		}
	}
	if q.Pending(0) != 1000 {
		t.Fatalf("pending %d, want 1000", q.Pending(0))
	}
	if c := cap(q.shards[0].items); c > 4096 {
		t.Errorf("queue of 1000 series grew to capacity %d", c)
	}
	series, samples := q.DropAll()
	if series != 1000 || samples != 1000 || q.Pending(0) != 0 {
		t.Errorf("DropAll = %d series, %d samples; pending after %d", series, samples, q.Pending(0))
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

// A checkpoint keeps what is being written as well as what waits, and nothing released.
func TestQueueSnapshotHoldsTakenAndQueuedSeries(t *testing.T) {
	q := NewQueue(1<<30, 1)
	q.Push([]prompb.TimeSeries{samplesSeries("a", 2), samplesSeries("b", 2), samplesSeries("c", 2)})
	names := func(series []prompb.TimeSeries) []string {
		var out []string
		for _, ts := range series {
			out = append(out, ts.Labels[0].Value)
		}
		return out
	}
	first := q.Take(0, nil, 2)
	second := q.Take(0, nil, 2)
	if got := names(q.Snapshot()); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("with a and b taken: snapshot %v, want a, b, c", got)
	}
	q.Release(first)
	if got := names(q.Snapshot()); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("a released: snapshot %v, want b, c", got)
	}
	q.Release(second)
	q.Release(q.Take(0, nil, 2))
	if got := q.Snapshot(); len(got) != 0 {
		t.Errorf("all released: snapshot %v", names(got))
	}
}

// point is one series at one timestamp: "name@ts".
func point(name string, ts int64) prompb.TimeSeries {
	return prompb.TimeSeries{Labels: labels("__name__", name), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}}
}

// TakeDistinct never puts two samples of a series in one batch, keeps each series' samples
// in order, fills batches past repeats, and accounts for every byte.
func TestQueueTakeDistinct(t *testing.T) {
	tests := []struct {
		name   string
		queued []prompb.TimeSeries
		max    int
		want   [][]string // "name@ts" per batch
	}{
		{"windows_closed_together_fill_batches_by_series",
			[]prompb.TimeSeries{point("a", 1), point("b", 1), point("a", 2), point("b", 2), point("c", 2), point("a", 3)}, 10,
			[][]string{{"a@1", "b@1", "c@2"}, {"a@2", "b@2"}, {"a@3"}}},
		{"batch_limit_still_holds", []prompb.TimeSeries{point("a", 1), point("b", 1), point("c", 1), point("a", 2)}, 2,
			[][]string{{"a@1", "b@1"}, {"c@1", "a@2"}}},
		{"multi_sample_series_is_split_one_sample_per_batch",
			[]prompb.TimeSeries{samplesSeries("m", 3), point("b", 1), point("m", 3)}, 10,
			[][]string{{"m@0", "b@1"}, {"m@1"}, {"m@2"}, {"m@3"}}},
		{"repeats_looked_past_are_bounded_by_the_batch_limit",
			[]prompb.TimeSeries{point("a", 1), point("a", 2), point("a", 3), point("a", 4), point("b", 1)}, 2,
			[][]string{{"a@1"}, {"a@2", "b@1"}, {"a@3"}, {"a@4"}}},
		{"series_with_labels_in_another_order_is_the_same",
			[]prompb.TimeSeries{{Labels: labels("__name__", "x", "y", "2"), Samples: []prompb.Sample{{Timestamp: 1}}},
				{Labels: labels("y", "2", "__name__", "x"), Samples: []prompb.Sample{{Timestamp: 2}}}}, 10,
			[][]string{{"x@1"}, {"x@2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQueue(1<<30, 1)
			q.Push(tt.queued)
			var got [][]string
			var hashes []uint64
			for q.Pending(0) > 0 {
				batch := q.TakeDistinct(0, nil, hashes, tt.max)
				var bn []string
				for i, ts := range batch.Series {
					if batch.Hashes[i] != SeriesHash(ts.Labels) {
						t.Fatalf("hash %d of %v is not its SeriesHash", i, ts.Labels)
					}
					for _, s := range ts.Samples {
						bn = append(bn, fmt.Sprintf("%s@%d", nameOf(ts), s.Timestamp))
					}
				}
				if len(bn) > tt.max {
					t.Fatalf("batch %v over the limit %d", bn, tt.max)
				}
				got = append(got, bn)
				hashes = batch.Hashes
				q.Release(batch)
				if len(got) > 20 {
					t.Fatalf("no progress: %v", got)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("batches %v, want %v", got, tt.want)
			}
			if q.Bytes() != 0 || q.Series() != 0 {
				t.Errorf("after releasing every batch the queue counts %d bytes and %d series: the accounting leaks", q.Bytes(), q.Series())
			}
		})
	}
}

// A snapshot taken between TakeDistinct batches keeps every series' samples in order: what a
// checkpoint queues again leaves in the order it was first queued.
func TestQueueTakeDistinctSnapshotKeepsSeriesOrder(t *testing.T) {
	q := NewQueue(1<<30, 1)
	q.Push([]prompb.TimeSeries{point("a", 1), point("b", 1), point("a", 2), samplesSeries("m", 2), point("a", 3)})
	first := q.TakeDistinct(0, nil, nil, 10)
	second := q.TakeDistinct(0, nil, nil, 10)
	var got []string
	for _, ts := range q.Snapshot() {
		for _, s := range ts.Samples {
			got = append(got, fmt.Sprintf("%s@%d", ts.Labels[0].Value, s.Timestamp))
		}
	}
	// first: a@1 b@1 m@0; second: a@2 m@1; left: a@3.
	want := []string{"a@1", "b@1", "m@0", "a@2", "m@1", "a@3"}
	if !slices.Equal(got, want) {
		t.Errorf("snapshot %v, want %v", got, want)
	}
	q.Release(first)
	q.Release(second)
	q.Release(q.TakeDistinct(0, nil, nil, 10))
	if q.Bytes() != 0 || q.Series() != 0 || len(q.Snapshot()) != 0 {
		t.Errorf("all released: %d bytes, %d series, snapshot %d", q.Bytes(), q.Series(), len(q.Snapshot()))
	}
}

func nameOf(ts prompb.TimeSeries) string {
	for _, l := range ts.Labels {
		if l.Name == "__name__" {
			return l.Value
		}
	}
	return ""
}
