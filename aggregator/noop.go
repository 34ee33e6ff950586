package aggregator

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// A rule can be valid and still do nothing useful: its drop_labels or keep_labels name
// labels its inputs never carry, it makes as many output series as it has inputs, or nothing
// it receives matches it. The aggregator watches for these from counts it keeps anyway (the
// live input and output series) and from a bitmap of the grouping labels seen, updated when
// an input series is created, never per sample. Each warning is logged once per rule and
// shown on the status page while it holds.

// noopWarmup is how long a rule must have had input series before its labels and its
// reduction are judged (plus one interval): long enough for every target of a Prometheus
// scraping once a minute to have sent its series.
const noopWarmup = time.Minute

// The kinds of no-op warning, each logged once per rule.
const (
	noopLabelsAbsent = iota // a grouping label never occurs in the inputs
	noopNoReduction         // as many output series as input series
	noopUnmatched           // no input series for warn_unmatched_after
	noopKinds
)

// noopWatch is what the checker remembers of one rule; its own lock, since the status page
// reads the warnings while the checker writes them.
type noopWatch struct {
	mu         sync.Mutex
	checked    bool      // the checker has seen the rule
	inputsFrom time.Time // since when the rule has had input series without a gap (zero: none now)
	emptyFrom  time.Time // since when it has had none (zero: some now)
	flatFrom   time.Time // since when it has had as many outputs as inputs (zero: fewer now)
	current    []string  // the warnings that hold now
	logged     [noopKinds]bool
}

// noteLabels records which of the rule's grouping labels an input series carries; it is
// called when the input series is created, under its shard lock. Once every name has been
// seen, it costs one atomic load.
func (r *ruleState) noteLabels(lbls []prompb.Label) {
	all := r.allLabelBits()
	seen := r.seenLabels.Load()
	if seen&all == all {
		return
	}
	var bits uint64
	for i := range lbls {
		if j := r.grouping.index(lbls[i].Name); j >= 0 && j < 64 {
			bits |= 1 << j
		}
	}
	if bits&^seen != 0 {
		r.seenLabels.Or(bits)
	}
}

// allLabelBits has a bit for each of the grouping names that seenLabels tracks.
func (r *ruleState) allLabelBits() uint64 {
	n := len(r.grouping.names)
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// checkNoOps updates every rule's warnings at now and logs those that are new.
func (a *Aggregator) checkNoOps(now time.Time) {
	a.mu.Lock()
	rs := append([]*ruleState(nil), a.rules...)
	a.mu.Unlock()
	after := time.Duration(a.warnUnmatchedAfter.Load())
	for _, r := range rs {
		for kind, msg := range r.checkNoOp(now, after) {
			a.opts.Logger.Warn(msg, "rule", r.rule.Name, "source", r.rule.Source, "warning", noopKindNames[kind])
		}
	}
}

// noopKindNames name the kinds in logs.
var noopKindNames = [noopKinds]string{"labels_absent", "no_reduction", "unmatched"}

// checkNoOp updates the rule's warnings at now and returns those to log: the ones that hold
// for the first time.
func (r *ruleState) checkNoOp(now time.Time, unmatchedAfter time.Duration) map[int]string {
	w := &r.noop
	w.mu.Lock()
	defer w.mu.Unlock()
	inputs, outputs := r.inputs.Load(), r.outputN.Load()
	if !w.checked {
		w.checked = true
		w.emptyFrom = now // a new rule has matched nothing yet
	}
	switch {
	case inputs > 0 && w.inputsFrom.IsZero():
		w.inputsFrom, w.emptyFrom = now, time.Time{}
	case inputs == 0 && w.emptyFrom.IsZero():
		w.inputsFrom, w.emptyFrom = time.Time{}, now
	}
	// An output outlives its last input until the next flush ends it, so outputs can catch
	// up with inputs for a moment: no reduction counts once it has lasted two intervals.
	switch flat := inputs > 0 && outputs >= inputs; {
	case flat && w.flatFrom.IsZero():
		w.flatFrom = now
	case !flat:
		w.flatFrom = time.Time{}
	}
	interval := time.Duration(r.interval) * time.Millisecond
	var holds [noopKinds]string
	warm := inputs > 0 && now.Sub(w.inputsFrom) >= noopWarmup+interval
	if warm {
		if absent := r.absentLabels(); len(absent) > 0 {
			holds[noopLabelsAbsent] = r.absentMessage(absent, inputs)
		}
		if !w.flatFrom.IsZero() && now.Sub(w.flatFrom) >= 2*interval {
			holds[noopNoReduction] = fmt.Sprintf("%s reduces nothing: its %d input series make %d output series; %s",
				r.describe(), inputs, outputs, r.reduceHint())
		}
	}
	if unmatchedAfter > 0 && inputs == 0 && now.Sub(w.emptyFrom) >= unmatchedAfter {
		holds[noopUnmatched] = fmt.Sprintf("%s has had no input series for %s: nothing it receives matches it (check its metric_name or match against what the agents send)",
			r.describe(), now.Sub(w.emptyFrom).Truncate(time.Second))
	}
	w.current = w.current[:0]
	var fresh map[int]string
	for kind, msg := range holds {
		if msg == "" {
			continue
		}
		w.current = append(w.current, msg)
		if !w.logged[kind] {
			w.logged[kind] = true
			if fresh == nil {
				fresh = map[int]string{}
			}
			fresh[kind] = msg
		}
	}
	return fresh
}

// warnings returns the no-op warnings that hold now.
func (r *ruleState) warnings() []string {
	r.noop.mu.Lock()
	defer r.noop.mu.Unlock()
	return append([]string(nil), r.noop.current...)
}

// absentLabels lists the grouping labels no input series has carried (a histogram's le,
// which keep_labels gets added, is not the author's).
func (r *ruleState) absentLabels() []string {
	seen := r.seenLabels.Load()
	var out []string
	for i, n := range r.grouping.names {
		if i >= 64 {
			break
		}
		if seen&(1<<i) == 0 && (n != "le" || r.rule.Type != rules.Histogram) {
			out = append(out, n)
		}
	}
	return out
}

// absentMessage says what absent grouping labels mean for the rule.
func (r *ruleState) absentMessage(absent []string, inputs int64) string {
	key, verb, effect := "drop_labels", "never occur", "dropping them changes nothing"
	if r.rule.ByMode {
		key, effect = "keep_labels", "no output series carries them"
	}
	if len(absent) == 1 {
		verb = "never occurs"
		if r.rule.ByMode {
			effect = "no output series carries it"
		} else {
			effect = "dropping it changes nothing"
		}
	}
	return fmt.Sprintf("%s: %s %s %s in its %d input series: %s",
		r.describe(), key, strings.Join(absent, ", "), verb, inputs, effect)
}

// reduceHint says how a rule that reduces nothing could.
func (r *ruleState) reduceHint() string {
	switch {
	case r.rule.ByMode:
		return "keep fewer labels"
	case len(r.rule.Without) == 0:
		return "it drops no label: add drop_labels or keep_labels"
	}
	return "drop_labels names no label that tells its inputs apart: drop more"
}

// describe names the rule as warnings do: by its name and where it is written.
func (r *ruleState) describe() string {
	return fmt.Sprintf("rule %q (%s)", r.rule.Name, r.rule.Source)
}
