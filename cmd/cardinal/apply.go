package main

import (
	"reflect"
	"time"

	"github.com/cardinal-proxy/cardinal/config"
)

// Apply puts a reloaded configuration in force (reload.Applier): the rules, whose unchanged
// ones keep their state, the policy for unmatched series and warn_unmatched_after. Server and downstream settings
// are read once at start-up.
func (s *server) Apply(old, next *config.Config) error {
	if err := s.agg.SetRules(next.Rules); err != nil {
		return err
	}
	s.agg.SetForwardUnmatched(next.Aggregator.ForwardUnmatched())
	s.agg.SetWarnUnmatchedAfter(time.Duration(next.Aggregator.WarnUnmatchedAfter))
	if !reflect.DeepEqual(next.Downstream, old.Downstream) || next.Server != old.Server || next.Explore != old.Explore {
		s.logger.Warn("server, downstream and explore changes take effect at the next restart")
	}
	return nil
}
