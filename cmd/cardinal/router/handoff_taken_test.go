package router

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/hashring"
	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/rules"
	"github.com/cardinal-proxy/cardinal/wal"
)

// handoffOwner is node-b, the new owner of the handoff tests: an aggregator behind a real
// handoff handler, which answers nothing while held (the sender's attempt times out).
type handoffOwner struct {
	agg    *aggregator.Aggregator
	sink   *memorySink
	merges atomic.Int32
	held   atomic.Bool
	srv    *httptest.Server
}

func newHandoffOwner(t *testing.T, now func() time.Time) *handoffOwner {
	t.Helper()
	o := &handoffOwner{sink: &memorySink{}}
	o.agg = aggregator.New(aggregator.Options{Output: downstream.Fanout{{Name: "prom", Kind: "remote_write", Sink: o.sink}}, Now: now})
	if err := o.agg.SetRules([]*rules.Rule{counter()}); err != nil {
		t.Fatal(err)
	}
	recv, err := hashring.NewForwarder("node-b", hashring.DefaultForwardConfig(), time.Minute, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	handler := recv.HandoffHandler(func(id string, body []byte) error {
		_, already, err := o.agg.MergeOnce(id, body)
		if err == nil && !already {
			o.merges.Add(1)
		}
		return err
	})
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.held.Load() {
			select { // the sender gives up on this attempt
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			http.Error(w, "held", http.StatusServiceUnavailable)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// peers is the ring's other member, this owner.
func (o *handoffOwner) peers() []hashring.Member {
	return []hashring.Member{{Name: "node-b", Addr: strings.TrimPrefix(o.srv.URL, "http://")}}
}

// handoffSender is node-a, the old owner: a member with a WAL in dir.
type handoffSender struct {
	agg  *aggregator.Aggregator
	sink *memorySink
	r    *Router
	log  *wal.Log
	fwd  *hashring.Forwarder
	st   RecoverStats
}

// startSender starts node-a on the WAL in dir and recovers it. left has it leave the ring
// first, so that node-b owns every output; otherwise it is alone and owns them all.
func startSender(t *testing.T, dir string, o *handoffOwner, now func() time.Time, handoffTimeout time.Duration, left bool) *handoffSender {
	t.Helper()
	s := &handoffSender{}
	var err error
	if s.fwd, err = hashring.NewForwarder("node-a", hashring.DefaultForwardConfig(), handoffTimeout, nil, nil); err != nil {
		t.Fatal(err)
	}
	s.sink = &memorySink{}
	s.agg = aggregator.New(aggregator.Options{Output: downstream.Fanout{{Name: "prom", Kind: "remote_write", Sink: s.sink}}, Now: now, HandOff: func(h *aggregator.Handoff) { s.fwd.SendHandoff(h) }})
	if err := s.agg.SetRules([]*rules.Rule{counter()}); err != nil {
		t.Fatal(err)
	}
	if left {
		s.leave(o)
	}
	s.agg.SetOwnership(s.fwd)
	cfg := wal.DefaultConfig()
	cfg.Dir, cfg.Fsync, cfg.MaxBytes = dir, wal.FsyncAlways, setting.ByteSize(1<<30)
	if s.log, err = wal.Open(cfg, nil, nil); err != nil {
		t.Fatal(err)
	}
	s.r = New(Options{Aggregator: s.agg, Sinks: downstream.Fanout{}, WAL: s.log, Cluster: s.fwd, Limits: remotewrite.DefaultLimits(), MaxRequestBytes: 32 << 20}, nil)
	s.fwd.OnHandoffTaken(s.r.HandoffTaken)
	s.fwd.OnHandoffEnded(s.r.HandoffEnded)
	if s.st, err = s.r.Recover(); err != nil {
		t.Fatal(err)
	}
	return s
}

// leave makes node-b own every output.
func (s *handoffSender) leave(o *handoffOwner) {
	s.fwd.SetMembers(o.peers())
	s.fwd.Leave(o.peers())
}

// counts gives the counter of pod a an increase of 7 in the window ending at 10 s.
func (s *handoffSender) counts(t *testing.T, ingest func([]prompb.TimeSeries)) {
	t.Helper()
	for i, v := range []float64{10, 17} {
		ingest([]prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "req_total"}, {Name: "pod", Value: "a"}},
			Samples: []prompb.Sample{{Timestamp: int64(1+i*5) * 1000, Value: v}},
		}})
	}
}

// waitDelivered waits until node-a has no handoff pending.
func (s *handoffSender) waitDelivered(t *testing.T, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(s.fwd.PendingHandoffs()) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%s: a handoff is still pending", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countedOnce fails unless the owner merged one handoff and emitted its increase once.
func (o *handoffOwner) countedOnce(t *testing.T, wall *time.Time) {
	t.Helper()
	*wall = time.Unix(60, 0)
	o.agg.Flush(false)
	if got := strings.Join(o.sink.points(), " "); o.merges.Load() != 1 || !strings.Contains(got, "10=7") {
		t.Errorf("the owner merged %d handoffs and emitted %q, want one and the handed-off increase once, 10=7", o.merges.Load(), got)
	}
}

// A member whose newest checkpoint is found corrupt at its restart falls back to the one
// before, and replays the log from there. When it took the state of outputs out for their
// new owner in between, the checkpoint it restores holds that state: the log's record of the
// handoff drops it again, so it is not handed off a second time under a new id (the owner
// counted 10=14), and the handoff itself is delivered again under its id unless the log says
// its owner answered it.
func TestAHandoffTakenOutSurvivesAFallbackToTheCheckpointBefore(t *testing.T) {
	for _, tt := range []struct {
		name      string
		delivered bool // before the crash
	}{
		{"delivered_before_the_crash", true},
		{"pending_at_the_crash", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wall := time.Unix(5, 0)
			now := func() time.Time { return wall }
			o := newHandoffOwner(t, now)
			o.held.Store(!tt.delivered)
			dir := t.TempDir()

			s := startSender(t, dir, o, now, 300*time.Millisecond, false)
			s.counts(t, func(series []prompb.TimeSeries) {
				if err := s.r.Append(t.Context(), &prompb.WriteRequest{Timeseries: series}, nil); err != nil {
					t.Fatal(err)
				}
			})
			if err := s.r.Checkpoint(); err != nil { // holds the output's state
				t.Fatal(err)
			}
			s.leave(o)
			s.agg.HandOffNow()
			if p := s.fwd.PendingHandoffs(); len(p) != 1 || p[0].Peer != "node-b" {
				t.Fatalf("pending after the handoff: %+v, want one to node-b", p)
			}
			// Delivered, or given up (the owner held): ended either way in this process.
			s.waitDelivered(t, "the first process")
			if err := s.r.Checkpoint(); err != nil { // no longer holds the state
				t.Fatal(err)
			}
			s.crash()
			if want := map[bool]int32{true: 1, false: 0}[tt.delivered]; o.merges.Load() != want {
				t.Fatalf("the owner merged %d handoffs before the crash, want %d", o.merges.Load(), want)
			}
			corruptNewestCheckpoint(t, dir)

			o.held.Store(false)
			s = startSender(t, dir, o, now, time.Minute, true)
			defer s.crash()
			if want := map[bool]int{true: 0, false: 1}[tt.delivered]; s.st.Handoffs != want {
				t.Errorf("the restart delivers %d handoffs again, want %d", s.st.Handoffs, want)
			}
			s.waitDelivered(t, "the restarted process")
			s.agg.HandOffNow() // what the replay left of the outputs node-b owns
			s.waitDelivered(t, "the restarted process's own handoff")
			o.countedOnce(t, &wall)
		})
	}
}

// crash abandons node-a: its log's files are closed, nothing else.
func (s *handoffSender) crash() { _ = s.log.Close() }

// What a member builds again for the outputs of a handoff after taking it out (a ring
// change gave them back before the handoff was delivered) is not the handoff's: the replay
// of the handoff's record must not drop it. The record is in the log before any request
// ingested after the state was taken out, however long its delivery waits to begin
// ("record_then_regain"). A checkpoint taken after the state was taken out holds the handoff
// pending; when the record is written after it ("checkpoint_regain_record": the log's queue
// was slow), the replay keeps what the records between rebuilt.
func TestWhatARingChangeGivesBackAfterAHandoffSurvivesARestart(t *testing.T) {
	for _, tt := range []struct {
		name string
		late bool // the record is written after the checkpoint and the regained samples
	}{
		{"record_then_regain", false},
		{"checkpoint_regain_record", true},
	} {
		t.Run(tt.name, func(t *testing.T) { regainAfterAHandoff(t, tt.late) })
	}
}

func regainAfterAHandoff(t *testing.T, late bool) {
	wall := time.Unix(5, 0)
	now := func() time.Time { return wall }
	o := newHandoffOwner(t, now)
	dir := t.TempDir()
	// node-b leaves the ring before the delivery begins: it is given up soon.
	s := startSender(t, dir, o, now, 300*time.Millisecond, false)
	gate := make(chan struct{})
	s.fwd.OnHandoffTaken(func(p hashring.PendingHandoff) func() error {
		if late {
			return func() error {
				<-gate
				return s.r.HandoffTaken(p)()
			}
		}
		durable := s.r.HandoffTaken(p)
		return func() error {
			<-gate // the delivery waits for a slot, or the disk
			return durable()
		}
	})
	push := func(ts int64, v float64) {
		var series []prompb.TimeSeries
		for _, job := range []string{"x", "y", "z"} {
			for _, pod := range []string{"p1", "p2"} {
				series = append(series, prompb.TimeSeries{
					Labels:  []prompb.Label{{Name: "__name__", Value: "req_total"}, {Name: "job", Value: job}, {Name: "pod", Value: pod}},
					Samples: []prompb.Sample{{Timestamp: ts * 1000, Value: v}},
				})
			}
		}
		if err := s.r.Append(t.Context(), &prompb.WriteRequest{Timeseries: series}, nil); err != nil {
			t.Fatal(err)
		}
	}
	state := func(a *aggregator.Aggregator) (inputs, outputs int64) {
		for _, st := range a.Stats() {
			inputs, outputs = inputs+st.InputSeries, outputs+st.OutputSeries
		}
		return inputs, outputs
	}
	// A checkpoint of the rule as it began (at 5 s), so that the restart at 60 s writes its
	// windows from there too.
	if err := s.r.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	push(1, 10)
	push(3, 12)
	s.leave(o)
	s.agg.HandOffNow()
	if in, out := state(s.agg); in != 0 || out != 0 {
		t.Fatalf("after the handoff node-a holds %d inputs and %d outputs, want none", in, out)
	}
	if late {
		if err := s.r.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	// The ring gives everything back to node-a, alone again, before the delivery begins.
	s.fwd.SetMembers(nil)
	push(5, 15)
	push(12, 20)
	in, out := state(s.agg)
	if in != 6 || out != 3 {
		t.Fatalf("node-a rebuilt %d inputs and %d outputs, want 6 and 3", in, out)
	}
	close(gate)
	s.waitDelivered(t, "the first process never gave up its delivery")
	wall = time.Unix(60, 0) // the regained outputs' wait for a handoff is over: they are written
	s.agg.Flush(false)
	live := s.sink.points()
	s.crash()

	s = startSender(t, dir, o, now, 300*time.Millisecond, false)
	defer s.crash()
	if gotIn, gotOut := state(s.agg); gotIn != in || gotOut != out {
		t.Errorf("after the restart node-a holds %d inputs and %d outputs, want what it held, %d and %d", gotIn, gotOut, in, out)
	}
	// A restart holds what it owns for a handoff up to the handoff timeout; past it, the
	// next window's flush writes it, and the windows before.
	s.fwd.Started()
	s.agg.Flush(false)
	time.Sleep(400 * time.Millisecond)
	wall = time.Unix(70, 0)
	s.agg.Flush(false)
	got := slices.DeleteFunc(s.sink.points(), func(p string) bool { return strings.HasPrefix(p, "60=") })
	if len(live) == 0 || !slices.Equal(got, live) {
		t.Errorf("after the restart node-a writes %v, want what it wrote before, %v", got, live)
	}
}

// TestPendingReplayFollowsTheLegacyRetry: a handoff sent again as older builds read it is
// pending under hashring.LegacyHandoffID of the id it began with, which its taken and ended
// records carry: the checkpoint's entry is recognised by that id, and ended by it.
func TestPendingReplayFollowsTheLegacyRetry(t *testing.T) {
	var p pendingReplay
	legacy := hashring.PendingHandoff{Peer: "node-b", ID: hashring.LegacyHandoffID("node-a/1"), Body: []byte("x")}
	p.addCheckpointed(legacy)
	p.add(hashring.PendingHandoff{Peer: "node-b", ID: "node-a/2", Body: []byte("y")})
	if !p.inCheckpoint("node-a/1") || p.inCheckpoint("node-a/2") {
		t.Errorf("inCheckpoint: node-a/1 %v, node-a/2 %v; want true, false", p.inCheckpoint("node-a/1"), p.inCheckpoint("node-a/2"))
	}
	p.end("node-a/1")
	if got := p.list(); len(got) != 1 || got[0].ID != "node-a/2" {
		t.Errorf("pending after node-a/1 ended: %+v, want node-a/2 alone", got)
	}
}

// TestTakenRecordRoundTrip: a recordHandoffTaken reads back as written, and a damaged one is
// an error, not a panic.
func TestTakenRecordRoundTrip(t *testing.T) {
	want := hashring.PendingHandoff{Peer: "node-b", ID: "node-a/0123", Body: []byte("CRDLHOFF\x01body")}
	payload := appendTaken(nil, want)
	got, err := parseTaken(payload)
	if err != nil || got.Peer != want.Peer || got.ID != want.ID || string(got.Body) != string(want.Body) {
		t.Fatalf("parseTaken: %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range [][]byte{nil, {0x80}, payload[:3]} {
		if _, err := parseTaken(bad); err == nil {
			t.Errorf("parseTaken(%q): no error", bad)
		}
	}
}

// A flush hands every part of a handoff to HandoffTaken and waits for it, so a log whose
// queue is stuck (a disk that stopped answering) must not hold it a takenQueueWait for
// every part: after one such wait ran out, the parts for takenStuckFor wait for a
// checkpoint instead, without trying the log; after that the log is tried again.
func TestAStuckLogSendsHandoffsToACheckpointForAWhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wall := time.Unix(5, 0)
		n := start(t, t.TempDir(), &wall)
		defer n.crash()
		var tries int
		stuck := true
		n.router.queueTaken = func(ctx context.Context, payload []byte) (func() (uint64, error), error) {
			tries++
			if stuck {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return n.log.Enqueue(ctx, payload)
		}
		part := func(i int) hashring.PendingHandoff {
			return hashring.PendingHandoff{Peer: "node-b", ID: fmt.Sprintf("node-a/%d", i), Body: []byte("body")}
		}
		// take runs HandoffTaken and the durable function it returns, and reports how long
		// HandoffTaken took and whether a checkpoint made the part durable.
		take := func(i int) (took time.Duration, checkpointed bool) {
			t.Helper()
			before := n.router.lastResult.Load()
			start := time.Now()
			durable := n.router.HandoffTaken(part(i))
			took = time.Since(start)
			if err := durable(); err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			return took, n.router.lastResult.Load() != before
		}

		if took, cp := take(1); took != takenQueueWait || !cp || tries != 1 {
			t.Fatalf("the first part with the log stuck: took %v, checkpoint %v, tries %d; want %v, a checkpoint, 1", took, cp, tries, takenQueueWait)
		}
		if took, cp := take(2); took != 0 || !cp || tries != 1 {
			t.Fatalf("the next part: took %v, checkpoint %v, tries %d; want no wait, a checkpoint, and the log not tried", took, cp, tries)
		}
		time.Sleep(takenStuckFor - time.Second)
		if took, cp := take(3); took != 0 || !cp || tries != 1 {
			t.Fatalf("a part %v after the wait ran out: took %v, checkpoint %v, tries %d; want no wait, a checkpoint, and the log not tried", takenStuckFor-time.Second, took, cp, tries)
		}
		time.Sleep(time.Second)
		stuck = false
		if took, cp := take(4); took != 0 || cp || tries != 2 {
			t.Fatalf("a part %v after the wait ran out: took %v, checkpoint %v, tries %d; want no wait, no checkpoint, the log tried", takenStuckFor, took, cp, tries)
		}
		var logged []string
		if err := n.log.Replay(n.log.FirstIndex(), func(_ uint64, rec []byte) error {
			if kind, payload, err := parseRecord(rec); err == nil && kind == recordHandoffTaken {
				p, err := parseTaken(payload)
				if err != nil {
					return err
				}
				logged = append(logged, p.ID)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(logged, []string{"node-a/4"}) {
			t.Errorf("handoff records in the log: %q, want only the fourth part's", logged)
		}
	})
}
