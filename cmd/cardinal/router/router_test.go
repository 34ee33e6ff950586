package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/rules"
	"github.com/cardinal-proxy/cardinal/wal"
)

// memorySink records what it is sent, and holds it as pending until taken, like a queue
// whose downstream is down.
type memorySink struct {
	mu      sync.Mutex
	pending []prompb.TimeSeries
	full    bool
}

func (s *memorySink) Send(series []prompb.TimeSeries) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, series...)
}
func (s *memorySink) Full() bool                     { return s.full }
func (s *memorySink) Start()                         {}
func (s *memorySink) Shutdown(context.Context) error { return nil }
func (s *memorySink) Pending() []prompb.TimeSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pending)
}

// points renders what a sink holds as "t=v" of the one output series, in order.
func (s *memorySink) points() []string {
	var out []string
	for _, ts := range s.Pending() {
		for _, p := range ts.Samples {
			out = append(out, fmt.Sprintf("%d=%g", p.Timestamp/1000, p.Value))
		}
	}
	return out
}

func counter() *rules.Rule {
	return &rules.Rule{
		Name: "req_total", Type: rules.Counter, MetricNames: []string{"req_total"}, BaseName: "req_total",
		Without: []string{"pod"}, Outputs: []string{rules.OutputTotal},
		Interval: 10 * time.Second, FlushDelay: time.Second, Staleness: time.Minute, Fingerprint: 1,
	}
}

// node is one process: an aggregator, its sink, and a router over a WAL in dir.
type node struct {
	agg    *aggregator.Aggregator
	sink   *memorySink
	router *Router
	log    *wal.Log
	// recovered is what its Recover found.
	recovered RecoverStats
}

func start(t *testing.T, dir string, wall *time.Time) *node {
	t.Helper()
	return startWith(t, dir, wall, &memorySink{})
}

// startWith starts a node whose sink is sink (a *memorySink or a type embedding one).
func startWith(t *testing.T, dir string, wall *time.Time, sink downstream.Sink) *node {
	t.Helper()
	n := &node{}
	switch s := sink.(type) {
	case *memorySink:
		n.sink = s
	case *trackedSink:
		n.sink = &s.memorySink
	}
	fan := downstream.Fanout{{Name: "prom", Kind: "remote_write", Sink: sink}}
	n.agg = aggregator.New(aggregator.Options{Output: fan, Now: func() time.Time { return *wall }})
	if err := n.agg.SetRules([]*rules.Rule{counter()}); err != nil {
		t.Fatal(err)
	}
	cfg := wal.DefaultConfig()
	cfg.Dir, cfg.Fsync = dir, wal.FsyncAlways
	cfg.MaxBytes = setting.ByteSize(1 << 30)
	var err error
	if n.log, err = wal.Open(cfg, nil, nil); err != nil {
		t.Fatal(err)
	}
	n.router = New(Options{Aggregator: n.agg, Sinks: fan, WAL: n.log, Limits: remotewrite.DefaultLimits(), MaxRequestBytes: 32 << 20}, nil)
	if n.recovered, err = n.router.Recover(); err != nil {
		t.Fatal(err)
	}
	return n
}

// push appends one request with a sample at second ts for each pod, logging its body as
// the receiver would (or, with whole false, leaving the router to encode it).
func (n *node) push(t *testing.T, ts int64, whole bool, values map[string]float64) {
	t.Helper()
	req := &prompb.WriteRequest{}
	for _, pod := range slices.Sorted(func(yield func(string) bool) {
		for p := range values {
			if !yield(p) {
				return
			}
		}
	}) {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "req_total"}, {Name: "pod", Value: pod}},
			Samples: []prompb.Sample{{Timestamp: ts * 1000, Value: values[pod]}},
		})
	}
	var body []byte
	if whole {
		var enc remotewrite.Encoder
		b, err := enc.Encode(req.Timeseries)
		if err != nil {
			t.Fatal(err)
		}
		body = slices.Clone(b)
	}
	if err := n.router.Append(context.Background(), req, body); err != nil {
		t.Fatal(err)
	}
}

// crash abandons the node without a shutdown: nothing is flushed, checkpointed or closed
// beyond what the WAL already holds (the log's files are closed so the next node opens them).
func (n *node) crash() { _ = n.log.Close() }

// The same requests, with a crash (and a checkpoint) somewhere, give the same output as
// without: the restored state and the replayed log continue every counter exactly, a window
// the first process emitted but its sink had not delivered is delivered, and a window written
// again (replayed from before it was emitted) has the same value.
func TestCrashAnywhereGivesTheSameOutput(t *testing.T) {
	type step struct {
		ts     int64
		whole  bool
		values map[string]float64
	}
	steps := []step{
		{1, true, map[string]float64{"a": 1, "b": 10}},
		{6, false, map[string]float64{"a": 3, "b": 12}},
		{11, true, map[string]float64{"a": 4, "b": 2}}, // b resets
		{16, true, map[string]float64{"a": 9, "b": 5}},
		{21, false, map[string]float64{"a": 10, "b": 7}},
		{26, true, map[string]float64{"a": 15, "b": 8}},
		{31, true, map[string]float64{"a": 16, "b": 9}},
	}
	run := func(t *testing.T, crashAfter int, checkpointAt int) []string {
		dir := t.TempDir()
		wall := time.Unix(0, 0)
		n := start(t, dir, &wall)
		for i, s := range steps {
			wall = time.Unix(s.ts, 0)
			n.push(t, s.ts, s.whole, s.values)
			n.agg.Flush(false)
			if i == checkpointAt {
				if err := n.router.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			if i == crashAfter {
				n.crash()
				delivered := n.sink.points()
				n = start(t, dir, &wall)
				// What the first sink held came back from the checkpoint: delivered twice,
				// which a sink stores once. Keep one copy to compare.
				again := n.sink.points()
				if !slices.Equal(again, delivered[:len(again)]) {
					t.Fatalf("requeued %v, the first process had %v", again, delivered)
				}
				n.sink.pending = n.sink.pending[:0]
				n.sink.pending = append(n.sink.pending, toSeries(delivered)...)
			}
		}
		wall = time.Unix(60, 0)
		n.agg.Flush(false)
		return n.sink.points()
	}
	want := stored(t, run(t, -1, -1))
	if len(want) < 2 {
		t.Fatalf("the uninterrupted run emitted %v", want)
	}
	for crash := range steps {
		for _, cp := range []int{-1, 0, crash / 2, crash} {
			if cp > crash {
				continue
			}
			t.Run(fmt.Sprintf("crash_after_%d_checkpoint_at_%d", crash, cp), func(t *testing.T) {
				if got := stored(t, run(t, crash, cp)); !slices.Equal(got, want) {
					t.Errorf("got  %v\nwant %v", got, want)
				}
			})
		}
	}
}

// stored is what a downstream keeps of points written in this order: a point written again
// with the same value is kept once (Prometheus and the SQL sink both do so); one written again
// with another value is a failure, as Prometheus would refuse the batch.
func stored(t *testing.T, points []string) []string {
	t.Helper()
	seen := map[string]string{}
	var out []string
	for _, p := range points {
		ts, v, _ := strings.Cut(p, "=")
		if old, ok := seen[ts]; ok {
			if old != v {
				t.Errorf("timestamp %s written twice, with %s and %s", ts, old, v)
			}
			continue
		}
		seen[ts] = v
		out = append(out, p)
	}
	return out
}

// toSeries turns rendered points back into one series each, for re-filling a sink.
func toSeries(points []string) []prompb.TimeSeries {
	out := make([]prompb.TimeSeries, 0, len(points))
	for _, p := range points {
		var ts int64
		var v float64
		fmt.Sscanf(p, "%d=%g", &ts, &v)
		out = append(out, prompb.TimeSeries{Samples: []prompb.Sample{{Timestamp: ts * 1000, Value: v}}})
	}
	return out
}

func TestAFullLogIsA503(t *testing.T) {
	wall := time.Unix(0, 0)
	n := start(t, t.TempDir(), &wall)
	n.sink.full = true
	err := n.router.Append(context.Background(), &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{}}}, nil)
	if !errors.Is(err, remotewrite.ErrUnavailable) {
		t.Errorf("a full downstream: %v, want ErrUnavailable", err)
	}
	n.sink.full = false
	n.router.Stop()
	if err := n.router.Append(context.Background(), &prompb.WriteRequest{}, nil); !errors.Is(err, remotewrite.ErrUnavailable) {
		t.Errorf("while stopping: %v, want ErrUnavailable", err)
	}
}
