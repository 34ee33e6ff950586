package router

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/rules"
)

// ownsNothing is the ownership of a member that has left its cluster.
type ownsNothing struct{}

func (ownsNothing) Owns(uint64) bool   { return false }
func (ownsNothing) Awaits(uint64) bool { return false }

// A handoff merged into the aggregator is not in the WAL: CheckpointSoon must return only
// once a checkpoint holds it, so that a crash right after (the peer has dropped the state
// when the merge is acknowledged) loses nothing. Callers that come together share
// checkpoints, and each returns after one that began after its call.
func TestCheckpointSoonMakesAMergedHandoffDurable(t *testing.T) {
	wall := time.Unix(5, 0)
	var handoff []byte
	peer := aggregator.New(aggregator.Options{Now: func() time.Time { return wall }, HandOff: func(h *aggregator.Handoff) {
		handoff = h.Encode(func(uint64) bool { return true })
	}})
	if err := peer.SetRules([]*rules.Rule{counter()}); err != nil {
		t.Fatal(err)
	}
	for i, v := range []float64{10, 17} { // an increase of 7 in the window ending at 10 s
		peer.Ingest([]prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "req_total"}, {Name: "pod", Value: "a"}},
			Samples: []prompb.Sample{{Timestamp: int64(1+i*5) * 1000, Value: v}},
		}})
	}
	peer.SetOwnership(ownsNothing{})
	peer.HandOffNow()
	if handoff == nil {
		t.Fatal("the peer handed nothing off")
	}

	dir := t.TempDir()
	n := start(t, dir, &wall)
	if _, err := n.agg.Merge(handoff); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			called := time.Now()
			errs[i] = n.router.CheckpointSoon()
			if last := n.router.lastResult.Load(); last == nil || last.Time.Before(called) {
				t.Errorf("caller %d returned without a checkpoint after its call", i)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	n.crash()

	n = start(t, dir, &wall)
	wall = time.Unix(60, 0)
	n.agg.Flush(false)
	got := strings.Join(n.sink.points(), " ")
	if !strings.Contains(got, "10=7") {
		t.Errorf("after the crash the node emitted %q, want the handed-off increase, 10=7", got)
	}
}
