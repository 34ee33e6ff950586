package router

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// What the queue to a peer that does not answer holds goes into a checkpoint as compressed
// bodies (packed ones as the queue keeps them, when the packer got to them: hashring's tests
// cover packing), and a restart routes it again body by body:
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

// A body of the peer queues' part of a checkpoint that does not decode (only its framing was
// checked when it was taken) costs its own series: the rest of the checkpoint is restored
// and the process starts.
func TestAnUnreadablePeerQueueBodyCostsOnlyItself(t *testing.T) {
	wall := time.Unix(5, 0)
	now := func() time.Time { return wall }
	o := newHandoffOwner(t, now)
	dir := t.TempDir()
	s := startSender(t, dir, o, now, time.Minute, false)
	body := func(pods ...string) []byte {
		var series []prompb.TimeSeries
		for _, p := range pods {
			series = append(series, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: "req_total"}, {Name: "pod", Value: p}},
				Samples: []prompb.Sample{{Timestamp: 4000, Value: 1}},
			})
		}
		var enc remotewrite.Encoder
		b, err := enc.Encode(series)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Clone(b)
	}
	forward := [][]byte{body("a", "b"), snappy.Encode(nil, []byte{0x0a, 0x02, 0x10, 0x01}), body("c")}
	release := s.agg.HoldFlushes()
	err := s.log.WriteCheckpoint(s.log.LastIndex(), func(w io.Writer) error {
		if err := writePending(w, map[string][]prompb.TimeSeries{}, nil, nil, forward); err != nil {
			return err
		}
		return s.agg.CheckpointHeld(w)
	})
	release()
	if err != nil {
		t.Fatal(err)
	}
	s.crash()

	s = startSender(t, dir, o, now, time.Minute, false)
	defer s.crash()
	if s.st.UnreadableForward != 1 || s.st.Requeued != 3 {
		t.Errorf("restored %d series with %d unreadable bodies, want 3 and 1", s.st.Requeued, s.st.UnreadableForward)
	}
}
