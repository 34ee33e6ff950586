package aggregator

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// TestAStrayFirstSampleWithACreatedTimestampCountsAtTheOwner: a new series' first sample
// whose created timestamp says it started from zero while the rule watched counts in full
// at one member alone. When it reaches a member that does not own its output (a stray,
// from a sender on another ring), that member keeps it as a baseline for the owner to
// bridge its own view to; handed on and merged at the owner, it must still count in full
// when no view of the input there is older, whichever of the stray and the owner's first
// sample of the input comes first, and whether the owner's output is its own already or
// held for the previous owner's handoff. Otherwise the output is short of the series' first
// value for good.
func TestAStrayFirstSampleWithACreatedTimestampCountsAtTheOwner(t *testing.T) {
	for _, held := range []bool{false, true} {
		for _, strayFirst := range []bool{true, false} {
			for _, rule := range counterRules() {
				t.Run(fmt.Sprintf("%s/held=%v/stray_first=%v", rule.Name, held, strayFirst), func(t *testing.T) {
					strayCreatedAtTheOwner(t, rule, held, strayFirst)
				})
			}
		}
	}
}

// strayCreatedAtTheOwner runs TestAStrayFirstSampleWithACreatedTimestampCountsAtTheOwner's
// case for a rule of counterRules: job=n is the new series, created at
// 44 s, whose first sample (45 s) is a stray at the first member; the second member owns
// its output (held: it gained it from the first, and waits for that member's handoff).
func strayCreatedAtTheOwner(t *testing.T, rule *rules.Rule, held, strayFirst bool) {
	p := newHandoffPair(t, rule)
	in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
	var main [][]byte
	if held {
		p.ownerRuns(0, in, tens)
		p.moveOwnership() // the second member awaits the first's handoff: held back, slow
		main, p.handoffs = p.handoffs, nil
	} else {
		p.members[0].SetOwnership(all{})
		p.members[1].SetOwnership(all{owns: true})
		p.ownerRuns(1, in, tens)
	}
	p.ingest(0, createdInput(rule, "n", 45, 5, 44)) // a stray at the first member
	p.members[0].HandOffNow()
	if strayFirst {
		p.deliver()
		p.ingest(1, createdInput(rule, "n", 51, 8, 44))
	} else {
		p.ingest(1, createdInput(rule, "n", 51, 8, 44))
		p.deliver()
	}
	if held {
		p.handoffs = main
		p.deliver()
		p.members[1].SetOwnership(all{owns: true}) // the wait is over
	}
	p.newSeriesEndsAsInOne(t, rule)
}

// TestAnAdoptedStrayFirstSampleWithACreatedTimestampCounts: a stray whose output this
// member's ring gives it before the next flush tick (its ring caught up with the sender's)
// waits for the previous owner's handoff like an output begun after the change. When that
// handoff does not know the input (a series new to the cluster), the first sample whose
// created timestamp says it is new must count when the wait ends, as one member counts it.
func TestAnAdoptedStrayFirstSampleWithACreatedTimestampCounts(t *testing.T) {
	for _, rule := range counterRules() {
		t.Run(rule.Name, func(t *testing.T) {
			p := newHandoffPair(t, rule)
			in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
			p.ownerRuns(0, in, tens)
			// A sender on the new ring: a stray at the second member, whose ring still
			// gives the output to the first.
			p.single.Ingest(createdInput(rule, "n", 45, 5, 44))
			p.members[1].IngestRoute(createdInput(rule, "n", 45, 5, 44), Route{Router: alone{}, Forwarded: true, Disagrees: true})
			p.moveOwnership() // the second member's ring catches up: it adopts the stray
			p.flush(48)
			p.deliver()                                // the old owner never had job=n
			p.members[1].SetOwnership(all{owns: true}) // the wait is over
			p.ingest(1, createdInput(rule, "n", 51, 8, 44))
			p.newSeriesEndsAsInOne(t, rule)
		})
	}
}

// TestALegacyHandoffLosesOnlyTheFirstSamplesThatCount: for an owner of an older build, which
// refuses a first sample that counts (flag 2) and with it the whole handoff, LegacyHandoff
// writes those as baselines and nothing else: the rewritten body has no 2 left, and merged,
// only the new series is short, of its first value; the rest of the handoff continues.
func TestALegacyHandoffLosesOnlyTheFirstSamplesThatCount(t *testing.T) {
	for _, rule := range counterRules() {
		t.Run(rule.Name, func(t *testing.T) {
			p := newHandoffPair(t, rule)
			in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
			p.members[0].SetOwnership(all{})
			p.members[1].SetOwnership(all{owns: true})
			p.ownerRuns(1, in, tens)
			p.ingest(0, in("a", 45, 30))                    // a stray of a series the owner knows
			p.ingest(0, createdInput(rule, "n", 45, 5, 44)) // and one of a new series
			p.members[0].HandOffNow()
			if len(p.handoffs) != 1 {
				t.Fatalf("%d handoffs, want 1", len(p.handoffs))
			}
			if _, changed := LegacyHandoff([]byte("nonsense")); changed {
				t.Error("LegacyHandoff changed something that is not a handoff")
			}
			legacy, changed := LegacyHandoff(p.handoffs[0])
			if !changed || len(legacy) != len(p.handoffs[0]) {
				t.Fatalf("LegacyHandoff: changed %v, %d bytes for %d; want a rewrite of the same size", changed, len(legacy), len(p.handoffs[0]))
			}
			if _, again := LegacyHandoff(legacy); again {
				t.Error("the rewritten handoff still has a first sample that counts")
			}
			if _, still := LegacyHandoff(p.handoffs[0]); !still {
				t.Error("LegacyHandoff rewrote the body it was given, not a copy")
			}
			p.handoffs = [][]byte{legacy}
			p.deliver()
			p.ingest(1, createdInput(rule, "n", 51, 8, 44))
			p.flush(54)
			p.ingest(1, createdInput(rule, "n", 61, 12, 44))
			p.ingest(1, in("a", 61, 40))
			p.flush(64)
			p.flush(74)
			points := (*collectSink).points
			if rule.Type == rules.Histogram {
				points = (*collectSink).nativePoints
			}
			got, want := lastValues(append(points(p.outs[0]), points(p.outs[1])...)), lastValues(points(p.singleOut))
			if len(want) != 2 {
				t.Fatalf("one member wrote %v, want job=a and job=n", want)
			}
			for series, v := range want {
				if strings.Contains(series, "job=n") == (got[series] == v) {
					t.Errorf("%s: two members %s, one member %s; want the new series short and the rest the same", series, got[series], v)
				}
			}
		})
	}
}

// newSeriesEndsAsInOne gives the second member job=n's sample at 61 s (12, the series
// created at 44 s), closes the windows up to 74 s and checks that the two members end at
// the totals of one member alone.
func (p *handoffPair) newSeriesEndsAsInOne(t *testing.T, rule *rules.Rule) {
	t.Helper()
	p.flush(54)
	p.ingest(1, createdInput(rule, "n", 61, 12, 44))
	p.flush(64)
	p.flush(74)
	twoEndAtTheTotalsOfOne(t, rule, p.outs, p.singleOut)
}
