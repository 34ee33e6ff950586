package router

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
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

// A member that crashes after taking the state of outputs it gave away out of its aggregator,
// and before their new owner accepted the handoff, must not lose that state: its checkpoint
// holds the handoff, and the restarted member delivers it. Here the new owner answers nothing
// until the first process's delivery has given up, so only the restarted process can deliver
// it; the owner then emits the handed-off increase, once.
func TestAHandoffACrashInterruptedIsDeliveredAfterTheRestart(t *testing.T) {
	wall := time.Unix(5, 0)
	now := func() time.Time { return wall }

	// The new owner: an aggregator behind a real handoff handler, answering nothing while
	// held.
	ownerSink := &memorySink{}
	owner := aggregator.New(aggregator.Options{Output: downstream.Fanout{{Name: "prom", Kind: "remote_write", Sink: ownerSink}}, Now: now})
	if err := owner.SetRules([]*rules.Rule{counter()}); err != nil {
		t.Fatal(err)
	}
	recv, err := hashring.NewForwarder("node-b", hashring.DefaultForwardConfig(), time.Minute, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var merges atomic.Int32
	handler := recv.HandoffHandler(func(id string, body []byte) error {
		_, already, err := owner.MergeOnce(id, body)
		if err == nil && !already {
			merges.Add(1)
		}
		return err
	})
	var held atomic.Bool
	held.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if held.Load() {
			select { // the sender gives up on this attempt
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			http.Error(w, "held", http.StatusServiceUnavailable)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	peers := []hashring.Member{{Name: "node-b", Addr: strings.TrimPrefix(srv.URL, "http://")}}

	// The old owner: a member with a WAL that has left the ring, so node-b owns everything.
	dir := t.TempDir()
	startMember := func(handoffTimeout time.Duration) (*aggregator.Aggregator, *Router, *wal.Log, *hashring.Forwarder, RecoverStats) {
		fwd, err := hashring.NewForwarder("node-a", hashring.DefaultForwardConfig(), handoffTimeout, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		agg := aggregator.New(aggregator.Options{Output: downstream.Fanout{}, Now: now, HandOff: func(h *aggregator.Handoff) { fwd.SendHandoff(h) }})
		if err := agg.SetRules([]*rules.Rule{counter()}); err != nil {
			t.Fatal(err)
		}
		fwd.SetMembers(peers)
		fwd.Leave(peers)
		agg.SetOwnership(fwd)
		cfg := wal.DefaultConfig()
		cfg.Dir, cfg.Fsync, cfg.MaxBytes = dir, wal.FsyncAlways, setting.ByteSize(1<<30)
		log, err := wal.Open(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := New(Options{Aggregator: agg, Sinks: downstream.Fanout{}, WAL: log, Cluster: fwd, Limits: remotewrite.DefaultLimits(), MaxRequestBytes: 32 << 20}, nil)
		st, err := r.Recover()
		if err != nil {
			t.Fatal(err)
		}
		return agg, r, log, fwd, st
	}

	agg, r, log, fwd, _ := startMember(300 * time.Millisecond)
	for i, v := range []float64{10, 17} { // an increase of 7 in the window ending at 10 s
		agg.Ingest([]prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "req_total"}, {Name: "pod", Value: "a"}},
			Samples: []prompb.Sample{{Timestamp: int64(1+i*5) * 1000, Value: v}},
		}})
	}
	agg.HandOffNow()
	if p := fwd.PendingHandoffs(); len(p) != 1 || p[0].Peer != "node-b" {
		t.Fatalf("pending after the handoff: %+v, want one to node-b", p)
	}
	if err := r.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(fwd.PendingHandoffs()) > 0 { // the first process gives up on it
		if time.Now().After(deadline) {
			t.Fatal("the first process never gave up its delivery")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = log.Close() // the crash
	if merges.Load() != 0 {
		t.Fatal("the handoff was merged before the restart: the test proves nothing")
	}

	held.Store(false)
	_, _, log, fwd, st := startMember(time.Minute)
	defer log.Close()
	if st.Handoffs != 1 {
		t.Errorf("the restart delivers %d handoffs again, want 1", st.Handoffs)
	}
	for deadline := time.Now().Add(10 * time.Second); len(fwd.PendingHandoffs()) > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the restarted process did not deliver the handoff")
		}
		time.Sleep(10 * time.Millisecond)
	}
	wall = time.Unix(60, 0)
	owner.Flush(false)
	if got := strings.Join(ownerSink.points(), " "); merges.Load() != 1 || !strings.Contains(got, "10=7") {
		t.Errorf("the owner merged %d handoffs and emitted %q, want one and the handed-off increase, 10=7", merges.Load(), got)
	}
}
