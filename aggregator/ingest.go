package aggregator

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// entry is one (input series, rule) pair of a request, with the hashes that place it.
type entry struct {
	r       *ruleState
	inHash  uint64 // all labels: identifies the input series
	outHash uint64 // kept labels: identifies the output series, picks the shard
	t       int64  // with one: the sample, copied while the series is in cache
	v       float64
	haFrom  int64 // with ha: the newest sample of the replica elected before the last failover
	series  int32
	slot    int32 // where touchInputs found the input in its table, or -1: a hint for ingestSample
	shard   uint8
	skip    bool // the series' float samples cannot be aggregated by the rule (a summary's quantiles)
	one     bool // the series has exactly one float sample (t, v) and no histogram: the usual case
	ex      bool // the series has exemplars the rule keeps
}

// batch is the reusable scratch space of one Ingest call.
type batch struct {
	entries []entry
	sorted  []entry
	forward []prompb.TimeSeries
	peers   []int // the members the current series is forwarded to
	// In a cluster, each (series, rule) pair of a block of the request (route), its
	// placement key and its owner, and the metric name of each series of the block.
	placed []placed
	keys   []uint64
	owners []int
	names  []string
	// selected is scratch for the rules that select one series.
	selected []*ruleState
	kept     []byte // scratch for seriesHashes
	dropped  []byte
	touched  uint64     // keeps touchInputs' loads from being optimised away
	haLast   *haGroup   // the HA group the request looked up last
	now      int64      // wall clock at the request's start, ms
	ha       []haCounts // what the request's series did under elections
}

// seriesHashes returns the two hashes that place one input series of rule r: out, of the
// labels r keeps, names the output series and picks the shard; in, of all the labels, names
// the input series within the rule. One pass copies each label into kept or dropped (as
// name, 0xff, value, 0xff) and each byte is hashed once: in hashes the dropped labels
// followed by out, which stands for the kept ones. A rule that selects one metric name
// leaves __name__ out: it is the same in every series of the rule, and it is often the
// longest label. kept and dropped are scratch.
//
// The two hashes are the series' identities within the rule, and nothing checks them for a
// collision: two label sets with one hash are taken for one series. For n live series of a
// rule the chance that any two share a hash is about n²/2⁶⁵: 2.7×10⁻⁸ (1 in 37 million) at
// 1M series, 2.7×10⁻⁶ (1 in 370,000) at 10M. docs/design.md §3.7 says what a collision does
// and why storing labels to rule it out is not worth its memory.
func (r *ruleState) seriesHashes(kept, dropped []byte, lbls []prompb.Label) (in, out uint64, _, _ []byte) {
	kept, dropped = kept[:0], dropped[:0]
	for i := range lbls {
		l := &lbls[i]
		switch {
		case l.Name == r.replica: // never true without ha: no label name is empty
		case l.Name == rules.MetricNameLabel:
			if !r.oneName {
				kept = appendLabel(kept, l)
			}
		case r.grouping.has(l.Name) == r.rule.ByMode:
			kept = appendLabel(kept, l)
		default:
			dropped = appendLabel(dropped, l)
		}
	}
	out = xxhash.Sum64(kept)
	dropped = binary.LittleEndian.AppendUint64(dropped, out)
	return xxhash.Sum64(dropped), out, kept, dropped
}

// inputHash is seriesHashes' in for a series whose out is known: the hash of its dropped
// labels followed by out. dropped is scratch.
func (r *ruleState) inputHash(dropped []byte, lbls []prompb.Label, out uint64) (uint64, []byte) {
	dropped = dropped[:0]
	for i := range lbls {
		l := &lbls[i]
		switch {
		case l.Name == r.replica, l.Name == rules.MetricNameLabel, r.grouping.has(l.Name) == r.rule.ByMode:
		default:
			dropped = appendLabel(dropped, l)
		}
	}
	dropped = binary.LittleEndian.AppendUint64(dropped, out)
	return xxhash.Sum64(dropped), dropped
}

// appendLabel appends name, 0xff, value, 0xff: the bytes of one label in a series key.
func appendLabel(buf []byte, l *prompb.Label) []byte {
	buf = append(buf, l.Name...)
	buf = append(buf, 0xff)
	buf = append(buf, l.Value...)
	return append(buf, 0xff)
}

// metricName returns the value of __name__.
func metricName(lbls []prompb.Label) string {
	for i := range lbls {
		if lbls[i].Name == rules.MetricNameLabel {
			return lbls[i].Value
		}
	}
	return ""
}

// Ingest aggregates a decoded request's series. Label strings may point into a request
// buffer: nothing is kept without a copy. Series that match no rule are forwarded (copied)
// when Unmatched is forward, as are matched series of keep_input rules.
//
// The request's samples are first grouped by shard, so each shard lock is taken once.
func (a *Aggregator) Ingest(series []prompb.TimeSeries) { a.IngestRoute(series, Route{}) }

// IngestRoute is Ingest in a cluster: each (series, rule) pair whose output another member
// owns goes to rt.Forward instead of being aggregated here (docs/design.md §5). It returns
// the version of the rule set it routed by, which a request forwarded to the owner carries
// (Route.SenderRules).
func (a *Aggregator) IngestRoute(series []prompb.TimeSeries, rt Route) (rules uint64) {
	a.swap.RLock()
	defer a.swap.RUnlock()
	idx := a.index.Load()
	b := a.batches.Get().(*batch)
	b.entries = b.entries[:0]
	b.haLast, b.now = nil, a.opts.Now().UnixMilli()
	b.forward = nil
	if rt.Router != nil && !rt.trusts(idx) {
		a.route(b, idx, series, &rt)
	} else {
		a.addHere(b, idx, series, &rt)
	}
	a.apply(b, series)
	if len(b.ha) > 0 {
		b.flushHA()
	}
	if rt.Disagrees {
		a.strays.Store(true)
	}
	if len(b.forward) > 0 && a.opts.Forward != nil {
		a.forwarded.Add(uint64(len(b.forward)))
		a.opts.Forward.Send(b.forward)
	}
	b.forward = nil
	a.batches.Put(b)
	return idx.version
}

// unaggregated does what is left to do with series ts once its rules have placed it:
// forward it raw downstream (keep_input, or no rule matched and unmatched series are
// forwarded) or count it dropped; a forwarded request's unmatched series are counted (the
// peer wrote them downstream).
func (a *Aggregator) unaggregated(b *batch, ts *prompb.TimeSeries, matched, keep bool, rt *Route) {
	switch {
	case rt.Forwarded:
		if !matched {
			a.peerUnmatched.Add(uint64(len(ts.Samples) + len(ts.Histograms)))
		}
	case keep || (!matched && a.forwardUnmatched.Load()):
		b.forward = append(b.forward, cloneSeries(ts))
	case !matched:
		a.unmatchedDropped.Add(uint64(len(ts.Samples) + len(ts.Histograms)))
	}
}

// add adds the entry of series ts, the i-th of the request, named name, for rule r.
func (b *batch) add(r *ruleState, ts *prompb.TimeSeries, i int, name string) {
	b.addHashed(r, ts, i, name, 0, false)
}

// addHashed is add for a series whose output hash under r is out when hasOut (placement
// computed it): only its input hash is computed here.
func (b *batch) addHashed(r *ruleState, ts *prompb.TimeSeries, i int, name string, out uint64, hasOut bool) {
	var haFrom int64
	if r.replica != "" {
		var ok bool
		if ok, haFrom = b.haAccept(r.elections, r, ts); !ok {
			return // another replica of its HA group is elected
		}
	}
	var inHash, oh uint64
	if hasOut {
		oh = out
		inHash, b.dropped = r.inputHash(b.dropped, ts.Labels, out)
	} else {
		inHash, oh, b.kept, b.dropped = r.seriesHashes(b.kept, b.dropped, ts.Labels)
	}
	// The entry is written in place: append(b.entries, entry{...}) would build it on the
	// stack and copy it with wide loads of narrow stores just made, which the CPU cannot
	// forward.
	if len(b.entries) == cap(b.entries) {
		b.entries = slices.Grow(b.entries, 1)
	}
	b.entries = b.entries[:len(b.entries)+1]
	e := &b.entries[len(b.entries)-1]
	e.r, e.inHash, e.outHash, e.series, e.slot, e.shard = r, inHash, oh, int32(i), -1, uint8(oh%numShards)
	e.haFrom = haFrom
	e.skip = r.floatsUnaggregatable(name)
	e.one = len(ts.Samples) == 1 && len(ts.Histograms) == 0
	e.ex = false
	if len(ts.Exemplars) > 0 {
		if r.rule.Exemplars > 0 {
			e.one, e.ex = false, true // the general path passes them on
		} else {
			r.exemplarsDropped.Add(uint64(len(ts.Exemplars)))
		}
	}
	e.t, e.v = 0, 0
	if e.one {
		e.t, e.v = ts.Samples[0].Timestamp, ts.Samples[0].Value
	}
}

// apply sorts a batch's entries by shard (a counting sort) and applies each shard's entries
// under one acquisition of its lock.
func (a *Aggregator) apply(b *batch, series []prompb.TimeSeries) {
	if len(b.entries) == 0 {
		return
	}
	var counts [numShards + 1]int32
	for i := range b.entries {
		counts[int(b.entries[i].shard)+1]++
	}
	for s := 1; s <= numShards; s++ {
		counts[s] += counts[s-1]
	}
	b.sorted = slices.Grow(b.sorted[:0], len(b.entries))[:len(b.entries)] // every element is written below
	pos := counts
	for i := range b.entries {
		e := &b.entries[i]
		b.sorted[pos[e.shard]] = *e
		pos[e.shard]++
	}
	now := b.now
	maxFuture := a.opts.MaxFuture.Milliseconds()
	for s := 0; s < numShards; s++ {
		es := b.sorted[counts[s]:counts[s+1]]
		if len(es) == 0 {
			continue
		}
		a.locks[s].Lock()
		b.touched += touchInputs(es, s)
		for i := range es {
			e := &es[i]
			rs := &e.r.shards[s]
			if e.one && rs.ready && !e.skip {
				// The usual case needs nothing from the request unless the input is new.
				e.r.ingestSample(rs, e, series, e.t, e.v, now, maxFuture)
				continue
			}
			ts := &series[e.series]
			if !rs.ready {
				switch {
				case len(ts.Samples) > 0:
					e.r.start(ts.Samples[0].Timestamp)
				case len(ts.Histograms) > 0:
					e.r.start(ts.Histograms[0].Timestamp)
				default:
					continue
				}
				e.r.initShard(rs)
			}
			if e.skip {
				rs.stats.dropped[dropUnaggregatable] += uint64(len(ts.Samples))
			} else {
				for _, smp := range ts.Samples {
					e.r.ingestSample(rs, e, series, smp.Timestamp, smp.Value, now, maxFuture)
				}
			}
			if len(ts.Histograms) > 0 {
				e.r.ingestHistograms(rs, e, ts, now, maxFuture)
			}
			if e.ex {
				e.r.keepExemplars(rs, e.outHash, ts)
			}
		}
		a.locks[s].Unlock()
	}
}

// touchInputs loads the table slot of every entry of one shard before any is processed, then
// the output state each feeds, noting in the entry where its input was found. The loads of a
// pass are independent, so the CPU overlaps their cache misses instead of taking them one at
// a time inside ingestSample: with a million inputs that is most of the cost of a lookup.
func touchInputs(es []entry, shard int) uint64 {
	var sum uint64
	for i := range es {
		rs := &es[i].r.shards[shard]
		// The shard's hot fields (see ruleShard): no two loads are more than a line apart.
		sum += uint64(rs.maxT) + rs.stats.ingested
		if rs.ready {
			sum++
		}
		if t := &rs.inputs; len(t.slots) > 0 {
			sum += t.slots[int(tableKey(es[i].inHash))&(len(t.slots)-1)].key
		}
	}
	// Then the outputs those inputs feed, and their open windows: with slots now in cache,
	// these loads are independent too.
	for i := range es {
		rs := &es[i].r.shards[shard]
		if rs.inputs.n == 0 {
			continue
		}
		if slot, in, ok := rs.inputs.get(es[i].inHash); ok {
			es[i].slot = int32(slot)
			if o := rs.outputs[in.out]; o != nil && len(o.wins) > 0 {
				sum += uint64(o.wins[len(o.wins)-1].k) // the newest: where the sample will land
			}
		}
	}
	return sum
}

// cloneSeries deep-copies a series whose strings may point into a reused request buffer.
func cloneSeries(ts *prompb.TimeSeries) prompb.TimeSeries {
	out := prompb.TimeSeries{Labels: make([]prompb.Label, len(ts.Labels))}
	for i, l := range ts.Labels {
		out.Labels[i] = prompb.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
	}
	if len(ts.Samples) > 0 {
		out.Samples = append([]prompb.Sample(nil), ts.Samples...)
	}
	for _, h := range ts.Histograms {
		out.Histograms = append(out.Histograms, cloneHistogram(h))
	}
	return out
}

// cloneHistogram copies a native histogram's slices.
func cloneHistogram(h prompb.Histogram) prompb.Histogram {
	h.NegativeSpans = append([]prompb.BucketSpan(nil), h.NegativeSpans...)
	h.PositiveSpans = append([]prompb.BucketSpan(nil), h.PositiveSpans...)
	h.NegativeDeltas = append([]int64(nil), h.NegativeDeltas...)
	h.PositiveDeltas = append([]int64(nil), h.PositiveDeltas...)
	h.NegativeCounts = append([]float64(nil), h.NegativeCounts...)
	h.PositiveCounts = append([]float64(nil), h.PositiveCounts...)
	h.CustomValues = append([]float64(nil), h.CustomValues...)
	return h
}
