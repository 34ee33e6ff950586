package router

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/hashring"
)

// trackedSink is a memorySink that, like a remote-write sink, is given a Delivery.
type trackedSink struct {
	memorySink
	delivery downstream.Delivery
}

func (s *trackedSink) TrackDelivery(d downstream.Delivery) { s.delivery = d }

// deliver acknowledges the sink's points up to (and including) second upTo as a sender
// would, one batch per point.
func (s *trackedSink) deliver(t *testing.T, upTo int64) {
	t.Helper()
	for _, ts := range s.Pending() {
		if ts.Samples[0].Timestamp > upTo*1000 {
			continue
		}
		if err := s.delivery.Delivered([]prompb.TimeSeries{ts}, []uint64{downstream.SeriesHash(ts.Labels)}); err != nil {
			t.Fatal(err)
		}
	}
}

// unsent is what a sender would still send of what the sink holds: the points newer than
// their series' mark.
func (s *trackedSink) unsent() []string {
	var out []string
	for _, ts := range s.Pending() {
		marks := []int64{0}
		s.delivery.Marks([]uint64{downstream.SeriesHash(ts.Labels)}, marks)
		for _, p := range ts.Samples {
			if p.Timestamp > marks[0] {
				out = append(out, fmt.Sprintf("%d=%g", p.Timestamp/1000, p.Value))
			}
		}
	}
	return out
}

func startTracked(t *testing.T, dir string, wall *time.Time) (*node, *trackedSink) {
	t.Helper()
	sink := &trackedSink{}
	n := startWith(t, dir, wall, sink)
	if sink.delivery == nil {
		t.Fatal("the router gave the remote-write sink no Delivery")
	}
	return n, sink
}

// After a crash, what the old process's downstream acknowledged, before the checkpoint (in
// it) or after (in the log), is not sent again: neither the sinks' part of the checkpoint
// written after it nor the windows the replayed log closes again. Every window reaches the
// downstream exactly once.
func TestDeliveredOutputsAreNotSentAgainAfterACrash(t *testing.T) {
	for _, tt := range []struct{ checkpointAfter, deliveredUpTo, crashAfter int64 }{
		{11, 10, 26}, // delivered before the checkpoint, nothing after
		{11, 20, 26}, // the sink's part of the checkpoint delivered after it
		{6, 25, 31},  // windows closed and delivered after the checkpoint, replayed again
		{31, 0, 31},  // nothing delivered
	} {
		t.Run(fmt.Sprintf("checkpoint_at_%d_delivered_to_%d_crash_at_%d", tt.checkpointAfter, tt.deliveredUpTo, tt.crashAfter), func(t *testing.T) {
			dir := t.TempDir()
			wall := time.Unix(0, 0)
			n, sink := startTracked(t, dir, &wall)
			var written []string
			for ts := int64(1); ts <= tt.crashAfter; ts += 5 {
				wall = time.Unix(ts, 0)
				n.push(t, ts, true, map[string]float64{"a": float64(ts), "b": float64(2 * ts)})
				n.agg.Flush(false)
				if ts == tt.checkpointAfter {
					if err := n.router.Checkpoint(); err != nil {
						t.Fatal(err)
					}
				}
			}
			sink.deliver(t, tt.deliveredUpTo)
			written = append(written, slices.DeleteFunc(sink.points(), func(p string) bool {
				var s int64
				fmt.Sscanf(p, "%d=", &s)
				return s > tt.deliveredUpTo
			})...)
			n.crash()

			n, sink = startTracked(t, dir, &wall)
			wall = time.Unix(60, 0)
			n.agg.Flush(false)
			written = append(written, sink.unsent()...)

			seen := map[string]bool{}
			for _, p := range written {
				if seen[p] {
					t.Errorf("%s written twice: %v", p, written)
				}
				seen[p] = true
			}
			want := uninterrupted(t, tt.crashAfter)
			if !slices.Equal(written, want) {
				t.Errorf("written %v\nwant    %v", written, want)
			}
		})
	}
}

// uninterrupted is what the same requests give without a crash.
func uninterrupted(t *testing.T, last int64) []string {
	wall := time.Unix(0, 0)
	n := start(t, t.TempDir(), &wall)
	for ts := int64(1); ts <= last; ts += 5 {
		wall = time.Unix(ts, 0)
		n.push(t, ts, true, map[string]float64{"a": float64(ts), "b": float64(2 * ts)})
		n.agg.Flush(false)
	}
	wall = time.Unix(60, 0)
	n.agg.Flush(false)
	return n.sink.points()
}

func TestDeliveredRecordRoundTrip(t *testing.T) {
	hashes := []uint64{1, math.MaxUint64, 7}
	timestamps := []int64{1000, 1000, -5}
	rec := appendDelivered(nil, "prom", hashes, timestamps)
	var gotH []uint64
	var gotT []int64
	if err := parseDelivered(rec, func(sink string, h uint64, ts int64) {
		if sink != "prom" {
			t.Errorf("sink %q", sink)
		}
		gotH, gotT = append(gotH, h), append(gotT, ts)
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotH, hashes) || !slices.Equal(gotT, timestamps) {
		t.Errorf("read %v %v, want %v %v", gotH, gotT, hashes, timestamps)
	}
	if err := parseDelivered(rec[:len(rec)-1], func(string, uint64, int64) {}); err == nil {
		t.Error("a truncated record was read")
	}
}

// A checkpoint forgets the marks of series long behind the downstream's newest, unless the
// queue still holds the series (it may be sent again).
func TestCheckpointPrunesOldMarks(t *testing.T) {
	d := &deliveryMarks{marks: map[uint64]int64{}}
	hour := time.Hour.Milliseconds()
	queued := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "q"}}}
	qh := downstream.SeriesHash(queued.Labels)
	d.marks[1] = 10 * hour
	d.marks[2] = 9*hour + 1 // within the retention
	d.marks[3] = 9*hour - 1 // behind it
	d.marks[qh] = 1         // behind it, but queued
	hashes, _ := d.snapshot([]prompb.TimeSeries{queued})
	slices.Sort(hashes)
	want := []uint64{1, 2, qh}
	slices.Sort(want)
	if !slices.Equal(hashes, want) {
		t.Errorf("kept %v, want %v", hashes, want)
	}
}

// A checkpoint of version 1 (no marks), 2 (no handoffs) or 3 (no peer queue bodies) is
// still read.
func TestVersion1CheckpointIsRead(t *testing.T) {
	var buf bytes.Buffer
	if err := writePending(&buf, map[string][]prompb.TimeSeries{"prom": nil}, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	v3 := slices.Clone(buf.Bytes())
	v3[len(checkpointMagic)] = 3
	v3 = v3[:len(v3)-1] // no forward body count
	rc, err := readPending(bufio.NewReader(bytes.NewReader(v3)), func(string, uint64, int64) { t.Error("a mark in this checkpoint") })
	if err != nil || len(rc.sinks) != 1 || rc.handoffs != nil || rc.forward != nil {
		t.Errorf("version 3: readPending = %+v, %v", rc, err)
	}
	v2 := v3[:len(v3)-1] // no handoff count
	v2[len(checkpointMagic)] = 2
	rc, err = readPending(bufio.NewReader(bytes.NewReader(v2)), func(string, uint64, int64) { t.Error("a mark in this checkpoint") })
	if err != nil || len(rc.sinks) != 1 || rc.handoffs != nil {
		t.Errorf("version 2: readPending = %+v, %v", rc, err)
	}
	v1 := v2[:len(v2)-1] // no marks count
	v1[len(checkpointMagic)] = 1
	rc, err = readPending(bufio.NewReader(bytes.NewReader(v1)), func(string, uint64, int64) { t.Error("a mark in a version 1 checkpoint") })
	if err != nil || len(rc.sinks) != 1 || rc.handoffs != nil {
		t.Errorf("version 1: readPending = %+v, %v", rc, err)
	}
}

// Handoffs not yet delivered survive a checkpoint: peer, id and body, in order.
func TestCheckpointKeepsPendingHandoffs(t *testing.T) {
	want := []hashring.PendingHandoff{
		{Peer: "node-b", ID: "node-a/01", Body: []byte("CRDLHOFF\x01 state")},
		{Peer: "node-c", ID: "node-a/02", Body: bytes.Repeat([]byte{7}, 300)},
	}
	var buf bytes.Buffer
	forward := [][]byte{[]byte("a queue's first body"), bytes.Repeat([]byte{9}, 70000)}
	if err := writePending(&buf, map[string][]prompb.TimeSeries{"prom": nil}, nil, want, forward); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("the aggregator's state")
	br := bufio.NewReader(&buf)
	rc, err := readPending(br, func(string, uint64, int64) {})
	got := rc.handoffs
	if err != nil || len(got) != len(want) {
		t.Fatalf("readPending: %v handoffs, %v", got, err)
	}
	if !slices.EqualFunc(rc.forward, forward, bytes.Equal) {
		t.Errorf("read %d peer queue bodies, want the %d written, as they were", len(rc.forward), len(forward))
	}
	for i := range want {
		if got[i].Peer != want[i].Peer || got[i].ID != want[i].ID || !bytes.Equal(got[i].Body, want[i].Body) {
			t.Errorf("handoff %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if rest, _ := io.ReadAll(br); string(rest) != "the aggregator's state" {
		t.Errorf("left %q for the aggregator", rest)
	}
}

// A checkpoint of version 2 or 3 kept what the queues to peers held as a sink named
// forwardQueues: it is read as the peer queues' part, not as a downstream's.
func TestAVersion3CheckpointsPeerQueuesAreReadAsSuch(t *testing.T) {
	var buf bytes.Buffer
	held := []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "m"}}, Samples: []prompb.Sample{{Value: 1}}}}
	if err := writePending(&buf, map[string][]prompb.TimeSeries{"prom": nil, forwardQueues: held}, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	v3 := buf.Bytes()
	v3[len(checkpointMagic)] = 3
	v3 = v3[:len(v3)-1] // no forward body count
	rc, err := readPending(bufio.NewReader(bytes.NewReader(v3)), func(string, uint64, int64) {})
	if _, ok := rc.sinks[forwardQueues]; err != nil || ok || len(rc.sinks) != 1 || len(rc.forward) != 1 {
		t.Errorf("version 3: sinks %v, %d peer queue bodies, err %v; want prom alone and one body", slices.Collect(maps.Keys(rc.sinks)), len(rc.forward), err)
	}
}
