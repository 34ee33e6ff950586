package aggregator

import (
	"fmt"
	"slices"
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
	rs := []*rules.Rule{gaugeRule("inflight", "sum", "count"), gaugeRule("nqueue", "sum", "count")}
	single, singleOut, _, singleClk := newTestAggregator(t, 0, rs...)
	var handoffs [][]byte
	clk := &testClock{t: time.Unix(0, 0)}
	var members [2]*Aggregator
	var outs [2]*collectSink
	for i := range members {
		outs[i] = &collectSink{}
		members[i] = New(Options{Output: outs[i], Now: clk.now, HandOff: func(h *Handoff) {
			if b := h.Encode(func(uint64) bool { return true }); b != nil {
				handoffs = append(handoffs, b)
			}
		}})
		if err := members[i].SetRules(rs); err != nil {
			t.Fatal(err)
		}
	}
	members[0].SetOwnership(all{owns: true})
	members[1].SetOwnership(all{})
	at := func(ts float64, v1, v2 float64) []prompb.TimeSeries {
		return []prompb.TimeSeries{
			series("inflight{job=a,pod=p1}", ts, v1), series("inflight{job=a,pod=p2}", ts, v2),
			nseries("nqueue{job=a,pod=p1}", gaugeAt(ts, nh(0, v1, 0, int64(v1)))),
			nseries("nqueue{job=a,pod=p2}", gaugeAt(ts, nh(0, v2, 0, int64(v2)))),
		}
	}
	flush := func(wall int64) {
		flushAt(single, singleClk, wall)
		clk.t = time.Unix(wall, 0)
		for _, m := range members {
			m.Flush(false)
		}
	}
	for _, ts := range []float64{1, 6, 11, 16, 21, 26} { // windows 1, 1, 2, 2, 3, 3
		single.Ingest(at(ts, 3, 4))
		members[0].Ingest(at(ts, 3, 4))
		flush(int64(ts) + 3)
	}
	if lagging {
		// The ring changed before window 4; the new owner has the inputs' last values (t=36)
		// in it, open, when their next samples (window 5) reach the old owner.
		members[0].SetOwnership(all{})
		members[1].SetOwnership(all{owns: true, awaits: true})
		members[0].HandOffNow()
		for _, b := range handoffs {
			if _, err := members[1].Merge(b); err != nil {
				t.Fatal(err)
			}
		}
		handoffs = nil
		single.Ingest(at(36, 5, 6))
		members[1].Ingest(at(36, 5, 6))
		flush(38)
		single.Ingest(at(41, 7, 8))
		members[0].Ingest(at(41, 7, 8))
	} else {
		// Window 4 is open at the old owner, with both inputs' last values (t=36) in it. The
		// ring changes; their next samples (window 5) reach the new owner first.
		single.Ingest(at(36, 5, 6))
		members[0].Ingest(at(36, 5, 6))
		flush(38)
		members[0].SetOwnership(all{})
		members[1].SetOwnership(all{owns: true, awaits: true})
		single.Ingest(at(41, 7, 8))
		members[1].Ingest(at(41, 7, 8))
	}
	members[0].HandOffNow()
	for _, b := range handoffs {
		if _, err := members[1].Merge(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, wall := range []int64{43, 48, 53, 58} {
		flush(wall)
	}
	twoEmitWhatOneDoes(t, outs, singleOut)
}

// twoEmitWhatOneDoes fails unless the points two members emitted, float and native, are
// those one member alone emitted, and lists the difference.
func twoEmitWhatOneDoes(t *testing.T, outs [2]*collectSink, single *collectSink) {
	t.Helper()
	for _, kind := range []struct {
		what   string
		points func(*collectSink) []string
	}{{"points", (*collectSink).points}, {"native histograms", (*collectSink).nativePoints}} {
		got := append(kind.points(outs[0]), kind.points(outs[1])...)
		want := kind.points(single)
		slices.Sort(got)
		slices.Sort(want)
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("two members emitted %d %s, one emitted %d", len(got), kind.what, len(want))
			for _, p := range diff(got, want) {
				t.Log(p)
			}
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
	rs := []*rules.Rule{counterRule("req", "total"), histogramRule("nlat", "total")}
	single, singleOut, _, singleClk := newTestAggregator(t, 0, rs...)
	var handoffs [][]byte
	clk := &testClock{t: time.Unix(0, 0)}
	var members [2]*Aggregator
	var outs [2]*collectSink
	for i := range members {
		outs[i] = &collectSink{}
		members[i] = New(Options{Output: outs[i], Now: clk.now, HandOff: func(h *Handoff) {
			if b := h.Encode(func(uint64) bool { return true }); b != nil && i == 0 {
				handoffs = append(handoffs, b)
			}
		}})
		if err := members[i].SetRules(rs); err != nil {
			t.Fatal(err)
		}
	}
	members[0].SetOwnership(all{owns: true})
	members[1].SetOwnership(all{})
	at := func(ts, v float64) []prompb.TimeSeries {
		n := int64(v)
		return []prompb.TimeSeries{series("req{job=a,pod=p1}", ts, v), nseries("nlat{job=a,pod=p1}", hpoint{sec: ts, h: nh(0, v, 0, n)})}
	}
	flush := func(wall int64) {
		flushAt(single, singleClk, wall)
		clk.t = time.Unix(wall, 0)
		for _, m := range members {
			m.Flush(false)
		}
	}
	for i, ts := range []float64{1, 11, 21, 31} {
		single.Ingest(at(ts, float64(10*(i+1))))
		members[0].Ingest(at(ts, float64(10*(i+1))))
		// The new owner runs the rule too (it owned nothing of it yet): its windows close.
		members[1].Ingest([]prompb.TimeSeries{series("req{job=b,pod=p9}", ts, 1), nseries("nlat{job=b,pod=p9}", hpoint{sec: ts, h: nh(0, 1, 0, 1)})})
		flush(int64(ts) + 3)
	}
	flush(43) // window 4 closes and is written by the old owner
	members[0].SetOwnership(all{})
	members[1].SetOwnership(all{owns: true, awaits: true})
	single.Ingest(at(39, 45)) // late: its increase counts in the next window
	members[1].Ingest(at(39, 45))
	members[0].HandOffNow()
	for _, b := range handoffs {
		if _, err := members[1].Merge(b); err != nil {
			t.Fatal(err)
		}
	}
	for i, ts := range []float64{41, 51} {
		single.Ingest(at(ts, float64(50+10*i)))
		members[1].Ingest(at(ts, float64(50+10*i)))
		flush(int64(ts) + 3)
	}
	flush(63)
	twoEmitWhatOneDoes(t, outs, singleOut)
}
