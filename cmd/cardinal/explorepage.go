package main

import (
	"github.com/cardinal-proxy/cardinal/explore"
)

// explorePage serves the cardinality explorer's page and API, with the rules that already
// select each metric and their actual reduction from the aggregator.
func (s *server) explorePage() *explore.Handler {
	return explore.NewHandler(s.explore, s.ruleCoverage, s.logger)
}

// ruleCoverage returns the rules that select each metric, with their series in and out.
func (s *server) ruleCoverage(metrics []string) map[string][]explore.RuleCoverage {
	byRule := map[string][]string{}
	for _, m := range metrics {
		for _, r := range s.agg.RulesSelecting(m) {
			byRule[r] = append(byRule[r], m)
		}
	}
	if len(byRule) == 0 {
		return nil
	}
	out := map[string][]explore.RuleCoverage{}
	for _, st := range s.agg.Stats() {
		for _, m := range byRule[st.Name] {
			rc := explore.RuleCoverage{Rule: st.Name, InputSeries: st.InputSeries, OutputSeries: st.OutputSeries}
			if st.OutputSeries > 0 {
				rc.Reduction = float64(st.InputSeries) / float64(st.OutputSeries)
			}
			out[m] = append(out[m], rc)
		}
	}
	return out
}
