package aggregator

import (
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/rules"
)

// ruleState is the live state of one compiled rule. Its per-shard parts are guarded by the
// aggregator's shard locks; the atomics are read by the flusher and the status page.
type ruleState struct {
	rule     *rules.Rule
	outputs  []compiledOutput
	counter  bool    // counter semantics (counter, histogram, summary) rather than gauge
	interval int64   // ms
	delay    int64   // flush delay, ms
	stale    int64   // staleness, ms
	grouping nameSet // rule.By when rule.ByMode, else rule.Without
	oneName  bool    // the rule selects series of one metric name (see metricNames)

	own *atomic.Pointer[Ownership] // the aggregator's, in a cluster; nil for a rule outside one
	// strays is the aggregator's: set when an output begins here that another member owns.
	strays *atomic.Bool

	// With ha: the aggregator's elections, the replica label (left out of every series
	// identity and output) and the failover timeout in ms. replica is "" without ha.
	elections      *haTracker
	replica        string
	failover       int64
	haDeduplicated atomic.Uint64 // samples of replicas not elected
	haUnnamed      atomic.Uint64 // samples of series without the replica label

	// typeMismatches counts metadata declaring a selected metric of the other kind
	// (counter-like vs gauge-like); the first is logged (metadata.go).
	typeMismatches atomic.Uint64
	// exemplarsDropped counts exemplars of selected series not passed on: the rule keeps
	// none, or more than it keeps came in one window.
	exemplarsDropped   atomic.Uint64
	typeMismatchLogged atomic.Bool

	placeBase  uint64 // placeSeed: the series-independent part of the rule's placement keys
	placeNamed bool   // placeByName: the input metric name is part of its placement keys
	// placeKept: the labels a placement key hashes are those seriesHashes keeps, so the
	// hash placeKeyOfInput computes is the output hash too (placesByKept).
	placeKept bool
	// placePlain: a placement key hashes every label the rule keeps but __name__ (no
	// replica label, no le, no added label to leave out), which placeKeyOfInput checks with
	// one set lookup per label (placesPlain).
	placePlain bool

	nativeAny     bool // some output aggregates native histograms
	nativePartial bool // some output cannot (avg, min, max, last), or the rule is a summary

	shards [numShards]ruleShard

	started atomic.Bool
	startK  atomic.Int64 // window of the first sample: not emitted, it is partial
	startT  atomic.Int64 // timestamp of the first sample
	closedK atomic.Int64 // newest window closed in every shard

	// notOwned counts samples of forwarded requests whose output another member owns by
	// the sender's ring: the sender sent them there too.
	notOwned atomic.Uint64

	inputs  atomic.Int64 // live input series, for max_input_series
	outputN atomic.Int64 // live output series, for max_output_series

	// seenLabels has bit i set once grouping.names[i] has occurred in an input series (the
	// first 64 names): set when an input series is created, never per sample.
	seenLabels atomic.Uint64
	noop       noopWatch // the no-op warnings about this rule (noop.go)

	lastFlush     atomic.Int64 // wall clock of the last flush that closed a window, ms
	lastFlushDur  atomic.Int64 // its duration, ns
	lastFlushHold atomic.Int64 // the longest it held one shard lock, ns: how long it could stall a request
}

// newRuleState compiles a rule's outputs and prepares its empty state.
func newRuleState(r *rules.Rule) (*ruleState, error) {
	outs, err := compileOutputs(r)
	if err != nil {
		return nil, err
	}
	st := &ruleState{
		rule:     r,
		outputs:  outs,
		counter:  r.Type != rules.Gauge,
		interval: r.Interval.Milliseconds(),
		delay:    r.FlushDelay.Milliseconds(),
		stale:    r.Staleness.Milliseconds(),
	}
	st.nativeAny, st.nativePartial = nativeSupport(r.Type, outs)
	st.replica = haReplica(r)
	if r.HA != nil {
		st.failover = r.HA.FailoverTimeout.Milliseconds()
	}
	st.oneName = len(st.metricNames()) == 1
	st.grouping = newNameSet(r.Without)
	if r.ByMode {
		st.grouping = newNameSet(r.By)
	}
	st.placeBase, st.placeNamed = st.placeSeed(), st.placeByName()
	st.placeKept, st.placePlain = st.placesByKept(), st.placesPlain()
	// A rule built in code rather than compiled from a file may leave its timing unset.
	def := rules.DefaultDefaults()
	if st.interval <= 0 {
		st.interval = time.Duration(def.FlushInterval).Milliseconds()
	}
	if st.stale <= 0 {
		st.stale = time.Duration(def.Staleness).Milliseconds()
	}
	return st, nil
}

// start records the rule's first sample, once.
func (r *ruleState) start(t int64) {
	if r.started.Load() {
		return
	}
	if r.started.CompareAndSwap(false, true) {
		k := windowOf(t, r.interval)
		r.startK.Store(k)
		r.startT.Store(t)
		r.closedK.Store(k - 1)
	}
}

// initShard prepares a rule shard on first use; its closed window starts where the rule's is.
func (r *ruleState) initShard(rs *ruleShard) {
	rs.ready = true
	rs.outputIdx = make(map[uint64]uint32)
	rs.closed = r.closedK.Load()
}

// metricNames returns the metric names the rule selects series by (the rule index's keys
// for it), or nil when it selects by its matchers alone. A histogram rule on base name x
// also selects the native histogram series x.
func (r *ruleState) metricNames() []string {
	names := r.rule.MetricNames
	if len(names) > 0 && r.rule.Type == rules.Histogram && r.rule.BaseName != "" && !slices.Contains(names, r.rule.BaseName) {
		names = append(slices.Clip(names), r.rule.BaseName)
	}
	return names
}

// floatsUnaggregatable reports whether float samples of this input metric cannot be
// aggregated by the rule: the quantile series of a summary, and floats under a histogram's
// base name, which a histogram rule selects for its native histograms (an output of that name
// carries histograms).
func (r *ruleState) floatsUnaggregatable(name string) bool {
	return (r.rule.Type == rules.Summary || r.rule.Type == rules.Histogram) && r.rule.BaseName != "" && name == r.rule.BaseName
}

// keeps reports whether the rule keeps label name in its output series.
func (r *ruleState) keeps(name string) bool {
	if name == r.replica {
		return false
	}
	return name == rules.MetricNameLabel || r.grouping.has(name) == r.rule.ByMode
}

// buildOutputLabels returns, per output kind, the label set of the output series an input
// series feeds. Strings are copied: the input's point into a request buffer.
func (r *ruleState) buildOutputLabels(in []prompb.Label) [][]prompb.Label {
	base := make([]prompb.Label, 0, len(in)+len(r.rule.AddLabels))
	input := ""
	for _, l := range in {
		if l.Name == rules.MetricNameLabel {
			input = l.Value
			continue
		}
		if r.keeps(l.Name) && !hasLabel(r.rule.AddLabels, l.Name) {
			base = append(base, prompb.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)})
		}
	}
	base = append(base, r.rule.AddLabels...)
	out := make([][]prompb.Label, len(r.outputs))
	for i, o := range r.outputs {
		ls := make([]prompb.Label, 0, len(base)+1)
		// Cloned: the input name points into a request buffer and may come back unchanged.
		ls = append(ls, prompb.Label{Name: rules.MetricNameLabel, Value: strings.Clone(r.rule.OutputMetricName(input, o.name))})
		ls = append(ls, base...)
		slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
		out[i] = ls
	}
	return out
}

func hasLabel(ls []prompb.Label, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

// outputFor returns the index of the output series with hash h, creating it from the input
// labels if needed; ok is false when max_output_series forbids a new one.
func (r *ruleState) outputFor(rs *ruleShard, h uint64, lbls []prompb.Label, k int64) (uint32, bool) {
	if idx, ok := rs.outputIdx[h]; ok {
		return idx, true
	}
	if max := r.rule.MaxOutputSeries; (max > 0 && r.outputN.Load() >= int64(max)) || len(rs.outputs) >= maxOuts {
		return 0, false
	}
	r.outputN.Add(1)
	o := newOutputState(h, r.buildOutputLabels(lbls), k)
	o.place = r.placeKeyOfOutput(o.labels[0])
	o.held, o.stray = r.newOutputWaits(o.place)
	return rs.addOutput(o), true
}

// newOutputWaits says of a new output with placement key place (a float or a native one)
// whether it is held for a handoff (this member gained it in a ring change the previous
// owner's handoff may not have followed yet) and whether it is a stray: another member owns
// it, and it began here because a sender routing by another ring sent its inputs here
// (Route.Disagrees).
func (r *ruleState) newOutputWaits(place uint64) (held, stray bool) {
	own := r.ownership()
	if own == nil {
		return false, false
	}
	held, stray = own.Awaits(place), !own.Owns(place)
	if stray && r.strays != nil {
		// Whatever began it (a sender on another ring, or a request routed by this
		// member's ring before it changed), the next flush tick hands it on, and until
		// then this member holds state for another (HoldsForOthers).
		r.strays.Store(true)
	}
	return held, stray
}

// adoptStray makes a stray output that this member owns now (its ring has caught up with
// the sender's that sent the stray's inputs) wait for its previous owner's handoff, as an
// output begun after the ring change does: until the handoff comes, this member has only a
// part of the output's inputs, and the previous owner may have written the window this
// member would write first (the cluster test saw a window with two writers).
func adoptStray(stray, held *bool, place uint64, own Ownership) {
	if *stray && own != nil && own.Owns(place) {
		*stray, *held = false, true
	}
}

// adoptOwnedStray is adoptStray by the ring in force, for a new input of the output or a
// handoff of it: a window close adopts every stray this member owns, but a ring change comes
// between two closes. Until the next one, a new input of a stray this member owns now would
// be neither held nor handed off later, so its first sample would be a plain baseline, and
// the increase from the old owner's last sample of the input to it lost for good when the
// old owner's handoff came; a merge would release the stray and forget its inputs' first
// samples the same way.
func (r *ruleState) adoptOwnedStray(stray, held *bool, place uint64) {
	if *stray {
		adoptStray(stray, held, place, r.ownership())
	}
}

// handedOffLater reports whether the output with placement key place (a float or a native
// one) belongs to another member: its inputs' first samples are kept, so that the owner can
// count the increase from its own last sample of them (docs/design.md §5).
func (r *ruleState) handedOffLater(place uint64) bool {
	own := r.ownership()
	return own != nil && !own.Owns(place)
}

// ownership returns the aggregator's Ownership, or nil (also for a rule outside one).
func (r *ruleState) ownership() Ownership {
	if r.own == nil {
		return nil
	}
	if p := r.own.Load(); p != nil {
		return *p
	}
	return nil
}

// releaseInput releases a departing input series' reference on its output; the caller
// deletes it from the table.
func (r *ruleState) releaseInput(rs *ruleShard, in inputState) {
	rs.outputs[in.out].live--
	r.inputs.Add(-1)
}

// admit applies the rules every sample passes before it touches an input series: a sample
// more than maxFuture ahead of the wall clock, or a NaN that is not a stale marker, is dropped
// and counted; any other moves the rule shard's watermark. It returns the sample's window.
func (r *ruleState) admit(rs *ruleShard, t int64, nan bool, now, maxFuture int64) (int64, bool) {
	if t > now+maxFuture {
		rs.stats.dropped[dropFuture]++
		return 0, false
	}
	if nan {
		rs.stats.dropped[dropNaN]++
		return 0, false
	}
	rs.maxT = max(rs.maxT, t)
	rs.lastRecv = now
	return rs.window.of(t, r.interval), true
}

// admitNew applies the rules for the first sample of a new input series in window k: a gauge
// sample for a closed window is late, and max_input_series caps the inputs. It returns the
// window the sample counts in (for a counter, the oldest open one if k is closed).
func (r *ruleState) admitNew(rs *ruleShard, k int64) (int64, bool) {
	if !r.counter && k <= rs.closed {
		rs.stats.dropped[dropLate]++
		return 0, false
	}
	if max := r.rule.MaxInputSeries; max > 0 && r.inputs.Load() >= int64(max) {
		rs.stats.dropped[dropLimit]++
		return 0, false
	}
	if k <= rs.closed {
		rs.stats.late++ // a counter's: it counts in the oldest open window
		return rs.closed + 1, true
	}
	return k, true
}

// ingestSample applies one sample of one input series to the rule's state in shard rs.
// series is the request: the input's labels, series[e.series].Labels, are read only when
// the input is new. now is the wall clock in ms; maxFuture the furthest a timestamp may be
// ahead of it.
func (r *ruleState) ingestSample(rs *ruleShard, e *entry, series []prompb.TimeSeries, t int64, v float64, now, maxFuture int64) {
	// The hottest function of the aggregator: the usual sample (a counter input seen before,
	// at the slot touchInputs found) takes the straight path through it, with the counter
	// arithmetic in line; new inputs and gauges have methods of their own.
	stale := value.IsStaleNaN(v)
	k, ok := r.admit(rs, t, !stale && math.IsNaN(v), now, maxFuture)
	if !ok {
		return
	}
	slot, ok := rs.inputs.slotHinted(e.inHash, int(e.slot))
	if !ok {
		if !stale { // a stale marker for a series we do not have has nothing to end
			r.ingestNew(rs, e, series, k, t, v)
		}
		return
	}
	s := &rs.inputs.slots[slot]
	in := s.state()
	if t <= in.t {
		rs.stats.dropped[dropDuplicate]++
		return
	}
	o := rs.outputs[in.out]
	if r.counter {
		// The increase over the input's previous value. A sample for a closed window is
		// credited to the oldest open one, so the running total loses nothing.
		if k <= rs.closed {
			k = rs.closed + 1
			rs.stats.late++
		}
		w := o.window(k)
		w.samples++
		switch {
		case stale || value.IsStaleNaN(in.v): // an end marker, or a baseline after one
		case v >= in.v:
			w.increase += v - in.v
		case in.t <= e.haFrom:
			// The first sample from the replica elected by a failover, lower than the old
			// replica's last: the replicas disagree, and this is a new baseline (§3.8).
		default:
			w.increase += v
			rs.stats.resets++
		}
	} else if !r.ingestGauge(rs, o, in, k) {
		return
	}
	in.t, in.v = t, v
	s.set(in)
	rs.stats.ingested++
	if stale { // written only then: the field is not among the shard's hot ones
		rs.staleMarked = true
	}
}

// ingestNew starts a new input series with its first sample, in window k.
func (r *ruleState) ingestNew(rs *ruleShard, e *entry, series []prompb.TimeSeries, k, t int64, v float64) {
	k, ok := r.admitNew(rs, k)
	if !ok {
		return
	}
	idx, ok := r.outputFor(rs, e.outHash, series[e.series].Labels, k)
	if !ok {
		rs.stats.dropped[dropLimit]++
		return
	}
	o := rs.outputs[idx]
	o.live++
	r.inputs.Add(1)
	r.noteLabels(series[e.series].Labels)
	rs.inputs.insert(e.inHash, inputState{t: t, v: v, out: idx})
	r.adoptOwnedStray(&o.stray, &o.held, o.place)
	handedOff := o.held || r.handedOffLater(o.place)
	counts := r.countsFirst(&series[e.series], t)
	if handedOff {
		if rs.firsts == nil {
			rs.firsts = map[uint64]firstSample{}
		}
		// A stray's (handed off later) keeps counts too: it goes on with the handoff, and
		// the owner counts it if it knew the input no earlier (merge). An input that ended
		// here while the output waits, and is back, keeps the first sample it began with:
		// the handoff bridges to that one, and this one follows a gap, a new baseline.
		if f, ok := rs.firsts[e.inHash]; !ok || f.out != idx {
			rs.firsts[e.inHash] = firstSample{t: t, v: v, out: idx, counts: r.createdRecently(&series[e.series], t)}
		}
	}
	if rs.inputs.len() == 1 {
		rs.oldestT = t
	} else {
		rs.oldestT = min(rs.oldestT, t)
	}
	rs.stats.ingested++
	w := o.window(k)
	w.samples++
	if counts && !handedOff {
		w.increase += v // a new series that began at zero after the rule started
	}
	o.firstK = min(o.firstK, k)
}

// countsFirst reports whether the first sample, at t, of a new counter input series ts
// counts in full, as an increase from zero, rather than as a baseline (docs/design.md §3.3):
// when the rule says first_sample: count and has been running for longer than its
// staleness period, or when the series carries a created timestamp (Remote Write 2.0) at or
// after the rule's first sample and within the staleness period before t: the counter
// started from zero while the rule was watching. An older created timestamp is a counter
// that was already running, or one this rule saw before and let go stale, whose earlier
// increase must not count twice. The input of an output that waits for a handoff is a
// baseline (the previous owner's view bridges the increase to it), and counts in full only
// with a created timestamp (createdRecently), if the wait ends without such a view (release).
func (r *ruleState) countsFirst(ts *prompb.TimeSeries, t int64) bool {
	switch {
	case !r.counter:
		return false
	case r.rule.FirstSample == rules.FirstSampleCount && t > r.startT.Load()+r.stale:
		return true
	}
	return r.createdRecently(ts, t)
}

// createdRecently reports whether counter input series ts, first seen at t, carries a
// created timestamp at or after the rule's first sample and within the staleness period
// before t: it started from zero while the rule was watching. Of a first sample held for a
// handoff, only this counts it in full when no handoff knew the input (release):
// first_sample: count's evidence, the rule running for longer than its staleness period,
// is what every input a ring change brings to this member shows too, and a wait that the
// timeout ends (the previous owner died) would count each one's whole value, a jump of the
// output by its inputs' absolute values.
func (r *ruleState) createdRecently(ts *prompb.TimeSeries, t int64) bool {
	if !r.counter || len(ts.XXX_unrecognized) == 0 {
		return false
	}
	ct := remotewrite.CreatedTimestamp(ts)
	return ct > 0 && ct >= r.startT.Load() && ct <= t && ct >= t-r.stale
}

// ingestGauge applies a gauge sample in window k to output o of input in, and reports
// whether it counted: a sample for a closed window is late.
func (r *ruleState) ingestGauge(rs *ruleShard, o *outputState, in inputState, k int64) bool {
	if k <= rs.closed {
		rs.stats.dropped[dropLate]++
		return false
	}
	r.commitGauge(rs, o, in, k)
	o.window(k).samples++
	return true
}

// commitGauge records, for every open window before k, the value the gauge input had at that
// window's end (its latest sample), before the input moves on to a sample in window k.
func (r *ruleState) commitGauge(rs *ruleShard, o *outputState, in inputState, k int64) {
	if value.IsStaleNaN(in.v) {
		return
	}
	for kk := max(rs.closed+1, windowOf(in.t, r.interval)); kk < k; kk++ {
		if in.t <= kk*r.interval-r.stale {
			return
		}
		o.window(kk).addValue(in.v, in.t)
	}
}
