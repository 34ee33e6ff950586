package router

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/downstream"
)

// markRetention is how far behind a downstream's newest acknowledged timestamp a series'
// mark may fall before a checkpoint forgets it: the series has not been written for that
// long, so nothing a restart sends again is that old.
const markRetention = time.Hour

// deliveryTracked is a sink that can be told what its downstream already has
// (downstream.RemoteWrite).
type deliveryTracked interface {
	TrackDelivery(downstream.Delivery)
}

// deliveryMarks is the downstream.Delivery of one remote-write downstream: per series (by
// downstream.SeriesHash) the newest timestamp the downstream acknowledged. Each acknowledged
// batch is logged as a recordDelivered; a checkpoint holds the marks, and Recover restores
// them and replays the records after it, so that a restarted cardinal does not send the
// samples the downstream already holds again, which Prometheus would refuse (an older
// sample than the newest of a series fails the whole request).
type deliveryMarks struct {
	sink string
	log  interface {
		Append(ctx context.Context, payload []byte) (uint64, error)
	}

	mu    sync.Mutex
	marks map[uint64]int64

	recMu      sync.Mutex // guards the scratch space of Delivered
	rec        []byte
	hashes     []uint64
	timestamps []int64
}

// Marks implements downstream.Delivery.
func (d *deliveryMarks) Marks(hashes []uint64, marks []int64) {
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

// Delivered implements downstream.Delivery. The marks are raised before the record is
// appended, so that a checkpoint taken at a log position at or after the record holds them.
func (d *deliveryMarks) Delivered(series []prompb.TimeSeries, hashes []uint64) error {
	d.recMu.Lock()
	defer d.recMu.Unlock()
	d.hashes, d.timestamps = d.hashes[:0], d.timestamps[:0]
	for i := range series {
		if ts, ok := newestTimestamp(&series[i]); ok {
			d.hashes, d.timestamps = append(d.hashes, hashes[i]), append(d.timestamps, ts)
		}
	}
	d.mu.Lock()
	for i, h := range d.hashes {
		d.raise(h, d.timestamps[i])
	}
	d.mu.Unlock()
	d.rec = appendRecord(d.rec[:0], recordDelivered, nil)
	d.rec = appendDelivered(d.rec, d.sink, d.hashes, d.timestamps)
	_, err := d.log.Append(context.Background(), d.rec)
	return err
}

// raise sets the mark of h to ts unless it is newer already; d.mu is held.
func (d *deliveryMarks) raise(h uint64, ts int64) {
	if m, ok := d.marks[h]; !ok || ts > m {
		d.marks[h] = ts
	}
}

// snapshot forgets the marks more than markRetention behind the newest, except those of
// series in pending (what the downstream's queue holds, which may be sent again), and
// returns the rest.
func (d *deliveryMarks) snapshot(pending []prompb.TimeSeries) (hashes []uint64, timestamps []int64) {
	d.mu.Lock()
	newest := int64(math.MinInt64)
	for _, ts := range d.marks {
		newest = max(newest, ts)
	}
	cutoff := newest - markRetention.Milliseconds()
	var old []uint64
	for h, ts := range d.marks {
		if ts < cutoff {
			old = append(old, h)
		}
	}
	d.mu.Unlock()
	keep := map[uint64]bool{}
	if len(old) > 0 {
		for i := range pending {
			keep[downstream.SeriesHash(pending[i].Labels)] = true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range old {
		if !keep[h] && d.marks[h] < cutoff {
			delete(d.marks, h)
		}
	}
	hashes, timestamps = make([]uint64, 0, len(d.marks)), make([]int64, 0, len(d.marks))
	for h, ts := range d.marks {
		hashes = append(hashes, h)
		timestamps = append(timestamps, ts)
	}
	return hashes, timestamps
}

// newestTimestamp is the newest timestamp of a series' samples and histograms; ok is false
// when it has none.
func newestTimestamp(ts *prompb.TimeSeries) (newest int64, ok bool) {
	newest = math.MinInt64
	for _, s := range ts.Samples {
		newest = max(newest, s.Timestamp)
	}
	for _, h := range ts.Histograms {
		newest = max(newest, h.Timestamp)
	}
	return newest, len(ts.Samples)+len(ts.Histograms) > 0
}
