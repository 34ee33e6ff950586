package router

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// What the queue to a peer that does not answer holds goes into a checkpoint as compressed
// bodies (packed ones as the queue keeps them), and a restart routes it again body by body:
// here the restarted member is alone, so it aggregates every series itself.
func TestAPeerQueueBacklogSurvivesACheckpoint(t *testing.T) {
	wall := time.Unix(5, 0)
	now := func() time.Time { return wall }
	o := newHandoffOwner(t, now)
	o.held.Store(true) // node-b answers nothing: the queue to it backs up
	dir := t.TempDir()

	s := startSender(t, dir, o, now, time.Minute, true) // node-b owns every output
	const requests, perRequest = 100, 2000
	queued := 0
	for r := range requests {
		req := &prompb.WriteRequest{}
		for i := range perRequest {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels: []prompb.Label{{Name: "__name__", Value: "req_total"}, {Name: "code", Value: "200"},
					{Name: "pod", Value: "api-7d9f8c6b5-" + strconv.Itoa(r*perRequest+i)}},
				Samples: []prompb.Sample{{Timestamp: 4000, Value: float64(i)}},
			})
			queued += req.Timeseries[i].Size()
		}
		if err := s.r.Append(context.Background(), req, nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the packer's turn
	if err := s.r.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	s.crash()
	size := checkpointSize(t, dir)
	t.Logf("%d series (%d bytes encoded) queued for node-b; the checkpoint holds %d bytes", requests*perRequest, queued, size)
	if size*2 > int64(queued) {
		t.Errorf("the checkpoint holds %d bytes for %d bytes of series queued: not compressed", size, queued)
	}

	s = startSender(t, dir, o, now, time.Minute, false) // alone: every output is its own
	defer s.crash()
	if s.st.Requeued != requests*perRequest {
		t.Fatalf("the restart routed %d series again, want the %d queued", s.st.Requeued, requests*perRequest)
	}
}

// checkpointSize returns the size of the one checkpoint file in dir.
func checkpointSize(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var found []int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "checkpoint.") && !strings.Contains(e.Name(), ".tmp") {
			fi, err := os.Stat(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			found = append(found, fi.Size())
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d checkpoints in %s, want 1", len(found), dir)
	}
	return found[0]
}
