package rules

import (
	"time"
)

// minInterval is the shortest window a rule may have.
const minInterval = time.Second

// compileTiming resolves the rule's interval, flush delay and staleness from its own keys
// and the aggregator defaults. An inherited flush delay longer than the interval is cut to
// the interval (the default 10s on a 5s rule); a rule's own one is an error.
func (s *ruleSource) compileTiming(r *Rule, agg AggregatorConfig, p *problems) {
	c := &s.cfg
	r.Interval = time.Duration(agg.FlushInterval)
	if c.Interval != nil {
		r.Interval = time.Duration(*c.Interval)
		if r.Interval < minInterval {
			s.errorf(p, "interval", "interval must be at least %s, not %s", Duration(minInterval), *c.Interval)
		}
	}
	r.FlushDelay = min(time.Duration(agg.FlushDelay), r.Interval)
	if c.FlushDelay != nil {
		r.FlushDelay = time.Duration(*c.FlushDelay)
		if r.FlushDelay > r.Interval {
			s.errorf(p, "flush_delay", "flush_delay %s is longer than the interval %s: a window must close before the next one ends", *c.FlushDelay, Duration(r.Interval))
		}
	}
	r.Staleness = time.Duration(agg.Staleness)
	if c.Staleness != nil {
		r.Staleness = time.Duration(*c.Staleness)
		if r.Staleness <= 0 {
			s.errorf(p, "staleness", "staleness must be more than 0 (it is how long an input series lives without samples)")
		}
	}
}
