package aggregator

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// TestAStrayFirstSampleThatCountsStillCountsAfterTheStrayMemberRestarts: a member keeps a
// stray's first sample, whose created timestamp says it counts, for the owner; restarted
// from a checkpoint before it hands the stray on, it must hand it on as counting still, or
// the owner takes it as a baseline and the output is short of the series' first value for
// good (TestAStrayFirstSampleWithACreatedTimestampCountsAtTheOwner without the restart).
func TestAStrayFirstSampleThatCountsStillCountsAfterTheStrayMemberRestarts(t *testing.T) {
	for _, held := range []bool{false, true} {
		for _, rule := range counterRules() {
			t.Run(fmt.Sprintf("%s/held=%v", rule.Name, held), func(t *testing.T) {
				p := newHandoffPair(t, rule)
				in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
				var main [][]byte
				if held {
					p.ownerRuns(0, in, tens)
					p.moveOwnership() // the second member awaits the first's handoff: slow
					main, p.handoffs = p.handoffs, nil
				} else {
					p.members[0].SetOwnership(all{})
					p.members[1].SetOwnership(all{owns: true})
					p.ownerRuns(1, in, tens)
				}
				p.ingest(0, createdInput(rule, "n", 45, 5, 44)) // a stray at the first member
				p.restart(0, rule, all{})
				p.members[0].HandOffNow()
				p.deliver()
				p.ingest(1, createdInput(rule, "n", 51, 8, 44))
				if held {
					p.handoffs = main
					p.deliver()
					p.members[1].SetOwnership(all{owns: true}) // the wait is over
				}
				p.newSeriesEndsAsInOne(t, rule)
			})
		}
	}
}

// TestAHeldFirstSampleThatCountsStillCountsAfterTheOwnerRestarts: an owner holds an output
// for a handoff, and a new series' first sample that counts is kept in it, begun there
// (began_here) or brought by a stray another member handed on (from_a_stray). Restarted
// from a checkpoint before its wait ends, the owner must still count it when the wait ends
// with no view of the input from the previous owner, as one member alone counts it.
func TestAHeldFirstSampleThatCountsStillCountsAfterTheOwnerRestarts(t *testing.T) {
	for _, fromStray := range []bool{false, true} {
		for _, rule := range counterRules() {
			name := "began_here"
			if fromStray {
				name = "from_a_stray"
			}
			t.Run(rule.Name+"/"+name, func(t *testing.T) {
				p := newHandoffPair(t, rule)
				in := func(job string, ts, v float64) []prompb.TimeSeries { return ruleInput(rule, job, ts, v) }
				p.ownerRuns(0, in, tens)
				p.moveOwnership() // the second member awaits the first's handoff: slow
				main := p.handoffs
				p.handoffs = nil
				if fromStray {
					p.ingest(0, createdInput(rule, "n", 45, 5, 44)) // a stray at the first member
					p.members[0].HandOffNow()
					p.deliver()
				} else {
					p.ingest(1, createdInput(rule, "n", 45, 5, 44)) // held at the second member
				}
				p.restart(1, rule, all{owns: true, awaits: true}) // a restart waits for handoffs too
				p.ingest(1, createdInput(rule, "n", 51, 8, 44))
				p.handoffs = main // the old owner's handoff, sent again: it never had job=n
				p.deliver()
				p.members[1].SetOwnership(all{owns: true}) // the wait is over
				p.newSeriesEndsAsInOne(t, rule)
			})
		}
	}
}

// TestAVersion4CheckpointRestoresFirstSamplesAsBaselines: a checkpoint written before the
// wait state said whether a first sample counts (version 4) still restores, its outputs
// held and its first samples kept, as baselines; version 5 keeps that they count.
func TestAVersion4CheckpointRestoresFirstSamplesAsBaselines(t *testing.T) {
	rs := counterRules()
	a, _, _, _ := newTestAggregator(t, 0, rs...)
	a.SetOwnership(all{owns: true, awaits: true})
	for _, r := range rs {
		a.Ingest(ruleInput(r, "a", 1, 10)) // the rule watches from 1 s
		a.Ingest(createdInput(r, "n", 45, 5, 44))
	}
	if firsts, counting := waitFirsts(a); firsts != 4 || counting != 2 {
		t.Fatalf("before the checkpoint: %d first samples, %d counting; want 4 and 2", firsts, counting)
	}
	for _, c := range []struct {
		version      uint64
		wantCounting int
	}{{4, 0}, {5, 2}} {
		var ckpt bytes.Buffer
		if _, err := a.checkpointAs(&ckpt, c.version); err != nil {
			t.Fatal(err)
		}
		b, _, _, _ := newTestAggregator(t, 0, rs...)
		st, err := b.Restore(bytes.NewReader(ckpt.Bytes()))
		if err != nil || st.Restored != 2 || st.OutputSeries != 4 {
			t.Fatalf("version %d: %+v, %v", c.version, st, err)
		}
		if held := heldOutputs(b); held != 4 {
			t.Errorf("version %d: %d outputs held, want 4", c.version, held)
		}
		if firsts, counting := waitFirsts(b); firsts != 4 || counting != c.wantCounting {
			t.Errorf("version %d: %d first samples, %d counting; want 4 and %d", c.version, firsts, counting, c.wantCounting)
		}
	}
}

// restart replaces member m by a new aggregator restored from its checkpoint, with
// ownership own, as a process restarted after a crash; the first member's handoffs go on
// to p.handoffs.
func (p *handoffPair) restart(m int, rule *rules.Rule, own Ownership) {
	p.t.Helper()
	var ckpt bytes.Buffer
	if err := p.members[m].Checkpoint(&ckpt); err != nil {
		p.t.Fatal(err)
	}
	out := &collectSink{}
	opts := Options{Output: out, Now: p.clk.now}
	if m == 0 {
		opts.HandOff = func(h *Handoff) {
			if b := h.Encode(func(uint64) bool { return true }); b != nil {
				p.handoffs = append(p.handoffs, b)
			}
		}
	}
	b := New(opts)
	if err := b.SetRules([]*rules.Rule{rule}); err != nil {
		p.t.Fatal(err)
	}
	if _, err := b.Restore(bytes.NewReader(ckpt.Bytes())); err != nil {
		p.t.Fatal(err)
	}
	b.SetOwnership(own)
	// What the member wrote before the restart stays written.
	out.series = append(out.series, p.outs[m].series...)
	p.members[m], p.outs[m] = b, out
}

// waitFirsts counts the first samples a kept for handoffs, float and native, and those
// of them that count.
func waitFirsts(a *Aggregator) (firsts, counting int) {
	for _, r := range a.rules {
		for i := range r.shards {
			rs := &r.shards[i]
			for _, f := range rs.firsts {
				firsts++
				if f.counts {
					counting++
				}
			}
			if rs.native != nil {
				for _, f := range rs.native.firsts {
					firsts++
					if f.counts {
						counting++
					}
				}
			}
		}
	}
	return firsts, counting
}

// heldOutputs counts the outputs of a, float and native, held for a handoff.
func heldOutputs(a *Aggregator) int {
	n := 0
	for _, r := range a.rules {
		for i := range r.shards {
			rs := &r.shards[i]
			for _, o := range rs.outputs {
				if o != nil && o.held {
					n++
				}
			}
			if rs.native != nil {
				for _, o := range rs.native.outputs {
					if o.held {
						n++
					}
				}
			}
		}
	}
	return n
}
