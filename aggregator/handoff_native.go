package aggregator

import (
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
)

// Native-histogram outputs are handed off like float ones (handoff.go): the output with its
// running total and open windows, and its inputs with their last histograms, so that the new
// owner continues the cumulative histogram without a reset or a double count.

// HandoffNative is one native-histogram output series of a Handoff.
type HandoffNative struct {
	// Key is the output's placement key: it says which member owns it.
	Key    uint64
	rule   uint64
	closed int64
	out    *nativeOutput // taken out of its shard: the handoff owns it
	inputs []nativeHandoffInput
}

// nativeHandoffInput is one input of a handed-off native output.
type nativeHandoffInput struct {
	hash uint64
	t    int64
	last *histogram.FloatHistogram // nil after a stale marker
	// first is the input's first histogram here when it began here as a baseline (its
	// observations not counted): the owner counts the increase to it from its own last one.
	first nativeFirst
}

// nativeFirst is the first histogram of a native counter input begun as a baseline in an
// output that a handoff may continue (h is nil when there is none).
type nativeFirst struct {
	t   int64
	h   *histogram.FloatHistogram
	out *nativeOutput
	// counts is firstSample's: the histogram counts in full if no handoff bridges it.
	counts bool
}

// exportNative takes out of one rule shard, under its lock, the native outputs take says
// (those this member does not own), with the inputs that feed them, and appends them to h.
func (r *ruleState) exportNative(rs *ruleShard, take takeOut, h *Handoff) {
	ns := rs.native
	if ns == nil {
		return
	}
	var gone map[*nativeOutput]int // output -> its position in h.Native
	for hash, o := range ns.outputs {
		if !take.takes(o.place, hash) {
			continue
		}
		if gone == nil {
			gone = map[*nativeOutput]int{}
		}
		gone[o] = len(h.Native)
		h.Native = append(h.Native, HandoffNative{Key: o.place, rule: r.rule.Fingerprint, closed: writtenUpTo(o.emitted, o.emittedK, rs.closed), out: o})
		delete(ns.outputs, hash)
		delete(rs.exemplars, hash)
		r.outputN.Add(-1)
	}
	if gone == nil {
		return
	}
	for key, in := range ns.inputs {
		at, ok := gone[in.out]
		if !ok {
			continue
		}
		hi := nativeHandoffInput{hash: key, t: in.t, last: in.last}
		if f, ok := ns.firsts[key]; ok {
			hi.first = f
			delete(ns.firsts, key)
		}
		h.Native[at].inputs = append(h.Native[at].inputs, hi)
		delete(ns.inputs, key)
		r.inputs.Add(-1)
	}
	for key, f := range ns.firsts { // those of inputs that ended while their output waited
		if _, ok := gone[f.out]; ok {
			delete(ns.firsts, key)
		}
	}
	if len(ns.inputs) == 0 && len(ns.outputs) == 0 {
		rs.native = nil
	}
}

// handoffNative writes one handed-off native output in the form frameDecoder.handoffNative reads.
func (e *shardEncoder) handoffNative(hn *HandoffNative) {
	e.u64(hn.rule)
	e.varint(hn.closed)
	e.nativeOutput(hn.out)
	e.uvarint(uint64(len(hn.inputs)))
	for _, in := range hn.inputs {
		e.u64(in.hash)
		e.varint(in.t)
		e.optHistogram(in.last)
		e.firstFlag(in.first.h != nil, in.first.counts) // optHistogram's flag, or 2 (handoff.go)
		if in.first.h != nil {
			e.histogram(in.first.h)
			e.varint(in.first.t)
		}
	}
}

// handoffNative reads what shardEncoder.handoffNative wrote.
func (d *frameDecoder) handoffNative() (fp uint64, closed int64, o *nativeOutput, inputs []nativeHandoffInput) {
	fp, closed = d.u64(), d.varint()
	o = d.nativeOutput()
	inputs = make([]nativeHandoffInput, d.count(8+1+1+1))
	for i := range inputs {
		in := &inputs[i]
		in.hash, in.t, in.last = d.u64(), d.varint(), d.optHistogram()
		if has, counts := d.firstFlag(); has {
			in.first.h, in.first.t, in.first.counts = d.histogram(), d.varint(), counts
		}
	}
	return fp, closed, o, inputs
}

// mergeNative adds one handed-off native output and its inputs to a rule shard: merge for
// native histograms.
func (r *ruleState) mergeNative(rs *ruleShard, in *nativeOutput, closed int64, inputs []nativeHandoffInput, st *MergeStats) {
	r.mergeStart(rs, closed)
	if rs.native == nil {
		rs.native = newNativeShard()
	}
	ns := rs.native
	wrote := in.emitted // as merge: a sender that never emitted the output wrote nothing
	o, ok := ns.outputs[in.hash]
	if !ok {
		if max := r.rule.MaxOutputSeries; max > 0 && r.outputN.Load() >= int64(max) {
			return
		}
		o = &nativeOutput{hash: in.hash, labels: in.labels, firstK: in.firstK, layout: in.layout,
			emitted: in.emitted, place: r.placeKeyOfOutput(in.labels[0])}
		if wrote {
			o.emittedK = closed
		} else {
			o.held, o.stray = r.newOutputWaits(o.place)
		}
		if r.counter {
			o.total = emptyLike(in.layout)
		}
		ns.outputs[in.hash] = o
		r.outputN.Add(1)
	}
	r.adoptOwnedStray(&o.stray, &o.held, o.place)
	late := ok && lateHandoff(wrote, o.emitted, o.held)
	if late {
		st.Late++
	}
	o.emitted = o.emitted || in.emitted
	o.firstK = min(o.firstK, in.firstK)
	// As merge: the previous owner wrote the windows up to closed.
	for wrote && len(o.wins) > 0 && o.wins[0].k <= closed {
		if w := o.takeWindow(o.wins[0].k); r.counter && w.acc != nil && o.total != nil {
			r.addNativeTotal(rs, o, w.acc)
		}
	}
	if wrote {
		o.emittedK = max(o.emittedK, closed)
	}
	if in.total != nil && o.total != nil && !late {
		r.addNativeTotal(rs, o, in.total)
	}
	// As merge: the previous owner emitted its windows up to closed; the later ones are
	// this member's to emit.
	written := o.emittedK
	if wrote {
		written = max(closed, written)
	}
	for i := range in.wins {
		w := &in.wins[i]
		if late {
			continue
		}
		if w.k <= written {
			if r.counter && w.acc != nil {
				r.addNativeTotal(rs, o, w.acc) // a gauge's histogram for a written window is lost
			}
			continue
		}
		dst := o.window(w.k)
		dst.samples += w.samples
		switch {
		case w.acc == nil:
		case o.addTo(dst, w.acc, true):
			// A gauge's count is of the histograms its sum holds: one refused adds none.
			dst.count += w.count
		default:
			rs.stats.dropped[dropUnaggregatable] += uint64(w.samples)
		}
	}
	for _, hi := range inputs {
		st.Inputs++
		mine, ok := ns.inputs[hi.hash]
		first, began := ns.firsts[hi.hash]
		if began && first.counts && (hi.first.h == nil || hi.first.t < first.t) {
			first.counts = false // as merge: the previous owner knew the input before
			ns.firsts[hi.hash] = first
		}
		if !ok && began && hi.t < first.t {
			// As merge: begun here after the old owner's view, and ended here since.
			if r.counter {
				r.bridgeNative(rs, o, hi.last, first)
			} else {
				r.bridgeNativeGauge(rs, o, hi.t, hi.last, first.t, written)
			}
			ns.bridgedFirst(hi, o)
			st.Bridged++
			continue
		}
		if !ok {
			if !r.counter { // as merge: its value in the windows closed here meanwhile
				r.bridgeNativeGauge(rs, o, hi.t, hi.last, rs.closed*r.interval+1, written)
			}
			ns.inputs[hi.hash] = &nativeInput{t: hi.t, last: hi.last, out: o}
			if hi.first.h != nil && (o.held || r.handedOffLater(o.place)) { // as merge
				if ns.firsts == nil {
					ns.firsts = map[uint64]nativeFirst{}
				}
				counts := hi.first.counts && (!began || hi.first.t < first.t) // as merge
				ns.firsts[hi.hash] = nativeFirst{t: hi.first.t, h: hi.first.h, out: o, counts: counts}
			} else if hi.first.h != nil && hi.first.counts && !began && !value.IsStaleNaN(hi.first.h.Sum) {
				r.addNativeIncrease(rs, o, hi.first.t, hi.first.h, false) // as merge: a new series
			}
			ns.peak = max(ns.peak, len(ns.inputs))
			o.live++
			r.inputs.Add(1)
			continue
		}
		// Of the two views of one input, the later began with a baseline: the increase
		// from the earlier view's last histogram to it counts.
		// As merge: a counter's increase across the two views, a gauge's earlier view in
		// the windows before the later one began.
		if began && hi.t < first.t {
			if r.counter {
				r.bridgeNative(rs, o, hi.last, first)
			} else {
				r.bridgeNativeGauge(rs, o, hi.t, hi.last, first.t, written)
			}
			ns.bridgedFirst(hi, o)
			st.Bridged++
		} else if hi.first.h != nil && mine.t < hi.first.t {
			if r.counter {
				r.bridgeNative(rs, o, mine.last, hi.first)
			} else {
				r.bridgeNativeGauge(rs, o, mine.t, mine.last, hi.first.t, max(written, rs.closed))
			}
			st.Bridged++
		}
		if hi.t > mine.t {
			mine.t, mine.last = hi.t, hi.last
		}
	}
	if (wrote || !o.held) && !r.handedOffLater(o.place) { // as merge
		r.releaseNative(rs, o)
	}
}

// bridgedFirst is ruleShard.bridgedFirst for a native histogram input.
func (ns *nativeShard) bridgedFirst(hi nativeHandoffInput, o *nativeOutput) {
	if hi.first.h != nil {
		ns.firsts[hi.hash] = nativeFirst{t: hi.first.t, h: hi.first.h, out: o, counts: hi.first.counts} // as ruleShard.bridgedFirst
	} else {
		delete(ns.firsts, hi.hash)
	}
}

// addNativeTotal adds h to the running total of counter output o.
func (r *ruleState) addNativeTotal(rs *ruleShard, o *nativeOutput, h *histogram.FloatHistogram) {
	if _, _, err := o.total.Add(h); err != nil {
		rs.stats.dropped[dropUnaggregatable]++
		return
	}
	o.total.Compact(0)
}

// bridgeNative counts, in native output o, the increase of a counter input from prev, the
// last histogram one member saw, to first, the baseline another began with.
func (r *ruleState) bridgeNative(rs *ruleShard, o *nativeOutput, prev *histogram.FloatHistogram, first nativeFirst) {
	if prev == nil || first.h == nil || value.IsStaleNaN(prev.Sum) || value.IsStaleNaN(first.h.Sum) {
		return // the series ended in between: its next sample is a new start
	}
	inc := first.h.Copy()
	if !first.h.DetectReset(prev) {
		if _, _, err := inc.Sub(prev); err != nil {
			rs.stats.dropped[dropUnaggregatable]++
			return
		}
	}
	r.addNativeIncrease(rs, o, first.t, inc, true)
}

// addNativeIncrease counts inc, an increase of an input of native output o at t, in the
// window of t if it is still to be written, else in the running total (owned: inc is o's
// to keep).
func (r *ruleState) addNativeIncrease(rs *ruleShard, o *nativeOutput, t int64, inc *histogram.FloatHistogram, owned bool) {
	if k := windowOf(t, r.interval); k > o.emittedK {
		if !o.addTo(o.window(k), inc, owned) {
			rs.stats.dropped[dropUnaggregatable]++
		}
		return
	}
	if o.total != nil {
		r.addNativeTotal(rs, o, inc)
	}
}

// bridgeNativeGauge is bridgeGauge for a native output: h, the histogram a member last saw
// of a gauge input at t, in the windows after written up to the one before later.
func (r *ruleState) bridgeNativeGauge(rs *ruleShard, o *nativeOutput, t int64, h *histogram.FloatHistogram, later, written int64) {
	if h == nil || value.IsStaleNaN(h.Sum) {
		return
	}
	for k := max(written+1, windowOf(t, r.interval)); k < windowOf(later, r.interval); k++ {
		if t <= k*r.interval-r.stale {
			return
		}
		r.addGauge(rs, o, k, h)
	}
}

// releaseNative stops holding native output o for a handoff and forgets its inputs' first
// histograms; as release, those no handoff bridged that count in full count now.
func (r *ruleState) releaseNative(rs *ruleShard, o *nativeOutput) {
	o.held, o.stray = false, false
	ns := rs.native
	for h, f := range ns.firsts {
		if f.out != o {
			continue
		}
		delete(ns.firsts, h)
		if f.counts && f.h != nil && !value.IsStaleNaN(f.h.Sum) {
			r.addNativeIncrease(rs, o, f.t, f.h, false)
		}
	}
}
