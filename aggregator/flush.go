package aggregator

import (
	"math"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
)

// emitted is one output sample found while a shard lock is held; the series around it are
// built after the lock is released.
type emitted struct {
	labels []prompb.Label
	v      float64
	t      int64
	h      *histogram.FloatHistogram // a native histogram sample instead of v; owned by the flush
	ex     []prompb.Exemplar         // exemplars passed on with the sample (exemplars.go)
}

// closeTarget returns the newest window of rule r that may close now: the watermark (the
// newest sample timestamp, capped at the wall clock; the wall clock itself once the rule has
// received nothing for flush_delay, unless requests were being refused then) minus
// flush_delay. force closes every window with data. It also returns the rule's newest sample
// timestamp.
func (a *Aggregator) closeTarget(r *ruleState, now int64, force bool) (k, maxT int64) {
	var lastRecv int64
	for s := range numShards {
		a.locks[s].Lock()
		rs := &r.shards[s]
		maxT, lastRecv = max(maxT, rs.maxT), max(lastRecv, rs.lastRecv)
		a.locks[s].Unlock()
	}
	w := min(maxT, now)
	if now-max(lastRecv, a.refusedAt.Load()) >= r.delay {
		w = max(w, now)
	}
	k = floorDiv(w-r.delay, r.interval)
	if force {
		k = max(k, windowOf(maxT, r.interval))
	}
	return k, maxT
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// flushRule closes every window of r up to the close target and returns the output series;
// force and stampNewest are Flush's force (a reload's forced close of a removed rule keeps
// window-end stamps: no process continues that rule's windows).
// Each shard is locked once; its closed windows are read out under the lock and the series
// are built outside it.
//
// With an Ownership, outputs this member does not own are taken out into h before any window
// closes (they are their owner's to emit), and outputs held for a handoff are not emitted.
func (a *Aggregator) flushRule(r *ruleState, force, stampNewest bool, h *Handoff) []prompb.TimeSeries {
	if !r.started.Load() {
		return nil
	}
	start := a.opts.Now()
	target, maxT := a.closeTarget(r, start.UnixMilli(), force)
	if target <= r.closedK.Load() {
		return nil
	}
	// The samples of every shard are gathered first, so that the series are built in one
	// slice of the right size: a flush allocates what it hands to the sinks and little else,
	// and nothing while it holds a lock (growing buf there could make it assist the garbage
	// collector). A flush that catches up closes several windows (history sent faster than
	// real time: about four per tick), each output emitting in every one; the presizing
	// stops at four, so that a flush after a long gap, whose windows are mostly empty, does
	// not set aside many times what it emits.
	windows := int(min(max(target-r.closedK.Load(), 1), 4))
	buf := make([]emitted, 0, int(r.outputN.Load())*len(r.outputs)*windows)
	// One result for every window: outputs see it through an interface, so it is on the heap.
	res := &windowResult{interval: float64(r.interval) / 1000}
	own := a.ownership()
	var take takeOut // the outputs to hand off: those this member does not own
	if own != nil && h != nil {
		take = unowned{own}
	}
	// A hold is timed from just after Lock to just after Unlock, on the monotonic clock
	// alone: one clock read inside the hold, where three made up half of it. The time it
	// spends held is what a request can be made to wait, so it is kept short.
	var maxHold time.Duration
	clock := time.Now() // the real clock, with its monotonic reading: opts.Now may be a test's
	for s := range numShards {
		a.locks[s].Lock()
		locked := time.Since(clock)
		rs := &r.shards[s]
		if rs.ready {
			n := len(buf)
			if take != nil {
				r.exportUnowned(rs, take, h)
			}
			for k := rs.closed + 1; k <= target; k++ {
				if len(rs.outputIdx) == 0 && rs.native == nil {
					break
				}
				buf = r.closeWindow(rs, k, buf, res, own)
			}
			rs.closed = max(rs.closed, target)
			rs.stats.seriesFlushed += uint64(len(buf) - n)
		}
		a.locks[s].Unlock()
		maxHold = max(maxHold, time.Since(clock)-locked)
	}
	if stampNewest {
		// A forced close at shutdown ends the newest window before its end: its samples are
		// stamped with the newest sample's timestamp, never in the future and never a window
		// end that the next process, continuing the window, will write.
		for i := range buf {
			buf[i].t = min(buf[i].t, maxT)
		}
	}
	out := appendSeries(make([]prompb.TimeSeries, 0, len(buf)), buf)
	r.closedK.Store(target)
	r.lastFlush.Store(start.UnixMilli())
	r.lastFlushDur.Store(int64(time.Since(start)))
	r.lastFlushHold.Store(int64(maxHold))
	return out
}

// appendSeries turns emitted samples into series, sharing one sample array.
func appendSeries(out []prompb.TimeSeries, es []emitted) []prompb.TimeSeries {
	if len(es) == 0 {
		return out
	}
	samples := make([]prompb.Sample, len(es))
	for i, e := range es {
		if e.h != nil {
			h := prompb.FromFloatHistogram(e.t, e.h)
			h.CustomValues = e.h.CustomValues // bucket bounds of a custom-buckets histogram
			out = append(out, prompb.TimeSeries{Labels: e.labels, Histograms: []prompb.Histogram{h}, Exemplars: e.ex})
			continue
		}
		samples[i] = prompb.Sample{Value: e.v, Timestamp: e.t}
		out = append(out, prompb.TimeSeries{Labels: e.labels, Samples: samples[i : i+1 : i+1], Exemplars: e.ex})
	}
	return out
}

// closeWindow closes window k of one rule shard: it expires inputs that are stale at the
// window end, folds the gauge inputs' values, and appends each live output's samples
// (stamped k·interval) to buf. Outputs left with no input emit a stale marker and are freed.
// res is scratch for the outputs' results; its interval is the rule's.
//
// own, in a cluster, says which outputs wait for a handoff: they close their windows but
// emit nothing until it is merged or the wait is over.
func (r *ruleState) closeWindow(rs *ruleShard, k int64, buf []emitted, res *windowResult, own Ownership) []emitted {
	end := k * r.interval
	// A counter rule's inputs matter here only if one may leave: a gauge's are read at every
	// close. Skipping the pass keeps the flush's time under the shard lock to its outputs.
	if !r.counter || rs.staleMarked || rs.oldestT <= end-r.stale {
		r.closeInputs(rs, k)
	}
	startK := r.startK.Load()
	for idx, o := range rs.outputs {
		if o == nil {
			continue
		}
		adoptStray(&o.stray, &o.held, o.place, own)
		released := false
		if o.held {
			if own != nil && own.Awaits(o.place) {
				continue // waiting for a handoff: its windows stay open, to be emitted after
			}
			r.release(rs, o, uint32(idx)) // no handoff came in time: it goes on from its own state
			released = true
		}
		// Windows before k: those of an output that was held, or a handoff's windows that
		// had closed here before it came; the previous owner had not emitted them.
		// A window at or before emittedK was written by the output's previous owner, which
		// closed it before this member did (their flush ticks differ): it moves the running
		// total on, but is not written again.
		// A counter output written up to emittedK is written in every window after it, with
		// a sample here or not, as it would be had it never waited: the windows this member
		// closed while it held the output, without a sample of it, are written too.
		gone := false
		from := r.catchUpFrom(o.emitted, o.emittedK, k)
		if released {
			from = r.releaseFrom(o.emitted, o.firstK, from, k)
		}
		for len(o.wins) > 0 && o.wins[0].k < from && !gone {
			kk := o.wins[0].k
			buf, gone = r.closeOutput(rs, uint32(idx), o, kk, kk > startK && kk > o.emittedK, buf, res)
		}
		for kk := from; kk < k && !gone; kk++ {
			buf, gone = r.closeOutput(rs, uint32(idx), o, kk, kk > startK && kk > o.emittedK, buf, res)
		}
		if !gone {
			buf, _ = r.closeOutput(rs, uint32(idx), o, k, k > startK && k > o.emittedK, buf, res)
		}
	}
	if rs.native != nil {
		buf = r.closeNativeWindow(rs, k, buf, own)
	}
	return buf
}

// maxCatchUp bounds the windows without samples a flush writes for one output it held: a
// hold lasts at most the handoff timeout.
const maxCatchUp = 256

// catchUpFrom returns the first window before k that an output must be written in although
// it holds no accumulator for it: the window after the newest one written (emittedK), when
// it is a counter output written before (emitted: here or by its previous owner) and a few
// windows behind; k otherwise.
func (r *ruleState) catchUpFrom(emitted bool, emittedK, k int64) int64 {
	from := emittedK + 1
	if !r.counter || !emitted || emittedK <= 0 || from >= k || k-from > maxCatchUp {
		return k
	}
	return from
}

// releaseFrom is catchUpFrom for an output released this close after it waited for a
// handoff in vain: a counter output never written (it began while held) is written from its
// first window on, in every window, as it would have been had it not waited; only windows
// with samples would leave the windows between them and after the last one missing
// downstream. from is catchUpFrom's answer.
func (r *ruleState) releaseFrom(emitted bool, firstK, from, k int64) int64 {
	if !r.counter || emitted || firstK >= k {
		return from
	}
	return max(firstK, k-maxCatchUp)
}

// closeOutput closes window k of output o (at idx): its running total moves on, and it
// emits its samples stamped with the window's end, or ends (a stale marker if it ever
// emitted; its state is freed, and gone is true). emit is false for the rule's first window.
func (r *ruleState) closeOutput(rs *ruleShard, idx uint32, o *outputState, k int64, emit bool, buf []emitted, res *windowResult) (_ []emitted, gone bool) {
	end := k * r.interval
	res.acc = o.takeWindow(k)
	if r.counter {
		o.total += res.acc.increase
	}
	res.total = o.total
	switch r.outputFate(k, o.firstK, o.live, res.acc.samples, res.acc.count, emit) {
	case fateEmit:
		var ex []prompb.Exemplar
		if rs.exemplars != nil {
			ex = rs.takeExemplars(o.hash, end)
		}
		for i, co := range r.outputs {
			if v, ok := co.kind.value(res); ok {
				buf = append(buf, emitted{labels: o.labels[i], v: v, t: end, ex: ex})
				ex = nil // with the first kind's sample only
				o.emitted = true
			}
		}
		o.emittedK = k
	case fateEnd:
		delete(rs.exemplars, o.hash)
		if o.emitted && k > o.emittedK { // not at a window end another member wrote
			for i := range r.outputs {
				buf = append(buf, emitted{labels: o.labels[i], v: staleNaN(), t: end})
			}
		}
		rs.removeOutput(idx)
		r.outputN.Add(-1)
		return buf, true
	}
	return buf, false
}

// release stops holding output o (at idx) for a handoff and forgets its inputs' first
// samples. Those that no handoff bridged and that a member that never waited would have
// counted in full (first_sample: count, a created timestamp) count now, as an increase
// from zero: without that, a new series that began while the output waited lost its first
// value.
func (r *ruleState) release(rs *ruleShard, o *outputState, idx uint32) {
	o.held, o.stray = false, false
	for h, f := range rs.firsts {
		if f.out != idx {
			continue
		}
		delete(rs.firsts, h)
		if f.counts {
			r.bridge(rs, o, 0, f)
		}
	}
}

// closeInputs is closeWindow's pass over the inputs of a rule shard: it expires those that
// are stale at the end of window k (a stale marker in it or before, or no sample for the
// staleness period), folds the gauge inputs' values into window k, and recomputes what lets
// a later close skip the pass (see ruleShard.oldestT).
func (r *ruleState) closeInputs(rs *ruleShard, k int64) {
	end := k * r.interval
	rs.gone = rs.gone[:0]
	oldest, marked := int64(math.MaxInt64), false
	for i := range rs.inputs.slots {
		s := &rs.inputs.slots[i]
		if s.key == 0 {
			continue
		}
		in := s.state()
		if (value.IsStaleNaN(in.v) && in.t <= end) || in.t <= end-r.stale {
			r.releaseInput(rs, in)
			rs.gone = append(rs.gone, s.key)
			continue
		}
		oldest, marked = min(oldest, in.t), marked || value.IsStaleNaN(in.v)
		if !r.counter && !value.IsStaleNaN(in.v) && windowOf(in.t, r.interval) <= k {
			rs.outputs[in.out].window(k).addValue(in.v, in.t)
		}
	}
	for _, key := range rs.gone {
		rs.inputs.delete(key)
	}
	if len(rs.gone) > 0 {
		rs.inputs.shrink()
	}
	rs.oldestT, rs.staleMarked = oldest, marked
}

// closeNativeWindow is closeWindow for the native-histogram state: it expires inputs, and
// closes window k of every output (closeNativeOutput). Like closeWindow, it leaves the
// outputs held for a handoff open, and emits a released output's earlier windows first, in
// order. The native state itself is freed once it holds nothing.
func (r *ruleState) closeNativeWindow(rs *ruleShard, k int64, buf []emitted, own Ownership) []emitted {
	r.expireNative(rs, k)
	ns := rs.native
	startK := r.startK.Load()
	res := nativeResult{interval: float64(r.interval) / 1000}
	for hash, o := range ns.outputs {
		adoptStray(&o.stray, &o.held, o.place, own)
		released := false
		if o.held {
			if own != nil && own.Awaits(o.place) {
				continue // waiting for a handoff: its windows stay open, to be emitted after
			}
			r.releaseNative(rs, o) // no handoff came in time: it goes on from its own state
			released = true
		}
		owned := own == nil || own.Owns(o.place)
		gone := false
		from := k // as closeWindow: a counter output written before is written in every window
		if owned {
			from = r.catchUpFrom(o.emitted, o.emittedK, k)
			if released {
				from = r.releaseFrom(o.emitted, o.firstK, from, k)
			}
		}
		for len(o.wins) > 0 && o.wins[0].k < from && !gone {
			kk := o.wins[0].k
			buf, gone = r.closeNativeOutput(rs, hash, o, kk, owned && kk > startK && kk > o.emittedK, owned, buf, &res)
		}
		for kk := from; kk < k && !gone; kk++ {
			buf, gone = r.closeNativeOutput(rs, hash, o, kk, owned && kk > startK && kk > o.emittedK, owned, buf, &res)
		}
		if !gone {
			buf, _ = r.closeNativeOutput(rs, hash, o, k, owned && k > startK && k > o.emittedK, owned, buf, &res)
		}
	}
	if len(ns.inputs) == 0 && len(ns.outputs) == 0 {
		rs.native = nil
	}
	return buf
}

// closeNativeOutput closes window k of native output o (hash): a counter's window increase
// joins its running total (in the coarser schema of the two), and it emits its samples
// stamped with the window's end, or ends, when it has no input left (one stale marker per
// kind if it ever emitted: a histogram whose Sum is the stale NaN, or a float stale NaN for
// count; gone is true). emit is false for the rule's first window. An output another member
// owns (owned false; it is handed off at the next flush) emits nothing and ends silently:
// its owner writes it.
func (r *ruleState) closeNativeOutput(rs *ruleShard, hash uint64, o *nativeOutput, k int64, emit, owned bool, buf []emitted, res *nativeResult) (_ []emitted, gone bool) {
	end := k * r.interval
	res.acc = o.takeWindow(k)
	if res.acc.acc != nil {
		res.acc.acc.Compact(0)
	}
	if r.counter && res.acc.acc != nil {
		if _, _, err := o.total.Add(res.acc.acc); err != nil {
			rs.stats.dropped[dropUnaggregatable] += uint64(res.acc.samples)
		}
		o.total.Compact(0)
	}
	res.total, res.first = o.total, !o.emitted
	if !owned {
		o.emitted = false
	}
	switch r.outputFate(k, o.firstK, o.live, res.acc.samples, res.acc.count, emit) {
	case fateEmit:
		var ex []prompb.Exemplar
		if rs.exemplars != nil {
			ex = rs.takeExemplars(hash, end)
		}
		for i, co := range r.outputs {
			if e, ok := nativeSample(co.kind, res); ok {
				e.labels, e.t, e.ex = o.labels[i], end, ex
				ex = nil // with the first kind's sample only
				buf = append(buf, e)
				o.emitted = true
			}
		}
		o.emittedK = k
	case fateEnd:
		if o.emitted && k > o.emittedK { // not at a window end another member wrote
			for i, co := range r.outputs {
				if e, ok := nativeStaleMarker(co.kind); ok {
					e.labels, e.t = o.labels[i], end
					buf = append(buf, e)
				}
			}
		}
		delete(rs.native.outputs, hash)
		delete(rs.exemplars, hash)
		r.outputN.Add(-1)
		return buf, true
	}
	return buf, false
}

// retire ends every output series of a rule that a reload removed or changed, after its last
// flush: one stale marker per kind, 1 ms after the last closed window's end, so queries stop
// showing the old series at once instead of for a whole lookback period.
func (a *Aggregator) retire(r *ruleState) []prompb.TimeSeries {
	if !r.started.Load() {
		return nil
	}
	t := r.closedK.Load()*r.interval + 1
	var out []prompb.TimeSeries
	var buf []emitted
	for s := range numShards {
		buf = buf[:0]
		a.locks[s].Lock()
		rs := &r.shards[s]
		for _, o := range rs.outputs {
			if o == nil || !o.emitted {
				continue
			}
			for i := range r.outputs {
				buf = append(buf, emitted{labels: o.labels[i], v: staleNaN(), t: t})
			}
		}
		if rs.native != nil {
			for _, o := range rs.native.outputs {
				if !o.emitted {
					continue
				}
				for i, co := range r.outputs {
					if e, ok := nativeStaleMarker(co.kind); ok {
						e.labels, e.t = o.labels[i], t
						buf = append(buf, e)
					}
				}
			}
		}
		a.locks[s].Unlock()
		out = appendSeries(out, buf)
	}
	return out
}
