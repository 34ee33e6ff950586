package downstream

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

func TestDropDelivered(t *testing.T) {
	hist := func(ts int64) prompb.Histogram { return prompb.Histogram{Timestamp: ts} }
	tests := []struct {
		name        string
		series      prompb.TimeSeries
		mark        int64
		wantSamples []int64 // float then histogram timestamps kept; nil: series left out
		wantDropped int
	}{
		{"never_delivered_is_sent", prompb.TimeSeries{Samples: []prompb.Sample{{Timestamp: 5}}}, math.MinInt64, []int64{5}, 0},
		{"newer_than_mark_is_sent", prompb.TimeSeries{Samples: []prompb.Sample{{Timestamp: 5}}}, 4, []int64{5}, 0},
		{"at_mark_is_left_out", prompb.TimeSeries{Samples: []prompb.Sample{{Timestamp: 5}}}, 5, nil, 1},
		{"before_mark_is_left_out", prompb.TimeSeries{Samples: []prompb.Sample{{Timestamp: 5}}}, 9, nil, 1},
		{"older_samples_of_a_series_are_cut", prompb.TimeSeries{Samples: []prompb.Sample{{Timestamp: 3}, {Timestamp: 5}, {Timestamp: 7}}}, 5, []int64{7}, 2},
		{"histograms_too", prompb.TimeSeries{Histograms: []prompb.Histogram{hist(3), hist(6)}}, 5, []int64{6}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.series.Labels = labels("__name__", "x")
			orig := slices.Clone(tt.series.Samples)
			batch := Batch{Series: []prompb.TimeSeries{tt.series}, Hashes: []uint64{42}}
			out, hashes, dropped := dropDelivered(nil, nil, batch, []int64{tt.mark})
			if dropped != tt.wantDropped {
				t.Errorf("dropped %d, want %d", dropped, tt.wantDropped)
			}
			if tt.wantSamples == nil {
				if len(out) != 0 {
					t.Errorf("kept %+v, want it left out", out)
				}
				return
			}
			if len(out) != 1 || !slices.Equal(hashes, []uint64{42}) {
				t.Fatalf("kept %d series with hashes %v, want 1 with [42]", len(out), hashes)
			}
			var got []int64
			for _, s := range out[0].Samples {
				got = append(got, s.Timestamp)
			}
			for _, h := range out[0].Histograms {
				got = append(got, h.Timestamp)
			}
			if !slices.Equal(got, tt.wantSamples) {
				t.Errorf("kept timestamps %v, want %v", got, tt.wantSamples)
			}
			if !reflect.DeepEqual(tt.series.Samples, orig) {
				t.Error("the queued series was modified: other sinks share it")
			}
		})
	}
}

// fakeDelivery is a Delivery in memory whose first failures Delivered returns.
type fakeDelivery struct {
	mu        sync.Mutex
	marks     map[uint64]int64
	failures  int
	delivered [][]string // "name@ts" per noted batch
}

func (d *fakeDelivery) Marks(hashes []uint64, marks []int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, h := range hashes {
		m, ok := d.marks[h]
		if !ok {
			m = math.MinInt64
		}
		marks[i] = m
	}
}

func (d *fakeDelivery) Delivered(series []prompb.TimeSeries, hashes []uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failures > 0 {
		d.failures--
		return errors.New("disk full")
	}
	var batch []string
	for i, ts := range series {
		if hashes[i] != SeriesHash(ts.Labels) {
			panic("hash of another series")
		}
		for _, s := range ts.Samples {
			batch = append(batch, fmt.Sprintf("%s@%d", ts.Labels[0].Value, s.Timestamp))
			d.marks[hashes[i]] = max(d.marks[hashes[i]], s.Timestamp)
		}
	}
	d.delivered = append(d.delivered, batch)
	return nil
}

// A sink tracking delivery never sends what the receiver acknowledged before (as after a
// restart that queues it again), notes every acknowledged batch, and retries a note that
// failed before it sends the next batch.
func TestRemoteWriteLeavesOutWhatWasDelivered(t *testing.T) {
	down := newTestDownstream(t, nil)
	cfg := testConfig(down.url())
	cfg.Queue.MaxSamplesPerSend, cfg.Queue.Shards = 100, 1
	reg := prometheus.NewRegistry()
	c := newTestClient(t, cfg, reg)
	a, b := seriesBatch(2, 10), seriesBatch(2, 20)
	d := &fakeDelivery{failures: 2, marks: map[uint64]int64{
		SeriesHash(a[0].Labels): 10, // s0 was delivered at 10: its resend is left out
		SeriesHash(a[1].Labels): 5,
	}}
	c.TrackDelivery(d)
	c.Send(a)
	c.Send(b)
	c.Start()
	eventually(t, 10*time.Second, "both batches noted", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.delivered) == 2
	})
	d.mu.Lock()
	got := d.delivered
	d.mu.Unlock()
	want := [][]string{{"s1@10"}, {"s0@20", "s1@20"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("noted %v, want %v", got, want)
	}
	if n := down.acceptedSamples(); n != 3 {
		t.Errorf("the receiver got %d samples, want 3 (s0@10 was delivered before)", n)
	}
	if v := metricValue(t, reg, "cardinal_downstream_samples_already_delivered_total", nil); v != 1 {
		t.Errorf("already delivered counter %v, want 1", v)
	}
}
