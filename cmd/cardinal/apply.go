package main

import (
	"reflect"

	"github.com/cardinal-proxy/cardinal/config"
)

// Apply puts a reloaded configuration in force (reload.Applier): the rules, whose unchanged
// ones keep their state, and the policy for unmatched series. Server and downstream settings
// are read once at start-up.
func (s *server) Apply(old, next *config.Config) error {
	if err := s.agg.SetRules(next.Rules); err != nil {
		return err
	}
	s.agg.SetForwardUnmatched(next.Aggregator.ForwardUnmatched())
	if !reflect.DeepEqual(next.Downstream, old.Downstream) || next.Server != old.Server {
		s.logger.Warn("server and downstream changes take effect at the next restart")
	}
	return nil
}
