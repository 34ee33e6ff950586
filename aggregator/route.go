package aggregator

import (
	"slices"

	"github.com/prometheus/prometheus/prompb"
)

// placed is one (series, rule) pair of a request in a cluster.
type placed struct {
	r      *ruleState
	series int32
	// out is the pair's output hash when placement computed it (ruleState.placeKept).
	out    uint64
	hasOut bool
}

// BatchRouter is a Router that looks up the owners of many keys at once: owners[i] is the
// owner of keys[i]. hashring's views implement it; a Router without it is asked key by key.
type BatchRouter interface {
	OwnersOf(keys []uint64, owners []int)
}

// routeBlock is how many series of a request route places at a time: few enough that their
// labels are still in the CPU's cache when the block's entries are made, after the owners
// are looked up; enough that the owners' loads overlap.
const routeBlock = 128

// route is IngestRoute's placement in a cluster. It takes the request a block of series at
// a time, in three passes over the block: the rules that select each series and the
// placement keys of those pairs; the owners of all the keys, in one loop whose loads do not
// wait for each other (the ring's owner table is larger than the CPU's cache, and looked up
// pair by pair its misses came one after another: a sixth of a forwarding member's CPU);
// then, series by series, an entry for each pair this member owns, the owners to forward
// the series to, and what is left (unaggregated). A pair another member owns in a forwarded
// request is counted and left to its owner. A forwarded request routed by this member's
// ring and rules goes to addHere instead.
func (a *Aggregator) route(b *batch, idx *ruleIndex, series []prompb.TimeSeries, rt *Route) {
	look := ruleLookup{idx: idx}
	router, _ := rt.Router.(BatchRouter)
	for lo := 0; lo < len(series); lo += routeBlock {
		block := series[lo:min(lo+routeBlock, len(series))]
		b.placed, b.keys, b.names = b.placed[:0], b.keys[:0], b.names[:0]
		for i := range block {
			name, sel := look.selecting(&block[i], b.selected)
			b.selected, b.names = sel, append(b.names, name)
			for _, r := range sel {
				var key, out uint64
				key, out, b.kept = r.placeKeyOfInput(b.kept, block[i].Labels, name)
				b.placed = append(b.placed, placed{r: r, series: int32(i), out: out, hasOut: r.placeKept})
				b.keys = append(b.keys, key)
			}
		}
		b.owners = slices.Grow(b.owners[:0], len(b.keys))[:len(b.keys)]
		if router != nil {
			router.OwnersOf(b.keys, b.owners)
		} else {
			for i, k := range b.keys {
				b.owners[i] = rt.Router.Owner(k)
			}
		}
		p := 0
		for i := range block {
			ts := &block[i]
			matched, keep := false, false
			b.peers = b.peers[:0]
			for ; p < len(b.placed) && b.placed[p].series == int32(i); p++ {
				pl := &b.placed[p]
				matched, keep = true, keep || pl.r.rule.KeepInput
				switch owner := b.owners[p]; {
				case owner == Local:
					b.addHashed(pl.r, ts, lo+i, b.names[i], pl.out, pl.hasOut)
				case rt.Forward == nil:
					pl.r.notOwned.Add(uint64(len(ts.Samples) + len(ts.Histograms)))
				case !slices.Contains(b.peers, owner):
					b.peers = append(b.peers, owner)
				}
			}
			a.unaggregated(b, ts, matched, keep, rt)
			for _, owner := range b.peers {
				rt.Forward(owner, ts, lo+i)
			}
		}
	}
	// Keep no rule or request string alive in the pooled batch.
	clear(b.placed[:cap(b.placed)])
	clear(b.names[:cap(b.names)])
	clear(b.selected[:cap(b.selected)])
}

// trusts reports whether a forwarded request was routed by this member's ring and rules
// (Route.SenderRules, Route.Disagrees): then a series that one rule alone selects was sent
// for that pair, and this member owns it.
func (rt *Route) trusts(idx *ruleIndex) bool {
	return rt.Forwarded && !rt.Disagrees && rt.SenderRules != 0 && rt.SenderRules == idx.version
}

// addHere adds the pairs of each series that this member aggregates without asking a
// ring: every pair without a Router (a member alone), and for a request rt.trusts, the pair
// of a series that one rule alone selects. A series that several rules select in such a
// request is placed pair by pair; its pairs owned elsewhere are counted and left to their
// owners, to whom the sender sent the series too.
func (a *Aggregator) addHere(b *batch, idx *ruleIndex, series []prompb.TimeSeries, rt *Route) {
	look := ruleLookup{idx: idx}
	for i := range series {
		ts := &series[i]
		name, sel := look.selecting(ts, b.selected)
		b.selected = sel
		keep := false
		for _, r := range sel {
			keep = keep || r.rule.KeepInput
			if rt.Router == nil || len(sel) == 1 {
				b.add(r, ts, i, name)
				continue
			}
			var key, out uint64
			key, out, b.kept = r.placeKeyOfInput(b.kept, ts.Labels, name)
			if rt.Router.Owner(key) == Local {
				b.addHashed(r, ts, i, name, out, r.placeKept)
			} else {
				r.notOwned.Add(uint64(len(ts.Samples) + len(ts.Histograms)))
			}
		}
		a.unaggregated(b, ts, len(sel) > 0, keep, rt)
	}
	clear(b.selected[:cap(b.selected)]) // keep no rule alive in the pooled batch
}

// ruleLookup finds the rules that select each series of a request. Series of one metric
// tend to come together, and the rules of a name are looked up once for a run of them.
type ruleLookup struct {
	idx    *ruleIndex
	looked bool
	name   string       // the name looked up last
	named  []*ruleState // its rules
}

// selecting returns the metric name of ts and, in sel (reused), the rules that select ts:
// those of its name, then those matched by other means than the name.
func (l *ruleLookup) selecting(ts *prompb.TimeSeries, sel []*ruleState) (string, []*ruleState) {
	name := metricName(ts.Labels)
	if !l.looked || name != l.name {
		l.named, l.name, l.looked = l.idx.byName.lookup(name), name, true
	}
	sel = sel[:0]
	for _, r := range l.named {
		if r.rule.MatchLabels(ts.Labels) {
			sel = append(sel, r)
		}
	}
	for _, r := range l.idx.scan {
		if r.rule.MatchLabels(ts.Labels) {
			sel = append(sel, r)
		}
	}
	return name, sel
}
