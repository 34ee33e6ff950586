package aggregator

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// parity owns the keys of one parity: the ring of two members after a join.
type parity struct {
	member int
	awaits bool
}

func (p parity) Owns(key uint64) bool   { return int(key%2) == p.member }
func (p parity) Awaits(key uint64) bool { return p.awaits && p.Owns(key) }

// alone routes everything here: the ring of one member.
type alone struct{}

func (alone) Owner(uint64) int { return Local }

// joinRules are placementRules with rules of native histograms: a counter (rate and total,
// whose running total is the one a handoff must continue) and a gauge (sum and count).
func joinRules() []*rules.Rule {
	lat := histogramRule("nlat", "rate", "total")
	queue := gaugeRule("nqueue", "sum", "count")
	return append(placementRules(), lat, queue)
}

// nativeStep is the native histogram samples of the join test's step: per job and pod, a
// counter that grows (and resets once after the switch, as the float counters do) and a
// gauge.
func nativeStep(step int, ts float64) []prompb.TimeSeries {
	var out []prompb.TimeSeries
	for pod := range 4 {
		for job := range 3 {
			n := int64(step*(pod+1) + job)
			if step == 20 && pod == 1 {
				n = 1
			}
			spec := fmt.Sprintf("{job=j%d,pod=p%d,code=%d}", job, pod, 200+100*(pod%2))
			out = append(out,
				nseries("nlat"+spec, at(ts, nh(0, float64(2*n), 0, n, n/2+1))),
				nseries("nqueue"+spec, gaugeAt(ts, nh(0, float64(pod), 0, int64(pod+job), 1))))
		}
	}
	return out
}

// TestJoinHandsStateOverWithoutResetOrDoubleCount runs a member alone, then a second joins:
// from the switch on, each routes by parity, the first hands the state of the outputs it
// lost to the second. Whether the handoff arrives before or after the second member's first
// samples of those outputs, the two together must emit exactly what one aggregator fed
// everything emits, every output sample from one member only.
//
// In "a_sender_still_on_the_old_ring", a third of the series come from agents of a member
// that is not modelled but forwards: in the switch step it still routes by the old ring, so
// the first member gets, after its handoff, samples of outputs it gave away. What they start
// must reach the new owner before those inputs' next samples do, or their increase lands in
// the next window.
//
// Native histograms, counters and gauges, go through the same and must come out the same.
func TestJoinHandsStateOverWithoutResetOrDoubleCount(t *testing.T) {
	for _, when := range []string{"before_samples", "after_samples", "after_a_window_closed", "a_sender_still_on_the_old_ring"} {
		handoffFirst := when == "before_samples" || when == "a_sender_still_on_the_old_ring"
		lagging := when == "a_sender_still_on_the_old_ring"
		t.Run(when, func(t *testing.T) {
			single, singleOut, _, singleClk := newTestAggregator(t, 0, joinRules()...)
			var members [2]*Aggregator
			var outs [2]*collectSink
			var handoffs [][]byte
			clk := &testClock{t: time.Unix(0, 0)}
			for i := range members {
				outs[i] = &collectSink{}
				members[i] = New(Options{Output: outs[i], Now: clk.now, HandOff: func(h *Handoff) {
					if b := h.Encode(func(uint64) bool { return true }); b != nil {
						handoffs = append(handoffs, b)
					}
				}})
				if err := members[i].SetRules(joinRules()); err != nil {
					t.Fatal(err)
				}
			}
			deliver := func() {
				for _, b := range handoffs {
					st, err := members[1].Merge(b)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("merged %+v", st)
				}
				handoffs = nil
			}
			const switchStep = 15
			joined := false
			for step := range 30 {
				ts := float64(step*5 + 1)
				var all []prompb.TimeSeries
				for _, name := range []string{"http_requests_total", "rpc_calls_total", "lat_bucket", "lat_count", "mem"} {
					for pod := range 4 {
						for job := range 3 {
							spec := fmt.Sprintf("%s{job=j%d,pod=p%d,code=%d", name, job, pod, 200+100*(pod%2))
							if name == "lat_bucket" {
								spec += ",le=1"
							}
							v := float64(step*(pod+1) + job)
							if step == 20 && pod == 1 {
								v = 1 // a counter reset after the switch
							}
							all = append(all, series(spec+"}", ts, v))
						}
					}
				}
				all = append(all, nativeStep(step, ts)...)
				single.Ingest(all)
				if step == switchStep {
					joined = true
					members[0].SetOwnership(parity{member: 0})
					members[1].SetOwnership(parity{member: 1, awaits: true})
					if handoffFirst {
						members[0].HandOffNow()
						deliver()
					}
				}
				var third []prompb.TimeSeries // the forwarding member's agents' series
				if lagging {
					var rest []prompb.TimeSeries
					for i := range all {
						if i%3 == 2 {
							third = append(third, all[i])
						} else {
							rest = append(rest, all[i])
						}
					}
					all = rest
				}
				switch {
				case lagging && step <= switchStep:
					// Its ring is the old one: everything to the first member.
					members[0].IngestRoute(third, Route{Router: alone{}, Forwarded: true, Disagrees: joined})
				case lagging:
					for m := range members {
						members[m].IngestRoute(third, Route{Router: twoMembers(m), Forwarded: true})
					}
				}
				if !joined {
					members[0].IngestRoute(all, Route{Router: alone{}, Forward: func(int, *prompb.TimeSeries, int) { t.Fatal("alone forwards") }})
				} else {
					// Half the agents write to each member; each forwards what the other owns.
					for m := range members {
						var mine, fwd []prompb.TimeSeries
						for i := range all {
							if i%2 == m {
								mine = append(mine, all[i])
							}
						}
						members[m].IngestRoute(mine, Route{Router: twoMembers(m), Forward: func(_ int, s *prompb.TimeSeries, _ int) { fwd = append(fwd, cloneSeries(s)) }})
						members[1-m].IngestRoute(fwd, Route{Router: twoMembers(1 - m), Forwarded: true})
					}
					if when == "after_samples" && step == switchStep {
						members[0].HandOffNow()
						deliver()
					}
				}
				wall := int64(ts) + 3
				flushAt(single, singleClk, wall)
				clk.t = time.Unix(wall, 0)
				for m := range members {
					members[m].Flush(false)
				}
				if when == "after_a_window_closed" && step < switchStep+2 {
					// The handoff is late: the new owner closes the switch's window while it
					// holds the outputs it gained (step 17), which must still be emitted, late
					// and in order, once it comes.
					continue
				}
				deliver()
			}
			twoEmitWhatOneDoes(t, outs, singleOut)
			var moved int
			for _, s := range members[0].Stats() {
				_ = s
			}
			for _, r := range members[0].rules {
				for s := range r.shards {
					moved += int(r.shards[s].stats.handedOff)
				}
			}
			if moved == 0 {
				t.Error("nothing was handed off")
			}
		})
	}
}

// diff lists the points only in got (+) or only in want (-).
func diff(got, want []string) []string {
	in := map[string]int{}
	for _, p := range got {
		in[p]++
	}
	for _, p := range want {
		in[p]--
	}
	var out []string
	for p, n := range in {
		switch {
		case n > 0:
			out = append(out, "+ "+p)
		case n < 0:
			out = append(out, "- "+p)
		}
	}
	slices.Sort(out)
	return out
}

// all owns or awaits every output, or none.
type all struct{ owns, awaits bool }

func (a all) Owns(uint64) bool   { return a.owns }
func (a all) Awaits(uint64) bool { return a.awaits }

// TestAGaugeInputsLastValueReachesItsWindowAcrossAHandoff: a gauge input's last value counts
// in its window when the window closes, or when the input's next sample moves on. When its
// output changes owner with that window still open, and the input's next sample (in the next
// window) reaches the new owner before the old owner's handoff does, neither member has the
// value in that window: the old owner never closed it, and the new owner's view of the input
// is the later one. The merge must give the earlier view's value to the windows before the
// later view's first sample (the cluster test saw a sum of two pods come out as one).
func TestAGaugeInputsLastValueReachesItsWindowAcrossAHandoff(t *testing.T) {
	t.Run("the_new_owner_has_the_later_view", func(t *testing.T) { gaugeAcrossAHandoff(t, false) })
	// A sender on the old ring sends the inputs' next samples to the old owner, which hands
	// what they start over: the new owner's view is the earlier one.
	t.Run("the_old_owner_has_the_later_view", func(t *testing.T) { gaugeAcrossAHandoff(t, true) })
}

func gaugeAcrossAHandoff(t *testing.T, lagging bool) {
	p := newHandoffPair(t, gaugeRule("inflight", "sum", "count"), gaugeRule("nqueue", "sum", "count"))
	at := func(ts float64, v1, v2 float64) []prompb.TimeSeries {
		return []prompb.TimeSeries{
			series("inflight{job=a,pod=p1}", ts, v1), series("inflight{job=a,pod=p2}", ts, v2),
			nseries("nqueue{job=a,pod=p1}", gaugeAt(ts, nh(0, v1, 0, int64(v1)))),
			nseries("nqueue{job=a,pod=p2}", gaugeAt(ts, nh(0, v2, 0, int64(v2)))),
		}
	}
	for _, ts := range []float64{1, 6, 11, 16, 21, 26} { // windows 1, 1, 2, 2, 3, 3
		p.ingest(0, at(ts, 3, 4))
		p.flush(int64(ts) + 3)
	}
	if lagging {
		// The ring changed before window 4; the new owner has the inputs' last values (t=36)
		// in it, open, when their next samples (window 5) reach the old owner.
		p.changeOwner()
		p.ingest(1, at(36, 5, 6))
		p.flush(38)
		p.ingest(0, at(41, 7, 8))
	} else {
		// Window 4 is open at the old owner, with both inputs' last values (t=36) in it. The
		// ring changes; their next samples (window 5) reach the new owner first.
		p.ingest(0, at(36, 5, 6))
		p.flush(38)
		p.members[0].SetOwnership(all{})
		p.members[1].SetOwnership(all{owns: true, awaits: true})
		p.ingest(1, at(41, 7, 8))
	}
	p.members[0].HandOffNow()
	p.deliver()
	for _, wall := range []int64{43, 48, 53, 58} {
		p.flush(wall)
	}
	twoEmitWhatOneDoes(t, p.outs, p.singleOut)
}

// handoffPair is the handoff tests' cluster: two members, the first owning every output and
// the second none until changeOwner, on one clock with one aggregator alone fed everything
// they are, whose output theirs must equal (twoEmitWhatOneDoes). The first member's handoffs
// wait for deliver, which merges them into the second; the second never loses an output.
type handoffPair struct {
	t              *testing.T
	single         *Aggregator
	singleOut      *collectSink
	singleClk, clk *testClock
	members        [2]*Aggregator
	outs           [2]*collectSink
	handoffs       [][]byte
}

func newHandoffPair(t *testing.T, rs ...*rules.Rule) *handoffPair {
	t.Helper()
	p := &handoffPair{t: t, clk: &testClock{t: time.Unix(0, 0)}}
	p.single, p.singleOut, _, p.singleClk = newTestAggregator(t, 0, rs...)
	for i := range p.members {
		p.outs[i] = &collectSink{}
		p.members[i] = New(Options{Output: p.outs[i], Now: p.clk.now, HandOff: func(h *Handoff) {
			if b := h.Encode(func(uint64) bool { return true }); b != nil && i == 0 {
				p.handoffs = append(p.handoffs, b)
			}
		}})
		if err := p.members[i].SetRules(rs); err != nil {
			t.Fatal(err)
		}
	}
	p.members[0].SetOwnership(all{owns: true})
	p.members[1].SetOwnership(all{})
	return p
}

// ingest gives series to member m and to the single aggregator.
func (p *handoffPair) ingest(m int, series []prompb.TimeSeries) {
	p.single.Ingest(series)
	p.members[m].Ingest(series)
}

// flush moves both clocks to wall and flushes everyone.
func (p *handoffPair) flush(wall int64) {
	flushAt(p.single, p.singleClk, wall)
	p.clk.t = time.Unix(wall, 0)
	for _, m := range p.members {
		m.Flush(false)
	}
}

// changeOwner gives every output to the second member, which awaits the first's handoff: the
// first hands off at once, and it is delivered.
func (p *handoffPair) changeOwner() {
	p.moveOwnership()
	p.deliver()
}

// moveOwnership gives every output to the second member, which awaits the first's handoff,
// and has the first hand off at once: the handoffs are in p.handoffs, not yet delivered.
func (p *handoffPair) moveOwnership() {
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow()
}

// ownerRuns has member owner aggregate job a over five windows, its i-th sample worth v(i),
// while the other member runs the rule too (on job b), so that it writes the first windows
// of an output it gains. What the first member hands off meanwhile (of job b, when it is not
// the owner) is dropped.
func (p *handoffPair) ownerRuns(owner int, in func(job string, ts, v float64) []prompb.TimeSeries, v func(i int) float64) {
	for i, ts := range []float64{1, 11, 21, 31, 41} {
		p.ingest(owner, in("a", ts, v(i)))
		p.members[1-owner].Ingest(in("b", ts, 1))
		p.flush(int64(ts) + 3)
		p.handoffs = nil
	}
}

// tens is ownerRuns' v of a counter that grows by 10 a window: 10, 20...
func tens(i int) float64 { return float64(10 * (i + 1)) }

// deliver merges the first member's handoffs into the second.
func (p *handoffPair) deliver() {
	p.t.Helper()
	for _, b := range p.handoffs {
		if _, err := p.members[1].Merge(b); err != nil {
			p.t.Fatal(err)
		}
	}
	p.handoffs = nil
}

// twoEmitWhatOneDoes fails unless the points two members emitted, float and native, are
// those one member alone emitted, and lists the difference.
func twoEmitWhatOneDoes(t *testing.T, outs [2]*collectSink, single *collectSink) {
	t.Helper()
	twoEmitTheFloatsOneDoes(t, outs, single)
	twoEmitTheNativesOneDoes(t, outs, single)
}

// twoEmitTheFloatsOneDoes is twoEmitWhatOneDoes for rules of float outputs only.
func twoEmitTheFloatsOneDoes(t *testing.T, outs [2]*collectSink, single *collectSink) {
	t.Helper()
	twoEmitTheSame(t, "points", (*collectSink).points, outs, single)
}

// twoEmitTheNativesOneDoes is twoEmitWhatOneDoes for rules of native-histogram outputs only.
func twoEmitTheNativesOneDoes(t *testing.T, outs [2]*collectSink, single *collectSink) {
	t.Helper()
	twoEmitTheSame(t, "native histograms", (*collectSink).nativePoints, outs, single)
}

// twoEmitTheSame fails unless what points reads of two members' outputs is what it reads of
// one member's, and lists the difference.
func twoEmitTheSame(t *testing.T, what string, points func(*collectSink) []string, outs [2]*collectSink, single *collectSink) {
	t.Helper()
	got := append(points(outs[0]), points(outs[1])...)
	want := points(single)
	slices.Sort(got)
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("two members emitted %d %s, one emitted %d", len(got), what, len(want))
		for _, d := range diff(got, want) {
			t.Log(d)
		}
	}
}

// TestALateSampleAtTheNewOwnerDoesNotWriteAWindowTwice: the old owner closed and wrote
// window 4; the new owner, holding the output it gained, takes a late sample of window 4
// before the handoff comes. Its view of the input is then the later one, and the increase from
// the old owner's last sample is bridged into window 4, which the old owner has written: it
// must go into the running total instead, or window 4 has two writers (the cluster test saw
// a native histogram's window written by two members).
func TestALateSampleAtTheNewOwnerDoesNotWriteAWindowTwice(t *testing.T) {
	p := newHandoffPair(t, counterRule("req", "total"), histogramRule("nlat", "total"))
	at := func(ts, v float64) []prompb.TimeSeries {
		n := int64(v)
		return []prompb.TimeSeries{series("req{job=a,pod=p1}", ts, v), nseries("nlat{job=a,pod=p1}", hpoint{sec: ts, h: nh(0, v, 0, n)})}
	}
	for i, ts := range []float64{1, 11, 21, 31} {
		p.ingest(0, at(ts, float64(10*(i+1))))
		p.runsTheRule(ts)
		p.flush(int64(ts) + 3)
	}
	p.flush(43) // window 4 closes and is written by the old owner
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.ingest(1, at(39, 45)) // late: its increase counts in the next window
	p.members[0].HandOffNow()
	p.deliver()
	for i, ts := range []float64{41, 51} {
		p.ingest(1, at(ts, float64(50+10*i)))
		p.flush(int64(ts) + 3)
	}
	p.flush(63)
	twoEmitWhatOneDoes(t, p.outs, p.singleOut)
}

// runsTheRule has the second member run the rules of the tests of counters req and nlat (it
// owns nothing of them yet) from their first window on, so that it writes its first windows
// of an output it gains: a rule's first window at a member is never written.
func (p *handoffPair) runsTheRule(ts float64) {
	p.members[1].Ingest([]prompb.TimeSeries{series("req{job=b,pod=p9}", ts, 1), nseries("nlat{job=b,pod=p9}", hpoint{sec: ts, h: nh(0, 1, 0, 1)})})
}

// newStrayPair is the stray tests' handoffPair: counter req and native histogram nlat, whose
// job a the first member aggregates over three windows from inputs p1 and p2 (strayIn) while
// the second runs the rules too.
func newStrayPair(t *testing.T) *handoffPair {
	p := newHandoffPair(t, counterRule("req", "total"), histogramRule("nlat", "total"))
	for i, ts := range []float64{1, 11, 21} {
		p.ingest(0, append(strayIn("p1", ts, float64(10*(i+1))), strayIn("p2", ts, float64(5*(i+1)))...))
		p.runsTheRule(ts)
		p.flush(int64(ts) + 3)
	}
	return p
}

// strayIn is input pod of job a of the stray tests, worth v at ts: a req sample and an
// nlat histogram of v observations.
func strayIn(pod string, ts, v float64) []prompb.TimeSeries {
	n := int64(v)
	return []prompb.TimeSeries{series("req{job=a,pod="+pod+"}", ts, v), nseries("nlat{job=a,pod="+pod+"}", hpoint{sec: ts, h: nh(0, v, 0, n)})}
}

// strayBegins opens window 4 of a stray test: p1 still reaches the old owner; p2 comes from a
// sender on the new ring, a stray at the second member, which one member alone takes now
// too (now), or later.
func (p *handoffPair) strayBegins(now bool) {
	p.ingest(0, strayIn("p1", 31, 40))
	if now {
		p.single.Ingest(strayIn("p2", 31, 20))
	}
	p.members[1].IngestRoute(strayIn("p2", 31, 20), Route{Router: alone{}, Forwarded: true, Disagrees: true})
}

// newOwnerRuns ends a stray test: the second member, the owner now, takes windows 5 and 6
// of p1 and p2, and two members must have emitted what one did.
func (p *handoffPair) newOwnerRuns() {
	p.t.Helper()
	for i, ts := range []float64{41, 51} {
		p.ingest(1, append(strayIn("p1", ts, float64(50+10*i)), strayIn("p2", ts, float64(25+5*i))...))
		p.flush(int64(ts) + 3)
	}
	p.flush(63)
	twoEmitWhatOneDoes(p.t, p.outs, p.singleOut)
}

// TestAStrayTheRingGivesThisMemberWaitsForItsHandoff: a sender whose ring changed before this
// member's forwards it the samples of an output the sender says it owns now; this member's
// ring still gives the output to its old owner, so what they begin is a stray, handed off at
// the next flush. When this member's ring catches up before that flush, the stray is its
// own output, begun before the ring change: it must wait for the old owner's handoff like
// one begun after it, or it writes the window the old owner writes too (the cluster test saw
// windows with two writers around a leave) from a part of the inputs.
func TestAStrayTheRingGivesThisMemberWaitsForItsHandoff(t *testing.T) {
	p := newStrayPair(t)
	p.strayBegins(false)
	// The second member's ring catches up; the old owner writes window 4, then hands off.
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.flush(43)
	// The old owner wrote window 4 without p2's sample, which reached the other member: its
	// increase counts in window 5, as a sample that comes after its window closed does.
	p.single.Ingest(strayIn("p2", 31, 20))
	p.members[0].SetOwnership(all{})
	p.members[0].HandOffNow()
	p.deliver()
	p.newOwnerRuns()
}

// TestAStrayTheRingGivesThisMemberRecordsTheFirstSamplesOfNewInputs: as above, but before
// the next window close (which makes the stray wait for the old owner's handoff) an input
// the stray lacks reaches this member from a sender on the new ring. Its first sample is a
// baseline, and the old owner's handoff must bridge its last sample of the input to it: taken
// for an input only this member knew, the increase in between was lost for good (the
// cluster test lost it in the window of a leave).
func TestAStrayTheRingGivesThisMemberRecordsTheFirstSamplesOfNewInputs(t *testing.T) {
	p := newStrayPair(t)
	p.strayBegins(true)
	// This member's ring catches up, and p1's next sample, in the same window, comes here.
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.ingest(1, strayIn("p1", 35, 47))
	// The old owner hands off before the window closes.
	p.members[0].SetOwnership(all{})
	p.members[0].HandOffNow()
	p.deliver()
	p.newOwnerRuns()
}

// TestAStrayTheRingGivesThisMemberKeepsItsFirstSamplesThroughAStrayHandoff: as above, but
// what comes before the next window close is a stray the old owner began for a lagging
// sender after its handoff, delivered before that handoff. Merged into a stray output not yet
// waiting, it released it, and the first samples of its inputs were forgotten before the old
// owner's handoff could bridge to them.
func TestAStrayTheRingGivesThisMemberKeepsItsFirstSamplesThroughAStrayHandoff(t *testing.T) {
	p := newStrayPair(t)
	p.strayBegins(true)
	p.moveOwnership()
	main := p.handoffs
	p.handoffs = nil
	p.ingest(0, strayIn("p1", 35, 47)) // a lagging sender: a stray at the old owner
	p.members[0].HandOffNow()
	p.handoffs = append(p.handoffs, main...)
	p.deliver()
	p.newOwnerRuns()
}

// TestFirstSampleCountIsNotCountedTwiceAcrossAHandoff: with first_sample: count, the first
// sample of an input at the new owner, in an output held for the handoff, is a baseline: the
// handoff's bridge from the old owner's last sample counts the increase to it. Counted in
// full as well (when the handoff's merge ends the wait), its whole value counted twice.
func TestFirstSampleCountIsNotCountedTwiceAcrossAHandoff(t *testing.T) {
	for _, r := range firstSampleCountRules() {
		t.Run(r.Name, func(t *testing.T) {
			p := newHandoffPair(t, r)
			in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(r, job, ts, v) }
			for i, ts := range []float64{1, 11, 21, 31, 41} {
				p.ingest(0, in("a", ts, float64(1000+10*i)))
				p.members[1].Ingest(in("b", ts, 1)) // it runs the rule too
				p.flush(int64(ts) + 3)
			}
			p.members[0].SetOwnership(all{})
			p.members[1].SetOwnership(all{owns: true, awaits: true})
			p.ingest(1, in("a", 51, 1050)) // held at the new owner; the rule has run longer than its staleness
			p.members[0].HandOffNow()
			p.deliver()
			for i, ts := range []float64{61, 71} {
				p.ingest(1, in("a", ts, float64(1060+10*i)))
				p.flush(int64(ts) + 3)
			}
			p.flush(83)
			twoEmitLikeOne(t, r, p.outs, p.singleOut)
		})
	}
}

// TestAStaleMarkerInAHandoffEndsTheInput: the old owner's view of an input, later than the
// new owner's, ends in a stale marker (a sender still on the old ring sent it there): merged,
// it must end the input at the next close, as a marker ingested here would, not leave it
// alive until its staleness period.
func TestAStaleMarkerInAHandoffEndsTheInput(t *testing.T) {
	p := newHandoffPair(t, counterRule("req", "total"))
	x := func(ts, v float64) []prompb.TimeSeries {
		return []prompb.TimeSeries{series("req{job=a,pod=p1}", ts, v)}
	}
	for i, ts := range []float64{1, 11, 21} {
		p.ingest(0, x(ts, float64(10*(i+1))))
		p.flush(int64(ts) + 3)
	}
	p.changeOwner()
	p.ingest(1, x(31, 40))
	p.flush(34)
	p.ingest(0, x(36, 45))
	p.ingest(0, x(38, stale))
	p.members[0].HandOffNow()
	p.deliver()
	for _, wall := range []int64{44, 54, 64, 74} {
		p.flush(wall)
	}
	twoEmitTheFloatsOneDoes(t, p.outs, p.singleOut)
}

// TestAHandedOffOutputLeavesNoExemplarsBehind: the exemplars kept for an output go with it
// when it is handed off; left in the shard, they stayed for good.
func TestAHandedOffOutputLeavesNoExemplarsBehind(t *testing.T) {
	r := counterRule("req", "total")
	r.Exemplars = 2
	clk := &testClock{t: time.Unix(0, 0)}
	a := New(Options{Output: &collectSink{}, Now: clk.now, HandOff: func(*Handoff) {}})
	if err := a.SetRules([]*rules.Rule{r}); err != nil {
		t.Fatal(err)
	}
	s := series("req{job=a,pod=p1}", 1, 10)
	s.Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: 1000}}
	a.Ingest([]prompb.TimeSeries{s})
	a.SetOwnership(all{})
	a.HandOffNow()
	for i := range a.rules[0].shards {
		if rs := &a.rules[0].shards[i]; len(rs.outputIdx) == 0 && len(rs.exemplars) > 0 {
			t.Errorf("shard %d has no output and keeps %d exemplar sets", i, len(rs.exemplars))
		}
	}
}

// TestANewOwnerBehindDoesNotWriteTheOldOwnersLastWindow: the old owner's flush tick closes
// and writes window 3; the ring changes right after, and the new owner, whose tick comes a
// moment later, merges the handoff (closed = 3) before it has closed window 3 itself. Its
// next flush closes window 3 for the output too: it must move the total on without writing
// the window a second time (Prometheus refuses a second, different sample at a timestamp).
// The sample of window 3 that reached the new owner first counts from window 4 on: window 3
// is the old owner's, written without it.
func TestANewOwnerBehindDoesNotWriteTheOldOwnersLastWindow(t *testing.T) {
	p := newHandoffPair(t, counterRule("req", "total", "increase"))
	x := func(ts, v float64) []prompb.TimeSeries {
		return []prompb.TimeSeries{series("req{job=a,pod=p1}", ts, v)}
	}
	for i, ts := range []float64{1, 11, 21} {
		p.ingest(0, x(ts, float64(10*(i+1))))
		p.members[1].Ingest([]prompb.TimeSeries{series("req{job=b,pod=p9}", ts, 1)}) // it runs the rule too
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.ingest(1, x(29, 35)) // reaches the new owner: held
	flushAt(p.single, p.singleClk, 33)
	p.clk.t = time.Unix(33, 0)
	p.members[0].SetOwnership(all{owns: true}) // it still owned the output at its tick
	p.members[0].Flush(false)
	p.members[0].SetOwnership(all{})
	p.members[0].HandOffNow()
	p.deliver()
	p.members[1].Flush(false) // the new owner's tick, a moment later
	for i, ts := range []float64{41, 51} {
		p.ingest(1, x(ts, float64(50+10*i)))
		p.flush(int64(ts) + 3)
	}
	got := append(p.outs[0].points(), p.outs[1].points()...)
	slices.Sort(got)
	// Window 3 once, by the old owner, without the sample of t=29 (35), which the new owner
	// adds to the running total (as merge does with what it holds of a written window).
	want := []string{"req:increase{job=a}@20=10", "req:increase{job=a}@30=10", "req:increase{job=a}@40=0", "req:increase{job=a}@50=15",
		"req{job=a}@20=10", "req{job=a}@30=20", "req{job=a}@40=25", "req{job=a}@50=40"}
	if !slices.Equal(got, want) {
		t.Errorf("two members emitted %v\nwant %v", got, want)
	}
	for _, pt := range p.singleOut.points() {
		if strings.HasPrefix(pt, "req{") && !strings.Contains(pt, "@30=") && !slices.Contains(got, pt) {
			t.Errorf("one aggregator emitted %s, and the two members did not: the total did not catch up", pt)
		}
	}
}

// TestAHandedOffOutputLeavesNoFirstSamplesBehind: an input begun in an output held for a
// handoff ends while the output waits; the ring then gives the output to another member
// before the handoff or the timeout. The input's first sample goes with the output; left
// behind, it stayed for good.
func TestAHandedOffOutputLeavesNoFirstSamplesBehind(t *testing.T) {
	clk := &testClock{t: time.Unix(0, 0)}
	a := New(Options{Output: &collectSink{}, Now: clk.now, HandOff: func(*Handoff) {}})
	if err := a.SetRules([]*rules.Rule{counterRule("req", "total"), histogramRule("nlat", "total")}); err != nil {
		t.Fatal(err)
	}
	a.SetOwnership(all{owns: true, awaits: true})
	a.Ingest([]prompb.TimeSeries{series("req{job=a,pod=p1}", 1, 10), series("req{job=a,pod=p2}", 1, 10),
		nseries("nlat{job=a,pod=p1}", hpoint{sec: 1, h: nh(0, 1, 0, 1)}), nseries("nlat{job=a,pod=p2}", hpoint{sec: 1, h: nh(0, 1, 0, 1)})})
	a.Ingest([]prompb.TimeSeries{series("req{job=a,pod=p1}", 2, stale), nseries("nlat{job=a,pod=p1}", hpoint{sec: 2})})
	flushAt(a, clk, 14) // p1 ends; the outputs are still held
	a.SetOwnership(all{})
	a.HandOffNow()
	for _, r := range a.rules {
		for i := range r.shards {
			rs := &r.shards[i]
			if len(rs.firsts) > 0 || rs.native != nil && len(rs.native.firsts) > 0 {
				t.Errorf("rule %s keeps first samples after its outputs were handed off", r.rule.Name)
			}
		}
	}
}

// TestAnInputThatEndedAtTheNewOwnerStaysEnded: an input begins at the new owner, in an output
// held for the handoff, and ends there (its target went away) before the old owner's
// handoff comes. The merge must count the increase from the old owner's last sample to the
// new owner's first, and must not bring the input back from the old owner's older view.
func TestAnInputThatEndedAtTheNewOwnerStaysEnded(t *testing.T) {
	p := newHandoffPair(t, counterRule("req", "total"))
	x := func(pod string, ts, v float64) prompb.TimeSeries { return series("req{job=a,pod="+pod+"}", ts, v) }
	for i, ts := range []float64{1, 11, 21} {
		p.ingest(0, []prompb.TimeSeries{x("p1", ts, float64(10*(i+1))), x("p2", ts, float64(100*(i+1)))})
		p.members[1].Ingest([]prompb.TimeSeries{series("req{job=b,pod=p9}", ts, 1)}) // it runs the rule too
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow() // slow to arrive
	p.ingest(1, []prompb.TimeSeries{x("p1", 31, 40), x("p2", 31, 400)})
	p.ingest(1, []prompb.TimeSeries{x("p1", 33, stale)})
	p.flush(34)
	p.ingest(1, []prompb.TimeSeries{x("p2", 41, 500)})
	p.flush(44) // window 4 closes at the new owner, which still holds the output: p1 ends
	p.deliver()
	for i, ts := range []float64{51, 61, 71} {
		p.ingest(1, []prompb.TimeSeries{x("p2", ts, float64(600+100*i))})
		p.flush(int64(ts) + 3)
	}
	twoEmitTheFloatsOneDoes(t, p.outs, p.singleOut)
}

// TestAnInputThatEndsAndReturnsWhileWaitingKeepsItsFirstSample: an input begun at the new
// owner while it waits for the handoff (held, or a stray its ring has just given it) ends and
// comes back before the old owner's handoff is merged. The handoff must bridge the old
// owner's last sample to the input's first sample here, not to the one it came back with:
// that lost the increase to the first (window 4 was 10 short) and counted the jump across
// the gap, which one member alone takes for a new baseline.
func TestAnInputThatEndsAndReturnsWhileWaitingKeepsItsFirstSample(t *testing.T) {
	for _, stray := range []bool{false, true} {
		t.Run(fmt.Sprintf("stray=%v", stray), func(t *testing.T) {
			p := newHandoffPair(t, counterRule("req", "total"))
			x := func(pod string, ts, v float64) prompb.TimeSeries { return series("req{job=a,pod="+pod+"}", ts, v) }
			for i, ts := range []float64{1, 11, 21} {
				p.ingest(0, []prompb.TimeSeries{x("p1", ts, float64(10*(i+1))), x("p2", ts, float64(100*(i+1)))})
				p.members[1].Ingest([]prompb.TimeSeries{series("req{job=b,pod=p9}", ts, 1)})
				p.flush(int64(ts) + 3)
			}
			first := []prompb.TimeSeries{x("p1", 31, 40), x("p2", 31, 400)}
			if stray {
				p.single.Ingest(first)
				p.members[1].IngestRoute(first, Route{Router: alone{}, Forwarded: true, Disagrees: true})
			}
			p.members[0].SetOwnership(all{})
			p.members[1].SetOwnership(all{owns: true, awaits: true})
			p.members[0].HandOffNow() // slow to arrive
			if !stray {
				p.ingest(1, first)
			}
			p.ingest(1, []prompb.TimeSeries{x("p1", 33, stale)})
			p.flush(34)
			p.ingest(1, []prompb.TimeSeries{x("p2", 41, 500)})
			p.flush(44)                                                         // p1 ends at the new owner, which still holds the output
			p.ingest(1, []prompb.TimeSeries{x("p1", 45, 45), x("p2", 45, 550)}) // p1 is back
			p.deliver()
			for i, ts := range []float64{51, 61, 71} {
				p.ingest(1, []prompb.TimeSeries{x("p1", ts, float64(50+10*i)), x("p2", ts, float64(600+100*i))})
				p.flush(int64(ts) + 3)
			}
			twoEmitTheFloatsOneDoes(t, p.outs, p.singleOut)
		})
	}
}

// TestANativeInputThatEndsAndReturnsWhileWaitingKeepsItsFirstSample is the test above for
// native histograms.
func TestANativeInputThatEndsAndReturnsWhileWaitingKeepsItsFirstSample(t *testing.T) {
	p := newHandoffPair(t, histogramRule("nlat", "total"))
	x := func(pod string, ts, v float64) prompb.TimeSeries {
		return nseries("nlat{job=a,pod="+pod+"}", at(ts, nh(0, v, 0, int64(v))))
	}
	end := func(pod string, ts float64) prompb.TimeSeries {
		return nseries("nlat{job=a,pod="+pod+"}", hpoint{sec: ts})
	}
	for i, ts := range []float64{1, 11, 21} {
		p.ingest(0, []prompb.TimeSeries{x("p1", ts, float64(10*(i+1))), x("p2", ts, float64(100*(i+1)))})
		p.members[1].Ingest([]prompb.TimeSeries{nseries("nlat{job=b,pod=p9}", at(ts, nh(0, 1, 0, 1)))})
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow()
	p.ingest(1, []prompb.TimeSeries{x("p1", 31, 40), x("p2", 31, 400)})
	p.ingest(1, []prompb.TimeSeries{end("p1", 33)})
	p.flush(34)
	p.ingest(1, []prompb.TimeSeries{x("p2", 41, 500)})
	p.flush(44)
	p.ingest(1, []prompb.TimeSeries{x("p1", 45, 45), x("p2", 45, 550)})
	p.deliver()
	for i, ts := range []float64{51, 61, 71} {
		p.ingest(1, []prompb.TimeSeries{x("p1", ts, float64(50+10*i)), x("p2", ts, float64(600+100*i))})
		p.flush(int64(ts) + 3)
	}
	twoEmitTheNativesOneDoes(t, p.outs, p.singleOut)
}

// TestAStrayHandedOnBeforeTheOldOwnersHandoffDoesNotEndTheWait: the old owner's handoff of
// what a sender still on the old ring began there after the change (a stray, handed on at
// its next flush) reaches the new owner before the handoff taken at the change does (that
// one is large, and retried). The stray is a part of the state the new owner waits for: it
// must not release the output, which would be written without the old owner's running
// total (a reset downstream), and its inputs' first samples must still be there for the
// old owner's handoff to bridge to.
func TestAStrayHandedOnBeforeTheOldOwnersHandoffDoesNotEndTheWait(t *testing.T) {
	p := newHandoffPair(t, counterRule("req", "total"))
	x := func(pod string, ts, v float64) prompb.TimeSeries { return series("req{job=a,pod="+pod+"}", ts, v) }
	for i, ts := range []float64{1, 11, 21} {
		p.ingest(0, []prompb.TimeSeries{x("p1", ts, float64(10*(i+1))), x("p2", ts, float64(100*(i+1)))})
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow()
	taken := p.handoffs // the handoff taken at the change, slow to arrive
	p.handoffs = nil
	p.ingest(1, []prompb.TimeSeries{x("p1", 31, 40)})  // held at the new owner
	p.ingest(0, []prompb.TimeSeries{x("p2", 31, 400)}) // a lagging sender: a stray at the old owner
	p.members[0].HandOffNow()
	p.deliver() // the stray arrives first
	p.flush(34)
	for i, ts := range []float64{41, 51} {
		p.ingest(1, []prompb.TimeSeries{x("p1", ts, float64(50+10*i)), x("p2", ts, float64(500+100*i))})
		p.flush(int64(ts) + 3)
		if i == 0 {
			p.handoffs = taken // after the new owner closed window 4
			p.deliver()
		}
	}
	p.flush(63)
	twoEmitTheFloatsOneDoes(t, p.outs, p.singleOut)
}

// TestAWindowWithoutSamplesClosedWhileWaitingIsWritten: the new owner closes a window while
// it holds a counter output for the handoff, and neither member has a sample of the output
// in it (its inputs are scraped every 20 s). Once the handoff is merged, that window must be
// written as one member writes it, with the running total, not skipped for holding no
// samples.
func TestAWindowWithoutSamplesClosedWhileWaitingIsWritten(t *testing.T) {
	p := newHandoffPair(t, counterRule("req", "total"))
	for i, ts := range []float64{1, 11, 21} {
		p.ingest(0, []prompb.TimeSeries{series("req{job=a,pod=p1}", ts, float64(10*(i+1)))})
		p.members[1].Ingest([]prompb.TimeSeries{series("req{job=b,pod=p9}", ts, 1)}) // it runs the rule too
		p.flush(int64(ts) + 3)
	}
	p.flush(34) // window 3 closes at the old owner; window 4 has no sample of job=a
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow() // its delivery takes a few seconds
	p.ingest(1, []prompb.TimeSeries{series("req{job=a,pod=p1}", 41, 40)})
	p.flush(43) // the new owner closes window 4, holding job=a
	p.deliver()
	p.ingest(1, []prompb.TimeSeries{series("req{job=a,pod=p1}", 51, 50)})
	p.flush(53)
	p.flush(63)
	twoEmitTheFloatsOneDoes(t, p.outs, p.singleOut)
}

// TestANativeWindowWithoutSamplesClosedWhileWaitingIsWritten is the test above for a native
// histogram counter.
func TestANativeWindowWithoutSamplesClosedWhileWaitingIsWritten(t *testing.T) {
	p := newHandoffPair(t, histogramRule("nlat", "total"))
	l := func(ts, v float64) []prompb.TimeSeries {
		return []prompb.TimeSeries{nseries("nlat{job=a,pod=p1}", at(ts, nh(0, v, 0, int64(v))))}
	}
	for i, ts := range []float64{1, 11, 21} {
		p.ingest(0, l(ts, float64(10*(i+1))))
		p.members[1].Ingest([]prompb.TimeSeries{nseries("nlat{job=b,pod=p9}", at(ts, nh(0, 1, 0, 1)))})
		p.flush(int64(ts) + 3)
	}
	p.flush(34)
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow()
	p.ingest(1, l(41, 40))
	p.flush(43)
	p.deliver()
	p.ingest(1, l(51, 50))
	p.flush(53)
	p.flush(63)
	twoEmitTheNativesOneDoes(t, p.outs, p.singleOut)
}

// TestAGaugeInputOnlyTheOldOwnerHadCountsInTheWindowsClosedBeforeTheMerge: the new owner
// closes a window while it waits for the handoff; the gauge inputs that only the old owner
// has must count in it once the handoff is merged, as their values would have at its close.
func TestAGaugeInputOnlyTheOldOwnerHadCountsInTheWindowsClosedBeforeTheMerge(t *testing.T) {
	p := newHandoffPair(t, gaugeRule("inflight", "sum", "count"))
	for _, ts := range []float64{1, 11, 21, 31} {
		p.ingest(0, []prompb.TimeSeries{series("inflight{job=a,pod=p1}", ts, 3), series("inflight{job=a,pod=p2}", ts, 4)})
		p.members[1].Ingest([]prompb.TimeSeries{series("inflight{job=b,pod=p9}", ts, 1)}) // it runs the rule too
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow()
	p.flush(43) // the new owner closes window 4 before the handoff arrives
	p.deliver()
	p.ingest(1, []prompb.TimeSeries{series("inflight{job=a,pod=p1}", 51, 5), series("inflight{job=a,pod=p2}", 51, 6)})
	p.flush(53)
	p.flush(63)
	twoEmitTheFloatsOneDoes(t, p.outs, p.singleOut)
}

// TestANativeGaugeInputOnlyTheOldOwnerHadCountsInTheWindowsClosedBeforeTheMerge is the test
// above for native gauge histograms.
func TestANativeGaugeInputOnlyTheOldOwnerHadCountsInTheWindowsClosedBeforeTheMerge(t *testing.T) {
	p := newHandoffPair(t, gaugeRule("nqueue", "sum", "count"))
	q := func(pod string, ts, v float64) prompb.TimeSeries {
		return nseries("nqueue{job=a,pod="+pod+"}", gaugeAt(ts, nh(0, v, 0, int64(v))))
	}
	for _, ts := range []float64{1, 11, 21, 31} {
		p.ingest(0, []prompb.TimeSeries{q("p1", ts, 3), q("p2", ts, 4)})
		p.members[1].Ingest([]prompb.TimeSeries{nseries("nqueue{job=b,pod=p9}", gaugeAt(ts, nh(0, 1, 0, 1)))})
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow()
	p.flush(43)
	p.deliver()
	p.ingest(1, []prompb.TimeSeries{q("p1", 51, 5), q("p2", 51, 6)})
	p.flush(53)
	p.flush(63)
	twoEmitWhatOneDoes(t, p.outs, p.singleOut)
}

// TestAMemberRestartedWhileItWaitsForAHandoffWaitsAgain: the new owner checkpoints while it
// holds an output for the handoff, and restarts from that checkpoint before the handoff
// comes. The checkpoint holds what it waited for (held, and its inputs' first samples), so
// it goes on waiting instead of writing the output from its own part (a reset downstream),
// and the old owner's handoff, sent again, bridges as it would have.
func TestAMemberRestartedWhileItWaitsForAHandoffWaitsAgain(t *testing.T) {
	p := newHandoffPair(t, counterRule("req", "total"), histogramRule("nlat", "total"))
	x := func(ts, v float64) []prompb.TimeSeries {
		return []prompb.TimeSeries{series("req{job=a,pod=p1}", ts, v), nseries("nlat{job=a,pod=p1}", at(ts, nh(0, v, 0, int64(v))))}
	}
	for i, ts := range []float64{1, 11, 21} {
		p.ingest(0, x(ts, float64(100*(i+1))))
		p.members[1].Ingest([]prompb.TimeSeries{series("req{job=b,pod=p9}", ts, 1), nseries("nlat{job=b,pod=p9}", at(ts, nh(0, 1, 0, 1)))})
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow() // pending at the old owner
	p.ingest(1, x(31, 400))   // held at the new owner
	var ckpt bytes.Buffer
	if err := p.members[1].Checkpoint(&ckpt); err != nil {
		t.Fatal(err)
	}
	out := &collectSink{}
	b := New(Options{Output: out, Now: p.clk.now})
	if err := b.SetRules([]*rules.Rule{counterRule("req", "total"), histogramRule("nlat", "total")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Restore(bytes.NewReader(ckpt.Bytes())); err != nil {
		t.Fatal(err)
	}
	b.SetOwnership(all{owns: true, awaits: true}) // a restart waits for handoffs too
	p.members[1], p.outs[1] = b, out
	p.flush(34)
	p.ingest(1, x(41, 500))
	p.flush(44)
	p.deliver() // the old owner's handoff, sent again
	p.ingest(1, x(51, 600))
	p.flush(54)
	p.flush(63)
	twoEmitWhatOneDoes(t, p.outs, p.singleOut)
}

// TestAnOutputMovedTwiceBeforeItsFirstHandoffCameIsWrittenOnce: the output moves twice in
// quick succession, Z to A to B, and Z's handoff reaches A after A has handed the output
// (held, waiting for Z's state) on to B. A closed a window while it held the output without
// writing it: its handoff must not claim that window as written, or nobody writes it; and B
// must keep the first samples of the inputs A began, to bridge Z's last samples to them.
func TestAnOutputMovedTwiceBeforeItsFirstHandoffCameIsWrittenOnce(t *testing.T) {
	rule := counterRule("req", "total")
	single, singleOut, _, singleClk := newTestAggregator(t, 0, rule)
	clk := &testClock{t: time.Unix(0, 0)}
	var pending [3][][]byte // handoffs taken out by each member
	var m [3]*Aggregator
	var outs [3]*collectSink
	for i := range m {
		outs[i] = &collectSink{}
		m[i] = New(Options{Output: outs[i], Now: clk.now, HandOff: func(h *Handoff) {
			if b := h.Encode(func(uint64) bool { return true }); b != nil {
				pending[i] = append(pending[i], b)
			}
		}})
		if err := m[i].SetRules([]*rules.Rule{rule}); err != nil {
			t.Fatal(err)
		}
	}
	const Z, A, B = 0, 1, 2
	m[Z].SetOwnership(all{owns: true})
	m[A].SetOwnership(all{})
	m[B].SetOwnership(all{})
	deliver := func(from, to int) {
		for _, b := range pending[from] {
			if _, err := m[to].Merge(b); err != nil {
				t.Fatal(err)
			}
		}
		pending[from] = nil
	}
	ingest := func(to int, ts, v float64) {
		s := []prompb.TimeSeries{series("req{job=a,pod=p1}", ts, v)}
		single.Ingest(s)
		m[to].Ingest(s)
	}
	runs := func(ts float64) { // A and B run the rule (outputs they do not own, discarded)
		for _, i := range []int{A, B} {
			m[i].Ingest([]prompb.TimeSeries{series("req{job=b,pod=p9}", ts, 1)})
		}
	}
	flush := func(wall int64) {
		flushAt(single, singleClk, wall)
		clk.t = time.Unix(wall, 0)
		for i := range m {
			m[i].Flush(false)
		}
		pending[A], pending[B] = nil, nil // their own job=b outputs: nobody's
	}
	for i, ts := range []float64{1, 11, 21} {
		ingest(Z, ts, float64(10*(i+1)))
		runs(ts)
		flush(int64(ts) + 3)
	}
	// Ring change 1: Z -> A. Z's handoff is slow to arrive.
	m[Z].SetOwnership(all{})
	m[A].SetOwnership(all{owns: true, awaits: true})
	m[Z].HandOffNow()
	ingest(A, 31, 40) // held at A
	flush(34)         // A closes window 3 while it holds the output
	// Ring change 2: A -> B.
	m[A].SetOwnership(all{})
	m[B].SetOwnership(all{owns: true, awaits: true})
	m[A].HandOffNow()
	deliver(A, B)
	deliver(Z, A) // Z's ring said A: A merges it, and hands it on
	m[A].HandOffNow()
	deliver(A, B)
	for i, ts := range []float64{41, 51} {
		ingest(B, ts, float64(50+10*i))
		flush(int64(ts) + 3)
	}
	flush(63)
	got := append(append(outs[Z].points(), outs[A].points()...), outs[B].points()...)
	want := singleOut.points()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("three members emitted %d points, one %d", len(got), len(want))
		for _, p := range diff(got, want) {
			t.Log(p)
		}
	}
}

// TestANativeInputThatEndedAtTheNewOwnerStaysEnded is TestAnInputThatEndedAtTheNewOwnerStaysEnded
// for native histogram counters.
func TestANativeInputThatEndedAtTheNewOwnerStaysEnded(t *testing.T) {
	p := newHandoffPair(t, histogramRule("nlat", "total"))
	x := func(pod string, ts, v float64) prompb.TimeSeries {
		return nseries("nlat{job=a,pod="+pod+"}", at(ts, nh(0, v, 0, int64(v))))
	}
	end := func(pod string, ts float64) prompb.TimeSeries {
		return nseries("nlat{job=a,pod="+pod+"}", hpoint{sec: ts})
	}
	for i, ts := range []float64{1, 11, 21} {
		p.ingest(0, []prompb.TimeSeries{x("p1", ts, float64(10*(i+1))), x("p2", ts, float64(100*(i+1)))})
		p.members[1].Ingest([]prompb.TimeSeries{nseries("nlat{job=b,pod=p9}", at(ts, nh(0, 1, 0, 1)))}) // it runs the rule too
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow() // slow to arrive
	p.ingest(1, []prompb.TimeSeries{x("p1", 31, 40), x("p2", 31, 400)})
	p.ingest(1, []prompb.TimeSeries{end("p1", 33)})
	p.flush(34)
	p.ingest(1, []prompb.TimeSeries{x("p2", 41, 500)})
	p.flush(44) // window 4 closes at the new owner, which still holds the output: p1 ends
	p.deliver()
	for i, ts := range []float64{51, 61, 71} {
		p.ingest(1, []prompb.TimeSeries{x("p2", ts, float64(600+100*i))})
		p.flush(int64(ts) + 3)
	}
	twoEmitTheNativesOneDoes(t, p.outs, p.singleOut)
}

// TestAGaugeInputThatEndedAtTheNewOwnerStaysEnded is TestAnInputThatEndedAtTheNewOwnerStaysEnded
// for a gauge: the old owner's last value fills the windows up to the new owner's first
// sample, those the new owner closed while it waited included.
func TestAGaugeInputThatEndedAtTheNewOwnerStaysEnded(t *testing.T) {
	p := newHandoffPair(t, gaugeRule("inflight", "sum", "count"))
	x := func(pod string, ts, v float64) prompb.TimeSeries { return series("inflight{job=a,pod="+pod+"}", ts, v) }
	for _, ts := range []float64{1, 11, 21} {
		p.ingest(0, []prompb.TimeSeries{x("p1", ts, 3), x("p2", ts, 4)})
		p.members[1].Ingest([]prompb.TimeSeries{series("inflight{job=b,pod=p9}", ts, 1)}) // it runs the rule too
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true, awaits: true})
	p.members[0].HandOffNow() // slow to arrive
	p.flush(34)               // window 3 closes at the new owner, which holds the output
	p.ingest(1, []prompb.TimeSeries{x("p1", 41, 5), x("p2", 41, 6)})
	p.ingest(1, []prompb.TimeSeries{x("p1", 43, stale)})
	p.flush(44)
	p.flush(54) // window 5: p1 ends
	p.deliver()
	for _, ts := range []float64{61, 71} {
		p.ingest(1, []prompb.TimeSeries{x("p2", ts, 7)})
		p.flush(int64(ts) + 3)
	}
	twoEmitTheFloatsOneDoes(t, p.outs, p.singleOut)
}

// TestACounterOutputBegunWhileWaitingIsWrittenInEveryWindowWhenTheWaitEnds: a member that
// starts while the others run (or restarts on its last ring) holds the outputs it begins for
// a handoff that may come. When none comes (no other member had them), the wait ends and the
// output is written from its own state: in every window from its first one, as a member that
// never waited writes it, not only in the windows where it had samples (the cluster test saw
// the windows after its inputs' last samples missing downstream for good).
func TestACounterOutputBegunWhileWaitingIsWrittenInEveryWindowWhenTheWaitEnds(t *testing.T) {
	for _, rule := range counterRules() {
		t.Run(rule.Name, func(t *testing.T) {
			p := newHandoffPair(t, rule)
			p.members[0].SetOwnership(all{})
			p.members[1].SetOwnership(all{owns: true, awaits: true})
			in := func(ts, v float64) []prompb.TimeSeries { return ruleInput(rule, "a", ts, v) }
			for i, ts := range []float64{1, 11, 21, 31} {
				p.ingest(1, in(ts, float64(10*(i+1))))
				p.flush(int64(ts) + 3)
			}
			p.flush(44) // window 4 closes while it waits, without a sample
			p.flush(54)
			p.members[1].SetOwnership(all{owns: true}) // the handoff timeout is over
			p.flush(64)
			p.flush(74)
			twoEmitLikeOne(t, rule, p.outs, p.singleOut)
		})
	}
}

// TestAFirstSampleThatCountsIsCountedWhenTheWaitEndsWithoutAHandoff: a new input whose
// created timestamp says it started from zero while the rule watched counts its first sample
// in full. One that begins while its output waits for a handoff is kept as a baseline, for
// the previous owner's view to bridge to; when no handoff brings a view of it (a new
// series: the previous owner never had it), it must count when the wait ends, or the
// output is short of its first value for good.
func TestAFirstSampleThatCountsIsCountedWhenTheWaitEndsWithoutAHandoff(t *testing.T) {
	for _, rule := range counterRules() {
		t.Run(rule.Name, func(t *testing.T) {
			p := newHandoffPair(t, rule)
			p.members[0].SetOwnership(all{})
			p.members[1].SetOwnership(all{owns: true})
			in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
			for i, ts := range []float64{1, 11, 21, 31, 41} {
				p.ingest(1, in("b", ts, float64(10*(i+1))))
				p.flush(int64(ts) + 3)
			}
			// A ring change: the member waits for handoffs; job=a begins meanwhile, created
			// at 50 s.
			p.members[1].SetOwnership(all{owns: true, awaits: true})
			for i, ts := range []float64{51, 61} {
				p.ingest(1, append(in("b", ts, float64(60+10*i)), createdInput(rule, "a", ts, float64(100+10*i), 50)...))
				p.flush(int64(ts) + 3)
			}
			p.members[1].SetOwnership(all{owns: true}) // the wait is over: no handoff came
			for i, ts := range []float64{71, 81} {
				p.ingest(1, append(in("b", ts, float64(80+10*i)), createdInput(rule, "a", ts, float64(120+10*i), 50)...))
				p.flush(int64(ts) + 3)
			}
			p.flush(94)
			twoEmitLikeOne(t, rule, p.outs, p.singleOut)
		})
	}
}

// TestAHandoffOfAnotherMembersOutputsIsHeldForOthersUntilTheNextFlush: a handoff split by an
// older ring may bring outputs this member does not own; it hands them on at its next flush
// tick, and until then it says it holds state for others, so that a peer waiting for a
// handoff (hashring's settle) does not take it as having handed everything over.
func TestAHandoffOfAnotherMembersOutputsIsHeldForOthersUntilTheNextFlush(t *testing.T) {
	p := newHandoffPair(t, counterRule("req", "total"))
	for i, ts := range []float64{1, 11} {
		p.ingest(0, []prompb.TimeSeries{series("req{job=a,pod=p1}", ts, float64(10*(i+1)))})
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{})
	p.members[0].HandOffNow()
	if p.members[1].HoldsForOthers() {
		t.Fatal("holds state for others before any came")
	}
	p.deliver() // the second member owns nothing either: the ring changed again meanwhile
	if !p.members[1].HoldsForOthers() {
		t.Fatal("a merged handoff of outputs another member owns is not held for others")
	}
	p.members[1].Flush(false)
	if p.members[1].HoldsForOthers() {
		t.Fatal("still holds state for others after the flush tick handed it on")
	}
	p.members[0].SetOwnership(all{owns: true})
	p.ingest(0, []prompb.TimeSeries{series("req{job=b,pod=p1}", 21, 5)})
	p.flush(24)
	p.members[0].SetOwnership(all{})
	p.members[1].SetOwnership(all{owns: true})
	p.members[0].HandOffNow()
	if len(p.handoffs) == 0 {
		t.Fatal("nothing handed off")
	}
	p.deliver()
	if p.members[1].HoldsForOthers() {
		t.Fatal("a merged handoff of its own outputs is held for others")
	}
}

// ruleInput is one sample of input job=job,pod=p1 of rule, a float or, for a native
// histogram rule, a histogram of v observations.
func ruleInput(rule *rules.Rule, job string, ts, v float64) []prompb.TimeSeries {
	if rule.Type == rules.Histogram {
		return []prompb.TimeSeries{nseries(rule.Name+"{job="+job+",pod=p1}", at(ts, nh(0, v, 0, int64(v))))}
	}
	return []prompb.TimeSeries{series(rule.Name+"{job="+job+",pod=p1}", ts, v)}
}

// twoEmitLikeOne is twoEmitTheNativesOneDoes for a native histogram rule, else
// twoEmitTheFloatsOneDoes.
func twoEmitLikeOne(t *testing.T, rule *rules.Rule, outs [2]*collectSink, single *collectSink) {
	t.Helper()
	if rule.Type == rules.Histogram {
		twoEmitTheNativesOneDoes(t, outs, single)
	} else {
		twoEmitTheFloatsOneDoes(t, outs, single)
	}
}

// createdInput is ruleInput with the created timestamp ct (seconds).
func createdInput(rule *rules.Rule, job string, ts, v, ct float64) []prompb.TimeSeries {
	in := ruleInput(rule, job, ts, v)
	in[0] = created(in[0], ct)
	return in
}

// counterRules are a counter rule and a native histogram counter rule.
func counterRules() []*rules.Rule {
	return []*rules.Rule{counterRule("req", "total"), histogramRule("nlat", "total")}
}

// firstSampleCountRules are counterRules with first_sample: count.
func firstSampleCountRules() []*rules.Rule {
	rs := counterRules()
	for _, r := range rs {
		r.FirstSample = rules.FirstSampleCount
		r.Fingerprint++
	}
	return rs
}

// TestAStrayAndTheOldOwnersHandoffBridgeAnInputOnce: the old owner's handoff is slow; a
// lagging sender's sample reaches the old owner after it handed off (a stray there, begun as
// a baseline) and the new owner takes the next one (held, a baseline too). Both handoffs
// bridge to the new owner's view, in either order: the stray's from its sample to the new
// owner's first, the old owner's from its last sample to the stray's first (not again to the
// new owner's first: that increase would count twice). Bridged across members, an increase
// may land a window later than one member counts it in: the running totals must agree.
func TestAStrayAndTheOldOwnersHandoffBridgeAnInputOnce(t *testing.T) {
	for _, strayFirst := range []bool{true, false} {
		for _, rule := range counterRules() {
			t.Run(fmt.Sprintf("%s/stray_first=%v", rule.Name, strayFirst), func(t *testing.T) {
				p := newHandoffPair(t, rule)
				in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
				p.ownerRuns(0, in, tens)
				p.moveOwnership()
				main := p.handoffs
				p.handoffs = nil
				p.ingest(0, in("a", 45, 55)) // a lagging sender: a stray at the old owner
				p.ingest(1, in("a", 51, 60)) // held at the new owner
				p.members[0].HandOffNow()
				if strayFirst {
					p.handoffs = append(p.handoffs, main...)
				} else {
					p.handoffs = append(main, p.handoffs...)
				}
				p.deliver()
				p.flush(54)
				p.ingest(1, in("a", 61, 70))
				p.flush(64)
				p.flush(74)
				twoEndAtTheTotalsOfOne(t, rule, p.outs, p.singleOut)
			})
		}
	}
}

// TestAFirstSampleThatCountsStaysCountedWhenALaterViewIsHandedOver: a new input's first
// sample at the new owner (held; its created timestamp says it is new) counts in full
// unless a handoff knew the input before it. A stray's view that began after it (a lagging
// sender's later sample reached the old owner) says nothing of that, and must not stop it
// counting (the increase to the stray's sample is bridged, a window later than one member
// counts it).
func TestAFirstSampleThatCountsStaysCountedWhenALaterViewIsHandedOver(t *testing.T) {
	for _, rule := range counterRules() {
		t.Run(rule.Name, func(t *testing.T) {
			p := newHandoffPair(t, rule)
			in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
			p.members[0].SetOwnership(all{})
			p.members[1].SetOwnership(all{owns: true})
			for i, ts := range []float64{1, 11, 21, 31, 41} { // the rule runs past its staleness
				p.ingest(1, in("b", ts, float64(10*(i+1))))
				// ... at the other member too (what it hands off of job=c is dropped).
				p.members[0].Ingest(in("c", ts, 1))
				p.flush(int64(ts) + 3)
				p.handoffs = nil
			}
			p.members[1].SetOwnership(all{owns: true, awaits: true})
			p.ingest(1, createdInput(rule, "a", 51, 5, 50)) // a new series, held
			p.ingest(0, createdInput(rule, "a", 61, 8, 50)) // a lagging sender's next sample: a stray there
			p.flush(64)
			p.deliver()
			p.members[1].SetOwnership(all{owns: true}) // the wait is over
			p.ingest(1, createdInput(rule, "a", 71, 10, 50))
			p.flush(74)
			p.flush(84)
			twoEndAtTheTotalsOfOne(t, rule, p.outs, p.singleOut)
		})
	}
}

// twoEndAtTheTotalsOfOne fails unless every output's last value before it ended (its
// running total) is the same from the two members as from one member alone.
func twoEndAtTheTotalsOfOne(t *testing.T, rule *rules.Rule, outs [2]*collectSink, single *collectSink) {
	t.Helper()
	points := (*collectSink).points
	if rule.Type == rules.Histogram {
		points = (*collectSink).nativePoints
	}
	got, want := lastValues(append(points(outs[0]), points(outs[1])...)), lastValues(points(single))
	if len(want) == 0 || !maps.Equal(got, want) {
		t.Errorf("last values: two members %v, one member %v", got, want)
	}
}

// lastValues returns the newest value of each series of points (as collectSink writes
// them), stale markers aside; of a native histogram, without its reset hint.
func lastValues(points []string) map[string]string {
	newest, out := map[string]int{}, map[string]string{}
	for _, p := range points {
		at := strings.LastIndexByte(p, '@')
		ts, v, _ := strings.Cut(p[at+1:], "=")
		sec, err := strconv.Atoi(ts)
		if err != nil || v == "stale" {
			continue
		}
		if n, seen := newest[p[:at]]; seen && n >= sec {
			continue
		}
		newest[p[:at]] = sec
		if _, h, native := strings.Cut(v, " "); native {
			v = h
		}
		out[p[:at]] = v
	}
	return out
}

// TestAFirstSampleCountIsABaselineWhenAWaitEndsWithoutAHandoff: with first_sample: count
// (no created timestamp), every input a ring change brings to a member whose rule has run
// for a while looks new to it. If the previous owner died, no handoff comes and the wait
// ends by the timeout: counted in full then, each input's whole value would jump into the
// output. It stays a baseline: the output goes on from the increase since.
func TestAFirstSampleCountIsABaselineWhenAWaitEndsWithoutAHandoff(t *testing.T) {
	for _, rule := range firstSampleCountRules() {
		t.Run(rule.Name, func(t *testing.T) {
			p := newHandoffPair(t, rule)
			in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
			p.ownerRuns(0, in, func(i int) float64 { return float64(1000 + 10*i) }) // a long-running counter
			// The owner dies: its handoff never comes; the other member gains the output.
			p.members[0].SetOwnership(all{})
			p.members[1].SetOwnership(all{owns: true, awaits: true})
			p.members[1].Ingest(in("a", 51, 1050))
			p.flush(54)
			p.members[1].SetOwnership(all{owns: true}) // the timeout ends the wait
			for i, ts := range []float64{61, 71} {
				p.members[1].Ingest(in("a", ts, float64(1060+10*i)))
				p.flush(int64(ts) + 3)
			}
			p.flush(84)
			got := lastValues(p.outs[1].points())["req{job=a}"]
			if rule.Type == rules.Histogram {
				got = lastValues(p.outs[1].nativePoints())["nlat{job=a}"]
			}
			want := "20" // from 1050 to 1070
			if rule.Type == rules.Histogram {
				want = "s0 {count:20, sum:20, (0.5,1]:20}"
			}
			if got != want {
				t.Errorf("the new owner's total %q, want %q", got, want)
			}
		})
	}
}

// TestAHandoffAfterTheWaitEndedDoesNotAddTheEarlierTotalBack: when the old owner's handoff
// comes after the timeout ended the new owner's wait, and the new owner has written the
// output from its own state since (downstream saw it start again from a small total), the
// earlier total is not added back: PromQL would read that jump as an increase.
func TestAHandoffAfterTheWaitEndedDoesNotAddTheEarlierTotalBack(t *testing.T) {
	for _, rule := range counterRules() {
		t.Run(rule.Name, func(t *testing.T) {
			p := newHandoffPair(t, rule)
			in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
			p.ownerRuns(0, in, tens)
			p.moveOwnership()
			late := p.handoffs // not delivered in time
			p.handoffs = nil
			p.members[1].Ingest(in("a", 51, 60))
			p.flush(54)
			p.members[1].SetOwnership(all{owns: true}) // the timeout ends the wait
			p.members[1].Ingest(in("a", 61, 70))
			p.flush(64)
			p.flush(74)
			p.handoffs = late
			p.deliver()
			p.members[1].Ingest(in("a", 71, 80))
			p.flush(84)
			// 10 at 70 s, 20 at 80 s; with the earlier total back, 60 at 80 s.
			got, want := lastValues(p.outs[1].points())["req{job=a}"], "20"
			if rule.Type == rules.Histogram {
				got, want = lastValues(p.outs[1].nativePoints())["nlat{job=a}"], "s0 {count:20, sum:20, (0.5,1]:20}"
			}
			if got != want {
				t.Errorf("the new owner's total %q after the late handoff, want %q", got, want)
			}
		})
	}
}

// TestAnOutputBegunAfterItsRingChangedIsHeldForOthersUntilTheNextFlush: a request routed by
// this member's ring before it changed (a local one that took the old ring, or a forwarded
// one whose sender routed by it) may begin, after the ring change's hand off, an output the
// new ring gives another member. Until the next flush tick hands it on, the member says it
// holds state for others, so that a peer waiting for a handoff keeps waiting.
func TestAnOutputBegunAfterItsRingChangedIsHeldForOthersUntilTheNextFlush(t *testing.T) {
	p := newHandoffPair(t, counterRule("req", "total"))
	for i, ts := range []float64{1, 11} {
		p.ingest(0, []prompb.TimeSeries{series("req{job=a,pod=p1}", ts, float64(10*(i+1)))})
		p.flush(int64(ts) + 3)
	}
	p.members[0].SetOwnership(all{}) // the ring changed: the other member owns it all
	p.members[0].HandOffNow()
	p.handoffs = nil
	if p.members[0].HoldsForOthers() {
		t.Fatal("holds state for others right after handing everything off")
	}
	// The request routed by the old ring, which gave this member the output.
	p.members[0].IngestRoute([]prompb.TimeSeries{series("req{job=a,pod=p1}", 21, 30)}, Route{Router: alone{}})
	if !p.members[0].HoldsForOthers() {
		t.Fatal("an output begun for another member is not held for others")
	}
	p.members[0].Flush(false)
	if p.members[0].HoldsForOthers() || len(p.handoffs) == 0 {
		t.Fatalf("after the flush tick: holds for others %v, %d handoffs; want it handed on", p.members[0].HoldsForOthers(), len(p.handoffs))
	}
}

// TestAFirstSampleGoesOnWithAStrayHandedOnByAnotherMember: a stray (a sample that reached a
// member that does not own its output) is a baseline there, and its handoff carries that
// first sample for the owner to bridge its own view to. A handoff that comes by an older
// ring to a third member, which does not own the output either, is handed on at its next
// flush tick: the first sample must go on with it, or the increase from the owner's last
// sample to it is lost (the cluster test saw outputs short by a scrape after a leave).
func TestAFirstSampleGoesOnWithAStrayHandedOnByAnotherMember(t *testing.T) {
	for _, rule := range counterRules() {
		t.Run(rule.Name, func(t *testing.T) {
			p := newHandoffPair(t, rule)
			in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
			p.members[0].SetOwnership(all{})
			p.members[1].SetOwnership(all{owns: true})
			p.ownerRuns(1, in, tens)
			p.ingest(0, in("a", 45, 55)) // a stray at the first member
			p.members[0].HandOffNow()
			// It goes to a third member, which owns nothing and hands it on.
			var bounced [][]byte
			third := New(Options{Output: &collectSink{}, Now: p.clk.now, HandOff: func(h *Handoff) {
				if b := h.Encode(func(uint64) bool { return true }); b != nil {
					bounced = append(bounced, b)
				}
			}})
			if err := third.SetRules([]*rules.Rule{rule}); err != nil {
				t.Fatal(err)
			}
			third.SetOwnership(all{})
			for _, b := range p.handoffs {
				if _, err := third.Merge(b); err != nil {
					t.Fatal(err)
				}
			}
			p.handoffs = nil
			third.Flush(false)
			if len(bounced) == 0 {
				t.Fatal("the third member handed nothing on")
			}
			p.handoffs = bounced
			p.deliver()
			p.ingest(1, in("a", 51, 60))
			p.flush(54)
			p.flush(64)
			twoEndAtTheTotalsOfOne(t, rule, p.outs, p.singleOut)
		})
	}
}
