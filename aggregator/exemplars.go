package aggregator

import (
	"strings"

	"github.com/prometheus/prometheus/prompb"
)

// exemplarSet is what one output series keeps of its inputs' exemplars until the windows
// they fall in are emitted: for each window, at most the rule's limit, the newest by
// timestamp.
type exemplarSet struct {
	ex []prompb.Exemplar
}

// add keeps ex, a copy the set owns, if its window (of interval ms) has room or ex is newer
// than the window's oldest (which it replaces), and reports whether an exemplar was let go:
// ex or the one replaced.
func (s *exemplarSet) add(ex prompb.Exemplar, limit int, interval int64) (dropped bool) {
	k := windowOf(ex.Timestamp, interval)
	n, oldest := 0, -1
	for i := range s.ex {
		if windowOf(s.ex[i].Timestamp, interval) != k {
			continue
		}
		n++
		if oldest < 0 || s.ex[i].Timestamp < s.ex[oldest].Timestamp {
			oldest = i
		}
	}
	if n < limit {
		s.ex = append(s.ex, ex)
		return false
	}
	if ex.Timestamp > s.ex[oldest].Timestamp {
		s.ex[oldest] = ex
	}
	return true
}

// take removes and returns the exemplars at or before end (ms), for the output's sample of
// the window ending there; later ones wait for their window.
func (s *exemplarSet) take(end int64) []prompb.Exemplar {
	var out, keep []prompb.Exemplar
	for _, ex := range s.ex {
		if ex.Timestamp <= end {
			out = append(out, ex)
		} else {
			keep = append(keep, ex)
		}
	}
	s.ex = keep
	return out
}

// keepExemplars gives the exemplars of input series ts, whose output is outHash, to that
// output's set, counting those let go: over the rule's limit, or for an output that does
// not exist here (its sample was dropped, or another member owns it).
func (r *ruleState) keepExemplars(rs *ruleShard, outHash uint64, ts *prompb.TimeSeries) {
	_, classic := rs.outputIdx[outHash]
	native := rs.native != nil && rs.native.outputs[outHash] != nil
	if !classic && !native {
		r.exemplarsDropped.Add(uint64(len(ts.Exemplars)))
		return
	}
	if rs.exemplars == nil {
		rs.exemplars = map[uint64]*exemplarSet{}
	}
	set := rs.exemplars[outHash]
	if set == nil {
		set = &exemplarSet{}
		rs.exemplars[outHash] = set
	}
	for _, ex := range ts.Exemplars {
		if set.add(cloneExemplar(ex), r.rule.Exemplars, r.interval) {
			r.exemplarsDropped.Add(1)
		}
	}
}

// takeExemplars returns the exemplars output outHash emits with its sample of the window
// ending at end, forgetting the output's set once it is empty.
func (rs *ruleShard) takeExemplars(outHash uint64, end int64) []prompb.Exemplar {
	set := rs.exemplars[outHash]
	if set == nil {
		return nil
	}
	ex := set.take(end)
	if len(set.ex) == 0 {
		delete(rs.exemplars, outHash)
	}
	return ex
}

// cloneExemplar copies an exemplar whose strings point into a request buffer.
func cloneExemplar(ex prompb.Exemplar) prompb.Exemplar {
	ls := make([]prompb.Label, len(ex.Labels))
	for i, l := range ex.Labels {
		ls[i] = prompb.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
	}
	return prompb.Exemplar{Labels: ls, Value: ex.Value, Timestamp: ex.Timestamp}
}
