package router

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// A member that crashes after taking the state of outputs it gave away out of its aggregator,
// and before their new owner accepted the handoff, must not lose that state: its log and
// checkpoint hold the handoff, and the restarted member delivers it. Here the new owner
// answers nothing until the first process's delivery has given up, so only the restarted
// process can deliver it; the owner then emits the handed-off increase, once.
func TestAHandoffACrashInterruptedIsDeliveredAfterTheRestart(t *testing.T) {
	wall := time.Unix(5, 0)
	now := func() time.Time { return wall }
	o := newHandoffOwner(t, now)
	o.held.Store(true)
	dir := t.TempDir()

	// The old owner has left the ring, so node-b owns everything.
	s := startSender(t, dir, o, now, 300*time.Millisecond, true)
	s.counts(t, func(series []prompb.TimeSeries) { s.agg.Ingest(series) })
	s.agg.HandOffNow()
	if p := s.fwd.PendingHandoffs(); len(p) != 1 || p[0].Peer != "node-b" {
		t.Fatalf("pending after the handoff: %+v, want one to node-b", p)
	}
	if err := s.r.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	s.waitDelivered(t, "the first process never gave up its delivery")
	s.crash()
	if o.merges.Load() != 0 {
		t.Fatal("the handoff was merged before the restart: the test proves nothing")
	}

	o.held.Store(false)
	s = startSender(t, dir, o, now, time.Minute, true)
	defer s.crash()
	if s.st.Handoffs != 1 {
		t.Errorf("the restart delivers %d handoffs again, want 1", s.st.Handoffs)
	}
	s.waitDelivered(t, "the restarted process did not deliver the handoff")
	o.countedOnce(t, &wall)
}
