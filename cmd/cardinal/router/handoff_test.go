package router

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/rules"
)

// peerHandoff returns what a peer that has left its cluster hands off: the counter rule's
// output with an increase of 7 (10 to 17) in the window ending at 10 s.
func peerHandoff(t *testing.T, wall *time.Time) []byte {
	t.Helper()
	return peerHandoffAfter(t, wall, [][2]float64{{1, 10}, {6, 17}})
}

// peerHandoffAfter returns what a peer hands off when it has left its cluster after pod a's
// samples (second, value) of the counter rule, having flushed a second after each sample at
// a second in flushAfter.
func peerHandoffAfter(t *testing.T, wall *time.Time, samples [][2]float64, flushAfter ...float64) []byte {
	t.Helper()
	var handoff []byte
	peer := aggregator.New(aggregator.Options{Now: func() time.Time { return *wall }, HandOff: func(h *aggregator.Handoff) {
		handoff = h.Encode(func(uint64) bool { return true })
	}})
	if err := peer.SetRules([]*rules.Rule{counter()}); err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		peer.Ingest([]prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "req_total"}, {Name: "pod", Value: "a"}},
			Samples: []prompb.Sample{{Timestamp: int64(s[0]) * 1000, Value: s[1]}},
		}})
		if slices.Contains(flushAfter, s[0]) {
			*wall = time.Unix(int64(s[0])+1, 0)
			peer.Flush(false)
		}
	}
	peer.SetOwnership(ownsNothing{})
	peer.HandOffNow()
	if handoff == nil {
		t.Fatal("the peer handed nothing off")
	}
	return handoff
}

// windowAt10 is what the node emitted for the window ending at 10 s: the handed-off
// increase of 7, once, is right (pod b, the node's own input, adds nothing).
func windowAt10(n *node) string {
	var at10 []string
	for _, p := range n.sink.points() {
		if strings.HasPrefix(p, "10=") {
			at10 = append(at10, p)
		}
	}
	return strings.Join(at10, " ")
}

// corruptNewestCheckpoint flips a byte in the middle of the newest checkpoint file in dir.
func corruptNewestCheckpoint(t *testing.T, dir string) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "checkpoint.*"))
	if err != nil || len(names) < 2 {
		t.Fatalf("checkpoints in %s: %v (%v), want the newest and the one before", dir, names, err)
	}
	slices.Sort(names)
	newest := names[len(names)-1]
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(newest, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A merged handoff is acknowledged once the log holds it, with no checkpoint taken for it:
// a crash right after loses nothing, and the restarted member counts it once.
func TestAMergedHandoffIsInTheLogWithoutACheckpoint(t *testing.T) {
	wall := time.Unix(5, 0)
	handoff := peerHandoff(t, &wall)
	dir := t.TempDir()
	n := start(t, dir, &wall)
	n.push(t, 2, true, map[string]float64{"b": 5})
	if _, already, err := n.router.MergeHandoff("h1", handoff); err != nil || already {
		t.Fatalf("merge: already %v, err %v", already, err)
	}
	if r := n.router.lastResult.Load(); r != nil {
		t.Fatalf("a checkpoint was taken for the merge (%+v): the test would not show the log holds it", r)
	}
	n.crash()

	n = start(t, dir, &wall)
	defer n.crash()
	wall = time.Unix(60, 0)
	n.agg.Flush(false)
	if got := windowAt10(n); got != "10=7" {
		t.Errorf("after the crash the window ending at 10 s is %q, want the handed-off increase once, 10=7", got)
	}
	if _, already, _ := n.router.MergeHandoff("h1", handoff); !already {
		t.Error("the replayed handoff's id was not kept: the peer sending it again would count it twice")
	}
}

// The newest checkpoint found corrupt, the restart falls back to the one before and replays
// the log from there: a handoff merged between the two is in that log, and counts once.
func TestAMergedHandoffSurvivesAFallbackToTheCheckpointBefore(t *testing.T) {
	wall := time.Unix(5, 0)
	handoff := peerHandoff(t, &wall)
	dir := t.TempDir()
	n := start(t, dir, &wall)
	n.push(t, 2, true, map[string]float64{"b": 5})
	if err := n.router.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// The log moves on before the merge, so that a checkpoint taken for it (as
	// CheckpointSoon would) is not at the first one's position, which it would replace.
	n.push(t, 3, true, map[string]float64{"b": 5})
	if _, _, err := n.router.MergeHandoff("h1", handoff); err != nil {
		t.Fatal(err)
	}
	if err := n.router.Checkpoint(); err != nil { // holds the merge; the log is kept back to the first
		t.Fatal(err)
	}
	n.crash()
	corruptNewestCheckpoint(t, dir)

	n = start(t, dir, &wall)
	defer n.crash()
	wall = time.Unix(60, 0)
	n.agg.Flush(false)
	if got := windowAt10(n); got != "10=7" {
		t.Errorf("after falling back to the checkpoint before the merge, the window ending at 10 s is %q, want 10=7", got)
	}
}

// writtenPeerHandoff is what a peer hands off after it wrote the output itself: pod a's
// counter rising by 7, 3, 3 and 7 over the windows ending at 10, 20 and 30 s, the last
// two closed and written before the handoff.
func writtenPeerHandoff(t *testing.T, wall *time.Time) []byte {
	t.Helper()
	return peerHandoffAfter(t, wall, [][2]float64{{1, 10}, {6, 17}, {11, 20}, {16, 23}, {21, 30}}, 11, 21)
}

// A late handoff (this member had written the output from its own state before it came)
// has its total left out, and a crash after its merge must not add it back: replayed from
// a record, the merge would not be late (the replay does not flush), so a checkpoint holds
// it instead. The window ending at 30 s reads the same with a crash and without.
func TestALateHandoffIsNotAddedBackByACrash(t *testing.T) {
	at30 := map[bool]string{}
	for _, crash := range []bool{false, true} {
		wall := time.Unix(5, 0)
		handoff := writtenPeerHandoff(t, &wall)
		wall = time.Unix(5, 0)
		dir := t.TempDir()
		n := start(t, dir, &wall)
		n.push(t, 2, true, map[string]float64{"b": 5})
		if err := n.router.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		for _, ts := range []int64{12, 22} { // this member writes the output's windows
			wall = time.Unix(ts+1, 0)
			n.push(t, ts, true, map[string]float64{"b": 5})
			n.agg.Flush(false)
		}
		st, _, err := n.router.MergeHandoff("h1", handoff)
		if err != nil {
			t.Fatal(err)
		}
		if st.Late == 0 {
			t.Fatal("the merge was not late: the test proves nothing")
		}
		n.push(t, 25, true, map[string]float64{"b": 6})
		if crash {
			n.crash()
			n = start(t, dir, &wall)
		}
		wall = time.Unix(40, 0)
		n.push(t, 32, true, map[string]float64{"b": 6})
		n.agg.Flush(false)
		for _, p := range n.sink.points() {
			if strings.HasPrefix(p, "30=") {
				at30[crash] = p
			}
		}
		n.crash()
	}
	if at30[false] == "" || at30[true] != at30[false] {
		t.Errorf("the window ending at 30 s: %q after a crash, %q without one; want the same", at30[true], at30[false])
	}
}

// A merge waits for the requests being ingested, and they for it: the replay merges where
// the record is in the log, so a request logged before the record must be ingested before
// the merge, as it is replayed.
func TestAMergeWaitsForTheRequestsBeingIngested(t *testing.T) {
	wall := time.Unix(5, 0)
	handoff := peerHandoff(t, &wall)
	n := start(t, t.TempDir(), &wall)
	defer n.crash()
	n.router.ingest.RLock() // a request between its log append and the end of its ingestion
	merged := make(chan error, 1)
	go func() {
		_, _, err := n.router.MergeHandoff("h1", handoff)
		merged <- err
	}()
	select {
	case err := <-merged:
		t.Fatalf("the merge (err %v) did not wait for the request being ingested", err)
	case <-time.After(200 * time.Millisecond):
	}
	n.router.ingest.RUnlock()
	if err := <-merged; err != nil {
		t.Fatal(err)
	}
}

// A logged merge holds the aggregator's lock (HoldFlushes) like every other merge and
// flush: with the race detector, one beside a loop of flushes and merges that take it
// themselves (a handoff too large to log, aggregator.MergeOnce) would race without it.
func TestMergesAndFlushesDoNotRace(t *testing.T) {
	wall := time.Unix(5, 0)
	handoff := peerHandoff(t, &wall)
	n := start(t, t.TempDir(), &wall)
	defer n.crash()
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				n.agg.Flush(false)
				_, _, _ = n.agg.MergeOnce(fmt.Sprintf("large%d", i), handoff)
			}
		}
	}()
	for i := range 20 {
		if _, _, err := n.router.MergeHandoff(fmt.Sprintf("h%d", i), handoff); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-flushed
}

// A checkpoint cannot begin between a logged merge and its record's write: one that did
// would hold the merge (and its id) at a log position before the record, and the replay
// would merge the record again once the id has aged out of those remembered, at a restart
// over an hour later. Merges beside a loop of checkpoints that stops halfway, then a crash
// restarted twice: at once, and two hours later. The later restart merges no more records
// again than the first, where the checkpoint's ids say which merges it holds.
func TestACheckpointBesideALoggedMergeHoldsItOrComesAfterIt(t *testing.T) {
	wall := time.Unix(5, 0)
	handoff := peerHandoff(t, &wall)
	const merges, trials = 20, 40
	informative := 0
	for trial := range trials {
		dir := t.TempDir()
		n := start(t, dir, &wall)
		stop := make(chan struct{})
		checkpointed := make(chan int)
		go func() {
			count := 0
			defer func() { checkpointed <- count }()
			for {
				select {
				case <-stop:
					return
				default:
					if err := n.router.Checkpoint(); err != nil {
						t.Error(err)
						return
					}
					count++
				}
			}
		}()
		for i := range merges {
			if i == merges/2 {
				close(stop) // the last checkpoint is beside the merges after this one
			}
			if _, already, err := n.router.MergeHandoff(fmt.Sprintf("h%d", i), handoff); err != nil || already {
				t.Fatalf("merge %d: already %v, err %v", i, already, err)
			}
		}
		if count := <-checkpointed; count == 0 {
			t.Fatal("no checkpoint beside the merges")
		}
		n.crash()

		again := map[time.Duration]int{}
		for _, later := range []time.Duration{0, 2 * time.Hour} {
			copyDir := t.TempDir()
			if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
				t.Fatal(err)
			}
			at := wall.Add(later)
			n := start(t, copyDir, &at)
			again[later] = n.recovered.HandoffsMerged
			n.crash()
		}
		if again[2*time.Hour] != again[0] {
			t.Fatalf("trial %d: the replay merged %d handoffs again two hours after the crash and %d right after it: a checkpoint held merges whose records are after its position", trial, again[2*time.Hour], again[0])
		}
		if again[0] > 0 && again[0] < merges {
			informative++
		}
	}
	if informative == 0 {
		t.Errorf("in no trial did the checkpoint restored hold some merges and not all: the test showed nothing")
	}
}
