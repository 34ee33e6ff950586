package aggregator

import (
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// Native histograms (the remote-write histograms field) are aggregated like their float
// counterparts (docs/design.md §3.5), in state of their own: a rule shard allocates a nativeShard
// only when a native histogram reaches it, so the float inputTable stays pointer-free and
// rules that never see one pay nothing. Histograms are added bucket-wise by
// histogram.FloatHistogram.Add, which reduces to the coarser of two schemas.

// nativeShard is the native-histogram part of one rule shard.
type nativeShard struct {
	inputs  map[uint64]*nativeInput  // by input hash
	outputs map[uint64]*nativeOutput // by output hash
	peak    int                      // most inputs since inputs was last rebuilt
	// firsts are the first histograms of inputs begun (a counter's as baselines) in outputs
	// held for a handoff or owned by another member: a handoff bridges them (see
	// ruleShard.firsts).
	firsts map[uint64]nativeFirst
}

// newNativeShard returns an empty nativeShard.
func newNativeShard() *nativeShard {
	return &nativeShard{inputs: map[uint64]*nativeInput{}, outputs: map[uint64]*nativeOutput{}}
}

// nativeInput is what a rule keeps per input series of native histograms.
type nativeInput struct {
	t    int64                     // timestamp of the last accepted sample, ms
	last *histogram.FloatHistogram // its histogram; nil after a stale marker
	out  *nativeOutput
}

// nativeOutput is one output series of native histograms across all its output kinds.
type nativeOutput struct {
	hash    uint64
	labels  [][]prompb.Label          // per compiled output kind; read-only once built
	live    int32                     // input series currently feeding it
	firstK  int64                     // first window it has a sample in
	layout  *histogram.FloatHistogram // empty, in the bucket layout of the first input
	total   *histogram.FloatHistogram // counter: running total through the last closed window
	emitted bool                      // has emitted a sample (so death needs a stale marker)
	// emittedK is the newest window it emitted (a handoff's windows up to it are written).
	emittedK int64
	held     bool   // new after a ring change, waiting for a handoff: not emitted yet
	stray    bool   // begun while another member owned it (see adoptStray)
	place    uint64 // placement key: which member of a cluster owns it
	wins     []nativeWindow
}

// nativeWindow accumulates what one open window of one native output has seen.
type nativeWindow struct {
	k       int64
	samples int32
	count   int32                     // gauge: input series contributing a histogram
	acc     *histogram.FloatHistogram // counter: sum of increases; gauge: sum of latest histograms
}

// addTo folds h into window w of the output; owned says the window may keep h itself. A
// histogram that cannot be added to the output's (custom buckets against exponential ones, or
// custom bucket bounds that differ from the first input's) is refused with false, so that it
// cannot spoil the window for the inputs that fit.
func (o *nativeOutput) addTo(w *nativeWindow, h *histogram.FloatHistogram, owned bool) bool {
	if h.UsesCustomBuckets() != o.layout.UsesCustomBuckets() ||
		(h.UsesCustomBuckets() && !histogram.FloatBucketsMatch(h.CustomValues, o.layout.CustomValues)) {
		return false
	}
	if w.acc == nil {
		if !owned {
			h = h.Copy()
		}
		w.acc = h
		return true
	}
	_, _, err := w.acc.Add(h)
	return err == nil
}

// window returns the accumulator of window k, adding it in order if absent.
func (o *nativeOutput) window(k int64) *nativeWindow {
	i := 0
	for ; i < len(o.wins); i++ {
		if o.wins[i].k == k {
			return &o.wins[i]
		}
		if o.wins[i].k > k {
			break
		}
	}
	o.wins = slices.Insert(o.wins, i, nativeWindow{k: k})
	return &o.wins[i]
}

// takeWindow removes and returns the accumulator of window k (zero when it saw nothing).
func (o *nativeOutput) takeWindow(k int64) nativeWindow {
	if len(o.wins) > 0 && o.wins[0].k == k {
		w := o.wins[0]
		o.wins = slices.Delete(o.wins, 0, 1)
		return w
	}
	return nativeWindow{k: k}
}

// nativeSupport says what the rule's outputs make of native histograms: whether some output
// aggregates them, and whether some output (avg, min, max, last) cannot.
func nativeSupport(t rules.Type, outs []compiledOutput) (some, partial bool) {
	if t == rules.Summary {
		return false, true
	}
	for _, o := range outs {
		_, h := o.kind.(nativeHistogramOutput)
		_, f := o.kind.(nativeFloatOutput)
		if h || f {
			some = true
		} else {
			partial = true
		}
	}
	return some, partial
}

// ingestHistograms applies the native histogram samples of one input series to the rule's
// state in shard rs.
func (r *ruleState) ingestHistograms(rs *ruleShard, e *entry, ts *prompb.TimeSeries, now, maxFuture int64) {
	hs := ts.Histograms
	if !r.nativeAny {
		rs.stats.dropped[dropUnaggregatable] += uint64(len(hs))
		return
	}
	if r.nativePartial {
		// Some outputs (avg, min, max, last) get nothing from these samples.
		rs.stats.dropped[dropUnaggregatable] += uint64(len(hs))
	}
	if rs.native == nil {
		rs.native = newNativeShard()
	}
	for i := range hs {
		r.ingestHistogram(rs, e, ts, &hs[i], now, maxFuture)
	}
}

// ingestHistogram applies one native histogram sample, with the rules of ingestSample: future
// and NaN samples are dropped, a stale marker (Sum is the stale NaN) ends the input, a
// timestamp at or before the last accepted one is a duplicate, and a gauge sample for a closed
// window is late.
func (r *ruleState) ingestHistogram(rs *ruleShard, e *entry, ts *prompb.TimeSeries, hp *prompb.Histogram, now, maxFuture int64) {
	lbls := ts.Labels
	t := hp.Timestamp
	stale := value.IsStaleNaN(hp.Sum)
	nan := !stale && (math.IsNaN(hp.Sum) || math.IsNaN(hp.GetCountFloat()) || math.IsNaN(hp.GetZeroCountFloat()))
	k, ok := r.admit(rs, t, nan, now, maxFuture)
	if !ok {
		return
	}
	ns := rs.native
	in, ok := ns.inputs[e.inHash]
	if !ok {
		if stale {
			return // a stale marker for a series we do not have: nothing to end
		}
		if k, ok = r.admitNew(rs, k); !ok {
			return
		}
		h := ownedFloatHistogram(hp)
		o, ok := r.nativeOutputFor(ns, e.outHash, lbls, k, h)
		if !ok {
			rs.stats.dropped[dropLimit]++
			return
		}
		o.live++
		r.inputs.Add(1)
		r.noteLabels(lbls)
		ns.inputs[e.inHash] = &nativeInput{t: t, last: h, out: o}
		ns.peak = max(ns.peak, len(ns.inputs))
		r.adoptOwnedStray(&o.stray, &o.held, o.place)
		handedOff := o.held || r.handedOffLater(o.place)
		counts := r.countsFirst(ts, t)
		if handedOff {
			if ns.firsts == nil {
				ns.firsts = map[uint64]nativeFirst{}
			}
			// As ingestNew: a stray's counts goes on with the handoff, and an input that
			// is back keeps the first sample it began with.
			if f, ok := ns.firsts[e.inHash]; !ok || f.out != o {
				ns.firsts[e.inHash] = nativeFirst{t: t, h: h, out: o, counts: r.createdRecently(ts, t)}
			}
		}
		rs.stats.ingested++
		w := o.window(k)
		w.samples++
		if counts && !handedOff {
			// A new series that began at zero after the rule started.
			if !o.addTo(w, h, false) {
				rs.stats.dropped[dropUnaggregatable]++
			}
		}
		o.firstK = min(o.firstK, k)
		return
	}
	if t <= in.t {
		rs.stats.dropped[dropDuplicate]++
		return
	}
	var h *histogram.FloatHistogram
	if !stale {
		h = ownedFloatHistogram(hp)
	}
	if r.counter {
		r.ingestNativeCounter(rs, in, h, k)
	} else {
		if k <= rs.closed {
			rs.stats.dropped[dropLate]++
			return
		}
		r.commitNativeGauge(rs, in, k)
		in.out.window(k).samples++
	}
	in.t, in.last = t, h
	rs.stats.ingested++
}

// ingestNativeCounter credits a counter histogram's increase over the input's previous
// histogram (h − last; h itself after a counter reset) to window k, or to the oldest open
// window when k is closed. h is nil for a stale marker. DetectReset honours the sender's
// reset hint (YES is a reset, NO is none) and otherwise compares every bucket, the zero
// bucket and the count, as PromQL's rate does.
func (r *ruleState) ingestNativeCounter(rs *ruleShard, in *nativeInput, h *histogram.FloatHistogram, k int64) {
	if k <= rs.closed {
		k = rs.closed + 1
		rs.stats.late++
	}
	w := in.out.window(k)
	w.samples++
	if h == nil || in.last == nil {
		return // an end marker, or a baseline after one
	}
	inc := h.Copy() // h stays the input's last histogram; the window may keep inc
	if h.DetectReset(in.last) {
		rs.stats.resets++
	} else if _, _, err := inc.Sub(in.last); err != nil {
		rs.stats.dropped[dropUnaggregatable]++
		return
	}
	if !in.out.addTo(w, inc, true) {
		rs.stats.dropped[dropUnaggregatable]++
	}
}

// commitNativeGauge records, for every open window before k, the histogram the gauge input
// had at that window's end, before the input moves on to a sample in window k.
func (r *ruleState) commitNativeGauge(rs *ruleShard, in *nativeInput, k int64) {
	if in.last == nil {
		return
	}
	for kk := max(rs.closed+1, windowOf(in.t, r.interval)); kk < k; kk++ {
		if in.t <= kk*r.interval-r.stale {
			return
		}
		r.addGauge(rs, in.out, kk, in.last)
	}
}

// addGauge folds a gauge input's latest histogram into window k of output o.
func (r *ruleState) addGauge(rs *ruleShard, o *nativeOutput, k int64, h *histogram.FloatHistogram) {
	w := o.window(k)
	if !o.addTo(w, h, false) {
		rs.stats.dropped[dropUnaggregatable]++
		return
	}
	w.count++
}

// nativeOutputFor returns the native output series with hash h, creating it if needed; ok is
// false when max_output_series forbids a new one. Its bucket layout, and a counter output's
// empty running total, are those of first, its first input's histogram.
func (r *ruleState) nativeOutputFor(ns *nativeShard, hash uint64, lbls []prompb.Label, k int64, first *histogram.FloatHistogram) (*nativeOutput, bool) {
	if o, ok := ns.outputs[hash]; ok {
		return o, true
	}
	if max := r.rule.MaxOutputSeries; max > 0 && r.outputN.Load() >= int64(max) {
		return nil, false
	}
	r.outputN.Add(1)
	o := &nativeOutput{hash: hash, labels: r.buildOutputLabels(lbls), firstK: k, layout: emptyLike(first)}
	if r.counter {
		o.total = emptyLike(first)
	}
	o.place = r.placeKeyOfOutput(o.labels[0])
	o.held, o.stray = r.newOutputWaits(o.place)
	ns.outputs[hash] = o
	return o, true
}

// emptyLike returns a histogram with no observations in the bucket layout of h.
func emptyLike(h *histogram.FloatHistogram) *histogram.FloatHistogram {
	return &histogram.FloatHistogram{Schema: h.Schema, ZeroThreshold: h.ZeroThreshold, CustomValues: h.CustomValues}
}

// ownedFloatHistogram converts a decoded histogram to a FloatHistogram that shares nothing
// with the request: the decoder reuses its buffers for the next request.
func ownedFloatHistogram(hp *prompb.Histogram) *histogram.FloatHistogram {
	h := hp.ToFloatHistogram()
	if hp.IsFloatHistogram() {
		h.PositiveBuckets = slices.Clone(h.PositiveBuckets)
		h.NegativeBuckets = slices.Clone(h.NegativeBuckets)
	}
	// Custom bucket bounds are aliased by the float conversion and left out by the integer one.
	h.CustomValues = slices.Clone(hp.CustomValues)
	// Spans of length 0 are valid, but trip the bucket walk of Add.
	if hasEmptySpan(h.PositiveSpans) || hasEmptySpan(h.NegativeSpans) {
		h.Compact(0)
	}
	return h
}

// expireNative removes the native inputs that are stale at the end of window k and, for gauge
// rules, folds the live inputs' latest histograms into window k.
func (r *ruleState) expireNative(rs *ruleShard, k int64) {
	ns := rs.native
	end := k * r.interval
	removed := false
	for key, in := range ns.inputs {
		if (in.last == nil && in.t <= end) || in.t <= end-r.stale {
			in.out.live--
			r.inputs.Add(-1)
			delete(ns.inputs, key)
			removed = true
			continue
		}
		if !r.counter && in.last != nil && windowOf(in.t, r.interval) <= k {
			r.addGauge(rs, in.out, k, in.last)
		}
	}
	// A Go map never shrinks: rebuild it when it holds an eighth of its peak, so memory
	// follows the live series whatever the churn.
	if removed && ns.peak > 64 && len(ns.inputs)*8 <= ns.peak {
		rebuilt := make(map[uint64]*nativeInput, len(ns.inputs))
		for key, in := range ns.inputs {
			rebuilt[key] = in
		}
		ns.inputs, ns.peak = rebuilt, len(rebuilt)
	}
}
