package aggregator

import (
	"context"
	"time"
)

// limitLogInterval is the least time between two log lines about one rule's limits.
const limitLogInterval = time.Minute

// limitLog tells the operator, at most once per limitLogInterval per rule, that a rule's
// max_input_series or max_output_series is dropping new series. The counter
// (cardinal_aggregator_samples_dropped_total{reason="limit"}) counts every drop; the log line
// names the rule so that someone reads it. It is used by one goroutine.
type limitLog struct {
	seen map[*ruleState]limitLogState
}

// limitLogState is what limitLog remembers of one rule.
type limitLogState struct {
	logged  uint64    // limit drops counted when the rule was last logged (or first seen)
	lastLog time.Time // zero until the first line
}

// startLimitLog starts the goroutine that checks the rules for limit drops every FlushTick
// until ctx is done, and returns a function that waits for it to stop.
func (a *Aggregator) startLimitLog(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		l := &limitLog{}
		t := time.NewTicker(a.opts.FlushTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				l.report(a)
			}
		}
	}()
	return func() { <-done }
}

// report logs every rule whose limit drops grew since its last line, unless that line is
// less than limitLogInterval old: then the drops wait for the next line, which counts them.
func (l *limitLog) report(a *Aggregator) {
	a.mu.Lock()
	rs := append([]*ruleState(nil), a.rules...)
	a.mu.Unlock()
	if l.seen == nil {
		l.seen = make(map[*ruleState]limitLogState, len(rs))
	}
	now := a.opts.Now()
	live := make(map[*ruleState]bool, len(rs))
	for _, r := range rs {
		live[r] = true
		if r.rule.MaxInputSeries <= 0 && r.rule.MaxOutputSeries <= 0 {
			continue
		}
		drops := a.limitDrops(r)
		st := l.seen[r]
		if drops <= st.logged || (!st.lastLog.IsZero() && now.Sub(st.lastLog) < limitLogInterval) {
			continue
		}
		a.opts.Logger.Warn("rule cardinality limit reached: new series of this rule are dropped; its existing series keep aggregating",
			"rule", r.rule.Name, "source", r.rule.Source,
			"max_input_series", r.rule.MaxInputSeries, "input_series", r.inputs.Load(),
			"max_output_series", r.rule.MaxOutputSeries, "output_series", r.outputN.Load(),
			"samples_dropped", drops-st.logged)
		l.seen[r] = limitLogState{logged: drops, lastLog: now}
	}
	for r := range l.seen {
		if !live[r] {
			delete(l.seen, r)
		}
	}
}

// limitDrops sums the samples rule r dropped for its limits, across shards.
func (a *Aggregator) limitDrops(r *ruleState) uint64 {
	var n uint64
	for s := range numShards {
		a.locks[s].Lock()
		n += r.shards[s].stats.dropped[dropLimit]
		a.locks[s].Unlock()
	}
	return n
}
