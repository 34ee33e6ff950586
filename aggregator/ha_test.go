package aggregator

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// haRule is counterRule on name with the election on, Mimir's label names and timeout.
func haRule(name string, timeout time.Duration) *rules.Rule {
	r := counterRule(name, "total")
	r.HA = &rules.HA{GroupLabel: "cluster", ReplicaLabel: "__replica__", FailoverTimeout: timeout}
	r.Fingerprint ^= hashString("ha")
	return r
}

// replicaScrape is what replica rep of group "prod" sends for the scrape at second t: two
// pods of one target counter, whose value is the target's own (t and 2t), whoever scrapes.
func replicaScrape(rep string, t float64) []prompb.TimeSeries {
	return []prompb.TimeSeries{
		series("req{cluster=prod,__replica__="+rep+",pod=a}", t, t),
		series("req{cluster=prod,__replica__="+rep+",pod=b}", t, 2*t),
	}
}

// totals returns the output's totals as "window end (s)=total", sorted by time, until the
// first stale marker, failing on any output series other than the one named want.
func totals(t *testing.T, out *collectSink, want string) []string {
	t.Helper()
	type point struct {
		t int
		s string
	}
	var got []point
	for _, p := range out.points() {
		rest, ok := strings.CutPrefix(p, want+"@")
		if !ok {
			t.Errorf("unexpected output %s, want only %s (the replica label must never reach an output)", p, want)
			continue
		}
		var ts int
		fmt.Sscanf(rest, "%d=", &ts)
		got = append(got, point{ts, rest})
	}
	slices.SortFunc(got, func(a, b point) int { return a.t - b.t })
	var out2 []string
	for _, p := range got {
		if strings.HasSuffix(p.s, "=stale") {
			break
		}
		out2 = append(out2, p.s)
	}
	return out2
}

func TestHAOnlyTheElectedReplicaCounts(t *testing.T) {
	a, out, _, clk := newTestAggregator(t, 0, haRule("req", 30*time.Second))
	for s := 0.0; s < 60; s += 10 {
		a.Ingest(replicaScrape("a", s))
		a.Ingest(replicaScrape("b", s+5)) // the other replica scrapes 5 s later
	}
	flushAt(a, clk, 100)
	// Baseline at 0, then 10 + 20 per 10 s from a alone; with b counted too, twice that.
	want := []string{"10=30", "20=60", "30=90", "40=120", "50=150", "60=150", "70=150"}
	if got := totals(t, out, "req{cluster=prod}"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("totals %v, want %v", got, want)
	}
	st := a.Stats()[0]
	if st.HADeduplicated != 12 || st.HAUnnamed != 0 {
		t.Errorf("deduplicated %d, without replica %d; want 12 (b's samples) and 0", st.HADeduplicated, st.HAUnnamed)
	}
	groups := a.HAGroups()
	if len(groups) != 1 || groups[0].Group != "prod" || groups[0].Elected != "a" || groups[0].Failovers != 0 ||
		groups[0].Newest != time.Unix(50, 0) {
		t.Errorf("groups %+v, want prod electing a, newest sample at 50 s, no failover", groups)
	}
}

func TestHAFailoverContinuesTheCounters(t *testing.T) {
	a, out, _, clk := newTestAggregator(t, 0, haRule("req", 30*time.Second))
	for s := 0.0; s < 200; s += 10 {
		if s <= 100 {
			a.Ingest(replicaScrape("a", s)) // a stops after 100 s
		}
		a.Ingest(replicaScrape("b", s+5))
	}
	flushAt(a, clk, 300)
	got := totals(t, out, "req{cluster=prod}")
	// b's samples count from 135 s, the first more than 30 s past a's last (100 s): its
	// increase since then, 3×35, lands in the window of 135, and the total goes on as if one
	// replica had scraped throughout: 3 per second.
	prev := -1.0
	for _, p := range got {
		var ts, v float64
		fmt.Sscanf(p, "%g=%g", &ts, &v)
		if v < prev {
			t.Errorf("total fell from %g to %g at %g s: a visible reset (%v)", prev, v, ts, got)
		}
		prev = v
	}
	if want := 3.0 * 195; prev != want {
		t.Errorf("final total %g, want %g, the target counters' increase from 0 to 195 s (%v)", prev, want, got)
	}
	g := a.HAGroups()
	if len(g) != 1 || g[0].Elected != "b" || g[0].Failovers != 1 {
		t.Errorf("groups %+v, want b elected after one failover", g)
	}
	// b's samples of 5..125 s did not count: 13 scrapes of two series.
	if d := a.Stats()[0].HADeduplicated; d != 26 {
		t.Errorf("deduplicated %d samples, want 26", d)
	}
}

func TestHAFailoverToAReplicaReadingLowerIsNotAReset(t *testing.T) {
	// Replicas that disagree on a value (each reads another backend behind a load balancer):
	// b reads 1000 less than a. Taking b's first value as a reset would add all of it.
	a, out, _, clk := newTestAggregator(t, 0, haRule("req", 30*time.Second))
	scrape := func(rep string, s, offset float64) []prompb.TimeSeries {
		return []prompb.TimeSeries{series("req{cluster=prod,__replica__="+rep+",pod=a}", s, offset+s)}
	}
	for s := 0.0; s < 200; s += 10 {
		if s <= 100 {
			a.Ingest(scrape("a", s, 1000))
		}
		a.Ingest(scrape("b", s+5, 0))
	}
	flushAt(a, clk, 300)
	got := totals(t, out, "req{cluster=prod}")
	// a's increase to 100 s, then b's from its first counted sample (135 s) to 195 s.
	if last := got[len(got)-1]; !strings.HasSuffix(last, "=160") {
		t.Errorf("totals %v, want 100 + 60 = 160 at the end", got)
	}
	if r := a.Stats()[0].CounterResets; r != 0 {
		t.Errorf("%d counter resets, want none", r)
	}
	if g := a.HAGroups()[0]; g.From != time.Unix(100, 0) {
		t.Errorf("group %+v, want from = a's newest sample at the failover, 100 s", g)
	}
}

func TestHAFlappingReplicaDoesNotTakeOver(t *testing.T) {
	a, _, _, _ := newTestAggregator(t, 0, haRule("req", 30*time.Second))
	elected := func() string { return a.HAGroups()[0].Elected }
	a.Ingest(replicaScrape("a", 0))
	a.Ingest(replicaScrape("b", 5))
	// a pauses for 20 s, less than the timeout: b's samples up to 30 s stay out.
	a.Ingest(replicaScrape("b", 15))
	a.Ingest(replicaScrape("b", 25))
	a.Ingest(replicaScrape("a", 20))
	if elected() != "a" {
		t.Fatalf("b took over after a gap shorter than the timeout")
	}
	// b sends an old backlog, then a replica comes back after b took over: a stays out.
	a.Ingest(replicaScrape("b", 51)) // 31 s past a's newest (20 s)
	if elected() != "b" {
		t.Fatalf("b did not take over 31 s past a's newest sample")
	}
	a.Ingest(replicaScrape("a", 60))
	a.Ingest(replicaScrape("a", 70))
	if elected() != "b" {
		t.Errorf("a took the election back while b is current")
	}
	// A replica catching up on a backlog older than the elected one never wins.
	a.Ingest(replicaScrape("c", 40))
	if elected() != "b" || a.HAGroups()[0].Failovers != 1 {
		t.Errorf("groups %+v, want b after one failover", a.HAGroups())
	}
}

func TestHASeriesWithoutHALabels(t *testing.T) {
	a, out, _, clk := newTestAggregator(t, 0, haRule("req", 30*time.Second))
	for s := 0.0; s < 30; s += 10 {
		// No replica label: aggregated as without ha, and counted.
		a.Ingest([]prompb.TimeSeries{series("req{pod=a}", s, s)})
		// A replica label without a group label: the group "", elected like any other.
		a.Ingest([]prompb.TimeSeries{series("req{__replica__=x,pod=b}", s, s), series("req{__replica__=y,pod=b}", s+1, s+1)})
	}
	flushAt(a, clk, 100)
	if got, want := totals(t, out, "req{}"), []string{"10=20", "20=40", "30=40", "40=40"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("totals %v, want %v (pod a, and pod b from replica x)", got, want)
	}
	st := a.Stats()[0]
	if st.HAUnnamed != 3 || st.HADeduplicated != 3 {
		t.Errorf("without replica %d, deduplicated %d; want 3 and 3", st.HAUnnamed, st.HADeduplicated)
	}
	if g := a.HAGroups(); len(g) != 1 || g[0].Group != "" || g[0].Elected != "x" {
		t.Errorf("groups %+v, want group \"\" electing x", g)
	}
}

func TestHAReplicaLabelNeverReachesAnOutput(t *testing.T) {
	// A rule that drops only pod would keep every other label, the replica's included.
	r := haRule("req", 30*time.Second)
	r.Without = []string{"pod"}
	a, out, _, clk := newTestAggregator(t, 0, r)
	a.Ingest(replicaScrape("a", 0))
	a.Ingest(replicaScrape("a", 10))
	a.Ingest(replicaScrape("b", 12))
	flushAt(a, clk, 100)
	for _, p := range out.points() {
		if strings.Contains(p, "__replica__") || !strings.Contains(p, "cluster=prod") {
			t.Errorf("output %s: want cluster kept and __replica__ gone", p)
		}
	}
	if len(out.points()) == 0 {
		t.Fatal("no output")
	}
	// In a cluster, the replicas' copies of a series are placed on one member.
	st := a.rules[0]
	ka, _, _ := st.placeKeyOfInput(nil, series("req{cluster=prod,__replica__=a,pod=a}").Labels, "req")
	kb, _, _ := st.placeKeyOfInput(nil, series("req{cluster=prod,__replica__=b,pod=a}").Labels, "req")
	if ka != kb {
		t.Errorf("placement keys of the two replicas' copies differ: %x, %x", ka, kb)
	}
}

func TestHAElectionSurvivesACheckpoint(t *testing.T) {
	rs := []*rules.Rule{haRule("req", 30*time.Second)}
	a, _, _, _ := newTestAggregator(t, 0, rs...)
	a.Ingest(replicaScrape("b", 0))
	a.Ingest(replicaScrape("a", 1))
	var buf bytes.Buffer
	if err := a.Checkpoint(&buf); err != nil {
		t.Fatal(err)
	}
	b, _, _, _ := newTestAggregator(t, 0, rs...)
	if _, err := b.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if g := b.HAGroups(); len(g) != 1 || g[0].Elected != "b" || g[0].Newest != time.Unix(0, 0) {
		t.Fatalf("restored groups %+v, want b elected with its newest sample at 0", g)
	}
	b.Ingest(replicaScrape("a", 10))
	if d := b.Stats()[0].HADeduplicated; d != 2 {
		t.Errorf("after the restore a's samples were not deduplicated (%d)", d)
	}

	// A version 1 checkpoint, from before elections were saved, still restores.
	var v3 bytes.Buffer
	if _, err := a.checkpointAs(&v3, 3); err != nil {
		t.Fatal(err)
	}
	v1 := append([]byte(checkpointMagic), 1)
	v1 = append(v1, v3.Bytes()[len(checkpointMagic)+1:v3.Len()-haFrameLen(t, a)]...)
	c, _, _, _ := newTestAggregator(t, 0, rs...)
	if st, err := c.Restore(bytes.NewReader(v1)); err != nil || st.Restored != 1 {
		t.Fatalf("version 1: %+v, %v", st, err)
	}
	if g := c.HAGroups(); len(g) != 0 {
		t.Errorf("version 1 restored elections %+v", g)
	}
}

// haFrameLen is the length of the checkpoint's last two frames, the elections and the
// merged handoffs (none).
func haFrameLen(t *testing.T, a *Aggregator) int {
	t.Helper()
	var e shardEncoder
	e.reset()
	e.haGroups(a.HAGroups())
	n := len(e.buf)
	if n >= 128 || len(a.merged) > 0 {
		t.Fatalf("a %d-byte frame, or %d merged handoffs: lengths over one byte", n, len(a.merged))
	}
	return 1 + n + 4 + 1 + 1 + 4 // length, payload, checksum; the handoffs' count 0
}

func TestHARulesShareTheElection(t *testing.T) {
	r2 := haRule("req", 30*time.Second)
	r2.Name, r2.Without, r2.Fingerprint = "req_by_pod", []string{"instance"}, hashString("by pod")
	a, _, _, _ := newTestAggregator(t, 0, haRule("req", 30*time.Second), r2)
	a.Ingest(replicaScrape("a", 0))
	a.Ingest(replicaScrape("b", 1))
	for _, s := range a.Stats() {
		if s.HADeduplicated != 2 {
			t.Errorf("rule %s deduplicated %d, want b's 2 samples", s.Name, s.HADeduplicated)
		}
	}
	if g := a.HAGroups(); len(g) != 1 {
		t.Errorf("groups %+v, want one election for both rules", g)
	}
}

// ownerRouter places every output on one member: Local, or the index of a peer.
type ownerRouter int

func (o ownerRouter) Owner(uint64) int { return int(o) }

func TestHAInAClusterTheOwnerElects(t *testing.T) {
	// Replica a writes to member 0, replica b to member 1, which owns the output: member 0
	// forwards a's series with their replica label, and member 1 elects among both.
	m0, out0, _, clk0 := newTestAggregator(t, 0, haRule("req", 30*time.Second))
	m1, out1, _, clk1 := newTestAggregator(t, 0, haRule("req", 30*time.Second))
	for s := 0.0; s < 60; s += 10 {
		var fwd []prompb.TimeSeries
		m0.IngestRoute(replicaScrape("a", s), Route{Router: ownerRouter(0), Forward: func(_ int, ts *prompb.TimeSeries, _ int) {
			fwd = append(fwd, cloneSeries(ts))
		}})
		for _, ts := range fwd {
			if labelValue(ts.Labels, "__replica__") != "a" {
				t.Fatalf("forwarded %v without its replica label", ts.Labels)
			}
		}
		m1.IngestRoute(fwd, Route{Router: ownerRouter(Local), Forwarded: true})
		m1.IngestRoute(replicaScrape("b", s+5), Route{Router: ownerRouter(Local), Forward: func(int, *prompb.TimeSeries, int) {}})
	}
	flushAt(m0, clk0, 100)
	flushAt(m1, clk1, 100)
	if len(out0.points()) != 0 {
		t.Errorf("member 0 wrote %v for an output it does not own", out0.points())
	}
	want := []string{"10=30", "20=60", "30=90", "40=120", "50=150", "60=150", "70=150"}
	if got := totals(t, out1, "req{cluster=prod}"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("owner's totals %v, want %v: one replica counted", got, want)
	}
	if d := m1.Stats()[0].HADeduplicated; d != 12 {
		t.Errorf("owner deduplicated %d samples, want 12", d)
	}
}

func labelValue(ls []prompb.Label, name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

func TestHAGroupsAreBoundedAndForgotten(t *testing.T) {
	a, _, _, clk := newTestAggregator(t, 0, haRule("req", 30*time.Second))
	for g := range maxHAGroups + 5 {
		a.Ingest([]prompb.TimeSeries{series(fmt.Sprintf("req{cluster=c%d,__replica__=a,pod=a}", g), 1, 1)})
	}
	if n := len(a.HAGroups()); n != maxHAGroups {
		t.Errorf("%d groups, want at most %d", n, maxHAGroups)
	}
	if u := a.Stats()[0].HAUnnamed; u != 5 {
		t.Errorf("%d samples past the bound counted as without replica, want 5", u)
	}
	// An hour later, only the group still writing is remembered.
	clk.t = clk.t.Add(haForget + time.Minute)
	a.Ingest([]prompb.TimeSeries{series("req{cluster=c7,__replica__=a,pod=a}", 3700, 2)})
	a.ha.forget(clk.t.Add(-haForget).UnixMilli())
	if g := a.HAGroups(); len(g) != 1 || g[0].Group != "c7" {
		t.Errorf("after forgetting: %d groups (%v...), want only c7", len(g), g[:min(len(g), 2)])
	}
}
