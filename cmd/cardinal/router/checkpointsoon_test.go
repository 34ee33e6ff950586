package router

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// ownsNothing is the ownership of a member that has left its cluster.
type ownsNothing struct{}

func (ownsNothing) Owns(uint64) bool   { return false }
func (ownsNothing) Awaits(uint64) bool { return false }

// A handoff merged into the aggregator by Merge alone (as MergeHandoff falls back to when
// the WAL cannot take it) is not in the log: CheckpointSoon must return only once a
// checkpoint holds it, so that a crash right after (the peer has dropped the state when the
// merge is acknowledged) loses nothing. Callers that come together share checkpoints, and
// each returns after one that began after its call.
func TestCheckpointSoonMakesAMergedHandoffDurable(t *testing.T) {
	wall := time.Unix(5, 0)
	handoff := peerHandoff(t, &wall)

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
