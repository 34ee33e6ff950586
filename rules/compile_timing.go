package rules

import (
	"time"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// compileTiming resolves the rule's interval, flush delay and staleness from its own keys
// and the aggregator defaults. An inherited flush delay longer than the interval is cut to
// the interval (the default 10s on a 5s rule); a rule's own one is an error.
func (s *ruleSource) compileTiming(r *Rule, defaults Defaults, p *setting.Problems) {
	c := &s.cfg
	r.Interval = time.Duration(defaults.FlushInterval)
	if c.Interval != nil {
		r.Interval = time.Duration(*c.Interval)
		if r.Interval < MinInterval {
			s.errorf(p, "interval", "interval must be at least %s, not %s", setting.Duration(MinInterval), *c.Interval)
		}
	}
	r.FlushDelay = min(time.Duration(defaults.FlushDelay), r.Interval)
	if c.FlushDelay != nil {
		r.FlushDelay = time.Duration(*c.FlushDelay)
		if r.FlushDelay > r.Interval {
			s.errorf(p, "flush_delay", "flush_delay %s is longer than the interval %s: a window must close before the next one ends", *c.FlushDelay, setting.Duration(r.Interval))
		}
	}
	r.Staleness = time.Duration(defaults.Staleness)
	if c.Staleness != nil {
		r.Staleness = time.Duration(*c.Staleness)
		if r.Staleness <= 0 {
			s.errorf(p, "staleness", "staleness must be more than 0 (it is how long an input series lives without samples)")
		}
	}
}
